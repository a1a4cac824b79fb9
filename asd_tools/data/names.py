"""The one place where DCASE 2022 file names are parsed.

Every later stage reads the manifest's columns instead of splitting names again.
"""

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from asd_tools.constants import MACHINE_TYPES, SPLITS, UNKNOWN, dataset_of_section

# The suffix is .wav in any case (.WAV too); clip ids drop it, file names keep it exactly,
# since the official evaluator pairs submission rows with its ground truth by exact name.
WAV = ".wav"
# section_00_source_train_normal_0009_car_A1_spd_28V_mic_1_noise_1.wav
LABELLED_NAME = re.compile(
    r"^section_(?P<section>\d{2})_(?P<domain>source|target)_(?P<split>train|test)_"
    r"(?P<state>normal|anomaly)_(?P<index>\d{4})(?:_(?P<attributes>.+))?(?i:\.wav)$"
)
# section_03_0123.wav (evaluation test set: no labels in the name)
UNLABELLED_NAME = re.compile(r"^section_(?P<section>\d{2})_(?P<index>\d{4})(?i:\.wav)$")


def wav_files(folder, recursive=False):
    """The WAV files in ``folder`` (and below it when ``recursive``), sorted: .wav in any case,
    which ``glob("*.wav")`` misses on a case-sensitive file system."""
    candidates = Path(folder).rglob("*") if recursive else Path(folder).iterdir()
    return sorted(p for p in candidates if p.suffix.lower() == WAV and p.is_file())


class BadClipName(ValueError):
    """A file name or location that does not follow the DCASE 2022 layout."""


@dataclass(frozen=True)
class ClipInfo:
    """Everything a DCASE 2022 path says about its clip."""

    clip_id: str
    file_name: str
    machine: str
    dataset: str
    split: str
    section: int
    domain: str
    state: str
    index: int
    attributes: str

    def as_dict(self) -> dict:
        return asdict(self)


def parse_clip_path(path) -> ClipInfo:
    """Parse ``.../<machine>/<split>/<file name>`` into a :class:`ClipInfo`.

    The machine type and split come from the folders, the rest from the name;
    the split written in a labelled name must agree with its folder.
    """
    path = Path(path)
    machine, split, name = path.parent.parent.name, path.parent.name, path.name
    if machine not in MACHINE_TYPES:
        raise BadClipName(f"{path}: folder '{machine}' is not a machine type {MACHINE_TYPES}")
    if split not in SPLITS:
        raise BadClipName(f"{path}: folder '{split}' is not one of {SPLITS}")
    labelled = LABELLED_NAME.match(name)
    if labelled:
        fields = labelled.groupdict()
        if fields["split"] != split:
            raise BadClipName(f"{path}: name says '{fields['split']}' but the file is in '{split}/'")
        domain, state, attributes = fields["domain"], fields["state"], fields["attributes"] or ""
    else:
        unlabelled = UNLABELLED_NAME.match(name)
        if not unlabelled or split != "test":
            raise BadClipName(
                f"{path}: '{name}' fits no DCASE 2022 name pattern "
                "(section_SS_<source|target>_<train|test>_<normal|anomaly>_NNNN[_attrs].wav, "
                "or section_SS_NNNN.wav for evaluation test clips)"
            )
        fields = unlabelled.groupdict()
        domain, state, attributes = UNKNOWN, UNKNOWN, ""
    section = int(fields["section"])
    try:
        dataset = dataset_of_section(section)
    except ValueError as err:
        raise BadClipName(f"{path}: {err}") from None
    stem = name[: -len(WAV)]
    return ClipInfo(
        clip_id=f"{machine}/{dataset}/{split}/{stem}",
        file_name=name,
        machine=machine,
        dataset=dataset,
        split=split,
        section=section,
        domain=domain,
        state=state,
        index=int(fields["index"]),
        attributes=attributes,
    )
