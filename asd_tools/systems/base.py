"""The interface every system implements (see ``asd_tools.systems.registry``)."""

from typing import List, Tuple

from asd_tools.config import load_config

CONFIG_NAME = "config.yaml"  # the resolved config in every experiment folder


class System:
    """One ASD system. Subclasses set ``name`` and ``config_class`` and implement the three stages."""

    name: str = ""
    config_class: type = type(None)
    description: str = ""
    # Config keys ("section.key") holding the training seed: ``asd.sh --seeds`` sets them all to each seed
    # in turn. Empty for a system that trains nothing at random (its runs are identical for every seed).
    seed_keys: Tuple[str, ...] = ()

    def train(self, config_path, dumpdir, machine, machines, expdir, device, force=False) -> None:
        """Train (or resume, or skip when finished) ``expdir`` for ``machine``; ``machines``: all machine
        types of the run (a system that uses other machine types as negatives takes them from it)."""
        raise NotImplementedError

    def checkpoints(self, expdir) -> List[str]:
        """Names of the models in ``expdir`` that the embed stage embeds."""
        raise NotImplementedError

    def embed(self, expdir, dumpdir, machine, checkpoint, device, force=False) -> None:
        """Embeddings of the inlier and test clips -> ``expdir/<checkpoint>/{inlier,test}.npz``."""
        raise NotImplementedError

    def load_config(self, path):
        return load_config(path, self.config_class)


def check_system_field(config, name: str) -> None:
    """A config read with the schema of system ``name`` must name that system (``system:``)."""
    if config.system != name:
        raise ValueError(
            f"system: '{config.system}', but the config is read as one of '{name}'; run it through bin/train "
            "(which picks the system the config names), or correct its 'system:' line"
        )
