"""Stage 1: read every clip once, validate it, normalise it and store it memory-mappable.

Per machine type the dump folder holds ``train.npy`` and ``test.npy`` (all clips of that
split, concatenated: the 16-bit PCM samples as they are when every clip is 16-bit PCM at 16 kHz,
float32 otherwise, normalised by the mean and std of the machine type's development training
clips, on read or in the array; ``supplemental.npy`` too where 2025's supplemental clips exist),
``stats.json``, ``manifest.csv`` and, written last, ``provenance_dump.json`` (which audio files the
dump was made from, a re-run re-dumps when they changed; each array's storage, size, time and
digest, checked by every later stage: ``data/dump_arrays.py``). Nothing is renamed into place until
every file of the machine type has been read without error, so a killed or failed dump never
leaves output that a re-run would trust; the temporary files a killed dump left are removed when
the next dump of the same machine type starts.
Evaluation labels are not dumped: scoring reads the ground truth (``data/ground_truth.py``).
"""

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import soundfile as sf

from asd_tools.artefacts import DUMP_STATS, MANIFEST, record_name
from asd_tools.config import choice, load_config
from asd_tools.constants import SAMPLE_RATE, SPLITS, SUPPLEMENTAL, UNKNOWN, WINDOW_SAMPLES
from asd_tools.data.dump_arrays import FLOAT32, PCM16, PCM16_SCALE, array_entry
from asd_tools.data.manifest import MANIFEST_COLUMNS, read_manifest
from asd_tools.data.names import BadClipName, clip_splits, parse_clip_path, wav_files
from asd_tools.datasets.registry import DEFAULT, dataset_spec
from asd_tools.provenance import Provenance, files_fingerprint
from asd_tools.utils import atomic_path, atomic_write_text, progress, remove_stale_temporaries, write_csv

NORMALISE_CHUNK = 1 << 22
ARRAY_NAMES = tuple(f"{split}.npy" for split in (*SPLITS, SUPPLEMENTAL))
UNUSUAL_LENGTHS = "unusual_lengths.csv"  # the clips whose length differs from their machine type's usual one
SHOWN_CLIPS = 5  # clips named on the console; the rest are in UNUSUAL_LENGTHS
# every file a dump writes into <dumpdir>/<machine>/ (atomically: a killed dump leaves temporaries of these)
DUMP_OUTPUTS = (*ARRAY_NAMES, DUMP_STATS, MANIFEST, UNUSUAL_LENGTHS, record_name("dump"))


@dataclass
class DumpConfig:
    """The dump stage's settings (``conf/dump.yaml``)."""

    # a clip shorter than its machine type's usual length: warning (dumped as it is) or error
    short_clips: str = "warning"

    def __post_init__(self):
        choice(self.short_clips, ("warning", "error"), "short_clips")


def read_dump_config(path=None) -> DumpConfig:
    """The dump stage's config file (``--config``); the schema's defaults without one."""
    return DumpConfig() if path is None else load_config(path, DumpConfig)


class BadInputError(ValueError):
    """One or more input files cannot be dumped; the message lists all of them."""


def clip_folders(spec, machine):
    """(required, optional) (half, split) folders of a machine type: the first half it has data in
    (dev, or eval for a first-shot evaluation type) needs its training clips, and a dev half its
    test clips too; evaluation test clips may come later (and 2025's supplemental clips may be absent)."""
    halves = spec.datasets_of(machine)
    required = [(halves[0], "train")] + ([(halves[0], "test")] if halves[0] == "dev" else [])
    every = [(half, split) for half in halves for split in clip_splits(spec)]
    return required, [f for f in every if f not in required]


def find_clips(data_root: Path, machine: str, spec):
    """All WAV paths of a machine type, checking that its required folders exist."""
    required, optional = clip_folders(spec, machine)
    paths = []
    for dataset, split in required + optional:
        folder = data_root / dataset / machine / split
        if not folder.is_dir():
            if (dataset, split) in required:
                raise FileNotFoundError(
                    f"{folder} does not exist: the data root must follow the {spec.name} layout "
                    f"(<root>/{dataset}/{machine}/{split}, ...). Run stage 0 (download or synthetic data) "
                    "or point --data_root at the unpacked archives."
                )
            log = logging.info if split == SUPPLEMENTAL else logging.warning
            log(f"{folder} does not exist: {machine} is dumped without {dataset}/{split}")
            continue
        paths += wav_files(folder)
    return paths


def stats_half(spec, machine) -> str:
    """Whose training clips set the normalisation: the development half's, or an evaluation-only type's own."""
    return spec.datasets_of(machine)[0]


