"""DG-Mix (System 2) against ibkuroyagi/DGMix's own outputs (tests/golden/dgmix_*.npz, tools/golden/make_golden.py).

Our model is built from scripts/conf/tuning/dgmix.original.yaml and carries the original's seeded weights
(``from_original_dgmix_state_dict``). Tolerances, fp32 on CPU: 1e-4 of the largest value for the network's
outputs and losses, because the random MobileNetV2 amplifies float32 rounding: with the golden file's one
thread the outputs are equal here, with two threads (another order of the convolutions' sums) one embedding
element moved by 1.1e-5 of the largest. The tests run on one thread, as make_golden.py did.
"""

import json
import types

import numpy as np
import pytest
import torch

from asd_tools.backend.detectors import build_detector
from asd_tools.config import load_config
from asd_tools.constants import WINDOW_SAMPLES
from asd_tools.models.dgmix import PretrainModel, Projector
from asd_tools.models.original_weights import from_original_dgmix_state_dict
from asd_tools.systems.dgmix.config import DGMixConfig
from asd_tools.systems.dgmix.recipe import make_extractor
from asd_tools.systems.dgmix.task import FinetuneTask, VICRegMixupTask
from asd_tools.training.optim import build_optimizer
from tests.golden_inputs import digest, load_golden, seeded_state_dict, seeded_waves
from tests.test_training import CONF

DGMIX = "ibkuroyagi/DGMix"
FINETUNE_CLASSES = [0, 1, 2, 0, 1, 2, 0, 2]  # the sections of the golden fine-tuning batch


pytestmark = pytest.mark.usefixtures("one_thread")  # as make_golden.py ran (tests/conftest.py)


@pytest.fixture(scope="module")
def golden():
    g = load_golden("dgmix_forward.npz")
    assert g["provenance"]["repository"] == DGMIX
    return g


@pytest.fixture(scope="module")
def cfg():
    return load_config(CONF / "dgmix.original.yaml", DGMixConfig)


def model_with_original_weights(cfg, golden):
    extractor = make_extractor(cfg, n_outputs=6)
    projector = Projector()
    shapes = json.loads(str(golden["state_shapes"]))
    original = {k: torch.from_numpy(v) for k, v in seeded_state_dict(int(golden["weight_seed"]), shapes).items()}
    extractor_state, projector_state = from_original_dgmix_state_dict(original, extractor)
    extractor.load_state_dict(extractor_state, strict=True)
    projector.load_state_dict(projector_state, strict=True)
    return PretrainModel(extractor, projector)


def golden_waves(golden):
    waves = seeded_waves(int(golden["wave_seed"]), 8, WINDOW_SAMPLES)
    assert digest(waves) == str(golden["wave_digest"]), "tests/golden_inputs.py changed: regenerate tests/golden"
    return torch.from_numpy(waves)


def assert_close(ours, theirs, what, rel=1e-4):
    ours = ours.detach().numpy() if torch.is_tensor(ours) else np.asarray(ours)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=rel * np.abs(theirs).max(), err_msg=what)


def test_forward_embedding_section_head_and_projector_equal_the_original(cfg, golden):
    model = model_with_original_weights(cfg, golden).eval()
    with torch.no_grad():
        out = model.extractor(golden_waves(golden))
        assert_close(model.extractor.frontend(golden_waves(golden)[:1])[0], golden["mel"], "mel", 1e-6)
        assert_close(out["embedding"], golden["embedding"], "embedding")
        assert_close(out["section"], golden["section"], "section head")
        assert_close(model.projector(out["embedding"]), golden["projection"], "projector")


class FixedBeta:
    """Stands in for the task's Beta sampler: the mixing weights the original drew."""

    def __init__(self, lam):
        self.lam = torch.from_numpy(lam)

    def sample(self, shape):
        assert tuple(shape) == tuple(self.lam.shape)
        return self.lam


def task_on_one_batch(task_class, cfg, lam):
    """The task's own ``batch_loss`` without a corpus: only what it reads is set."""
    task = types.SimpleNamespace(device=torch.device("cpu"), beta=FixedBeta(lam), vicreg=cfg.vicreg, n_classes=6)
    task.separate = cfg.vicreg.mixture_pass == "separate"
    task.mixed_halves = lambda model, waves: task_class.mixed_halves(task, model, waves)
    return lambda model, waves, classes: task_class.batch_loss(task, model, waves, classes)


def test_vicreg_pretraining_loss_of_one_batch_equals_the_original(cfg, golden):
    """Training mode (BatchNorm on batch statistics), (x, y) and z through the network separately, VICReg
    with the original's 25 / 25 / 1, the original's Beta(0.5, 0.5) draws."""
    model = model_with_original_weights(cfg, golden).train()
    batch_loss = task_on_one_batch(VICRegMixupTask, cfg, golden["pretrain/lam"])
    loss, scalars = batch_loss(model, golden_waves(golden), torch.zeros(8, dtype=torch.long))
    assert_close(loss, golden["pretrain/loss"], "loss")
    assert_close(scalars["invariance"], golden["pretrain/repr_loss"], "invariance")
    assert_close(scalars["variance"], golden["pretrain/std_loss"], "variance")
    assert_close(scalars["covariance"], golden["pretrain/cov_loss"], "covariance")


