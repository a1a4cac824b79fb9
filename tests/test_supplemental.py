"""DCASE 2025's supplemental clips (clean machine sounds, noise-only recordings): names, the synthetic
layout, dump and lists, and System 1's ``train.supplemental``."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from asd_tools.config import load_config
from asd_tools.constants import NOISE, SUPPLEMENTAL
from asd_tools.data.corpus import Corpus
from asd_tools.data.dump import BadInputError, dump_machine
from asd_tools.data.names import BadClipName, parse_clip_path, parse_supplemental_name
from asd_tools.data.split import read_list, write_lists
from asd_tools.data.synthetic import DONE_FILE, generate
from asd_tools.datasets.registry import dataset_spec
from asd_tools.systems.serial_oe import recipe as serial_oe
from asd_tools.systems.serial_oe.config import SerialOEConfig
from asd_tools.systems.serial_oe.task import OutlierExposureTask
from asd_tools.training.classes import NO_CLASS, read_classes
from tests.conftest import TINY_MACHINES, dumped_layout, edited_config

LAYOUT = "dcase2025"
SPEC = dataset_spec(LAYOUT)
MACHINES = [SPEC.dev_machines[1], SPEC.eval_machines[1], SPEC.dev_machines[6]]  # fan, BandSealer, valve
PER_KIND = 2  # tiny: test clips per domain and state


@pytest.mark.parametrize(
    "name, domain, state, index",
    [
        ("section_00_source_supplemental_machine_0000.wav", "source", "normal", 0),
        ("section_00_noise_supplemental_normal_0012.wav", "source", NOISE, 12),
        ("section_00_target_supplemental_machine_0003_rpm_1200.wav", "target", "normal", 3),
        ("section_00_supplemental_0007.WAV", "source", "normal", 7),
    ],
)
def test_supplemental_names(name, domain, state, index):
    fields = parse_supplemental_name(name)
    assert (fields["section"], fields["domain"], fields["state"], fields["index"]) == (0, domain, state, index)
    info = parse_clip_path(f"/d/eval/BandSealer/supplemental/{name}", SPEC)
    assert (info.split, info.dataset, info.state) == (SUPPLEMENTAL, "eval", state)


def test_supplemental_folders_and_names_are_checked():
    with pytest.raises(BadClipName, match="section_00_source_train_normal_0000.wav.*supplemental"):
        parse_clip_path("/d/eval/BandSealer/supplemental/section_00_source_train_normal_0000.wav", SPEC)
    with pytest.raises(BadClipName, match="folder 'supplemental' is not one of"):  # only 2025 has the folder
        name = "section_00_source_supplemental_machine_0000.wav"
        parse_clip_path(f"/d/dev/fan/supplemental/{name}", dataset_spec("dcase2024"))


@pytest.fixture(scope="module")
def supplemental_data(tmp_path_factory):
    return dumped_layout(tmp_path_factory, LAYOUT, MACHINES, "supplemental")


def test_the_synthetic_2025_layout_has_clean_and_noise_clips(supplemental_data):
    root, _ = supplemental_data
    for machine in MACHINES:
        half = SPEC.datasets_of(machine)[0]
        names = sorted(p.name for p in (root / half / machine / SUPPLEMENTAL).iterdir())
        clean = [n for n in names if n.startswith("section_00_source_supplemental_machine_")]
        noise = [n for n in names if n.startswith("section_00_noise_supplemental_normal_")]
        assert len(clean) == len(noise) == PER_KIND and len(names) == 2 * PER_KIND
    assert json.loads((root / DONE_FILE).read_text())["supplemental"] == PER_KIND
    # a clean clip is the machine alone, a noise clip the background alone: different sounds, neither silent
    folder = root / "dev" / "fan" / SUPPLEMENTAL
    clean, _ = sf.read(folder / "section_00_source_supplemental_machine_0000.wav")
    noise, _ = sf.read(folder / "section_00_noise_supplemental_normal_0000.wav")
    assert np.std(clean) > 0 and np.std(noise) > 0 and abs(np.corrcoef(clean, noise)[0, 1]) < 0.5


def test_other_years_have_no_supplemental_folder(tmp_path):
    generate(tmp_path, "tiny", ["fan"], seed=0, jobs=1, layout="dcase2024")
    assert not (tmp_path / "dev" / "fan" / SUPPLEMENTAL).exists()
    assert "supplemental" not in json.loads((tmp_path / DONE_FILE).read_text())


def test_dump_and_lists_keep_supplemental_clips_out_of_training_and_statistics(supplemental_data, tmp_path):
    root, dumpdir = supplemental_data
    corpus = Corpus(dumpdir)
    machine = MACHINES[1]
    clean, noise = corpus.clips(machine, "supplemental_clean"), corpus.clips(machine, "supplemental_noise")
    assert len(clean) == len(noise) == PER_KIND
    assert set(clean["state"]) == {"normal"} and set(noise["state"]) == {NOISE}
    assert set(clean["array"]) == {f"{machine}/{SUPPLEMENTAL}.npy"}
    listed = set(corpus.ids(machine, ["train", "valid", "test"]))
    assert not listed & set(clean.index) and not listed & set(noise.index)
    # the same set without the supplemental folders: the same lists and normalisation statistics
    bare = tmp_path / "bare"
    shutil.copytree(root, bare)
    for folder in bare.glob(f"*/*/{SUPPLEMENTAL}"):
        shutil.rmtree(folder)
    bare_dump = tmp_path / "bare_dump"
    dump_machine(bare, machine, bare_dump, layout=LAYOUT)
    write_lists(bare_dump, machine, 0.15, 0)
    for subset in ("train", "valid", "test"):
        assert read_list(bare_dump, machine, subset) == read_list(dumpdir, machine, subset)
    assert read_list(bare_dump, machine, "supplemental_clean") == []
    stats = [json.loads((d / machine / "stats.json").read_text()) for d in (dumpdir, bare_dump)]
    assert stats[0] == stats[1]
    # and the dumped samples of a clean clip are its file's, normalised with those statistics
    row = clean.iloc[0]
    wave, _ = sf.read(row["path"])
    stored = corpus.store.read(row)
    np.testing.assert_allclose(stored, (wave - stats[0]["mean"]) / stats[0]["std"], atol=1e-5)


def test_a_bad_supplemental_name_fails_the_dump_naming_the_file(supplemental_data, tmp_path):
    root, _ = supplemental_data
    data = tmp_path / "data"
    shutil.copytree(root / "dev" / "fan", data / "dev" / "fan")
    bad = data / "dev" / "fan" / SUPPLEMENTAL / "clean_0000.wav"
    shutil.copy(next((data / "dev" / "fan" / SUPPLEMENTAL).iterdir()), bad)
    with pytest.raises(BadInputError, match="clean_0000.wav"):
        dump_machine(data, "fan", tmp_path / "dump", layout=LAYOUT)


def oe_config(tmp_path, supplemental):
    path = edited_config(
        tmp_path / f"c_{'_'.join(supplemental) or 'none'}.yaml",
        "asd_model.tiny.yaml",
        train__epochs=1,
        train__save_interval_epochs=1,
        train__supplemental=supplemental,
    )
    return path, load_config(path, SerialOEConfig)


def test_system1_uses_clean_clips_as_positives_and_noise_clips_as_negatives(supplemental_data, tmp_path):
    _, dumpdir = supplemental_data
    machine, others = MACHINES[1], [MACHINES[0], MACHINES[2]]
    classes = read_classes(Corpus(dumpdir), machine, "attribute")
    corpus = Corpus(dumpdir)
    tasks = {}
    for kinds in ([], ["clean"], ["clean", "noise"]):
        cfg = oe_config(tmp_path, kinds)[1].train
        tasks[tuple(kinds)] = OutlierExposureTask(cfg, Corpus(dumpdir), machine, MACHINES, "cpu", classes)
    plain, clean, both = tasks[()], tasks[("clean",)], tasks[("clean", "noise")]
    n_train = len(corpus.clips(machine, "train"))
    n_other = sum(len(corpus.clips(m, "train")) for m in others)
    assert len(plain.sampler.source_positions) == n_train - (corpus.clips(machine, "train")["domain"] == "target").sum()
    assert len(clean.sampler.source_positions) == len(plain.sampler.source_positions) + PER_KIND
    assert len(clean.sampler.negative_positions) == n_other + 2 * PER_KIND  # the other types' clean clips
    assert len(both.sampler.negative_positions) == n_other + 2 * PER_KIND + 3 * PER_KIND  # + every type's noise
    # clean clips of this type: machine label 1, no attribute class (their names carry none): a zero class row
    clean_positions = np.arange(n_train, n_train + PER_KIND)
    assert torch.all(clean.machine_label[clean_positions] == 1)
    assert torch.all(clean.class_index[clean_positions] == NO_CLASS)
    machine_target, class_target, _ = clean.targets(torch.as_tensor(clean_positions))
    assert torch.all(machine_target == 1) and torch.all(class_target == 0)
    noise_positions = both.sampler.negative_positions[-3 * PER_KIND :]
    assert torch.all(both.machine_label[noise_positions] == 0)
    assert set(both.dataset.clips.iloc[noise_positions]["state"]) == {NOISE}


def test_system1_trains_with_supplemental_clips(supplemental_data, tmp_path):
    _, dumpdir = supplemental_data
    config, _ = oe_config(tmp_path, ["clean", "noise"])
    expdir = tmp_path / "exp"
    serial_oe.SerialOE().train(config, dumpdir, MACHINES[1], MACHINES, expdir, "cpu")
    assert serial_oe.SerialOE().checkpoints(expdir)


def test_supplemental_clips_asked_for_where_there_are_none_is_an_error(tiny_dump, tmp_path):
    cfg = oe_config(tmp_path, ["noise"])[1].train
    with pytest.raises(ValueError, match="supplemental_noise.txt holds any"):
        OutlierExposureTask(cfg, Corpus(tiny_dump), TINY_MACHINES[0], TINY_MACHINES, "cpu")


def test_a_bad_supplemental_kind_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="train.supplemental"):
        oe_config(tmp_path, ["clean", "speech"])
