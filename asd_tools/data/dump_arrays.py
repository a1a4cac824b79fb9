"""A dump's arrays as its record describes them: how the samples are stored, and whether the files
on disk are still the ones the dump wrote.

Storage: where every clip of a machine type is 16-bit PCM at 16 kHz (the DCASE WAV files), an
array holds the PCM integers as they are (int16, half the size of float32) and the record gives the
``scale`` (1 / 32768) and the normalisation ``mean`` and ``std``; a reader turns them into float32
in the copy it makes anyway (:func:`normalise_into`), with the same float64 arithmetic the dump
used, so the values equal a float32 dump's exactly. Other clips (24-bit, float, resampled) are
stored as normalised float32.

Check: the record holds each array's size, modification time and SHA-256. Every stage checks
the size when it opens a dump (a stat, always), and the digest, with a scan for NaN and infinite
values, only when the size or time differs from the record or ``--verify true`` asks for it
(``ASD_VERIFY_DUMP``); a file whose time changed but whose content is the same passes, and its
record is brought up to date so the next stage does not hash it again.
"""

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from asd_tools.artefacts import record_name
from asd_tools.provenance import HASH_CHUNK, read_record
from asd_tools.utils import atomic_write_text

PCM16 = "int16"
FLOAT32 = "float32"
PCM16_SCALE = 1.0 / 32768  # libsndfile's PCM_16 -> float: k / 32768, exact in float32 and float64
VERIFY_ENV = "ASD_VERIFY_DUMP"  # "true": every stage re-hashes the dump's arrays it opens (--verify true)
REDUMP = "re-run the dump stage (stage 1) with --force true"
FINITE_CHUNK = 1 << 22  # samples per finiteness check


class DamagedDumpError(ValueError):
    """A dump array that is not what the dump wrote: the message names the file and the fix."""


def verify_requested() -> bool:
    return os.environ.get(VERIFY_ENV, "").lower() == "true"


def array_entry(path, storage: str, mean: float, std: float) -> dict:
    """The record's description of a freshly written array (after its final rename)."""
    path = Path(path)
    stat = path.stat()
    entry = {"dtype": storage, "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": _scan(path)}
    if storage == PCM16:
        entry.update(scale=PCM16_SCALE, mean=mean, std=std)
    return entry


def _scan(path) -> str:
    """SHA-256 of the file; DamagedDumpError when a float array holds NaN or infinite values."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(HASH_CHUNK), b""):
            digest.update(chunk)
    try:
        array = np.load(path, mmap_mode="r")
    except ValueError as err:
        raise DamagedDumpError(f"{path}: not a readable .npy array ({err}); {REDUMP}") from None
    if array.dtype.kind == "f":
        for start in range(0, len(array), FINITE_CHUNK):
            if not np.all(np.isfinite(array[start : start + FINITE_CHUNK])):
                raise DamagedDumpError(f"{path}: holds NaN or infinite values; {REDUMP}")
    return digest.hexdigest()


_checked = {}  # (path, size, mtime) -> the digest found, so a process hashes a file at most once


def check_array(path, entry: dict, verify=False) -> None:
    """DamagedDumpError naming ``path`` when it is not the array its record describes."""
    path = Path(path)
    if not path.exists():
        raise DamagedDumpError(f"{path} is missing; {REDUMP}")
    stat = path.stat()
    if stat.st_size != entry["bytes"]:
        raise DamagedDumpError(
            f"{path}: {stat.st_size} bytes, but the dump wrote {entry['bytes']} (truncated or damaged); {REDUMP}"
        )
    changed = stat.st_mtime_ns != entry["mtime_ns"]
    if not (changed or verify):
        return
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _checked:
        _checked[key] = _scan(path)
    if _checked[key] != entry["sha256"]:
        why = "its modification time changed" if changed else "--verify true"
        raise DamagedDumpError(f"{path}: its content is not what the dump wrote (SHA-256, checked as {why}); {REDUMP}")
    if changed:
        _update_time(path, stat.st_mtime_ns)


def _update_time(path: Path, mtime_ns: int) -> None:
    """Record the new time of an array whose content was found unchanged (touched, or copied)."""
    record_path = path.parent / record_name("dump")
    record = json.loads(record_path.read_text())
    record["info"]["arrays"][path.name]["mtime_ns"] = mtime_ns
    atomic_write_text(record_path, json.dumps(record, indent=2) + "\n")
    logging.info(f"{path}: its time changed but its content is what the dump wrote (SHA-256 checked)")


def array_entries(folder) -> dict:
    """The record's entries of a dump folder's arrays (file name -> entry); an error naming the folder
    and the fix when it has no record (``read_record`` rejects one of an older format)."""
    folder = Path(folder)
    record = read_record(folder, "dump")
    if record is None:
        raise FileNotFoundError(f"{folder / record_name('dump')} is missing: run the dump stage (stage 1) first")
    return record["info"]["arrays"]


def check_dump(folder, verify=None) -> None:
    """Check every array of one dump folder against its record (``verify`` None: as ``--verify`` says)."""
    verify = verify_requested() if verify is None else verify
    for name, entry in array_entries(folder).items():
        check_array(Path(folder) / name, entry, verify)


def normalise_into(raw, out, entry: dict) -> None:
    """Write the float32 samples of ``raw`` (a slice of an array) into ``out``.

    PCM is normalised in float64, as the float32 dump was, and rounded once to float32 on assignment:
    the values equal the float32 dump's bit for bit.
    """
    if entry["dtype"] == PCM16:
        out[:] = (raw.astype(np.float64) * entry["scale"] - entry["mean"]) / entry["std"]
    else:
        out[:] = raw
