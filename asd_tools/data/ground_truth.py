"""Labels of the evaluation test clips, read from the official ground truth at scoring time.

Evaluation test names carry no labels (``section_03_0000.wav``); the organisers publish them
after the challenge, in one of three formats (the data set's spec names which):

* ``label_domain_files`` (2022-2024 evaluators): two CSV files per machine type and section,
  no header: ``ground_truth_data/ground_truth_<machine>_section_<SS>_test.csv`` (name,1 = anomaly)
  and ``ground_truth_domain/...`` (name,1 = target).
* ``per_domain_files`` (2021 evaluator): ``ground_truth_data/ground_truth_<machine>_section_<SS>_
  <source|target>_test.csv`` (name,1 = anomaly); the domain is in the evaluation names already.
* ``eval_data_list`` (2020; 2025, whose evaluator files could not be read): one list over all
  machine types, a line naming the machine type before its rows ``<anonymised name>,<labelled
  name>[,<0|1>]``; state and domain are parsed from the labelled name by the year's naming rule.

They are read here and not by the dump, so that ground truth that appears, changes or disappears
after the dump is used at the next scoring without a re-dump. A malformed file is an error that
names the file and the line.
"""

import csv
import logging
from pathlib import Path

import pandas as pd

from asd_tools.constants import UNKNOWN
from asd_tools.data.names import parse_name
from asd_tools.provenance import file_digest, read_record

# label_domain_files: manifest column, evaluator folder, the labels its 0 and 1 stand for
GROUND_TRUTH_FILES = (
    ("state", "ground_truth_data", ("normal", "anomaly")),
    ("domain", "ground_truth_domain", ("source", "target")),
)
STATES = ("normal", "anomaly")
GROUND_TRUTH_FOLDER = "ground_truth"  # inside the data root, as the download and the synthetic set write it


class BadGroundTruth(ValueError):
    """A ground-truth file that does not follow the evaluator's format."""


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


def ground_truth_files(spec, machine, section) -> list:
    """The ground-truth files (relative to the ground-truth folder) that label one evaluation section."""
    fmt = spec.ground_truth.format
    if fmt == "label_domain_files":
        return [
            f"{folder}/ground_truth_{machine}_section_{int(section):02d}_test.csv"
            for _, folder, _ in GROUND_TRUTH_FILES
        ]
    if fmt == "per_domain_files":
        return [
            f"ground_truth_data/ground_truth_{machine}_section_{int(section):02d}_{domain}_test.csv"
            for domain in ("source", "target")
        ]
    if fmt == "eval_data_list":
        return [spec.ground_truth.list_name]
    raise ValueError(f"unknown ground-truth format '{fmt}'")


def read_eval_data_list(path) -> dict:
    """``{machine: [(line number, anonymised name, labelled name, label or None)]}`` from an evaluation list."""
    rows, machine = {}, None
    with open(path, newline="") as f:  # csv reads the CRLF endings some lists have
        for number, fields in enumerate(csv.reader(f), start=1):
            fields = [x.strip() for x in fields]
            if not any(fields):
                continue
            if len(fields) == 1:
                machine = fields[0]
                rows.setdefault(machine, [])
                continue
            if machine is None or len(fields) not in (2, 3):
                raise BadGroundTruth(
                    f"{path}, line {number}: '{','.join(fields)}' is not '<anonymised name>,<labelled name>[,<0|1>]' "
                    "after a line naming the machine type"
                )
            label = fields[2] if len(fields) == 3 else None
            rows[machine].append((number, fields[0], fields[1], label))
    return rows


def _list_labels(path, spec, machine, section, names) -> dict:
    """``{name: (domain, state)}`` of one section's clips from an evaluation list."""
    names = set(names)
    labels = {}
    for number, anonymised, labelled, label in read_eval_data_list(path).get(machine, []):
        where = f"{path}, line {number}"
        anon_fields = parse_name(anonymised, spec)
        if anon_fields is None or anon_fields["section"] != int(section):
            continue  # another section's row
        fields = parse_name(labelled, spec)
        if fields is None or fields["state"] == UNKNOWN:
            raise BadGroundTruth(f"{where}: '{labelled}' is not a labelled {spec.name} file name")
        if label is not None and label != str(STATES.index(fields["state"])):
            raise BadGroundTruth(f"{where}: label {label} disagrees with the name {labelled}")
        if anonymised not in names:
            raise BadGroundTruth(f"{where}: {anonymised} is not a test clip of {machine} {spec.unit_label(section)}")
        if anonymised in labels:
            raise BadGroundTruth(f"{where}: {anonymised} is labelled twice")
        labels[anonymised] = (fields["domain"], fields["state"])
    missing = sorted(names - set(labels))
    if missing:
        raise BadGroundTruth(f"{path} has no label for {len(missing)} test clips of {machine}, e.g. {missing[:3]}")
    return labels


