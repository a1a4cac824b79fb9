"""The one place where clip file names are parsed, for every data set's naming rule.

Every later stage reads the manifest's columns instead of splitting names again. A data set's
spec (``datasets/registry.py``) names its rule; the rules are here:

* ``section`` (2022-2025): ``section_00_source_train_normal_0009_<attributes>.wav``,
  ``section_00_target_test_anomaly_0001_noAttribute.wav``; evaluation test clips
  ``section_03_0123.wav`` (no labels). Clip indices start at 0000 or 0001 depending on the type.
* ``section_domain_test`` (2021): the same labelled names (development test clips carry no
  attributes); evaluation test clips keep their domain: ``section_03_source_test_0123.wav``.
* supplemental clips (2025, ``<half>/<machine>/supplemental/``): ``section_00_<tags>_NNNN[_attrs].wav``
  whose tags hold ``supplemental``; ``noise`` among them marks a noise-only clip, ``target`` a
  target-domain one (source otherwise). The names of the real archives are not documented; these
  follow a third-party 2025 loader (``section_00_source_supplemental_machine_0000.wav``,
  ``section_00_noise_supplemental_normal_0000.wav``), so anything of that shape is accepted.
* ``machine_id`` (2020): ``normal_id_01_00000000.wav``, ``anomaly_id_01_00000263.wav``;
  evaluation test clips ``id_05_00000000.wav``. No domains: every clip is "source".
"""

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from asd_tools.constants import NOISE, SPLITS, SUPPLEMENTAL, UNKNOWN
from asd_tools.datasets.spec import DATASETS

# The suffix is .wav in any case (.WAV too); clip ids drop it, file names keep it exactly,
# since the official evaluator pairs submission rows with its ground truth by exact name.
WAV = ".wav"
# section_00_source_train_normal_0009_car_A1_spd_28V_mic_1_noise_1.wav. The split is optional:
# the 2024 evaluator's full names of RoboticArm lack "_test_" (section_00_source_normal_0001_...).
LABELLED_SECTION = re.compile(
    r"^section_(?P<section>\d{2})_(?P<domain>source|target)(?:_(?P<split>train|test))?_"
    r"(?P<state>normal|anomaly)_(?P<index>\d{4})(?:_(?P<attributes>.+))?(?i:\.wav)$"
)
# section_03_0123.wav (the READMEs' section_03_test_0123.wav accepted too)
UNLABELLED_SECTION = re.compile(r"^section_(?P<section>\d{2})_(?:test_)?(?P<index>\d{4})(?i:\.wav)$")
UNLABELLED_SECTION_DOMAIN = re.compile(
    r"^section_(?P<section>\d{2})_(?P<domain>source|target)_test_(?P<index>\d{4})(?i:\.wav)$"
)
SUPPLEMENTAL_SECTION = re.compile(
    r"^section_(?P<section>\d{2})_(?P<tags>(?:[A-Za-z]+_)*?supplemental(?:_[A-Za-z]+)*?)_(?P<index>\d{4})"
    r"(?:_(?P<attributes>.+))?(?i:\.wav)$"
)
SUPPLEMENTAL_FORMS = (
    "section_SS_<tags including 'supplemental'>_NNNN[_attrs].wav, e.g. section_00_source_supplemental_machine_0000.wav"
)
LABELLED_ID = re.compile(r"^(?P<state>normal|anomaly)_id_(?P<section>\d{2})_(?P<index>\d{8})(?i:\.wav)$")
UNLABELLED_ID = re.compile(r"^id_(?P<section>\d{2})_(?P<index>\d{8})(?i:\.wav)$")


@dataclass(frozen=True)
class NameRule:
    """The name patterns of one data set: labelled (training and development test) and unlabelled
    (evaluation test); ``domain`` is the domain of clips whose names carry none."""

    labelled: re.Pattern
    unlabelled: re.Pattern
    forms: str  # the patterns in words, for error messages
    domain: str = UNKNOWN

    def parse(self, name: str):
        """The name's fields (section, domain, state, index, attributes, split or None), or None."""
        match = self.labelled.match(name) or self.unlabelled.match(name)
        if not match:
            return None
        fields = match.groupdict()
        return {
            "section": int(fields["section"]),
            "domain": fields.get("domain") or self.domain,
            "state": fields.get("state") or UNKNOWN,
            "index": int(fields["index"]),
            "attributes": fields.get("attributes") or "",
            "split": fields.get("split"),
            "labelled": match.re is self.labelled,
        }


