"""System 1 training pieces: mixup, batches, windows, and exact resume."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from asd_tools.config import ConfigError, load_config
from asd_tools.data.corpus import Corpus
from asd_tools.data.windows import window_starts
from asd_tools.datasets.registry import DCASE2022
from asd_tools.systems.serial_oe import recipe
from asd_tools.systems.serial_oe.config import SerialOEConfig
from asd_tools.systems.serial_oe.task import mixup, mixup_apply_rate
from tests.conftest import CONF, TINY_MACHINES, edited_config, shipped_configs

SECTIONS = DCASE2022.units("fan", "dev") + DCASE2022.units("fan", "eval")  # six sections


def test_window_starts():
    assert window_starts(160000, 32000, 10).tolist() == [round(i * 128000 / 9) for i in range(10)]
    assert window_starts(160000, 32000, 10)[-1] + 32000 == 160000  # the last window ends at the clip's end
    assert window_starts(160000, 32000, 0).tolist() == [0]  # whole-clip mode
    assert window_starts(20000, 32000, 10).tolist() == [0]


def test_mixup_schedule_and_targets():
    assert mixup_apply_rate(0, 100) == 1.0
    assert mixup_apply_rate(50, 100) == pytest.approx(math.cos(math.pi / 4))
    assert mixup_apply_rate(100, 100) == pytest.approx(0.0, abs=1e-12)
    torch.manual_seed(0)
    waves = torch.randn(8, 100)
    machine = torch.tensor([1.0, 1, 1, 1, 0, 0, 0, 0])
    section = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3, 0, 0, 0, 0]), 6).float() * machine[:, None]
    mixed, (m, s) = mixup(waves, [machine, section], 0.2, torch.Generator().manual_seed(0))
    # every mixed row is a convex combination: machine weight recovers the wave mix exactly
    assert torch.all((m >= 0) & (m <= 1))
    assert torch.allclose(s.sum(1), m, atol=1e-6)  # negatives' sections are zero before mixing
    assert not torch.allclose(mixed, waves)


def test_every_shipped_config_builds_a_model_with_one_logit_per_section():
    files = shipped_configs("asd_model.*.yaml")
    assert len(files) >= 14
    wave = torch.randn(1, 2 * 16000)  # one 2 s window, as training and embedding feed it
    built = set()
    for path in files:
        cfg = load_config(path, SerialOEConfig)
        if "pretrained" in cfg.model.params:
            cfg.model.params["pretrained"] = False  # tests never download weights
        model_settings = repr((cfg.model, cfg.frontend))
        if model_settings in built:  # e.g. 000-003 differ in training only: one build checks them all
            continue
        built.add(model_settings)
        with torch.no_grad():
            out = recipe.make_model(cfg, SECTIONS).eval()(wave)
        assert out["section"].shape == (1, len(SECTIONS)), path.name
        assert out["machine"].shape == (1,) and torch.isfinite(out["embedding"]).all(), path.name


def test_unknown_model_parameter_is_a_config_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  name: asd_model\n  params: {backbone: resnet18, dropuot: 0.1}\n")
    with pytest.raises(ConfigError, match="dropuot"):
        load_config(path, SerialOEConfig)


def _config(tmp_path, epochs):
    path = tmp_path / f"tiny_{epochs}.yaml"
    return edited_config(path, "asd_model.tiny.yaml", train__epochs=epochs, train__save_interval_epochs=100)


def test_batches_follow_the_outlier_exposure_recipe(tiny_dump):
    from asd_tools.systems.serial_oe.task import OutlierExposureTask

    cfg = load_config(CONF / "asd_model.tiny.yaml", SerialOEConfig).train
    task = OutlierExposureTask(cfg, Corpus(tiny_dump), "fan", list(TINY_MACHINES), "cpu")
    plan = task.sampler.epoch_plan(1)
    assert len(plan) == task.steps_per_epoch()
    source = set(task.sampler.source_positions.tolist())
    targets = set(task.sampler.target_positions.tolist())
    negatives = set(task.sampler.negative_positions.tolist())
    for batch in plan:
        positions = [p for p, _ in batch]
        half = cfg.batch_size // 2
        assert all(p in source for p in positions[: half - cfg.n_target])
        assert all(p in targets for p in positions[half - cfg.n_target : half])
        assert all(p in negatives for p in positions[half:])
    # one pass over the source clips: no clip repeats before the last (topped-up) batch
    seen = [p for batch in plan[:-1] for p, _ in batch[: cfg.batch_size // 2 - cfg.n_target]]
    assert len(seen) == len(set(seen))
    assert plan == task.sampler.epoch_plan(1) and plan != task.sampler.epoch_plan(2)


def assert_resume_is_exact(run, tmp_path, monkeypatch, epochs):
    """``run(expdir)`` trains for ``epochs`` epochs. Killed in its last epoch and run again, it must
    train only that epoch and end with the weights and optimiser state of an uninterrupted run."""
    from asd_tools.artefacts import LAST
    from asd_tools.training.trainer import Trainer

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run(straight)
    original_epoch = Trainer._train_epoch

    def killed_in_last_epoch(self):
        if self.epoch == epochs:
            raise KeyboardInterrupt("killed")
        return original_epoch(self)

    monkeypatch.setattr(Trainer, "_train_epoch", killed_in_last_epoch)
    with pytest.raises(KeyboardInterrupt):
        run(resumed)
    assert torch.load(resumed / LAST, weights_only=True)["epoch"] == epochs - 1
    trained = []

    def counted(self):
        trained.append(self.epoch)
        return original_epoch(self)

    monkeypatch.setattr(Trainer, "_train_epoch", counted)
    torch.manual_seed(1234)  # the resumed run must restore every random state itself
    run(resumed)
    assert trained == [epochs]  # it continued; it did not start again
    a, b = (torch.load(d / LAST, weights_only=True) for d in (straight, resumed))
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for name in ("optimizer", "scheduler", "step", "history"):
        assert str(a[name]) == str(b[name]), name
    assert len(a["history"]) == epochs  # the training curves survive the kill as well


@pytest.mark.slow
def test_resumed_run_matches_an_uninterrupted_one(tiny_dump, tmp_path, monkeypatch):
    config = _config(tmp_path, 3)

    def run(expdir):
        recipe.SerialOE().train(config, tiny_dump, "fan", list(TINY_MACHINES), expdir, "cpu")

    assert_resume_is_exact(run, tmp_path, monkeypatch, epochs=3)


@pytest.mark.slow
def test_threaded_reads_and_loader_workers_train_the_same_weights(tiny_dump, tmp_path):
    """num_workers is a loader setting: threads of this process (0) and a DataLoader worker (1) read the
    same batches and leave torch's random stream the same, so the weights are identical."""
    weights = []
    for workers in (0, 1):
        config = edited_config(
            tmp_path / f"w{workers}.yaml", "asd_model.tiny.yaml", train__epochs=2, train__num_workers=workers
        )
        recipe.SerialOE().train(config, tiny_dump, "fan", list(TINY_MACHINES), tmp_path / f"w{workers}", "cpu")
        weights.append(torch.load(tmp_path / f"w{workers}" / "checkpoint-last.pt", weights_only=True)["model"])
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_numpy_random_states_survive_a_weights_only_checkpoint(tmp_path):
    from asd_tools.training import trainer

    legacy = np.random.RandomState(0)
    legacy.normal()  # leaves a cached Gaussian in the state
    generators = {"mt19937": np.random.Generator(np.random.MT19937(1)), "pcg64": np.random.default_rng(2)}
    state = {name: g.bit_generator.state for name, g in generators.items()}  # a uint32 array; 128-bit ints
    state.update(legacy=legacy.get_state(), trainer=trainer.rng_state())
    trainer.save_torch(trainer.plain_state(state), tmp_path / "state.pt")
    restored = trainer.numpy_state(trainer.load_checkpoint(tmp_path / "state.pt", "cpu"))

    def draws():
        return [legacy.normal(), np.random.normal(), torch.rand(1).item(), *(g.random() for g in generators.values())]

    expected = draws()
    legacy.set_state(restored["legacy"])
    trainer.set_rng_state(restored["trainer"])
    for name, generator in generators.items():
        generator.bit_generator.state = restored[name]
    assert draws() == expected


