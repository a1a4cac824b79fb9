"""The systems registry: configs name their system, one bin/train and one bin/embed dispatch on it,
and a new system is one class plus registration."""

from dataclasses import dataclass, field

import numpy as np
import pytest
import yaml

from asd_tools.backend.detect import DetectConfig
from asd_tools.backend.embeddings import Embeddings
from asd_tools.bin import detect as detect_bin
from asd_tools.bin import embed as embed_bin
from asd_tools.bin import train as train_bin
from asd_tools.config import ConfigError, load_config, save_config
from asd_tools.data.corpus import Corpus
from asd_tools.systems import registry
from asd_tools.systems.base import System
from asd_tools.systems.baseline.config import BaselineConfig
from asd_tools.systems.baseline.recipe import Baseline
from asd_tools.systems.dgmix.config import DGMixConfig
from asd_tools.systems.registry import SYSTEMS, system_for_config, system_for_experiment, system_name
from asd_tools.systems.serial_oe.config import SerialOEConfig
from tests.conftest import CONF, shipped_configs


@pytest.mark.parametrize("path", shipped_configs(), ids=lambda p: p.name)
def test_every_config_names_a_registered_system_whose_schema_reads_it(path):
    system = system_for_config(path)
    names = {"asd_model": "serial_oe", "dgmix": "dgmix", "baseline": "baseline", "dcase_ae": "dcase_ae"}
    expected = names[path.name.split(".")[0]]
    assert system.name == expected
    assert system.load_config(path).system == expected


def test_a_config_without_or_with_an_unknown_system_is_a_clear_error(tmp_path):
    none = tmp_path / "none.yaml"
    none.write_text("logmel: {}\n")
    with pytest.raises(ConfigError, match="names no system: add a top-level 'system:' line"):
        system_name(none)
    typo = tmp_path / "typo.yaml"
    typo.write_text("system: serial-oe\n")
    with pytest.raises(ConfigError, match=r"system 'serial-oe' is not registered; known systems: \['baseline'"):
        system_name(typo)


def test_a_schema_refuses_a_config_of_another_system(tmp_path):
    path = tmp_path / "c.yaml"
    data = yaml.safe_load((CONF / "dgmix.tiny.yaml").read_text())
    data["base"] = str(CONF / "dgmix.intended.yaml")
    path.write_text(yaml.safe_dump(data))
    assert load_config(path, DGMixConfig).system == "dgmix"
    with pytest.raises(ConfigError):  # DG-Mix's sections are unknown to System 1's schema ...
        load_config(path, SerialOEConfig)
    cpu = yaml.safe_load((CONF / "asd_model.cpu.yaml").read_text())
    path.write_text(yaml.safe_dump({**cpu, "system": "dgmix"}))
    with pytest.raises(ConfigError, match="system: 'dgmix', but the config is read as one of 'serial_oe'"):
        load_config(path, SerialOEConfig)  # ... and a System 1 config that names DG-Mix is refused too


def test_an_experiment_names_its_system_through_its_saved_config(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.yaml is missing: run the training stage"):
        system_for_experiment(tmp_path)
    cfg = load_config(CONF / "baseline.yaml", Baseline.config_class)
    save_config(cfg, tmp_path / "config.yaml")
    assert isinstance(system_for_experiment(tmp_path), Baseline)
    old = yaml.safe_load((tmp_path / "config.yaml").read_text())
    del old["system"]  # saved before configs named their system
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(old))
    with pytest.raises(ConfigError, match="re-run the training stage"):
        system_for_experiment(tmp_path)


def test_the_baseline_has_one_feature_set(tmp_path):
    save_config(load_config(CONF / "baseline.yaml", BaselineConfig), tmp_path / "config.yaml")
    assert Baseline().checkpoints(tmp_path) == ["features"]
    with pytest.raises(ValueError, match="one set of features, 'features'"):
        Baseline().embed(tmp_path, "y", "fan", "checkpoint-best", "cpu")


@dataclass
class ToyConfig:
    """A new system's schema: its name, its own settings, and the shared detectors."""

    system: str = "toy"
    embed: dict = field(default_factory=lambda: {"inlier_subsets": ["train"], "scale": 1.0})
    detect: DetectConfig = field(default_factory=DetectConfig)


