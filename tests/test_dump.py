import json
import logging

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from asd_tools.data.dump import BadInputError, dump_machine, dump_pool
from asd_tools.data.manifest import MANIFEST_COLUMNS, ClipStore, load_manifest
from tests.conftest import make_layout, write_wav


def _reconstruct_int16(dumpdir, row, stats):
    values = ClipStore(dumpdir).read(row).astype(np.float64) * stats["std"] + stats["mean"]
    return np.round(values * 32768).astype(np.int16)


def test_round_trip_is_bit_exact(tiny_root, tmp_path):
    dump_machine(tiny_root, "fan", tmp_path)
    manifest = load_manifest(tmp_path, ["fan"])
    assert list(manifest.columns) == list(MANIFEST_COLUMNS)
    stats = json.loads((tmp_path / "fan" / "stats.json").read_text())
    for _, row in manifest.iterrows():
        source, _ = sf.read(row["path"], dtype="int16")
        assert np.array_equal(_reconstruct_int16(tmp_path, row, stats), source), row["clip_id"]
    # normalised with the development training clips' statistics
    dev_train = manifest[(manifest.dataset == "dev") & (manifest.split == "train")]
    samples = np.concatenate([ClipStore(tmp_path).read(r) for _, r in dev_train.iterrows()])
    assert abs(samples.mean()) < 1e-4 and abs(samples.std() - 1) < 1e-4
    # evaluation labels are not dumped: scoring reads the ground truth (tests/test_ground_truth.py)
    eval_test = manifest[(manifest.dataset == "eval") & (manifest.split == "test")]
    assert set(eval_test["state"]) == {"unknown"} and set(eval_test["domain"]) == {"unknown"}


def test_finished_dump_is_skipped(tmp_path):
    root = make_layout(tmp_path / "data")
    dump_machine(root, "fan", tmp_path / "dump")
    before = (tmp_path / "dump/fan/train.npy").stat().st_mtime_ns
    dump_machine(root, "fan", tmp_path / "dump")
    assert (tmp_path / "dump/fan/train.npy").stat().st_mtime_ns == before


def _assert_nothing_written(dumpdir):
    produced = [p for p in dumpdir.rglob("*") if p.is_file()] if dumpdir.exists() else []
    assert produced == [], produced


@pytest.mark.parametrize(
    "damage, message",
    [
        ("corrupt", "cannot be read as a WAV"),
        ("stereo", "2 channels"),
        ("short", "at least one"),
        ("silent", "silent"),
        ("bad_name", "fits no DCASE 2022 Task 2 name pattern"),
    ],
)
def test_bad_inputs_are_clear_errors_and_nothing_is_written(tmp_path, damage, message):
    root = make_layout(tmp_path / "data")
    bad = root / "dev/fan/train/section_00_source_train_normal_0100_a_1.wav"
    other_bad = root / "dev/fan/test/section_00_source_test_normal_0100_a_1.wav"
    for path in (bad, other_bad):
        if damage == "corrupt":
            path.write_bytes(b"RIFF\x00\x00garbage")
        elif damage == "stereo":
            write_wav(path, channels=2)
        elif damage == "short":
            write_wav(path, seconds=0.5)
        elif damage == "silent":
            write_wav(path, silent=True)
        else:
            path = path.with_name("section_00_source_train_normal_12_a.wav")
            write_wav(path)
    with pytest.raises(BadInputError) as err:
        dump_machine(root, "fan", tmp_path / "dump")
    text = str(err.value)
    assert message in text
    assert "nothing was written" in text
    if damage != "bad_name":  # every bad file is reported in the one message
        assert bad.name in text and other_bad.name in text
    _assert_nothing_written(tmp_path / "dump")


def test_non_finite_float_wav_is_an_error(tmp_path):
    root = make_layout(tmp_path / "data")
    data = np.zeros(48000, dtype=np.float32)
    data[5] = np.nan
    sf.write(root / "dev/fan/train/section_00_source_train_normal_0100_a_1.wav", data, 16000, subtype="FLOAT")
    with pytest.raises(BadInputError, match="non-finite"):
        dump_machine(root, "fan", tmp_path / "dump")


def test_other_rates_are_resampled_with_a_warning(tmp_path, caplog):
    root = make_layout(tmp_path / "data")
    write_wav(root / "dev/fan/train/section_00_source_train_normal_0100_a_1.wav", seconds=3.0, rate=44100)
    with caplog.at_level(logging.WARNING):
        dump_machine(root, "fan", tmp_path / "dump")
    assert "resampled" in caplog.text
    manifest = load_manifest(tmp_path / "dump", ["fan"])
    assert manifest.loc["fan/dev/train/section_00_source_train_normal_0100_a_1", "length"] == 48000


def test_missing_folder_names_the_folder_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"dev/fan/train does not exist.*stage 0"):
        dump_machine(tmp_path / "nowhere", "fan", tmp_path / "dump")
    _assert_nothing_written(tmp_path / "dump")


