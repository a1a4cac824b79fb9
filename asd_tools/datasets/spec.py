"""What the recipe needs to know about one data set, as one frozen object.

A :class:`DatasetSpec` names a data set's machine types (development and evaluation), their
units (machine IDs or sections), the file-name rule, the archives, where its ground truth lives
and in what format, its official metric and its submission file names. The rules themselves live
with the code that applies them (``data/names.py``, ``data/ground_truth.py``,
``scoring/metrics.py``, ``scoring/submission.py``), chosen by the names given here; the facts of
each year live only in ``datasets/registry.py``.
"""

import difflib
from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple

DATASETS = ("dev", "eval")  # the two halves of every year: development and evaluation


def unknown_machines_line(unknown, known, where="") -> str:
    """One line for machine type names that are not among ``known``: each with the name it was probably
    meant to be (the same letters in another case, else the closest spelling), then the known ones."""
    lowered = {name.lower(): name for name in known}
    guesses = []
    for name in unknown:
        guess = lowered.get(name.lower()) or next(iter(difflib.get_close_matches(name, known, n=1)), None)
        guesses.append(f"'{name}'" + (f" (did you mean '{guess}'?)" if guess else ""))
    return f"unknown machine type(s) {', '.join(guesses)}{where}; known: {' '.join(known)}"


@dataclass(frozen=True)
class Archive:
    """One set of Zenodo archives: ``<zenodo url>/<record>/files/<file_pattern>`` per machine type."""

    name: str  # dev, eval_train, eval_test
    record: str
    file_pattern: str  # with {machine}
    dataset: str  # the folder it unpacks into (dev/ or eval/); also whose machine types it has
    renamed: Mapping[str, str] = field(default_factory=dict)  # machine -> file name, where it differs

    def file_name(self, machine: str) -> str:
        return self.renamed.get(machine, self.file_pattern.format(machine=machine))


@dataclass(frozen=True)
class GroundTruth:
    """Where the evaluation labels are published, and in which of the formats of ``data/ground_truth.py``."""

    format: str  # label_domain_files, per_domain_files, eval_data_list
    url: str  # base URL of the files (``--ground_truth_url`` replaces it)
    list_name: str = ""  # eval_data_list only: the list's file name


@dataclass(frozen=True)
class DatasetSpec:
    name: str  # dcase2022: the --data / --layout value
    title: str  # "DCASE 2022 Task 2", for score tables
    dev_machines: Tuple[str, ...]
    eval_machines: Tuple[str, ...]
    dev_units: Mapping[str, Tuple[int, ...]]  # machine -> sections (or machine IDs) of its dev part
    eval_units: Mapping[str, Tuple[int, ...]]
    unit: str  # "section" or "id": what the manifest's ``section`` column holds
    naming: str  # the file-name rule (data/names.py NAME_RULES)
    metric: str  # the official score (scoring/metrics.py OFFICIAL_RULES)
    submission: str  # the submission file names (scoring/submission.py SUBMISSION_NAMES)
    ground_truth: GroundTruth
    archives: Tuple[Archive, ...]
    first_shot: bool = False  # evaluation machine types unseen in development, one section each
    test_folders: Tuple[str, ...] = ()  # archive test folders merged into test/ after unpacking (2021)
    supplemental: bool = False  # machine folders may hold supplemental/ clips (2025)
    hidden_attributes: Tuple[str, ...] = ()  # machine types whose names end in _noAttribute (2024, 2025)
    attribute_files: bool = True  # attributes_SS.csv beside the clips (from 2022)
    source: str = ""  # where the facts come from

    def machines(self, dataset: Optional[str] = None) -> Tuple[str, ...]:
        """Machine types of one half (``dev`` / ``eval``), or of both in order (each once)."""
        if dataset == "dev":
            return self.dev_machines
        if dataset == "eval":
            return self.eval_machines
        if dataset is not None:
            raise ValueError(f"dataset '{dataset}' is neither dev nor eval")
        return tuple(dict.fromkeys(self.dev_machines + self.eval_machines))

    def datasets_of(self, machine: str) -> Tuple[str, ...]:
        """The halves (dev, eval) a machine type has data in; ValueError naming the known types otherwise."""
        halves = tuple(d for d in DATASETS if machine in self.machines(d))
        if not halves:
            raise ValueError(unknown_machines_line([machine], self.machines(), f" in {self.name}"))
        return halves

    def units(self, machine: str, dataset: str) -> Tuple[int, ...]:
        """Sections (or machine IDs) of ``machine`` in one half; empty when it has no data there."""
        table = self.dev_units if dataset == "dev" else self.eval_units
        return tuple(table.get(machine, ()))

    def dataset_of_unit(self, machine: str, unit: int) -> str:
        """Which half a section (or ID) belongs to. In first-shot years section 00 is in both; the folder decides."""
        halves = [d for d in self.datasets_of(machine) if unit in self.units(machine, d)]
        if not halves:
            known = {d: self.units(machine, d) for d in self.datasets_of(machine)}
            raise ValueError(f"{self.unit} {unit:02d} is not a {self.unit} of {machine} in {self.name} ({known})")
        return halves[0]

    def unit_label(self, unit: int) -> str:
        return f"{self.unit} {int(unit):02d}"


def same_units(machines, units) -> dict:
    """``{machine: units}`` for machine types that share their units."""
    return {m: tuple(units) for m in machines}