class ToySystem(System):
    """A system written as a user would: its own parts only (no training; clip statistics scaled by a
    setting), registered by name; the core does the rest. It records what it was asked."""

    name = "toy"
    config_class = ToyConfig
    calls = []

    def checkpoint_names(self, cfg):
        return ["stats"]

    def inlier_subsets(self, cfg):
        return cfg.embed["inlier_subsets"]

    def model_file(self, expdir, checkpoint):
        return None

    def load_model(self, cfg, corpus, machine, expdir, checkpoint, device):
        self.calls.append(("load", machine, checkpoint, device))
        return cfg.embed["scale"]

    def embed_clips(self, cfg, model, corpus, machine, clips, part, device):
        self.calls.append(("embed", part, len(clips)))
        waves = [corpus.store.read(clip) for _, clip in clips.iterrows()]
        features = np.array([[w.mean(), w.std()] for w in waves], dtype=np.float32) * model
        return Embeddings(clips["clip_id"].to_numpy(), np.arange(len(clips)), {"embedding": features})


def test_a_registered_system_runs_through_the_shared_entry_points(tiny_dump, tmp_path, monkeypatch):
    monkeypatch.setitem(SYSTEMS, "toy", ToySystem)
    monkeypatch.setattr(ToySystem, "calls", [])
    config = tmp_path / "toy.yaml"
    config.write_text("system: toy\n")
    expdir = tmp_path / "exp"
    common = ["--dumpdir", str(tiny_dump), "--machine", "fan", "--expdir", str(expdir), "--device", "cpu"]
    train_bin.main(["--config", str(config), "--machines", "fan valve", *common])
    assert registry.system_for_experiment(expdir).name == "toy"  # the core saved the resolved config
    embed_bin.main(common)
    corpus = Corpus(tiny_dump)
    n_inliers, n_test = len(corpus.ids("fan", "train")), len(corpus.ids("fan", "test"))
    assert ToySystem.calls == [
        ("load", "fan", "stats", "cpu"),
        ("embed", "inlier", n_inliers),
        ("embed", "test", n_test),
    ]
    test = Embeddings.load(expdir / "stats/test.npz")
    assert test.features["embedding"].shape == (n_test, 2) and np.isfinite(test.features["embedding"]).all()
    embed_bin.main(common)  # the core's record: current, nothing recomputed
    assert len(ToySystem.calls) == 3
    config.write_text("system: toy\nembed: {inlier_subsets: [train], scale: 2.0}\n")
    train_bin.main(["--config", str(config), "--machines", "fan valve", *common])
    embed_bin.main(common)  # a setting changed: the record is stale, the embeddings are remade
    assert len(ToySystem.calls) == 6
    assert np.allclose(Embeddings.load(expdir / "stats/test.npz").features["embedding"], 2 * test.features["embedding"])


def test_an_unregistered_system_stops_training_with_the_known_names(tmp_path, capsys):
    config = tmp_path / "toy.yaml"
    config.write_text("system: toy\n")
    argv = ["--config", str(config), "--dumpdir", ".", "--machine", "fan", "--machines", "fan", "--expdir", "x"]
    with pytest.raises(SystemExit):
        train_bin.main(argv)
    known = "known systems: ['baseline', 'dcase_ae', 'dgmix', 'serial_oe']"
    assert f"system 'toy' is not registered; {known}" in capsys.readouterr().err


def test_detect_scores_every_embedded_folder_and_only_those(tmp_path, monkeypatch):
    for name in ("checkpoint-best", "checkpoint-2epochs", "features"):
        (tmp_path / name).mkdir()
        np.savez(tmp_path / name / "test.npz")
    (tmp_path / "finetune").mkdir()  # a training folder, no embeddings
    (tmp_path / "replaced-2026").mkdir()
    assert detect_bin.embedded_checkpoints(tmp_path) == ["checkpoint-2epochs", "checkpoint-best", "features"]
    seen = []
    monkeypatch.setattr(
        detect_bin, "detect_stage", lambda config, dumpdir, machine, embeddir, force: seen.append(embeddir)
    )
    detect_bin.main(["--dumpdir", ".", "--machine", "fan", "--expdir", str(tmp_path), "--checkpoints", "features"])
    assert seen == [tmp_path / "features"]
    with pytest.raises(SystemExit):
        detect_bin.main(["--dumpdir", ".", "--machine", "fan", "--expdir", str(tmp_path / "finetune")])


def test_system_1_embeds_the_checkpoints_its_saved_config_makes(tmp_path):
    from asd_tools.systems.serial_oe.recipe import SerialOE

    cfg = load_config(CONF / "asd_model.tiny.yaml", SerialOEConfig)
    cfg.train.epochs, cfg.train.save_interval_epochs = 6, 2
    save_config(cfg, tmp_path / "config.yaml")
    assert SerialOE().checkpoints(tmp_path) == [
        "checkpoint-best",
        "checkpoint-2epochs",
        "checkpoint-4epochs",
        "checkpoint-6epochs",
    ]