def test_finetuning_loss_of_one_batch_equals_the_original(cfg, golden):
    model = model_with_original_weights(cfg, golden).extractor.train()
    classes = torch.tensor(FINETUNE_CLASSES)
    np.testing.assert_array_equal(golden["finetune/section"].argmax(1), classes.numpy())
    batch_loss = task_on_one_batch(FinetuneTask, cfg, golden["finetune/lam"])
    loss, scalars = batch_loss(model, golden_waves(golden), classes)
    assert_close(loss, golden["finetune/loss"], "loss")
    assert_close(scalars["consistency"], golden["finetune/repr_loss"], "consistency")
    assert_close(scalars["section_kl"], golden["finetune/section_loss"], "section KL")


def test_lars_steps_differ_from_the_original_only_in_the_trust_ratio_denominator(cfg):
    """Pinned deviation (docs/fidelity.md, DG-Mix LARS): the original scales the decayed gradient
    d = g + wd w by eta |w| / |d|; timm's LARS (ours) by eta |w| / (|g| + wd |w|). Both steps follow d
    (and the momentum of the earlier d's) and the ratio of our scale to theirs is |d| / (|g| + wd |w|) <= 1
    (here 0.9976 at the lowest: a step up to 0.25 % shorter); the test recomputes our step from theirs and
    compares the weights' change to 2e-4 of its largest element, which the ratio alone exceeds."""
    g = load_golden("dgmix_lars.npz")
    names = ("conv", "bias", "linear")
    params = torch.nn.ParameterDict({n: torch.nn.Parameter(torch.from_numpy(g[f"start/{n}"].copy())) for n in names})
    assert json.loads(str(g["optimizer_params"])) == {"lr": 0.8, "weight_decay": 1.0e-4}  # the original's yaml
    settings = cfg.pretrain.optimizer_params
    optimizer = build_optimizer(cfg.pretrain.optimizer, params, cfg.pretrain.exclude_bias_and_norm, **settings)
    wd, lr, momentum = settings["weight_decay"], settings["lr"], settings["momentum"]
    expected = {n: g[f"start/{n}"].astype(np.float64) for n in names}
    theirs_buffer, ours_buffer = dict.fromkeys(names, 0.0), dict.fromkeys(names, 0.0)  # the momentum buffers
    for step in (1, 2):
        for n in names:
            w, grad = expected[n], g[f"grad{step}/{n}"].astype(np.float64)
            d = grad + wd * w
            ratio = np.linalg.norm(d) / (np.linalg.norm(grad) + wd * np.linalg.norm(w))
            decay = wd * np.linalg.norm(w)
            assert (np.linalg.norm(grad) - decay) / (np.linalg.norm(grad) + decay) <= ratio <= 1  # triangle inequality
            before = g[f"start/{n}" if step == 1 else f"step{step - 1}/{n}"].astype(np.float64)
            buffer = (before - g[f"step{step}/{n}"]) / lr  # theirs after this step: momentum * buffer + q d
            scaled_d = buffer - momentum * theirs_buffer[n]
            theirs_buffer[n] = buffer
            ours_buffer[n] = momentum * ours_buffer[n] + ratio * scaled_d
            expected[n] = w - lr * ours_buffer[n]
            params[n].grad = torch.from_numpy(g[f"grad{step}/{n}"].copy())
        optimizer.step()
        for n in names:  # the change since the start: float32 weights of order 1 keep it to about 1e-4
            start = g[f"start/{n}"].astype(np.float64)
            change = params[n].detach().numpy().astype(np.float64) - start
            assert_close(change, expected[n] - start, f"step {step} {n}", rel=2e-4)


def test_one_nearest_neighbour_score_equals_the_original():
    """infer.py: the Euclidean distance of each test clip to its nearest train + valid (all) or valid
    clip of the same section: ours is the kNN detector with k = 1."""
    import importlib.util

    from tests.golden_inputs import GOLDEN_DIR

    g = load_golden("dgmix_knn.npz")
    assert g["provenance"]["repository"] == DGMIX
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN_DIR.parents[1] / "tools/golden/make_golden.py")
    make_golden = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_golden)
    import tests.golden_inputs as gi

    table, features = make_golden.dgmix_score_table(gi)
    assert digest(table[features].to_numpy()) == str(g["table_digest"])
    paths = list(g["paths"])
    for j, (column, inliers_of) in enumerate((("KNN_1_all", ("train", "valid")), ("KNN_1_valid", ("valid",)))):
        assert g["columns"][j] == column
        for section, rows in table.groupby("section"):
            inliers = rows[rows["phase"].isin(inliers_of)][features].to_numpy()
            test = rows[rows["phase"] == "test"]
            ours = build_detector("knn", {"k": 1}).fit(inliers).score(test[features].to_numpy())
            theirs = g["scores"][[paths.index(p) for p in test["path"]], j]
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12, err_msg=f"{column} section {section}")
