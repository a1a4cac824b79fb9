"""Domain weights, ensembles, the domain classifier and the external outlier pool."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from asd_tools.config import load_config
from asd_tools.data.dump import dump_pool
from asd_tools.data.manifest import load_manifest
from asd_tools.data.synthetic import generate_outlier_pool
from asd_tools.domain_weight import cross_validated_blend, normalised_weights, target_probabilities
from asd_tools.serial_oe.config import SerialOEConfig
from asd_tools.serial_oe.task import OutlierExposureTask
from tests.test_recipe_baseline import SCRIPTS, recipe_dirs, run_recipe
from tests.test_training import CONF


def test_weight_fitting_finds_the_informative_predictor():
    rng = np.random.default_rng(0)
    is_target = np.arange(400) % 4 == 0
    informative = is_target + rng.normal(0, 0.3, 400)
    predictors = np.stack([rng.normal(size=400), informative, rng.normal(size=400), -informative], axis=1)
    weights, cv_auc = cross_validated_blend(predictors, is_target)
    assert weights[1] > 0.7 and weights[3] < 0.05  # the anti-correlated copy gets no weight
    assert weights.sum() == pytest.approx(1.0) and (weights >= 0).all()
    assert cv_auc > roc_auc_score(is_target, predictors[:, 0]) + 0.3
    assert cv_auc == pytest.approx(roc_auc_score(is_target, informative), abs=0.03)
    result = target_probabilities(predictors, np.arange(400).astype(str), np.ones(400, bool), is_target, [0.5, 2])
    p_sharp, p_soft = result.probabilities["prob_div0.5"], result.probabilities["prob_div2"]
    assert ((p_sharp - 0.5).abs() >= (p_soft - 0.5).abs() - 1e-12).all()  # lower temperature: sharper
    assert normalised_weights([-1, 2]).tolist() == [0.0, 1.0]


def test_outlier_pool_batches_and_loss(tiny_root, tiny_dump, tmp_path):
    generate_outlier_pool(tmp_path / "pool", count=6, seconds=2.5)
    dump_pool(tmp_path / "pool", tiny_dump)
    pool = load_manifest(tiny_dump, ["outlier_pool"])
    assert len(pool) == 6 and set(pool.machine) == {"outlier"}
    text = (CONF / "asd_model.tiny.yaml").read_text()
    text = text.replace("outlier_pool: null", "outlier_pool: outlier_pool").replace("n_pos: 0 ", "n_pos: 6 ")
    text = text.replace("n_neg: 0 ", "n_neg: 6 ")
    path = tmp_path / "pool.yaml"
    path.write_text(text)
    cfg = load_config(path, SerialOEConfig)
    task = OutlierExposureTask(cfg.train, tiny_dump, "fan", ["fan", "valve"], "cpu")
    plan = task.epoch_plan(1)
    outliers = set(task.outlier_positions.tolist())
    for batch in plan:
        positions = [p for p, _ in batch]
        assert len(positions) == 16
        assert all(p in outliers for p in positions[12:])  # the rest of the batch: pool clips
    batch = next(iter(task.batches(1)))
    machine, section, _ = task.targets(batch[0])
    assert machine[12:].sum() == 0 and section[12:].sum() == 0
    from asd_tools.serial_oe.recipe import make_model

    loss, scalars = task.loss(make_model(cfg), batch, 0, 10)
    assert torch.isfinite(loss) and scalars["machine_loss"] > 0


def test_domain_classifier_and_both_ensembles_on_tiny(tiny_job):
    tmp_path, _ = tiny_job  # System 1's tiny run: one of the ensembles' members
    dirs = recipe_dirs(tmp_path)
    machines = ["--machines", "fan valve"]
    out = run_recipe(
        "domain_classifier_job.sh",
        "--no",
        "domain_classifier_tiny",
        "--synthetic_size",
        "tiny",
        "--start_stage",
        "3",
        *machines,
        *dirs,
    )
    assert "official score" in out
    train_log = (tmp_path / "exp/fan/asd_model.domain_classifier_tiny/train.log").read_text()
    assert "target_loss" in train_log and "source_domain_loss" in train_log
    emb = np.load(tmp_path / "exp/fan/asd_model.domain_classifier_tiny/checkpoint-best/test.npz")
    assert "feature_domain_logit" in emb.files

    common = ["--expdir", str(tmp_path / "exp"), "--dumpdir", str(tmp_path / "dump"), *machines]
    out = run_recipe(
        "local/get_domain_classifier_weight.py",
        *common,
        "--tag",
        "asd_model.domain_classifier_tiny",
        "--checkpoints",
        "checkpoint-best",
        "checkpoint-2epochs",
    )
    weight_dir = tmp_path / "exp/only_fan+valve/asd_model.domain_classifier_tiny/domain_weight"
    prob = pd.read_csv(weight_dir / "fan_target_prob.csv")
    assert prob["prob_div1"].between(0, 1).all() and len(prob) == 48
    assert (weight_dir / "domain_weights.png").stat().st_size > 1000
    weights = pd.read_csv(weight_dir / "weights.csv")
    assert np.allclose(weights[["w0", "w1", "w2", "w3"]].sum(axis=1), 1.0)

    out = run_recipe("local/domain_generalization_ave.py", *common)
    assert "ensemble_dg.only_fan+valve: official score" in out
    dg = tmp_path / "exp/only_fan+valve/ensemble_dg.only_fan+valve/average"
    assert "Official DCASE 2022 score" in (dg / "score.md").read_text()
    assert len(list((dg / "teams/asd_tools/ensemble_dg.only_fan+valve").glob("*.csv"))) == 12
    assert (dg / "score_histograms.png").exists()
    members = (tmp_path / "exp/fan/ensemble_dg.only_fan+valve/average/members.json").read_text()
    assert "asd_model" in members

    out = run_recipe(
        "local/domain_specialization_ave.py",
        *common,
        "--domain_classifier_tag",
        "asd_model.domain_classifier_tiny",
        "--top",
        "4",
    )
    assert "ensemble_ds.only_fan+valve: official score" in out
    assert (tmp_path / "exp/only_fan+valve/ensemble_ds.only_fan+valve/average/score.csv").exists()


def test_missing_inputs_name_the_command_that_makes_them(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "local/domain_generalization_ave.py",
            "--expdir",
            str(tmp_path),
            "--dumpdir",
            str(tmp_path),
            "--machines",
            "fan",
        ],
        cwd=SCRIPTS,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "./job.sh" in result.stderr


def test_specialization_aligns_members_with_different_reference_clips(tmp_path):
    from asd_tools.ensemble import ScoreTable, specialization

    manifest = pd.DataFrame(
        {
            "clip_id": ["t0", "t1", "t2", "t3", "r0", "r1", "r2"],
            "section": 0,
            "domain": ["source", "target", "source", "target", "source", "source", "target"],
        }
    )
    manifest = manifest.set_index("clip_id", drop=False)
    tables = []
    for name, refs in (("a", ["r0", "r1", "r2"]), ("b", ["r0", "r2"])):
        rows = [("t0", "test", 0.1), ("t1", "test", 0.9), ("t2", "test", 0.2), ("t3", "test", 0.8)]
        rows += [(r, "reference", 0.1 * i) for i, r in enumerate(refs)]
        path = tmp_path / f"{name}.csv"
        pd.DataFrame(rows, columns=["clip_id", "subset", "pp"]).to_csv(path, index=False)
        board = pd.DataFrame(
            {
                "postprocess": ["pp"],
                "dev_fan_auc_source": [0.6 if name == "a" else 0.5],
                "dev_fan_auc_target": [0.5 if name == "a" else 0.6],
            }
        )
        tables.append(ScoreTable(name, board, {"fan": str(path)}))
    prob = pd.Series([0.0, 1.0, 0.0, 1.0], index=["t0", "t1", "t2", "t3"])
    scores, members = specialization(tables, "fan", manifest, prob, per_table=1, top=1)
    assert sorted(scores.loc[scores.subset == "reference", "clip_id"]) == ["r0", "r2"]  # rows both members have
    assert len(members) == 2 and np.isfinite(scores["ensemble"]).all()