SECTION_FORMS = "section_SS_<source|target>_<train|test>_<normal|anomaly>_NNNN[_attrs].wav"
NAME_RULES = {
    "section": NameRule(
        LABELLED_SECTION, UNLABELLED_SECTION, f"{SECTION_FORMS}, or section_SS_NNNN.wav for evaluation test clips"
    ),
    "section_domain_test": NameRule(
        LABELLED_SECTION,
        UNLABELLED_SECTION_DOMAIN,
        f"{SECTION_FORMS}, or section_SS_<source|target>_test_NNNN.wav for evaluation test clips",
    ),
    "machine_id": NameRule(
        LABELLED_ID,
        UNLABELLED_ID,
        "<normal|anomaly>_id_NN_NNNNNNNN.wav, or id_NN_NNNNNNNN.wav for evaluation test clips",
        domain="source",
    ),
}


def wav_files(folder, recursive=False):
    """The WAV files in ``folder`` (and below it when ``recursive``), sorted: .wav in any case,
    which ``glob("*.wav")`` misses on a case-sensitive file system."""
    candidates = Path(folder).rglob("*") if recursive else Path(folder).iterdir()
    return sorted(p for p in candidates if p.suffix.lower() == WAV and p.is_file())


class BadClipName(ValueError):
    """A file name or location that does not follow the data set's layout."""


@dataclass(frozen=True)
class ClipInfo:
    """Everything a clip's path says about it."""

    clip_id: str
    file_name: str
    machine: str
    dataset: str
    split: str
    section: int  # the section, or the machine ID in 2020
    domain: str
    state: str
    index: int
    attributes: str

    def as_dict(self) -> dict:
        return asdict(self)


def parse_supplemental_name(name: str):
    """The fields of a supplemental clip's name (section, domain, state: normal or noise, index,
    attributes), or None."""
    match = SUPPLEMENTAL_SECTION.match(name)
    if not match:
        return None
    tags = match["tags"].lower().split("_")
    return {
        "section": int(match["section"]),
        "domain": "target" if "target" in tags else "source",
        "state": NOISE if NOISE in tags else "normal",
        "index": int(match["index"]),
        "attributes": match["attributes"] or "",
        "split": SUPPLEMENTAL,
        "labelled": True,
    }


def clip_splits(spec) -> tuple:
    """The split folders a machine folder of ``spec`` may hold (``supplemental`` in 2025)."""
    return SPLITS + ((SUPPLEMENTAL,) if spec.supplemental else ())


def parse_name(name: str, spec):
    """The fields of a bare file name under ``spec``'s naming rule (None if it fits no pattern)."""
    return NAME_RULES[spec.naming].parse(name)


def parse_clip_path(path, spec) -> ClipInfo:
    """Parse ``.../<dev|eval>/<machine>/<split>/<file name>`` into a :class:`ClipInfo`.

    ``spec`` is the data set's :class:`~asd_tools.datasets.spec.DatasetSpec`.
    The half (dev / eval), machine type and split come from the folders, the rest from the name;
    the split written in a labelled name must agree with its folder, and the section (or ID) must
    be one of that machine type's in that half.
    """
    path = Path(path)
    dataset, machine, split, name = path.parent.parent.parent.name, path.parent.parent.name, path.parent.name, path.name
    if dataset not in DATASETS:
        raise BadClipName(
            f"{path}: folder '{dataset}' is not one of {DATASETS} (layout <root>/<dev|eval>/<machine>/...)"
        )
    if machine not in spec.machines(dataset):
        raise BadClipName(
            f"{path}: folder '{machine}' is not a machine type of the {dataset} half of {spec.title} "
            f"{spec.machines(dataset)}"
        )
    if split not in clip_splits(spec):
        raise BadClipName(f"{path}: folder '{split}' is not one of {clip_splits(spec)} in {spec.title}")
    rule = NAME_RULES[spec.naming]
    if split == SUPPLEMENTAL:
        fields, forms = parse_supplemental_name(name), SUPPLEMENTAL_FORMS
    else:
        fields, forms = rule.parse(name), rule.forms
    if fields is None or (not fields["labelled"] and split != "test"):
        raise BadClipName(f"{path}: '{name}' fits no {spec.title} name pattern ({forms})")
    if fields["split"] is not None and fields["split"] != split:
        raise BadClipName(f"{path}: name says '{fields['split']}' but the file is in '{split}/'")
    if fields["section"] not in spec.units(machine, dataset):
        raise BadClipName(
            f"{path}: {machine} has no {spec.unit_label(fields['section'])} in the {dataset} half of {spec.title} "
            f"(its {spec.unit}s there: {', '.join(f'{u:02d}' for u in spec.units(machine, dataset))})"
        )
    stem = name[: -len(WAV)]
    return ClipInfo(
        clip_id=f"{machine}/{dataset}/{split}/{stem}",
        file_name=name,
        machine=machine,
        dataset=dataset,
        split=split,
        section=fields["section"],
        domain=fields["domain"],
        state=fields["state"],
        index=fields["index"],
        attributes=fields["attributes"],
    )
