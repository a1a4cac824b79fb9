"""The dump's own checks: temporaries a killed dump left, clips of unusual length, the arrays' record
(size, time, digest, NaN) when a later stage opens them, and 16-bit PCM storage."""

import json
import logging
import os

import numpy as np
import pytest
import soundfile as sf

from asd_tools.bin import make_lists
from asd_tools.config import ConfigError
from asd_tools.data.dump import BadInputError, DumpConfig, dump_machine, read_dump_config
from asd_tools.data.manifest import ClipStore, dump_identity, load_manifest
from asd_tools.data.windows import WindowDataset
from asd_tools.provenance import read_record
from tests.conftest import CONF, make_layout

MIB = 2**20


# fault 3: a killed dump's temporaries


@pytest.mark.parametrize("dumped_before", [False, True], ids=["first dump", "current dump"])
def test_temporaries_of_a_killed_dump_are_removed_and_the_freed_space_said(tmp_path, caplog, dumped_before):
    root = make_layout(tmp_path / "data")
    outdir = tmp_path / "dump" / "fan"
    if dumped_before:  # a forced re-dump killed after a finished one: the dump is current, the temporaries stay
        dump_machine(root, "fan", tmp_path / "dump")
    outdir.mkdir(parents=True, exist_ok=True)
    stale = [outdir / ".train.npy.0123abcd.tmp", outdir / ".manifest.csv.89abcdef.tmp"]
    stale[0].write_bytes(b"\0" * (3 * MIB))
    stale[1].write_text("clip_id\n")
    kept = [
        outdir / "notes.tmp",  # not a name this recipe gives
        outdir / ".train.npy.backup.tmp",  # not its random part
        outdir / ".mine.npy.0123abcd.tmp",  # not one of the dump's outputs
        tmp_path / "dump" / ".train.npy.0123abcd.tmp",  # not in this machine type's folder
    ]
    for path in kept:
        path.write_text("keep")
    with caplog.at_level(logging.INFO):
        dump_machine(root, "fan", tmp_path / "dump")
    assert not any(p.exists() for p in stale)
    assert all(p.read_text() == "keep" for p in kept)
    assert "removed 2 temporary file(s) left by a killed dump (3.0 MiB freed)" in caplog.text


# fault 4: clips of unusual length


def _truncate(path, seconds):
    data, rate = sf.read(path, dtype="int16")
    sf.write(path, data[: int(seconds * rate)], rate, subtype="PCM_16")


def test_short_clips_are_named_and_listed_and_dumped_by_default(tmp_path, caplog):
    root = make_layout(tmp_path / "data")
    short = root / "dev/fan/test/section_00_source_test_anomaly_0001_a_1.wav"
    _truncate(short, 2.4)
    with caplog.at_level(logging.WARNING):
        dump_machine(root, "fan", tmp_path / "dump")
    listing = tmp_path / "dump/fan/unusual_lengths.csv"
    assert f"1 clip(s) are not 3.00 s long like the others: {short} (2.40 s)" in caplog.text
    assert f"all listed in {listing}" in caplog.text
    assert listing.read_text().splitlines() == ["path,seconds", f"{short},2.4"]
    assert load_manifest(tmp_path / "dump", ["fan"])["length"].min() == int(2.4 * 16000)


def test_the_console_names_the_first_few_and_the_list_holds_all(tmp_path, caplog):
    root = make_layout(tmp_path / "data", n_train=20)
    clips = sorted((root / "dev/fan/train").glob("*.wav"))[:7]
    for path in clips:
        _truncate(path, 2.5)
    with caplog.at_level(logging.WARNING):
        dump_machine(root, "fan", tmp_path / "dump")
    assert "7 clip(s) are not 3.00 s long" in caplog.text and "and 2 more" in caplog.text
    assert sum(str(p) in caplog.text for p in clips) == 5
    listed = (tmp_path / "dump/fan/unusual_lengths.csv").read_text()
    assert all(str(p) in listed for p in clips)


def test_short_clips_are_an_error_when_the_config_says_so(tmp_path):
    root = make_layout(tmp_path / "data")
    short = root / "dev/fan/train/section_00_source_train_normal_0003_a_1.wav"
    _truncate(short, 2.4)
    with pytest.raises(BadInputError, match=rf"{short} \(2.40 s\).*short_clips: error"):
        dump_machine(root, "fan", tmp_path / "dump", config=DumpConfig(short_clips="error"))
    assert not (tmp_path / "dump/fan/train.npy").exists()
    assert str(short) in (tmp_path / "dump/fan/unusual_lengths.csv").read_text()
    # a dump made under "warning" is held to the config of today's run
    dump_machine(root, "fan", tmp_path / "dump")
    with pytest.raises(BadInputError, match="short_clips: error"):
        dump_machine(root, "fan", tmp_path / "dump", config=DumpConfig(short_clips="error"))


def test_the_shipped_dump_config_and_a_bad_value(tmp_path):
    assert read_dump_config(CONF.parent / "dump.yaml") == DumpConfig(short_clips="warning")
    bad = tmp_path / "dump.yaml"
    bad.write_text("short_clips: maybe\n")
    with pytest.raises(ConfigError, match="short_clips"):
        read_dump_config(bad)


# fault 6: the arrays are checked when a stage opens the dump


def _float_layout(root):
    """Clips stored as 24-bit PCM: the dump keeps normalised float32 arrays."""
    for path in make_layout(root).rglob("*.wav"):
        data, rate = sf.read(path, dtype="int16")
        sf.write(path, data, rate, subtype="PCM_24")
    return root


