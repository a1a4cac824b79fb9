"""DG-Mix: model shapes, the VICReg-with-mixup loss, LARS and schedule wiring, a tiny recipe run."""

import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from timm.optim import Lars

from asd_tools.config import load_config
from asd_tools.dgmix.config import DGMixConfig
from asd_tools.dgmix.tasks import (
    COLLAPSE_SPREAD,
    covariance_term,
    embedding_spread,
    relative_spread,
    variance_term,
    vicreg_mixup_loss,
    warn_if_collapsed,
)
from asd_tools.embeddings import Embeddings
from asd_tools.models.dgmix import DGMixExtractor, Projector
from asd_tools.training.optim import build_optimizer, build_scheduler
from tests.test_recipe_baseline import recipe_dirs, run_recipe
from tests.test_training import assert_resume_is_exact

CONF = Path(__file__).resolve().parents[1] / "scripts" / "conf" / "tuning"


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
    cfg = load_config(CONF / "dgmix.original.yaml", DGMixConfig).pretrain
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


def test_resumed_pretraining_matches_an_uninterrupted_one(tiny_dump, tmp_path, monkeypatch):
    from asd_tools.dgmix.recipe import pretrain

    def run(expdir):
        pretrain(CONF / "dgmix.tiny.yaml", tiny_dump, "fan", expdir, "cpu")

    assert_resume_is_exact(
        run, tmp_path, monkeypatch, epochs=load_config(CONF / "dgmix.tiny.yaml", DGMixConfig).pretrain.epochs
    )


def test_every_dgmix_config_loads():
    for path in sorted(CONF.glob("dgmix.*.yaml")):
        cfg = load_config(path, DGMixConfig)
        assert cfg.detect.detectors == ["knn"] and cfg.detect.ks == [1]


def test_dgmix_job_on_tiny(tmp_path):
    dirs = recipe_dirs(tmp_path)
    out = run_recipe(
        "dgmix_job.sh",
        "--conf",
        "conf/tuning/dgmix.tiny.yaml",
        "--synthetic_size",
        "tiny",
        "--machines",
        "fan valve",
        *dirs,
    )
    assert out.count("official score") == 3
    result = tmp_path / "exp/only_fan+valve/dgmix.tiny/checkpoint-3epochs"
    board = pd.read_csv(result / "score.csv")
    assert sorted(board.postprocess) == ["knn_k1_all_embed_max", "knn_k1_valid_embed_max"]
    md = (result / "score.md").read_text()
    assert "Official DCASE 2022 score" in md and "the DG-Mix README's table" in md and "source_dev" in md
    assert len(list((result / "teams/asd_tools/dgmix.tiny_checkpoint-3epochs").glob("*.csv"))) == 12
    assert (tmp_path / "exp/fan/dgmix.tiny/finetune/train.done").exists()
    # Clip embeddings at the end of pre-training and of fine-tuning are spread out, not collapsed to one
    # point. (Not after epoch 1: its 6 steps leave BatchNorm's running statistics near their initial values.)
    for path in sorted((tmp_path / "exp").glob("*/dgmix.tiny/checkpoint-[23]epochs/test.npz")):
        spread = relative_spread(Embeddings.load(path).features["embedding"])
        assert spread > COLLAPSE_SPREAD, path
