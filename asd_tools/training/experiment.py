"""Guarding a training folder: a model is only resumed or reused when it was trained from today's inputs.

Training is the one stage that is not recomputed silently when its record is stale: a model can
cost days, and a config edited by mistake should not discard it. Instead the run stops and says
what changed; ``--force`` retrains after moving the old outputs aside (nothing is deleted).
"""

import logging
import time
from pathlib import Path

from asd_tools.provenance import OtherFormatError, Provenance
from asd_tools.utils import LOCK_NAME

REPLACED_PREFIX = "replaced-"


class StaleExperiment(ValueError):
    """A training folder holds a model made from other inputs or settings than the ones given now."""


def has_training_outputs(folder: Path) -> bool:
    return any(p.suffix == ".pt" or p.name.endswith(".done") for p in folder.glob("*")) if folder.is_dir() else False


def move_aside(folder: Path, quiet=False) -> Path:
    """Move every output of ``folder`` (all but logs and earlier replaced runs) into ``replaced-<time>/``."""
    target = folder / f"{REPLACED_PREFIX}{time.strftime('%Y%m%d-%H%M%S')}"
    target.mkdir()
    for path in sorted(folder.iterdir()):
        if path == target or path.name.startswith(REPLACED_PREFIX) or path.suffix == ".log" or path.name == LOCK_NAME:
            continue
        path.rename(target / path.name)
    if not quiet:
        logging.warning(f"{folder}: the previous outputs were moved to {target}")
    return target


def claim_training_dir(record: Provenance, force: bool, option="--force true") -> None:
    """Check (or start) the record of a training folder before anything is trained or overwritten.

    Same inputs and settings: resume or skip as the trainer decides. Different, or outputs
    without a record: stop with the differences, unless ``force`` (then the old outputs are
    moved aside and training starts afresh). A record with no model beside it (a run killed
    before its first checkpoint) guards nothing: that folder restarts with today's settings.
    """
    folder = record.folder
    try:
        changes = record.changes()
    except OtherFormatError:
        if not force:
            raise
        changes = ["a record of another asd_tools format"]  # forced: replaced like any other stale model
    if changes and not has_training_outputs(folder):
        leftovers = move_aside(folder, quiet=True)
        logging.warning(
            f"{folder}: no model there yet (an earlier run stopped before its first checkpoint); training "
            f"starts afresh with the settings given now (that run's record and TensorBoard files: {leftovers})"
        )
        changes = None
    if changes is None and has_training_outputs(folder):
        changes = [f"no {record.path.name} (trained by an older version of the recipe)"]
    if changes or (force and has_training_outputs(folder)):
        if not force:
            raise StaleExperiment(
                f"{folder} holds a model trained from other inputs or settings: "
                + "; ".join(changes)
                + f". To retrain, re-run with {option} (the old outputs are moved to "
                f"{folder}/{REPLACED_PREFIX}<time>/); to keep it, restore the config, or give the new config "
                "another --tag"
            )
        move_aside(folder)
    folder.mkdir(parents=True, exist_ok=True)
    record.write()