def _upper_case_some(root, machine="fan"):
    """Give every other clip of ``root``'s layout an upper-case (or mixed-case) suffix; return the new names."""
    renamed = []
    for i, path in enumerate(sorted((root / "dev" / machine).rglob("*.wav"))):
        if i % 2:
            renamed.append(path.rename(path.with_suffix(".WAV" if i % 4 == 1 else ".Wav")))
    return renamed


def test_upper_case_wav_files_are_dumped_under_their_exact_names(tmp_path):
    root = make_layout(tmp_path / "data")
    renamed = _upper_case_some(root)
    dump_machine(root, "fan", tmp_path / "dump")
    manifest = load_manifest(tmp_path / "dump", ["fan"])
    assert len(manifest) == 12  # 8 training + 4 test clips: none skipped
    names = set(manifest["file_name"])
    assert {p.name for p in renamed} <= names and any(n.endswith(".wav") for n in names)
    for clip_id, name in zip(manifest.index, manifest["file_name"]):
        assert clip_id.split("/")[-1] == name[: -len(".wav")]


def test_the_same_clip_in_two_cases_is_an_error(tmp_path):
    root = make_layout(tmp_path / "data")
    path = root / "dev/fan/train/section_00_source_train_normal_0001_a_1.wav"
    write_wav(path.with_suffix(".WAV"))
    with pytest.raises(BadInputError, match="names differ only in the suffix's case"):
        dump_machine(root, "fan", tmp_path / "dump")


def test_an_outlier_pool_takes_upper_case_wav_files(tmp_path):
    write_wav(tmp_path / "pool/a.WAV", seed=1)
    write_wav(tmp_path / "pool/sub/b.wav", seed=2)
    dump_pool(tmp_path / "pool", tmp_path / "dump")
    pool = load_manifest(tmp_path / "dump", ["outlier_pool"])
    assert sorted(pool["file_name"]) == ["a.WAV", "b.wav"]
    assert sorted(pool.index) == ["outlier/pool/train/a", "outlier/pool/train/sub/b"]


def test_batch_reads_equal_item_reads_crops_and_padding(tiny_dump):
    from asd_tools.data.corpus import Corpus
    from asd_tools.data.windows import WindowDataset, window_loader

    corpus = Corpus(tiny_dump)
    clips = pd.concat([corpus.clips("fan", "train"), corpus.clips("valve", "test")])  # two dump arrays
    lengths = clips["length"].to_numpy()
    rng = np.random.default_rng(0)
    positions = rng.integers(len(clips), size=12)
    starts = [int(rng.integers(0, max(n - 32000, 0) + 1)) for n in lengths[positions]]
    starts[0] = int(lengths[positions[0]]) - 1000  # a crop past the clip's end: zero-padded
    items = list(zip(positions.tolist(), starts))
    dataset = WindowDataset(clips, tiny_dump, 32000)
    got_positions, got = dataset.read_batch(items)
    expected = torch.stack([dataset[item][1] for item in items])
    assert got_positions.tolist() == positions.tolist()
    assert torch.equal(got, expected) and got.dtype == torch.float32
    assert got[0, 1000:].abs().sum() == 0 and got[0, :1000].abs().sum() > 0
    # whole clips (window 0) of one length; the loader yields the plan's batches in order
    common = clips["length"].mode()[0]
    whole = WindowDataset(clips[clips["length"] == common].iloc[:3], tiny_dump, 0)
    plan = [[(0, 0), (1, 0)], [(2, 0)]]
    batches = list(window_loader(whole, plan, 0, "cpu"))
    assert [b[0].tolist() for b in batches] == [[0, 1], [2]]
    assert torch.equal(batches[0][1][1], whole[(1, 0)][1])


def test_prefetched_batches_are_the_plans_in_order_and_leave_no_thread(tiny_dump):
    import threading

    from asd_tools.data.corpus import Corpus
    from asd_tools.data.windows import PrefetchedBatches, WindowDataset, window_loader

    clips = Corpus(tiny_dump).clips("fan", "train")
    dataset = WindowDataset(clips, tiny_dump, 16000)
    rng = np.random.default_rng(1)
    plan = [
        [(int(p), int(s)) for p, s in zip(rng.integers(len(clips), size=5), rng.integers(0, 30000, size=5))]
        for _ in range(9)
    ]  # more batches than the read-ahead depth
    got = list(PrefetchedBatches(dataset, plan, threads=3, depth=2))
    workers = list(window_loader(dataset, plan, 2, "cpu"))  # worker processes: the same batches
    assert len(got) == len(workers) == len(plan)
    for (positions, waves), (worker_positions, worker_waves), batch in zip(got, workers, plan):
        expected_positions, expected = dataset.read_batch(batch)
        assert positions.tolist() == worker_positions.tolist() == expected_positions.tolist()
        assert torch.equal(waves, expected) and torch.equal(worker_waves, expected)
    for i, _ in enumerate(PrefetchedBatches(dataset, plan, threads=2, depth=3)):
        if i == 1:
            break  # leaving early: the readers are cancelled and joined
    assert not [t for t in threading.enumerate() if t.name.startswith("window-reader")]
