"""A dump folder as one object: every machine type's manifest and lists, each read once.

Stages ask it for clips (``corpus.clips("fan", ["train", "valid"])``) instead of joining the
manifest and the list files themselves; sections and domains are counted from the manifest, so
nothing downstream assumes a data set's layout.
"""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional, Union

import pandas as pd

from asd_tools.artefacts import DUMP_STATS, MANIFEST, record_name
from asd_tools.data.manifest import ClipStore, dump_identity, read_manifest
from asd_tools.data.split import lists_identity, read_list
from asd_tools.datasets.registry import dataset_spec
from asd_tools.provenance import read_record

if TYPE_CHECKING:  # torch is imported where windows are read, not by the stages that only read records
    from asd_tools.data.windows import WindowDataset

Subsets = Union[str, Iterable[str]]


def _as_tuple(subsets: Subsets) -> tuple:
    return (subsets,) if isinstance(subsets, str) else tuple(subsets)


def manifest_sections(manifest: pd.DataFrame) -> tuple:
    """The section numbers a manifest names, sorted (clips without a section, -1, left out).

    Models with a section head have one output per section in this order, and every stage that
    reads such outputs finds a section's column by its position here.
    """
    return tuple(sorted(int(s) for s in manifest["section"].unique() if s >= 0))


def dump_layout(dumpdir, machine) -> Optional[str]:
    """The data set (layout) a machine type's dump was made from, as its record names it (None: an outlier pool)."""
    record = read_record(Path(dumpdir) / machine, "dump")
    if record is None:
        raise FileNotFoundError(f"{Path(dumpdir) / machine / record_name('dump')} is missing: run the dump stage first")
    return record["settings"]["layout"]


class Corpus:
    def __init__(self, dumpdir):
        self.dumpdir = Path(dumpdir)
        self._manifests = {}
        self._lists = {}
        self._store = None
        self._spec = None

    @property
    def spec(self):
        """The :class:`~asd_tools.datasets.spec.DatasetSpec` of the dumped data (every machine type's
        dump must name the same one: a folder mixing years would score with the wrong metric)."""
        if self._spec is None:
            machines = sorted(p.parent.name for p in self.dumpdir.glob(f"*/{MANIFEST}"))
            layouts = {m: dump_layout(self.dumpdir, m) for m in machines}
            layouts = {m: layout for m, layout in layouts.items() if layout is not None}  # not the outlier pool
            if not layouts:
                raise FileNotFoundError(f"{self.dumpdir} holds no dumped data set: run the dump stage (stage 1) first")
            if len(set(layouts.values())) > 1:
                raise ValueError(
                    f"{self.dumpdir} mixes data sets ({', '.join(f'{m}: {n}' for m, n in layouts.items())}): "
                    "dump each data set into its own --dumpdir"
                )
            self._spec = dataset_spec(next(iter(layouts.values())))
        return self._spec

    def manifest(self, machines: Subsets) -> pd.DataFrame:
        """The manifests of ``machines`` (one name or several), concatenated and indexed by clip id."""
        frames = [self._manifest(m) for m in _as_tuple(machines)]
        return frames[0] if len(frames) == 1 else pd.concat(frames)

    def _manifest(self, machine) -> pd.DataFrame:
        if machine not in self._manifests:
            frame = read_manifest(self.dumpdir / machine / MANIFEST)
            self._manifests[machine] = frame.set_index("clip_id", drop=False)
        return self._manifests[machine]

    def ids(self, machine: str, subsets: Subsets) -> list:
        """Clip ids of one machine type's lists (train / valid / test), in list order."""
        ids = []
        for subset in _as_tuple(subsets):
            if (machine, subset) not in self._lists:
                self._lists[machine, subset] = read_list(self.dumpdir, machine, subset)
            ids += self._lists[machine, subset]
        return ids

    def clips(self, machine: str, subsets: Subsets) -> pd.DataFrame:
        """Manifest rows of one machine type's lists, in list order."""
        return self._manifest(machine).loc[self.ids(machine, subsets)]

    def sections(self, machine: str) -> tuple:
        """The machine type's section numbers, as its manifest names them."""
        return manifest_sections(self._manifest(machine))

    def domains(self, machine: str) -> tuple:
        """The labelled domains of the machine type's clips (``unknown`` left out)."""
        return tuple(sorted(d for d in self._manifest(machine)["domain"].unique() if d != "unknown"))

    @property
    def store(self) -> ClipStore:
        """Random access to the dumped samples (one memory map per array)."""
        if self._store is None:
            self._store = ClipStore(self.dumpdir)
        return self._store

    def windows(self, clips: pd.DataFrame, window: int) -> "WindowDataset":
        """Windows of ``window`` samples (0: whole clips) of ``clips`` (manifest rows), read from this dump."""
        from asd_tools.data.windows import WindowDataset  # torch: about 2 s of each stage's start otherwise

        return WindowDataset(clips, self.dumpdir, window)

    def stats(self, folder: str) -> dict:
        """The normalisation statistics (mean, std) that a dump folder (a machine type's, or a pool's) was
        stored with (``data/dump.py``)."""
        with open(self.dumpdir / folder / DUMP_STATS) as f:
            return json.load(f)

    def identity(self, machine: str) -> str:
        """The identity of one machine type's dump, for a stage's provenance record."""
        return dump_identity(self.dumpdir, machine)

    def lists_identity(self, machine: str, subsets: Subsets) -> dict:
        """Digests of the list files a stage reads, for its provenance record."""
        return lists_identity(self.dumpdir, machine, _as_tuple(subsets))
