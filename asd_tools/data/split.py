"""Stage 2: the inlier/training split of each machine type's training clips.

Source clips are split stratified by section (k-fold, shuffled with a fixed seed, first fold =
validation; k from valid_ratio by ``FOLD_RULES``); target clips go to validation when their
index is a multiple of 3. The lists ``lists/{train,valid,test}.txt`` hold clip ids, and
``supplemental_clean.txt`` / ``supplemental_noise.txt`` the supplemental clips of 2025 (clean machine
sounds, noise-only recordings; empty files where a machine type has none), which no list above holds.
"""

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from asd_tools.artefacts import MANIFEST
from asd_tools.constants import NOISE, SUPPLEMENTAL
from asd_tools.data.manifest import dump_identity, read_manifest
from asd_tools.provenance import Provenance, file_digest
from asd_tools.utils import atomic_write_text

SUBSETS = ("train", "valid", "test", "supplemental_clean", "supplemental_noise")
TARGET_VALID_EVERY = 3  # target clip index % 3 == 0 -> validation
MIN_FOLDS = 2  # a k-fold split needs two folds
# How many folds valid_ratio gives; the first fold is the source validation share (1 / folds).
#   int:   int(1 / valid_ratio), truncated, as the original recipe (write_scp.py):
#          valid_ratio 0.15 -> 6 folds, 16.7 % of the source clips
#   round: max(round(1 / valid_ratio), 2), this project's earlier rule: 0.15 -> 7 folds, 14.3 %
FOLD_RULES = {
    "int": lambda valid_ratio: int(1.0 / valid_ratio),
    "round": lambda valid_ratio: max(int(round(1.0 / valid_ratio)), MIN_FOLDS),
}


def valid_folds(valid_ratio: float, fold_rule: str = "int") -> int:
    """The number of k-fold splits that ``valid_ratio`` gives under ``fold_rule``."""
    if not 0 < valid_ratio < 1:
        raise ValueError(f"valid_ratio must lie in (0, 1), got {valid_ratio}")
    if fold_rule not in FOLD_RULES:
        raise ValueError(f"unknown fold rule '{fold_rule}': choose from {list(FOLD_RULES)}")
    n_splits = FOLD_RULES[fold_rule](valid_ratio)
    if n_splits < MIN_FOLDS:
        raise ValueError(
            f"valid_ratio={valid_ratio} gives {n_splits} fold under the '{fold_rule}' rule; "
            f"a split needs {MIN_FOLDS}: use valid_ratio <= 0.5"
        )
    return n_splits


def split_training_clips(df: pd.DataFrame, valid_ratio: float, seed: int, fold_rule: str = "int") -> pd.Series:
    """Return 'train'/'valid' for each training clip of one machine type."""
    n_splits = valid_folds(valid_ratio, fold_rule)
    subset = pd.Series("train", index=df.index)
    source = df[df["domain"] == "source"]
    smallest = source["section"].value_counts().min() if len(source) else 0
    if smallest < n_splits:
        raise ValueError(
            f"{df['machine'].iloc[0]}: a section has only {smallest} source training clips, fewer than the "
            f"{n_splits} folds that valid_ratio={valid_ratio} needs; raise valid_ratio or add clips"
        )
    from sklearn.model_selection import StratifiedKFold  # here: scoring reads lists without sklearn

    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    _, valid_positions = next(folds.split(np.zeros(len(source)), source["section"]))
    subset[source.index[valid_positions]] = "valid"
    target = df[df["domain"] == "target"]
    subset[target.index[target["index"] % TARGET_VALID_EVERY == 0]] = "valid"
    return subset


def write_lists(dumpdir, machine, valid_ratio=0.15, seed=0, force=False, fold_rule="int"):
    """Write ``<dumpdir>/<machine>/lists/{train,valid,test}.txt``; skipped while dump and settings are unchanged."""
    outdir = Path(dumpdir) / machine / "lists"
    record = Provenance(
        outdir,
        "lists",
        inputs={"dump": dump_identity(dumpdir, machine)},
        settings={"valid_ratio": valid_ratio, "seed": seed, "fold_rule": fold_rule},
    )
    if record.is_current(force):
        return
    record.invalidate()
    df = read_manifest(Path(dumpdir) / machine / MANIFEST)
    train = df[df["split"] == "train"]
    subsets = split_training_clips(train, valid_ratio, seed, fold_rule)
    lists = {
        "train": train.loc[subsets == "train", "clip_id"],
        "valid": train.loc[subsets == "valid", "clip_id"],
        "test": df.loc[df["split"] == "test", "clip_id"],
        "supplemental_clean": df.loc[(df["split"] == SUPPLEMENTAL) & (df["state"] != NOISE), "clip_id"],
        "supplemental_noise": df.loc[(df["split"] == SUPPLEMENTAL) & (df["state"] == NOISE), "clip_id"],
    }
    for name, ids in lists.items():
        atomic_write_text(outdir / f"{name}.txt", "".join(f"{i}\n" for i in ids))
    record.write()
    logging.info(f"{machine}: " + ", ".join(f"{k} {len(v)}" for k, v in lists.items()))


def read_list(dumpdir, machine, subset):
    """Clip ids of one subset (train / valid / test / supplemental_clean / supplemental_noise) of a machine type."""
    if subset not in SUBSETS:
        raise ValueError(f"unknown subset '{subset}': choose one of {SUBSETS}")
    path = Path(dumpdir) / machine / "lists" / f"{subset}.txt"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run stage 2 (lists) first")
    return path.read_text().split()


def read_lists(dumpdir, machine, subsets):
    """Clip ids of several subsets, in order (e.g. the inliers: train + valid)."""
    return [clip for subset in subsets for clip in read_list(dumpdir, machine, subset)]


def lists_identity(dumpdir, machine, subsets) -> dict:
    """Content digests of the list files a stage reads (for its provenance record)."""
    folder = Path(dumpdir) / machine / "lists"
    for subset in subsets:
        if not (folder / f"{subset}.txt").exists():
            raise FileNotFoundError(f"{folder / subset}.txt is missing: run stage 2 (lists) first")
    return {f"lists/{machine}/{subset}": file_digest(folder / f"{subset}.txt") for subset in subsets}