def clip_header(path):
    """(sample rate, length in samples at 16 kHz, sample format e.g. PCM_16) of a WAV file; BadInputError
    naming the file otherwise."""
    try:
        header = sf.info(str(path))
    except Exception as err:  # soundfile raises its own error types for corrupt files
        raise BadInputError(f"{path}: cannot be read as a WAV file ({err})") from None
    if header.channels != 1:
        raise BadInputError(
            f"{path}: has {header.channels} channels; clips must be mono (downmix it first, e.g. "
            "`sox in.wav out.wav remix -`)"
        )
    return header.samplerate, int(np.ceil(header.frames * SAMPLE_RATE / header.samplerate)), header.subtype


def parse_all(paths, spec):
    """Parse every name and header; collect every problem instead of stopping at the first."""
    rows, errors = [], []
    for path in paths:
        try:
            info = parse_clip_path(path, spec)
            rate, length, subtype = clip_header(path)
        except (BadClipName, BadInputError) as err:
            errors.append(str(err))
            continue
        rows.append({**info.as_dict(), "path": str(path), "rate": rate, "length": length, "subtype": subtype})
    return rows, errors + same_clip_errors(rows)


def same_clip_errors(rows):
    """x.wav beside x.WAV: two files, one clip id (which drops the suffix)."""
    first, errors = {}, []
    for row in rows:
        other = first.setdefault(row["clip_id"], row["path"])
        if other != row["path"]:
            errors.append(f"{row['path']}: the same clip as {other} (names differ only in the suffix's case); keep one")
    return errors


def read_clip(row):
    """Read and validate one clip; return (float64 samples at 16 kHz, error or None)."""
    path = row["path"]
    try:
        wave, rate = sf.read(path, dtype="float64", always_2d=False)
    except Exception as err:
        return None, f"{path}: cannot be decoded ({err})"
    if not np.all(np.isfinite(wave)):
        return None, f"{path}: contains non-finite samples (NaN or Inf)"
    if rate != SAMPLE_RATE:
        from asd_tools.audio import resample  # torch, only for clips at another rate

        wave = resample(wave, rate, SAMPLE_RATE)
    if len(wave) < WINDOW_SAMPLES:
        return None, (
            f"{path}: {len(wave) / SAMPLE_RATE:.2f} s long; every clip needs at least one "
            f"{WINDOW_SAMPLES / SAMPLE_RATE:.0f} s window"
        )
    if not np.any(wave):
        return None, f"{path}: is silent (all samples are zero); remove it from the data set"
    return wave, None


def dump_record(outdir: Path, paths, root: Path, layout: Optional[str]) -> Provenance:
    """What a dump is made from: the audio files (names, sizes, times) and the data set's layout, which
    every later stage reads from here (``Corpus.spec``); None for an outlier pool (of no data set)."""
    return Provenance(
        outdir,
        "dump",
        inputs={"audio": files_fingerprint(paths, root)},
        settings={"sample_rate": SAMPLE_RATE, "clips": len(paths), "layout": layout},
        info={"data_root": str(Path(root).resolve())},
    )


def _write_dump(df: pd.DataFrame, outdir: Path, record: Provenance, unusual: pd.DataFrame = None) -> None:
    """Arrays, statistics, manifest, the list of clips of unusual length (``check_lengths``), then the record
    (with each array's description), each written atomically."""
    df["offset"] = df.groupby("split")["length"].cumsum() - df["length"]
    storage = array_storage(df)
    stats = _write_arrays(df, outdir, storage)
    atomic_write_text(outdir / DUMP_STATS, json.dumps(stats, indent=2))
    write_csv(df[list(MANIFEST_COLUMNS)], outdir / MANIFEST)
    if unusual is not None and len(unusual):
        write_csv(unusual, outdir / UNUSUAL_LENGTHS)
    else:
        (outdir / UNUSUAL_LENGTHS).unlink(missing_ok=True)
    arrays = [f"{split}.npy" for split in df["split"].unique()]
    record.record["info"]["arrays"] = {name: array_entry(outdir / name, storage, **stats) for name in arrays}
    record.write()
    logging.info(f"dumped {len(df)} clips to {outdir} ({storage})")


def array_storage(df: pd.DataFrame) -> str:
    """int16 when every clip is 16-bit PCM at the dump's sample rate (its samples are stored exactly as
    they are), float32 otherwise (24-bit, float or resampled clips)."""
    pcm = (df["subtype"] == "PCM_16") & (df["rate"] == SAMPLE_RATE)
    if pcm.all():
        return PCM16
    logging.info(
        f"{(~pcm).sum()} clips are not 16-bit PCM at {SAMPLE_RATE} Hz, e.g. {df.loc[~pcm, 'path'].iloc[0]}: "
        "the dump is stored as float32"
    )
    return FLOAT32