def _lists_stage(dumpdir, *extra):
    """Stage 2 as asd.sh runs it: (exit status, its log)."""
    argv = ["--dumpdir", str(dumpdir), "--machines", "fan", "--valid_ratio", "0.15", "--seed", "0"]
    argv += ["--fold_rule", "int", *extra]
    try:
        make_lists.main(argv)
        return 0
    except SystemExit as exit:
        return exit.code


def test_nan_in_test_npy_is_found_when_a_stage_opens_the_dump(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ASD_VERIFY_DUMP", raising=False)
    dumpdir = tmp_path / "dump"
    dump_machine(_float_layout(tmp_path / "data"), "fan", dumpdir)
    path = dumpdir / "fan/test.npy"
    assert np.load(path).dtype == np.float32
    before = path.stat()
    array = np.load(path, mmap_mode="r+")
    array[100] = np.nan
    array.flush()
    del array
    nan_line = f"{path}: holds NaN or infinite values; re-run the dump stage (stage 1) with --force true"
    with pytest.raises(ValueError) as err:  # its time changed: the content is scanned
        dump_identity(dumpdir, "fan")
    assert str(err.value) == nan_line
    # the same damage with the file's time put back: only --verify true scans it
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert _lists_stage(dumpdir) == 0
    capsys.readouterr()
    assert _lists_stage(dumpdir, "--verify", "true") == 1
    assert f"ERROR: {nan_line}" in capsys.readouterr().err


def test_truncated_train_npy_is_named_with_the_fix(tmp_path):
    dumpdir = tmp_path / "dump"
    dump_machine(make_layout(tmp_path / "data"), "fan", dumpdir)
    path = dumpdir / "fan/train.npy"
    size = path.stat().st_size
    os.truncate(path, size - 4000)
    row = load_manifest(dumpdir, ["fan"]).iloc[0]
    for open_dump in (lambda: ClipStore(dumpdir).read(row), lambda: dump_identity(dumpdir, "fan")):
        with pytest.raises(ValueError) as err:
            open_dump()
        assert str(err.value) == (
            f"{path}: {size - 4000} bytes, but the dump wrote {size} (truncated or damaged); "
            "re-run the dump stage (stage 1) with --force true"
        )


def test_a_touched_but_identical_array_passes_after_its_digest_is_checked(tmp_path, caplog):
    dumpdir = tmp_path / "dump"
    dump_machine(make_layout(tmp_path / "data"), "fan", dumpdir)
    path = dumpdir / "fan/train.npy"
    identity = dump_identity(dumpdir, "fan")
    later = path.stat().st_mtime_ns + 5 * 10**9
    os.utime(path, ns=(later, later))
    with caplog.at_level(logging.INFO):
        assert dump_identity(dumpdir, "fan") == identity
    assert "its content is what the dump wrote (SHA-256 checked)" in caplog.text
    # the record now holds the new time, so the next stage does not hash the file again
    assert read_record(dumpdir / "fan", "dump")["info"]["arrays"]["train.npy"]["mtime_ns"] == later
    # a changed sample of the same size is not
    array = np.load(path, mmap_mode="r+")
    array[10] += 1
    array.flush()
    del array
    with pytest.raises(ValueError, match=rf"{path}: its content is not what the dump wrote \(SHA-256, checked as its"):
        dump_identity(dumpdir, "fan")


def test_a_dump_of_an_older_format_is_reported_with_the_fix_and_forced_away(tmp_path):
    dumpdir = tmp_path / "dump"
    root = make_layout(tmp_path / "data")
    dump_machine(root, "fan", dumpdir)
    record_path = dumpdir / "fan/provenance_dump.json"
    record = json.loads(record_path.read_text())
    record["format"] = 2  # as the float32 dumps before 16-bit storage: no arrays' record
    del record["info"]["arrays"]
    record_path.write_text(json.dumps(record))
    older = rf"{record_path}: written by an older asd_tools \(format 2; .*--force"
    with pytest.raises(ValueError, match=older):
        dump_identity(dumpdir, "fan")
    with pytest.raises(ValueError, match=older):  # the dump stage itself neither reads nor silently replaces it
        dump_machine(root, "fan", dumpdir)
    dump_machine(root, "fan", dumpdir, force=True)
    assert dump_identity(dumpdir, "fan")


# 16-bit PCM storage


def test_16_bit_clips_are_dumped_as_int16_and_read_as_the_float32_dump_reads(tmp_path):
    pcm_dump, float_dump = tmp_path / "pcm_dump", tmp_path / "float_dump"
    dump_machine(make_layout(tmp_path / "pcm"), "fan", pcm_dump)
    dump_machine(_float_layout(tmp_path / "float"), "fan", float_dump)  # the same samples, as 24-bit PCM
    assert np.load(pcm_dump / "fan/train.npy", mmap_mode="r").dtype == np.int16
    assert np.load(float_dump / "fan/train.npy", mmap_mode="r").dtype == np.float32
    assert (pcm_dump / "fan/train.npy").stat().st_size < 0.51 * (float_dump / "fan/train.npy").stat().st_size
    entry = read_record(pcm_dump / "fan", "dump")["info"]["arrays"]["train.npy"]
    assert (entry["dtype"], entry["scale"]) == ("int16", 1 / 32768)
    clips = load_manifest(pcm_dump, ["fan"])
    items = [(i, start) for i in range(len(clips)) for start in (0, 1000, 16000)]
    pcm, floats = (WindowDataset(clips, d, 32000).read_batch(items)[1] for d in (pcm_dump, float_dump))
    assert np.array_equal(pcm.numpy(), floats.numpy())  # the same float64 arithmetic: bit for bit
    row = clips.iloc[3]
    assert np.array_equal(ClipStore(pcm_dump).read(row), ClipStore(float_dump).read(row))
