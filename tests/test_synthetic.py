import hashlib

import numpy as np
import soundfile as sf

from asd_tools.data.names import parse_clip_path
from asd_tools.data.synthetic import SIZES, generate
from asd_tools.datasets.registry import dataset_spec


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def test_layout_counts_and_names(tiny_root):
    size = SIZES["tiny"]
    for machine in ("fan", "valve"):
        for dataset, sections in (("dev", (0, 1, 2)), ("eval", (3, 4, 5))):
            train = sorted((tiny_root / dataset / machine / "train").glob("*.wav"))
            test = sorted((tiny_root / dataset / machine / "test").glob("*.wav"))
            assert len(train) == 3 * (size.train_source + size.train_target)
            assert len(test) == 3 * 4 * size.test_per_domain_state
            infos = [parse_clip_path(p, dataset_spec("dcase2022")) for p in train + test]
            assert {i.section for i in infos} == set(sections)
            assert all(i.attributes for i in infos if i.split == "train")
            if dataset == "eval":
                assert all(i.state == "unknown" for i in infos if i.split == "test")
            info = sf.info(str(train[0]))
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        truth = tiny_root / "ground_truth/ground_truth_data" / f"ground_truth_{machine}_section_03_test.csv"
        rows = truth.read_text().splitlines()
        assert len(rows) == 4 * size.test_per_domain_state
        assert {r.split(",")[1] for r in rows} == {"0", "1"}
        assert (tiny_root / "dev" / machine / "attributes_00.csv").exists()


def test_generation_is_deterministic_and_seeded(tiny_root, tmp_path):
    again = tmp_path / "again"
    generate(again, "tiny", ["fan", "valve"], seed=0, jobs=1)
    assert _digest(again) == _digest(tiny_root)
    other = tmp_path / "other"
    generate(other, "tiny", ["fan"], seed=1, jobs=1)
    a, _ = sf.read(next((tiny_root / "dev/fan/train").glob("*_0000_*.wav")))
    b, _ = sf.read(next((other / "dev/fan/train").glob("*_0000_*.wav")))
    assert not np.array_equal(a, b)


def test_machine_types_sound_different(tiny_root):
    """Each machine type has its own spectrum: long-term spectra differ clearly between types."""
    spectra = {}
    for machine in ("fan", "valve"):
        clip, _ = sf.read(next((tiny_root / "dev" / machine / "train").glob("*.wav")))
        spectrum = np.abs(np.fft.rfft(clip)) ** 2
        bands = np.array_split(spectrum, 32)
        spectra[machine] = np.log([b.sum() for b in bands])
    assert np.abs(spectra["fan"] - spectra["valve"]).mean() > 0.5


def test_a_set_is_extended_by_missing_machine_types_only(tmp_path):
    generate(tmp_path, "tiny", ["fan"], seed=0, jobs=1)
    fan_clip = next((tmp_path / "dev/fan/train").glob("*.wav"))
    before = fan_clip.stat().st_mtime_ns
    settings = generate(tmp_path, "tiny", ["fan", "valve"], seed=0, jobs=1)
    assert settings["machines"] == ["fan", "valve"]
    assert fan_clip.stat().st_mtime_ns == before and (tmp_path / "dev/valve/train").is_dir()
    import pytest

    with pytest.raises(FileExistsError, match="other settings"):
        generate(tmp_path, "tiny", ["fan"], seed=1, jobs=1)