def remove_killed_dump_files(outdir: Path) -> None:
    """Remove the temporary files a killed dump of this folder left (only the names ``atomic_path`` gives
    this stage's outputs), and say how much that freed."""
    count, freed = remove_stale_temporaries(outdir / name for name in DUMP_OUTPUTS)
    if count:
        mib = freed / 2**20
        logging.warning(f"{outdir}: removed {count} temporary file(s) left by a killed dump ({mib:.1f} MiB freed)")


def dump_machine(data_root, machine, dumpdir, force=False, layout=DEFAULT, config: DumpConfig = None):
    """Dump one machine type of data set ``layout``; skip it when its dump is current (same audio
    files, same layout), unless ``force``.

    Labels of the evaluation test clips are not part of the dump: the scoring stage reads the
    ground truth, so labels published after the dump need no re-dump.
    """
    config = config or DumpConfig()
    spec = dataset_spec(layout)
    spec.datasets_of(machine)  # an unknown machine type fails here, naming the known ones
    data_root, outdir = Path(data_root), Path(dumpdir) / machine
    remove_killed_dump_files(outdir)
    paths = find_clips(data_root, machine, spec)
    record = dump_record(outdir, paths, data_root, layout)
    if record.is_current(force):
        if config.short_clips == "error":  # a dump made under "warning" is held to today's config
            check_lengths(read_manifest(outdir / MANIFEST), outdir, config.short_clips)
        return
    record.invalidate()
    rows, errors = parse_all(paths, spec)
    if errors:
        raise BadInputError(_error_report(machine, errors))
    df = pd.DataFrame(rows)
    df["array"] = df["split"].map(lambda s: f"{machine}/{s}.npy")
    df["for_stats"] = (df["dataset"] == stats_half(spec, machine)) & (df["split"] == "train")
    _warn_resampled(df)
    unusual = check_lengths(df, outdir, config.short_clips)
    _write_dump(df, outdir, record, unusual)


def _write_arrays(df: pd.DataFrame, outdir: Path, storage: str):
    """Write the samples (int16 PCM as read; float32: raw, then normalised in place) under temporary names;
    rename onto the final names last. Returns the normalisation statistics."""
    outdir.mkdir(parents=True, exist_ok=True)
    machine = df["machine"].iloc[0]
    errors, totals = [], np.zeros(3)  # count, sum, sum of squares over dev training clips
    with _atomic_arrays(df, outdir, storage) as arrays:
        for _, row in progress(df.iterrows(), total=len(df), desc=f"dump {machine}"):
            wave, error = read_clip(row)
            if error:
                errors.append(error)
                continue
            wave = wave[: row["length"]]
            stored = np.round(wave / PCM16_SCALE) if storage == PCM16 else wave  # PCM_16 reads as k / 32768
            arrays[row["split"]][row["offset"] : row["offset"] + len(wave)] = stored
            if row["for_stats"]:
                totals += (len(wave), wave.sum(), np.square(wave).sum())
        if errors:
            raise BadInputError(_error_report(machine, errors))
        if totals[0] == 0:
            raise BadInputError(f"{machine}: no clips to compute the normalisation statistics from")
        mean = totals[1] / totals[0]
        std = float(np.sqrt(max(totals[2] / totals[0] - mean**2, 0.0)))
        if not std > 0:  # normalising would turn every sample into NaN or infinity
            raise BadInputError(f"{machine}: the training clips are constant (std 0) and cannot be normalised")
        for array in arrays.values():
            if storage == FLOAT32:
                _normalise_in_place(array, mean, std)
            array.flush()
    return {"mean": float(mean), "std": std}


def _normalise_in_place(array, mean, std):
    for start in range(0, len(array), NORMALISE_CHUNK):
        chunk = array[start : start + NORMALISE_CHUNK]
        array[start : start + NORMALISE_CHUNK] = (chunk.astype(np.float64) - mean) / std


@contextlib.contextmanager
def _atomic_arrays(df, outdir, storage):
    """Open one .npy memory map of ``storage`` per split present (train, test, supplemental) under a temporary
    name; rename on success."""
    sizes = df.groupby("split")["length"].sum().to_dict()
    with contextlib.ExitStack() as stack:  # any failure, opening included, removes every temporary file
        arrays = {}
        for split in [s for s in (*SPLITS, SUPPLEMENTAL) if s in sizes]:  # train first, as before 2025
            tmp = stack.enter_context(atomic_path(outdir / f"{split}.npy"))
            arrays[split] = _reserved_memmap(tmp, int(sizes[split]), np.dtype(storage))
        yield arrays
        arrays.clear()  # close the maps before renaming


