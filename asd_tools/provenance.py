"""What every stage output was made from, and whether it is still current.

A stage writes ``provenance_<stage>.json`` into its output folder *after* its outputs: the identity of
each input (a content hash, or for large inputs a record digest or a file-list fingerprint), the
settings that shape the output (the resolved config section), and the code version. On a re-run
the stage computes the same record from today's inputs and compares:

* equal: the output is current and the stage is skipped;
* different: the output is stale. Cheap stages (dump, lists, embeddings, detectors, scoring)
  remove the old record first and recompute; training stops with a message naming what changed
  (a model is expensive, and silently retraining would discard it).

The existence of an output file is never taken as proof that it is current. The code version is
recorded for the reader but is not compared. Every record carries the one format number
:data:`FORMAT`: a code change that alters what any stage writes bumps it, and a record of another
format is never read (:class:`OtherFormatError` names the file and the fix), so no module keeps
code for older outputs.
"""

import hashlib
import json
import logging
import subprocess
from pathlib import Path

from asd_tools import __version__
from asd_tools.artefacts import record_name
from asd_tools.utils import atomic_write_text

HASH_CHUNK = 1 << 20
# The format of every output and record. 6: one number for every stage (before it, each stage had its
# own: dump 3, lists 2, detect 2, score 5, the rest 1); every dump record names its data set (layout).
FORMAT = 6
COMPARED = ("stage", "format", "inputs", "settings")  # what makes two records equal


def file_digest(path) -> str:
    """SHA-256 of a file's content (checkpoints, embeddings, lists, score tables, ground truth)."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{path} is missing: run the stage that writes it first")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def files_fingerprint(paths, root) -> str:
    """One digest over many files' relative names, sizes and modification times.

    Used for the audio of a data set (tens of thousands of files, gigabytes): hashing the
    content on every run would cost minutes, while any copy, edit, addition or removal
    changes a name, size or time.
    """
    lines = []
    for path in sorted(Path(p) for p in paths):
        stat = path.stat()
        lines.append(f"{path.relative_to(root).as_posix()}\t{stat.st_size}\t{stat.st_mtime_ns}")
    return text_digest("\n".join(lines))


def code_version() -> str:
    """The package version, plus the git commit when running from a checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}+{commit}" if commit else __version__


class OtherFormatError(ValueError):
    """A record (and so the output beside it) written by an asd_tools of another :data:`FORMAT`."""


RERUN = "re-run that stage with --force (asd.sh --force true), or the whole recipe into a new --expdir / --dumpdir"


def check_format(path, record: dict, rerun: str = RERUN) -> dict:
    """``record`` (read from ``path``) when it carries today's :data:`FORMAT`; else the one error for an
    output of another format: the file, its format and what to do (``rerun``)."""
    found = record.get("format") if isinstance(record, dict) else None
    if found == FORMAT:
        return record
    if isinstance(found, int) and found > FORMAT:
        raise OtherFormatError(
            f"{path}: written by a newer asd_tools (format {found}; this one reads format {FORMAT}): "
            f"update asd_tools, or {rerun}"
        )
    raise OtherFormatError(
        f"{path}: written by an older asd_tools (format {found}; this one reads format {FORMAT}): {rerun}"
    )


def read_record(folder, stage):
    """The stored record of ``stage`` in ``folder`` (a dict), or None when there is none.

    A record of another format raises :class:`OtherFormatError`: older outputs are never read.
    """
    path = Path(folder) / record_name(stage)
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None  # a damaged record proves nothing: the output is treated as stale
    return check_format(path, record)


def record_digest(folder, stage) -> str:
    """Identity of a finished stage's output for the next stage's record.

    Only the compared parts count (not the code version or notes), so redoing a stage from the
    same inputs with the same settings keeps its identity and later stages stay current.
    """
    record = read_record(folder, stage)
    if record is None:
        path = Path(folder) / record_name(stage)
        raise FileNotFoundError(f"{path} is missing: the {stage} stage has not finished for {folder}; run it first")
    compared = {key: record.get(key) for key in COMPARED}
    return text_digest(json.dumps(compared, sort_keys=True))


def _flatten(value, prefix=""):
    """{"train": {"epochs": 20}} -> {"train.epochs": 20}."""
    if isinstance(value, dict) and value:
        out = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


def differences(old: dict, new: dict) -> list:
    """Human-readable differences between a stored record and today's (empty: current)."""
    lines = [f"stage: {old.get('stage')!r} -> {new['stage']!r}"] if old.get("stage") != new["stage"] else []
    old_inputs, new_inputs = old.get("inputs", {}), new["inputs"]
    for name in sorted(set(old_inputs) | set(new_inputs)):
        if name not in old_inputs:
            lines.append(f"input {name} is new")
        elif name not in new_inputs:
            lines.append(f"input {name} is gone")
        elif old_inputs[name] != new_inputs[name]:
            lines.append(f"input {name} changed")
    before, after = _flatten(old.get("settings", {})), _flatten(new["settings"])
    absent = "<absent>"
    for key in sorted(set(before) | set(after)):
        if before.get(key, absent) != after.get(key, absent):
            lines.append(f"{key}: {before.get(key, absent)!r} -> {after.get(key, absent)!r}")
    return lines


class Provenance:
    """The record of one stage's output folder.

    ``inputs``: name -> identity string; ``settings``: the JSON-able settings that shape the output.
    """

    def __init__(self, folder, stage: str, inputs: dict, settings: dict, info: dict = None):
        self.folder = Path(folder)
        self.record = {
            "stage": stage,
            "format": FORMAT,
            "inputs": dict(sorted(inputs.items())),
            "settings": json.loads(json.dumps(settings, sort_keys=True)),
            "code": code_version(),
            "info": info or {},  # recorded for the reader, never compared
        }

    @property
    def path(self) -> Path:
        return self.folder / record_name(self.record["stage"])

    def changes(self):
        """None when there is no record; else the list of differences (empty = current)."""
        old = read_record(self.folder, self.record["stage"])
        if old is None:
            return None
        return differences(old, self.record)

    def is_current(self, force=False) -> bool:
        """True when the stored record equals today's (logged); stale outputs are explained.

        ``force`` recomputes without reading the stored record (so it also replaces an output of another format).
        """
        if force:
            logging.info(f"{self.folder}: recomputing ({self.record['stage']}) as forced")
            return False
        changes = self.changes()
        if changes == []:
            logging.info(f"{self.folder}: up to date ({self.record['stage']}); skipping")
            return True
        if changes is None:
            logging.info(f"{self.folder}: no {self.path.name}; computing ({self.record['stage']})")
        else:
            logging.warning(
                f"{self.folder}: {self.record['stage']} output is stale and is recomputed: " + "; ".join(changes)
            )
        return False

    def invalidate(self) -> None:
        """Remove the record before recomputing: a killed run leaves nothing that looks current."""
        self.path.unlink(missing_ok=True)

    def write(self) -> None:
        """Write the record, after every output is in place."""
        atomic_write_text(self.path, json.dumps(self.record, indent=2) + "\n")
