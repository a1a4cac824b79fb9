"""The manifest: one row per clip, shared by every system and stage.

Written by the dump stage (``dump/<machine>/manifest.csv``); the audio of each clip lives
in a memory-mapped array ``dump/<machine>/<split>.npy`` at ``[offset, offset+length)``: 16-bit PCM,
or float32 already normalised with the machine type's statistics (``data/dump_arrays.py``), read
as normalised float32 either way.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from asd_tools.artefacts import MANIFEST
from asd_tools.data.dump_arrays import DamagedDumpError, array_entries, check_array, check_dump, normalise_into
from asd_tools.provenance import record_digest

MANIFEST_COLUMNS = (
    "clip_id",  # <machine>/<dataset>/<split>/<file stem>: unique over the whole set
    "path",  # the source WAV the samples came from
    "machine",
    "dataset",  # dev (sections 00-02) or eval (03-05)
    "split",  # train or test
    "section",
    "domain",  # source / target / unknown
    "state",  # normal / anomaly / unknown
    "index",
    "attributes",  # the name's attribute suffix, kept as an opaque string
    "file_name",
    "array",  # the .npy file (relative to the dump folder) that holds the samples
    "offset",
    "length",
)


def read_manifest(path) -> pd.DataFrame:
    """Read one manifest file and check its columns."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the dump stage (stage 1) first")
    df = pd.read_csv(path, dtype={"attributes": str, "clip_id": str}, keep_default_na=False)
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path} lacks columns {missing}: re-run the dump stage with --force")
    return df


def load_manifest(dumpdir, machines) -> pd.DataFrame:
    """The manifests of ``machines`` concatenated, indexed by clip_id."""
    frames = [read_manifest(Path(dumpdir) / m / MANIFEST) for m in machines]
    return pd.concat(frames, ignore_index=True).set_index("clip_id", drop=False)


class ClipStore:
    """Random access to dumped samples, opening each memory map once per process, after checking the
    file against the dump's record (``dump_arrays.check_array``).

    Safe to use from DataLoader workers: maps are opened lazily, after the fork.
    """

    def __init__(self, dumpdir):
        self.dumpdir = Path(dumpdir)
        self._arrays = {}
        self._entries = {}

    def array(self, name):
        """The raw memory map of array ``name`` (``<machine>/<split>.npy``), as stored."""
        if name not in self._arrays:
            path = self.dumpdir / name
            entry = array_entries(path.parent)[path.name]
            check_array(path, entry)
            try:
                self._arrays[name] = np.load(path, mmap_mode="r")
            except ValueError as err:  # a damaged header: the sizes matched, the content cannot
                raise DamagedDumpError(f"{path}: not a readable .npy array ({err})") from None
            self._entries[name] = entry
        return self._arrays[name]

    def copy(self, name, begin, out) -> None:
        """Normalised float32 samples ``[begin, begin + len(out))`` of array ``name``, written into ``out``."""
        normalise_into(self.array(name)[begin : begin + len(out)], out, self._entries[name])

    def read(self, row, start=0, length=None):
        """Samples ``[start, start+length)`` of the clip in manifest ``row`` (a float32 copy)."""
        length = int(row["length"]) - start if length is None else length
        out = np.empty(length, dtype=np.float32)
        self.copy(row["array"], int(row["offset"]) + start, out)
        return out

    def __getstate__(self):  # workers re-open their own maps
        return {"dumpdir": self.dumpdir, "_arrays": {}, "_entries": {}}


def dump_identity(dumpdir, machine) -> str:
    """The identity of one machine type's dump (its record's digest), for later stages' records; every stage
    asks for it when it starts, so the dump's arrays are checked against the record here."""
    check_dump(Path(dumpdir) / machine)
    return record_digest(Path(dumpdir) / machine, "dump")
