"""The systems registry: a config's ``system:`` names the class that trains and embeds with it.

Every system runs on the same core (``systems/base.py``), so one training entry point (``bin/train``),
one embedding entry point (``bin/embed``) and one stage script (``scripts/asd.sh``) serve them all: the
core calls a system's own parts (its training phases, its checkpoints, its model and its embeddings)
and does the rest. ``expdir/<checkpoint>/`` then holds ``inlier.npz`` and ``test.npz``, and the
shared detector stage scores every such folder.

A new system is one module with a ``System`` subclass and its config schema (whose ``system`` field
names it), registered below in ``SYSTEMS``; see docs/extending.md.
"""

from pathlib import Path
from typing import Dict, Type

from asd_tools.artefacts import CONFIG
from asd_tools.config import ConfigError, read_config
from asd_tools.systems.base import System
from asd_tools.systems.baseline.recipe import Baseline
from asd_tools.systems.dcase_ae.recipe import DcaseAE
from asd_tools.systems.dgmix.recipe import DGMix
from asd_tools.systems.serial_oe.recipe import SerialOE

SYSTEMS: Dict[str, Type[System]] = {cls.name: cls for cls in (SerialOE, DGMix, Baseline, DcaseAE)}


def system_name(config_path) -> str:
    """The ``system:`` a config names (its bases merged); a clear error when it names none or an unknown one."""
    data = read_config(config_path)
    known = sorted(SYSTEMS)
    name = data.get("system") if isinstance(data, dict) else None
    if name is None:
        raise ConfigError(
            f"{config_path} names no system: add a top-level 'system:' line ({' or '.join(known)}), or give it "
            "a 'base:' that has one (every config in conf/tuning/ does)"
        )
    if name not in known:
        raise ConfigError(f"{config_path}: system '{name}' is not registered; known systems: {known}")
    return name


def system_for_config(config_path) -> System:
    """The system that a config file names."""
    return SYSTEMS[system_name(config_path)]()


def system_for_experiment(expdir) -> System:
    """The system that made an experiment folder, from its saved config."""
    path = Path(expdir) / CONFIG
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the training stage (stage 3) of {expdir} first")
    try:
        return system_for_config(path)
    except ConfigError as err:
        raise ConfigError(
            f"{err}. A config.yaml saved before configs named their system: re-run the training stage "
            "(stage 3; a finished model is kept) to rewrite it"
        ) from None
