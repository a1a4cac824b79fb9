"""DG-Mix: model shapes, the VICReg-with-mixup loss, LARS and schedule wiring, a tiny recipe run."""

import dataclasses
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from timm.optim import Lars

from asd_tools.backend.embeddings import Embeddings
from asd_tools.config import load_config
from asd_tools.data.corpus import Corpus
from asd_tools.models.dgmix import DGMixExtractor, PretrainModel, Projector
from asd_tools.systems.dgmix.config import DGMixConfig
from asd_tools.systems.dgmix.recipe import NeverSteps, build_stage_optimizer, load_extractor, make_extractor
from asd_tools.systems.dgmix.task import (
    COLLAPSE_SPREAD,
    VICRegMixupTask,
    embedding_spread,
    mixture_passes,
    relative_spread,
    warn_if_collapsed,
)
from asd_tools.training.losses import covariance_term, variance_term, vicreg_mixup_loss
from asd_tools.training.optim import build_optimizer, build_scheduler
from tests.conftest import CONF, run_recipe, shipped_configs
from tests.test_training import assert_resume_is_exact


def test_extractor_collapses_a_2s_map_to_one_position():
    model = DGMixExtractor(section_head=True).eval()
    spec = model.spectrogram(torch.randn(2, 32000))
    assert spec.shape == (2, 3, 128, 63)
    assert model.features(spec).shape == (2, 320, 4, 2)  # the 4x2 depthwise kernel's input
    out = model(torch.randn(2, 32000))
    assert out["embedding"].shape == (2, 320) and out["section"].shape == (2, 6)
    assert model(torch.randn(1, 160000))["embedding"].shape == (1, 320)  # whole clip: first position
    assert Projector()(torch.randn(4, 320)).shape == (4, 1280)


def test_vicreg_terms_on_known_inputs():
    weights = load_config(CONF / "dgmix.original.yaml", DGMixConfig).vicreg
    torch.manual_seed(0)
    px = torch.randn(256, 16) * 3
    py = torch.randn(256, 16) * 3
    lam = torch.rand(256)
    pz = lam[:, None] * px + (1 - lam[:, None]) * py
    loss, terms = vicreg_mixup_loss(px, py, pz, lam, weights)
    assert terms["invariance"] == pytest.approx(0.0, abs=1e-10)  # z's projection is exactly the mixture
    assert terms["variance"] == 0.0  # std 3 > 1: the hinge is inactive
    identical, _ = vicreg_mixup_loss(px, px, px, lam, weights)  # identical branches: no invariance term
    assert _["invariance"] == pytest.approx(0.0, abs=1e-10)
    # variance hinge: constant outputs have std ~0 -> term ~1; covariance of decorrelated dims ~0
    assert variance_term(torch.zeros(8, 4)) == pytest.approx(1 - math.sqrt(1e-4), abs=1e-6)
    x = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, 1.0], [-1.0, -1.0]])  # perfectly correlated dims
    cov = 4 / 3  # covariance of the two dims
    assert covariance_term(x) == pytest.approx(2 * cov**2 / 2)
    assert loss == pytest.approx(weights.covariance_weight * terms["covariance"])


def test_lars_and_cosine_schedule_wiring():
    cfg = load_config(CONF / "dgmix.original.yaml", DGMixConfig).pretrain
    model = torch.nn.Linear(4, 4)
    optimizer = build_optimizer(cfg.optimizer, model, **cfg.optimizer_params)
    assert isinstance(optimizer, Lars)
    group = optimizer.param_groups[0]
    assert (group["lr"], group["weight_decay"], group["momentum"], group["trust_coeff"]) == (0.8, 1e-4, 0.9, 0.001)
    total, warmup = 100, 10
    scheduler = build_scheduler("cosine", optimizer, total, warmup_steps=warmup, lr_min=cfg.lr_min)
    lrs = []
    for _ in range(total):
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs[0] < lrs[warmup - 2] < 0.8 + 1e-9  # warm-up rises
    assert max(lrs) == pytest.approx(0.8, rel=0.02)
    assert lrs[-1] == pytest.approx(cfg.lr_min, rel=0.05)  # cosine ends at the floor
    assert all(a >= b - 1e-12 for a, b in zip(lrs[warmup:], lrs[warmup + 1 :]))


