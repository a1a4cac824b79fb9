"""The classes a section head learns (System 1's and DG-Mix's): sections or section x attribute pairs.

``section``: one class per section number (0-5), as the original recipes. ``attribute``: one class per
(section, attribute string) pair of the machine type's training and validation clips, the targets of
the first-shot baselines and top systems since 2023: a finer task that makes the embedding tell
operating conditions apart, not only sections (a ``noAttribute`` type has one class per section).
``auto``: ``attribute`` for a machine type whose training clips hold one section (every first-shot
year, 2023-2025: a one-class section head learns nothing), ``section`` otherwise (2020-2022), decided
from the corpus, not from the year. The attribute table is written beside the model (``classes.csv``)
because the head's width and the per-section scores depend on it.

Either way the embedding stage writes ``section_logits`` with one column per section (for the
attribute classes: the best of that section's classes), so the section-logit score and the
feature sets of the detector stage mean the same for both. The sections are the machine type's
as its manifest names them (``Corpus.sections``), in that order: column ``j`` is ``sections[j]``.
"""

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from asd_tools.artefacts import CLASSES
from asd_tools.data.corpus import Corpus
from asd_tools.utils import write_csv

TRAINING_LISTS = ("train", "valid")  # the lists whose clips define the classes
CLASS_TARGETS = ("section", "attribute", "auto")
NO_CLASS = -1  # clips of other machine types under attribute classes: an all-zero target row


def attribute_classes(clips: pd.DataFrame) -> pd.DataFrame:
    """The sorted (section, attributes) pairs of ``clips`` (one machine type's labelled clips)."""
    pairs = clips[["section", "attributes"]].drop_duplicates().sort_values(["section", "attributes"])
    return pairs.reset_index(drop=True)


def resolve_class_target(class_target: str, corpus: Corpus, machine) -> str:
    """``section`` or ``attribute``; ``auto`` becomes ``attribute`` when the machine type's training and
    validation clips hold a single section (the first-shot years), ``section`` otherwise."""
    if class_target != "auto":
        return class_target
    sections = corpus.clips(machine, TRAINING_LISTS)["section"].unique()
    resolved = "attribute" if len(sections) == 1 else "section"
    logging.info(f"{machine}: {len(sections)} section(s) in training: class_target auto -> {resolved}")
    return resolved


def read_classes(corpus: Corpus, machine, class_target: str):
    """The attribute table of one machine type's training and validation lists (None for sections);
    ``class_target`` is resolved (``resolve_class_target``)."""
    if class_target == "section":
        return None
    if class_target != "attribute":
        raise ValueError(f"class_target '{class_target}' is not resolved: call resolve_class_target first")
    return attribute_classes(corpus.clips(machine, TRAINING_LISTS))


def class_indices(clips: pd.DataFrame, classes, is_own: np.ndarray, sections, lenient=None) -> np.ndarray:
    """The class of every clip: the position of its section in ``sections`` (``classes`` None; a clip
    without a section, such as a pool clip, counts as section 0's, as the original's label 0; a section
    the machine type lacks gives ``NO_CLASS``), or its row in the attribute table (``NO_CLASS`` for clips
    of other machine types and pool clips). ``lenient``: own clips whose pair may be missing from the
    table (2025's supplemental clean clips, whose names carry no attributes): ``NO_CLASS`` then."""
    if classes is None:
        position = {s: i for i, s in enumerate(sections)}
        return np.array([position.get(s, NO_CLASS) for s in clips["section"].clip(lower=0)], dtype=np.int64)
    row = {(int(s), a): i for i, (s, a) in enumerate(zip(classes["section"], classes["attributes"]))}
    keys = zip(clips["section"].astype(int), clips["attributes"])
    found = np.array([row.get(key, NO_CLASS) for key in keys], dtype=np.int64)
    missing = is_own & (found == NO_CLASS)
    if lenient is not None:
        missing &= ~lenient
    if missing.any():
        raise ValueError(
            f"{int(missing.sum())} clips of this machine type have a (section, attributes) pair outside its "
            "training and validation lists: the attribute classes are taken from those lists"
        )
    return np.where(is_own, found, NO_CLASS)


def one_hot(indices: torch.Tensor, n_classes: int) -> torch.Tensor:
    """One-hot rows; ``NO_CLASS`` gives a row of zeros."""
    out = torch.zeros(len(indices), n_classes)
    known = indices >= 0
    out[known, indices[known]] = 1.0
    return out


def n_classes(classes, sections) -> int:
    """Width of the section head: one output per section, or per attribute class."""
    return len(sections) if classes is None else len(classes)


def save_classes(classes, expdir) -> None:
    if classes is not None:
        write_csv(classes, Path(expdir) / CLASSES)


def load_classes(expdir, class_target: str):
    """The attribute table a model was trained with (None for section classes); ``class_target`` resolved."""
    if class_target == "section":
        return None
    if class_target != "attribute":
        raise ValueError(f"class_target '{class_target}' is not resolved: call resolve_class_target first")
    path = Path(expdir) / CLASSES
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the model was not trained with attribute classes (class_target)")
    return pd.read_csv(path, dtype={"attributes": str}, keep_default_na=False)


def per_section_logits(logits: torch.Tensor, classes, sections) -> torch.Tensor:
    """(windows, len(sections)) logits: each section's best class. A section without classes gets the
    window's lowest logit, so feature sets stay finite."""
    if classes is None:
        return logits
    floor = logits.min(dim=1).values
    columns = []
    for section in sections:
        members = np.flatnonzero(classes["section"].to_numpy() == section)
        columns.append(logits[:, members].max(dim=1).values if len(members) else floor)
    return torch.stack(columns, dim=1)