def _ran(marker):
    Path(marker).write_text("unpickling ran code")


class Payload:
    """Unpickling this runs ``_ran``: what a tampered checkpoint could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return _ran, (self.marker,)


def test_a_checkpoint_with_arbitrary_objects_is_refused_without_running_them(tiny_dump, tmp_path):
    from asd_tools.artefacts import BEST, LAST
    from asd_tools.training.trainer import load_weights

    marker, expdir = tmp_path / "ran", tmp_path / "exp"
    expdir.mkdir()
    config = _config(tmp_path, 1)
    # the folder's record matches, so that training goes on to resume from the tampered checkpoint
    cfg = load_config(config, SerialOEConfig)
    phases = recipe.SerialOE().training_phases(cfg, Corpus(tiny_dump), "fan", list(TINY_MACHINES), expdir, "cpu")
    next(phases).record().write()
    for name in (BEST, LAST):
        torch.save({"model": {}, "epoch": 1, "payload": Payload(marker)}, expdir / name)
    refused = r"checkpoint-(best|last).pt is not a checkpoint this recipe wrote"
    with pytest.raises(ValueError, match=refused) as err:
        load_weights(expdir, "checkpoint-best", "cpu")
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=refused):  # resume
        recipe.SerialOE().train(config, tiny_dump, "fan", list(TINY_MACHINES), expdir, "cpu")
    assert not marker.exists()
    torch.load(expdir / BEST, weights_only=False)  # the payload is real: loaded unsafely, it runs
    assert marker.exists()


def test_target_mixup_of_inliers_adds_mixed_windows(tiny_dump, tmp_path):
    expdir = tmp_path / "exp"
    recipe.SerialOE().train(_config(tmp_path, 1), tiny_dump, "valve", list(TINY_MACHINES), expdir, "cpu")
    config = (expdir / "config.yaml").read_text()
    recipe.SerialOE().embed(expdir, tiny_dump, "valve", "checkpoint-best", "cpu")
    (expdir / "config.yaml").write_text(config.replace("target_mixup: false", "target_mixup: true"))
    (expdir / "mixed").mkdir()
    for name in ("checkpoint-best.pt",):
        (expdir / "mixed.pt").write_bytes((expdir / name).read_bytes())
    recipe.SerialOE().embed(expdir, tiny_dump, "valve", "mixed", "cpu")
    plain = np.load(expdir / "checkpoint-best/inlier.npz")
    mixed = np.load(expdir / "mixed/inlier.npz")
    n = len(plain["window_clip"])
    assert len(mixed["window_clip"]) == 2 * n
    assert np.allclose(mixed["feature_embedding"][:n], plain["feature_embedding"], atol=1e-5)
    assert not np.allclose(mixed["feature_embedding"][n:], plain["feature_embedding"], atol=1e-3)


def test_a_damaged_checkpoint_is_one_line_naming_it_wherever_it_is_loaded(tiny_dump, tmp_path):
    """Issue 36, fault 5: an empty file, half a file, a few bytes: the path, "damaged or incomplete", what to do."""
    from asd_tools.artefacts import BEST, LAST
    from asd_tools.training.trainer import load_weights

    expdir = tmp_path / "exp"
    expdir.mkdir()
    config = _config(tmp_path, 1)
    cfg = load_config(config, SerialOEConfig)
    phases = recipe.SerialOE().training_phases(cfg, Corpus(tiny_dump), "fan", list(TINY_MACHINES), expdir, "cpu")
    next(phases).record().write()
    whole = tmp_path / "whole.pt"
    torch.save({"model": {"w": torch.randn(1000)}, "epoch": 1}, whole)
    data = whole.read_bytes()
    for damaged in (b"", data[: len(data) // 2], data[:20]):
        for name in (BEST, LAST):
            (expdir / name).write_bytes(damaged)
        with pytest.raises(ValueError, match="checkpoint-best.pt is damaged or incomplete") as err:
            load_weights(expdir, "checkpoint-best", "cpu")  # the embedding stage
        assert "\n" not in str(err.value) and "--force true" in str(err.value)
        with pytest.raises(ValueError, match="checkpoint-last.pt is damaged or incomplete"):  # resume
            recipe.SerialOE().train(config, tiny_dump, "fan", list(TINY_MACHINES), expdir, "cpu")


def test_every_checkpoint_is_loaded_by_the_one_helper():
    sources = Path(__file__).resolve().parents[1] / "asd_tools"
    loads = [p for p in sources.rglob("*.py") if "torch.load(" in p.read_text()]
    assert [p.name for p in loads] == ["trainer.py"]