def test_lars_leaves_biases_and_norms_unadapted_and_undecayed():
    cfg = load_config(CONF / "dgmix.intended.yaml", DGMixConfig).pretrain
    assert cfg.exclude_bias_and_norm
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    optimizer = build_optimizer(cfg.optimizer, model, cfg.exclude_bias_and_norm, **cfg.optimizer_params)
    decay = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    assert decay[id(model[0].weight)] == 1e-4
    assert {decay[id(p)] for p in (model[0].bias, model[1].weight, model[1].bias)} == {0.0}
    # Without weight decay timm's LARS does not adapt: a norm scale takes the plain step lr * grad
    # (an adapted step would be ~1000 times smaller: trust coefficient 0.001).
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    optimizer.step()
    assert torch.allclose(model[1].weight, torch.full((4,), 1 - 0.8))


def test_original_and_intended_configs_differ_only_by_the_named_bugs():
    original = load_config(CONF / "dgmix.original.yaml", DGMixConfig)
    intended = load_config(CONF / "dgmix.intended.yaml", DGMixConfig)
    for cfg in (original, intended):  # the original architecture and passes in both
        m = cfg.model
        assert (m.final_groups, m.tail_batchnorm, m.head_relu, m.init) == (320, False, False, "mobilenet_v2")
        assert cfg.vicreg.mixture_pass == "separate" and cfg.frontend.normalized
        assert not cfg.finetune.exclude_bias_and_norm and not cfg.finetune.scheduler_never_steps
    assert original.pretrain.scheduler_never_steps and original.pretrain.warmup_lr_init == 0.0
    assert not original.pretrain.exclude_bias_and_norm and original.embed.pool == "first"
    assert not intended.pretrain.scheduler_never_steps and intended.pretrain.exclude_bias_and_norm
    assert intended.embed.pool == "mean"
    for name in ("cpu", "tiny"):  # scaled-down intended (tiny: PyTorch's init, see its comment)
        cfg = load_config(CONF / f"dgmix.{name}.yaml", DGMixConfig)
        assert cfg.model == dataclasses.replace(intended.model, init=cfg.model.init) and cfg.vicreg == intended.vicreg
        assert not cfg.pretrain.scheduler_never_steps and cfg.pretrain.exclude_bias_and_norm


def test_never_stepping_schedule_stays_at_warmup_lr_init():
    cfg = load_config(CONF / "dgmix.original.yaml", DGMixConfig).pretrain
    optimizer, scheduler = build_stage_optimizer(torch.nn.Linear(4, 4), cfg, updates_per_epoch=3)
    assert isinstance(scheduler, NeverSteps)
    for _ in range(100 * 3):  # the whole stage
        assert optimizer.param_groups[0]["lr"] == 0.0  # timm set warmup_lr_init when the schedule was built
        scheduler.step()
    cfg.scheduler_never_steps = False
    optimizer, scheduler = build_stage_optimizer(torch.nn.Linear(4, 4), cfg, updates_per_epoch=3)
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.8 / 30)  # one of 10 x 3 warm-up updates


