"""Labels of the evaluation test clips, read from the official evaluator's ground truth at scoring time.

Evaluation test names carry no labels (``section_03_0000.wav``); the evaluator publishes them,
months after the data, as two CSV files per machine type and section, without a header:

  <ground_truth_dir>/ground_truth_data/ground_truth_<machine>_section_<SS>_test.csv    name,1 = anomaly
  <ground_truth_dir>/ground_truth_domain/ground_truth_<machine>_section_<SS>_test.csv  name,1 = target

They are read here and not by the dump, so that ground truth that appears, changes or disappears
after the dump is used at the next scoring without a re-dump. A malformed file is an error that
names the file and the line.
"""

import logging
from pathlib import Path

import pandas as pd

from asd_tools.constants import UNKNOWN
from asd_tools.provenance import file_digest, read_record

# manifest column, evaluator folder, the labels its 0 and 1 stand for
GROUND_TRUTH_FILES = (
    ("state", "ground_truth_data", ("normal", "anomaly")),
    ("domain", "ground_truth_domain", ("source", "target")),
)
GROUND_TRUTH_FOLDER = "ground_truth"  # inside the data root, as the download and the synthetic set write it


class BadGroundTruth(ValueError):
    """A ground-truth file that does not follow the evaluator's format."""


def ground_truth_path(ground_truth_dir, folder, machine, section) -> Path:
    return Path(ground_truth_dir) / folder / f"ground_truth_{machine}_section_{int(section):02d}_test.csv"


def default_ground_truth_dir(dumpdir, machines):
    """``<data root>/ground_truth`` of the data the dump was made from (read from the dump's record)."""
    for machine in machines:
        record = read_record(Path(dumpdir) / machine, "dump")
        if record and "data_root" in record.get("info", {}):
            return Path(record["info"]["data_root"]) / GROUND_TRUTH_FOLDER
    return None


def read_ground_truth_file(path, clip_names) -> dict:
    """``{file name: 0 or 1}`` from one evaluator file, checked line by line against ``clip_names``."""
    clip_names = set(clip_names)
    labels = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        where = f"{path}, line {number}"
        if len(fields) != 2:
            raise BadGroundTruth(f"{where}: '{line}' is not '<file name>,<0 or 1>'")
        name, label = fields
        if label not in ("0", "1"):
            if number == 1 and name not in clip_names:
                raise BadGroundTruth(
                    f"{where}: '{line}' looks like a header row; the evaluator's files have none: remove the line"
                )
            raise BadGroundTruth(f"{where}: label '{label}' of {name} is not 0 or 1")
        if name not in clip_names:
            raise BadGroundTruth(
                f"{where}: {name} is not a test clip of this machine type and section in the dump "
                "(is the file for another data set or section?)"
            )
        if name in labels:
            raise BadGroundTruth(f"{where}: {name} is labelled twice")
        labels[name] = int(label)
    missing = sorted(clip_names - set(labels))
    if missing:
        raise BadGroundTruth(f"{path} has no label for {len(missing)} test clips, e.g. {missing[:3]}")
    return labels


def _unlabelled_sections(manifest):
    unlabelled = (manifest["state"] == UNKNOWN) & (manifest["split"] == "test")
    return manifest[unlabelled].groupby(["machine", "section"]).groups


def label_evaluation_clips(manifest: pd.DataFrame, ground_truth_dir) -> pd.DataFrame:
    """A copy of ``manifest`` whose unlabelled test clips get domain and state from the ground truth.

    A section with no ground-truth files stays unlabelled (with a warning): the score tables then
    leave it out and say that the set is only partly labelled.
    """
    manifest = manifest.copy()
    for (machine, section), rows in _unlabelled_sections(manifest).items():
        if ground_truth_dir is None:
            logging.warning(f"{machine} section {int(section):02d}: no ground truth given; its clips stay unlabelled")
            continue
        paths = [ground_truth_path(ground_truth_dir, folder, machine, section) for _, folder, _ in GROUND_TRUTH_FILES]
        absent = [str(p) for p in paths if not p.exists()]
        if absent:
            logging.warning(
                f"{machine} section {int(section):02d}: no ground truth ({', '.join(absent)}); "
                "its evaluation clips stay unlabelled"
            )
            continue
        names = manifest.loc[rows, "file_name"]
        for (column, _, values), path in zip(GROUND_TRUTH_FILES, paths):
            labels = read_ground_truth_file(path, names)
            manifest.loc[rows, column] = [values[labels[name]] for name in names]
    return manifest


def ground_truth_inputs(manifest: pd.DataFrame, ground_truth_dir) -> dict:
    """Identities of the ground-truth files that label ``manifest``'s clips (for a scoring record)."""
    inputs = {}
    for (machine, section), _ in _unlabelled_sections(manifest).items():
        for _, folder, _ in GROUND_TRUTH_FILES:
            path = ground_truth_path(ground_truth_dir, folder, machine, section) if ground_truth_dir else None
            key = f"ground_truth/{folder}/{machine}_{int(section):02d}"
            inputs[key] = file_digest(path) if path is not None and path.exists() else "absent"
    return inputs


def labelled_manifest(corpus, machines, ground_truth_dir=None) -> pd.DataFrame:
    """The manifest of ``machines`` (read through ``corpus``, a :class:`~asd_tools.data.corpus.Corpus`)
    with every evaluation label known so far (default ground truth: ``<data root>/ground_truth`` of the dump)."""
    ground_truth_dir = ground_truth_dir or default_ground_truth_dir(corpus.dumpdir, machines)
    return label_evaluation_clips(corpus.manifest(machines), ground_truth_dir)