def _reserved_memmap(path, length, dtype):
    """A .npy memory map of ``length`` samples whose disk blocks are reserved before it is mapped.

    The blocks of a sparse memory-mapped file are allocated when its pages are written back; on a
    full disk the kernel can then only kill the process ("Bus error", SIGBUS), leaving the
    temporary files behind. Reserved up front, a full disk (or a file-size limit) is an OSError here.
    """
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (length,)}
    with open(path, "r+b") as f:
        np.lib.format.write_array_header_1_0(f, header)
        if hasattr(os, "posix_fallocate"):  # not on macOS
            os.posix_fallocate(f.fileno(), 0, f.tell() + length * dtype.itemsize)
    return np.lib.format.open_memmap(path, mode="r+")


def _warn_resampled(df):
    resampled = df["rate"] != SAMPLE_RATE
    if resampled.any():
        example = df.loc[resampled, "path"].iloc[0]
        logging.warning(f"{resampled.sum()} clips are not at {SAMPLE_RATE} Hz and are resampled, e.g. {example}")


def check_lengths(df: pd.DataFrame, outdir: Path, short_clips="warning") -> pd.DataFrame:
    """The clips whose length differs from their machine type's usual one (its most common), as a table
    (path, seconds) that the dump writes to ``<outdir>/unusual_lengths.csv``, named in a warning (the
    first few). Shorter clips are an error when the dump config says ``short_clips: error``: the table is
    written at once, and nothing else."""
    listing = outdir / UNUSUAL_LENGTHS
    usual = int(df["length"].mode().iloc[0])
    unusual = df[df["length"] != usual]
    table = pd.DataFrame({"path": unusual["path"], "seconds": unusual["length"] / SAMPLE_RATE})
    if table.empty:
        return table
    shown = ", ".join(f"{path} ({seconds:.2f} s)" for path, seconds in table.head(SHOWN_CLIPS).itertuples(index=False))
    more = f" and {len(table) - SHOWN_CLIPS} more" if len(table) > SHOWN_CLIPS else ""
    message = (
        f"{outdir.name}: {len(table)} clip(s) are not {usual / SAMPLE_RATE:.2f} s long like the others: "
        f"{shown}{more} (all listed in {listing})"
    )
    short = int((unusual["length"] < usual).sum())
    if short and short_clips == "error":
        write_csv(table, listing)
        raise BadInputError(
            f"{message}; {short} of them shorter, an error as the dump config says (short_clips: error): "
            "replace them, or set short_clips: warning to dump them as they are"
        )
    logging.warning(f"{message}; dumped as they are (windows adapt)")
    return table


def _error_report(machine, errors):
    shown = "\n  ".join(errors[:50])
    more = f"\n  ... and {len(errors) - 50} more" if len(errors) > 50 else ""
    return f"{machine}: {len(errors)} bad input file(s); nothing was written:\n  {shown}{more}"


POOL_NAME = "outlier_pool"


def dump_pool(folder, dumpdir, force=False):
    """Dump any folder of WAV files as an outlier pool (``<dumpdir>/outlier_pool/``).

    Names are free; clips are validated like DCASE clips and normalised by the pool's own
    statistics. The manifest marks them machine "outlier", dataset "pool", split "train".
    """
    folder, outdir = Path(folder), Path(dumpdir) / POOL_NAME
    paths = wav_files(folder, recursive=True)
    if not paths:
        raise FileNotFoundError(f"{folder} holds no .wav files to use as an outlier pool")
    remove_killed_dump_files(outdir)
    record = dump_record(outdir, paths, folder, layout=None)
    if record.is_current(force):
        return
    record.invalidate()
    rows, errors = [], []
    for path in paths:
        try:
            rate, length, subtype = clip_header(path)
        except BadInputError as err:
            errors.append(str(err))
            continue
        stem = path.relative_to(folder).with_suffix("").as_posix()
        rows.append(
            {
                "clip_id": f"outlier/pool/train/{stem}",
                "path": str(path),
                "machine": "outlier",
                "dataset": "pool",
                "split": "train",
                "section": -1,
                "domain": UNKNOWN,
                "state": "normal",
                "index": len(rows),
                "attributes": "",
                "file_name": path.name,
                "rate": rate,
                "length": length,
                "subtype": subtype,
                "for_stats": True,
            }
        )
    errors += same_clip_errors(rows)
    if errors:
        raise BadInputError(_error_report(POOL_NAME, errors))
    df = pd.DataFrame(rows)
    df["array"] = f"{POOL_NAME}/train.npy"
    _write_dump(df, outdir, record)