@pytest.mark.parametrize("name, weights_change", [("original", False), ("intended", True)])
def test_original_pretraining_leaves_the_weights_unchanged(tiny_dump, name, weights_change):
    cfg = load_config(CONF / f"dgmix.{name}.yaml", DGMixConfig)
    cfg.pretrain.batch_size, cfg.pretrain.num_workers = 8, 0
    torch.manual_seed(0)
    model = PretrainModel(make_extractor(cfg, section_head=False), Projector())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    task = VICRegMixupTask(cfg.pretrain, cfg.vicreg, Corpus(tiny_dump), "fan", "cpu")
    optimizer, scheduler = build_stage_optimizer(model, cfg.pretrain, task.steps_per_epoch())
    model.train()
    for step, batch in zip(range(2), task.batches(1)):  # the first update runs at warmup_lr_init in both
        loss, _ = task.loss(model, batch, step, 2)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
    after = model.state_dict()
    parameters = {k for k, _ in model.named_parameters()}
    assert parameters and all(before[k].shape == after[k].shape for k in parameters)
    unchanged = all(torch.equal(before[k], after[k]) for k in parameters)  # exactly, not approximately
    assert unchanged != weights_change
    # In training mode BatchNorm's running statistics follow the data even at lr 0.
    assert not torch.equal(before["extractor.features.0.1.running_mean"], after["extractor.features.0.1.running_mean"])


def test_original_extractor_tail_and_section_head():
    torch.manual_seed(0)  # the random inputs and weights below: the same every run
    cfg = load_config(CONF / "dgmix.original.yaml", DGMixConfig)
    model = make_extractor(cfg, 6).eval()
    depthwise, _, relu6, pointwise = model.collapse
    assert depthwise.kernel_size == (4, 2) and depthwise.groups == 320 and depthwise.bias is None
    assert isinstance(relu6, torch.nn.ReLU6)
    assert pointwise.kernel_size == (1, 1) and pointwise.groups == 320 and pointwise.bias is None
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.collapse)
    spec = model.spectrogram(torch.randn(2, 32000))
    assert model.collapse(model.features(spec)).shape == (2, 320, 1, 1)  # a 2 s input collapses to 1x1
    # The section head is affine: Linear 320 -> 128 -> 6 without an activation in between.
    assert not any(isinstance(m, (torch.nn.ReLU, torch.nn.ReLU6)) for m in model.section_head)
    first, last = model.section_head[0], model.section_head[2]
    e = torch.randn(5, 320)
    assert torch.allclose(model.section_head(e), last(first(e)), atol=1e-6)
    # float32 rounding of two sums of 320 products: an absolute tolerance, not torch's default 1e-8
    assert torch.allclose(
        model.section_head(-e) + model.section_head(e), 2 * model.section_head(torch.zeros(1, 320)), atol=1e-5
    )
    # The original's init: conv weights ~ N(0, 2 / (k_h k_w out_channels)); e.g. the 1x1 conv 160 -> 320.
    conv = model.features[-1][0]
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / 320), rel=0.05)


def test_first_version_extractor_keeps_its_layout():
    """Defaults are this project's first version, so configs saved before the switches existed still fit."""
    model = DGMixExtractor(section_head=True)
    keys = set(model.state_dict())
    assert {"collapse.1.running_mean", "collapse.3.weight", "section_head.2.weight"} <= keys
    assert model.collapse[3].groups == 8 and isinstance(model.section_head[1], torch.nn.ReLU)
    with pytest.raises(RuntimeError, match="does not fit"):  # a tail BatchNorm the model does not have
        load_extractor(DGMixExtractor(section_head=True, tail_batchnorm=False), model.state_dict())
    original = DGMixExtractor(320, section_head=True, tail_batchnorm=False, head_relu=False)
    with pytest.raises(RuntimeError, match="size mismatch"):  # groups 8 vs 320
        load_extractor(original, {k: v for k, v in model.state_dict().items() if not k.startswith("collapse.1.")})
    pretrained = {f"extractor.{k}": v for k, v in original.state_dict().items() if not k.startswith("section_head")}
    load_extractor(DGMixExtractor(320, section_head=True, tail_batchnorm=False, head_relu=False), pretrained)


def test_separate_mixture_pass_normalises_z_by_its_own_batch():
    torch.manual_seed(0)
    model = DGMixExtractor(320, tail_batchnorm=False).train()
    sx, sy, sz = (model.spectrogram(torch.randn(4, 32000)) for _ in range(3))
    assert len(mixture_passes(sx, sy, sz, separate=False)) == 1
    with torch.no_grad():
        xy, z = (model.embed_spectrogram(spec) for spec in mixture_passes(sx, sy, sz, separate=True))
        assert torch.allclose(z, model.embed_spectrogram(sz))
        joint = model.embed_spectrogram(torch.cat([sx, sy, sz]))
    assert not torch.allclose(joint[8:], z, atol=1e-3)  # BatchNorm saw another batch