def section_labels(ground_truth_dir, spec, machine, section, clips: pd.DataFrame) -> dict:
    """``{file name: (domain, state)}`` of one evaluation section's clips (``clips``: file_name, domain)."""
    root = Path(ground_truth_dir)
    paths = [root / rel for rel in ground_truth_files(spec, machine, section)]
    fmt = spec.ground_truth.format
    names = list(clips["file_name"])
    if fmt == "label_domain_files":
        states, domains = (read_ground_truth_file(p, names) for p in paths)
        return {n: (("source", "target")[domains[n]], STATES[states[n]]) for n in names}
    if fmt == "per_domain_files":
        labels = {}
        for domain, path in zip(("source", "target"), paths):
            in_domain = list(clips.loc[clips["domain"] == domain, "file_name"])
            states = read_ground_truth_file(path, in_domain)
            labels.update({n: (domain, STATES[states[n]]) for n in in_domain})
        return labels
    return _list_labels(paths[0], spec, machine, section, names)


def _unlabelled_sections(manifest):
    unlabelled = (manifest["state"] == UNKNOWN) & (manifest["split"] == "test")
    return manifest[unlabelled].groupby(["machine", "section"]).groups


def label_evaluation_clips(manifest: pd.DataFrame, ground_truth_dir, spec) -> pd.DataFrame:
    """A copy of ``manifest`` whose unlabelled test clips get domain and state from the ground truth
    (in the format of ``spec``, the data set's spec).

    A section with no ground-truth files stays unlabelled (with a warning): the score tables then
    leave it out and say that the set is only partly labelled.
    """
    manifest = manifest.copy()
    for (machine, section), rows in _unlabelled_sections(manifest).items():
        where = f"{machine} {spec.unit_label(section)}"
        if ground_truth_dir is None:
            logging.warning(f"{where}: no ground truth given; its clips stay unlabelled")
            continue
        paths = [Path(ground_truth_dir) / rel for rel in ground_truth_files(spec, machine, section)]
        absent = [str(p) for p in paths if not p.exists()]
        if absent:
            logging.warning(f"{where}: no ground truth ({', '.join(absent)}); its evaluation clips stay unlabelled")
            continue
        clips = manifest.loc[rows, ["file_name", "domain"]]
        labels = section_labels(ground_truth_dir, spec, machine, section, clips)
        manifest.loc[rows, "domain"] = [labels[name][0] for name in clips["file_name"]]
        manifest.loc[rows, "state"] = [labels[name][1] for name in clips["file_name"]]
    return manifest


def ground_truth_inputs(manifest: pd.DataFrame, ground_truth_dir, spec) -> dict:
    """Identities of the ground-truth files that label ``manifest``'s clips (for a scoring record)."""
    inputs = {}
    for (machine, section), _ in _unlabelled_sections(manifest).items():
        for rel in ground_truth_files(spec, machine, section):
            path = Path(ground_truth_dir) / rel if ground_truth_dir else None
            inputs[f"ground_truth/{rel}/{machine}_{int(section):02d}"] = (
                file_digest(path) if path is not None and path.exists() else "absent"
            )
    return inputs


def labelled_manifest(corpus, machines, ground_truth_dir=None) -> pd.DataFrame:
    """The manifest of ``machines`` (read through ``corpus``, a :class:`~asd_tools.data.corpus.Corpus`)
    with every evaluation label known so far (default ground truth: ``<data root>/ground_truth`` of the dump)."""
    ground_truth_dir = ground_truth_dir or default_ground_truth_dir(corpus.dumpdir, machines)
    return label_evaluation_clips(corpus.manifest(machines), ground_truth_dir, corpus.spec)