def test_collapse_warning(caplog):
    assert embedding_spread(torch.ones(8, 3)) == 0.0 and relative_spread(torch.ones(8, 3)) == 0.0
    warn_if_collapsed(relative_spread(torch.ones(8, 3)), "here")
    assert "collapsed" in caplog.text
    caplog.clear()
    # Scale-free: tiny but spread-out embeddings (the original architecture's are ~1e-3 in size) are healthy.
    torch.manual_seed(0)
    small = torch.randn(64, 3) * 1e-4
    assert embedding_spread(small) < 1e-3 and relative_spread(small) == pytest.approx(relative_spread(small * 1e4))
    warn_if_collapsed(relative_spread(small), "here")
    assert caplog.text == ""
    assert relative_spread(torch.ones(64, 3) * 6 + small) < COLLAPSE_SPREAD  # saturated: every row alike


@pytest.mark.slow
def test_resumed_pretraining_matches_an_uninterrupted_one(tiny_dump, tmp_path, monkeypatch):
    from asd_tools.systems.base import run_phase
    from asd_tools.systems.dgmix.recipe import pretraining

    def run(expdir):
        cfg = load_config(CONF / "dgmix.tiny.yaml", DGMixConfig)
        run_phase(pretraining(cfg, Corpus(tiny_dump), "fan", Path(expdir), "cpu"), force=False)

    assert_resume_is_exact(
        run, tmp_path, monkeypatch, epochs=load_config(CONF / "dgmix.tiny.yaml", DGMixConfig).pretrain.epochs
    )


def test_every_dgmix_config_loads():
    for path in shipped_configs("dgmix.*.yaml"):
        cfg = load_config(path, DGMixConfig)
        assert cfg.detect.detectors == ["knn"] and cfg.detect.ks == [1]


@pytest.mark.e2e
def test_dgmix_job_on_tiny(tiny_root, tiny_dump, tmp_path):
    # the session's tiny data and dump (read only; stages 0-2 are System 1's, tested in test_recipe_oe)
    dirs = ["--data_root", str(tiny_root), "--dumpdir", str(tiny_dump), "--expdir", str(tmp_path / "exp")]
    out = run_recipe(
        "dgmix_job.sh",
        "--conf",
        "conf/tuning/dgmix.tiny.yaml",
        "--stage",
        "3",
        "--machines",
        "fan",  # DG-Mix trains on one machine type's clips alone (no negatives): one is enough here
        "--figures",
        "false",  # figures are tested in test_report
        *dirs,
    )
    assert out.count("official score") == 3
    result = tmp_path / "exp/only_fan/dgmix.tiny/checkpoint-3epochs"
    board = pd.read_csv(result / "score.csv")
    assert sorted(board.postprocess) == ["knn_k1_all_embed_mean", "knn_k1_valid_embed_mean"]
    md = (result / "score.md").read_text()
    assert "Official DCASE 2022 Task 2 score" in md and "the DG-Mix README's table" in md and "source_dev" in md
    teams = result / "teams/asd_tools/dgmix.tiny_checkpoint-3epochs"
    assert len(list(teams.glob("*.csv"))) == 6  # 3 sections x (anomaly score, decision result)
    assert (tmp_path / "exp/fan/dgmix.tiny/finetune/train.done").exists()
    # Clip embeddings at the end of pre-training and of fine-tuning are spread out, not collapsed to one
    # point. (Not after epoch 1: its 6 steps leave BatchNorm's running statistics near their initial values.)
    for path in sorted((tmp_path / "exp").glob("*/dgmix.tiny/checkpoint-[23]epochs/test.npz")):
        spread = relative_spread(Embeddings.load(path).features["embedding"])
        assert spread > COLLAPSE_SPREAD, path
