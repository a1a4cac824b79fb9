"""Domain weights, ensembles, the domain classifier and the external outlier pool."""

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.optimize import minimize
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from asd_tools.backend.embeddings import Embeddings
from asd_tools.config import load_config
from asd_tools.data.corpus import Corpus
from asd_tools.data.dump import dump_pool
from asd_tools.data.manifest import load_manifest
from asd_tools.data.synthetic import generate_outlier_pool
from asd_tools.ensembles.average import (
    DG_VARIANTS,
    DS_VARIANTS,
    EnsembleVariant,
    ScoreTable,
    average_scores,
    check_variant,
    choose_members,
    specialization,
    variant_settings,
    write_record,
)
from asd_tools.ensembles.domain_weight import (
    CV_FOLDS,
    ORIGINAL_GMM_FEATURES,
    WEIGHT_VARIANTS,
    cross_validated_blend,
    fit_blend,
    fold_strata,
    normalised_weights,
    original_predictors,
    target_probabilities,
)
from asd_tools.scoring.choice import DEGENERATE
from asd_tools.systems.serial_oe.config import SerialOEConfig
from asd_tools.systems.serial_oe.task import OutlierExposureTask
from tests.conftest import SCRIPTS, edited_config, private_copy, recipe_dirs, run_recipe


def test_weight_fitting_finds_the_informative_predictor():
    rng = np.random.default_rng(0)
    is_target = np.arange(400) % 4 == 0
    informative = is_target + rng.normal(0, 0.3, 400)
    predictors = np.stack([rng.normal(size=400), informative, rng.normal(size=400), -informative], axis=1)
    for settings in WEIGHT_VARIANTS.values():
        weights, _, cv_auc = cross_validated_blend(predictors, is_target, settings=settings)
        # The blend depends on w1 - w3 only (the anti-correlated copy): that is what must dominate.
        assert weights[1] - weights[3] > 0.7
        assert weights.sum() == pytest.approx(1.0) and (weights >= 0).all()
        assert cv_auc > roc_auc_score(is_target, predictors[:, 0]) + 0.3
        assert cv_auc == pytest.approx(roc_auc_score(is_target, informative), abs=0.03)
    result = target_probabilities(predictors, np.arange(400).astype(str), np.ones(400, bool), is_target, [0.5, 2])
    p_sharp, p_soft = result.probabilities["prob_div0.5"], result.probabilities["prob_div2"]
    assert ((p_sharp - 0.5).abs() >= (p_soft - 0.5).abs() - 1e-12).all()  # lower temperature: sharper
    assert normalised_weights([-1, 2]).tolist() == [0.0, 1.0]


def _informative_predictors(n=100, seed=0):
    rng = np.random.default_rng(seed)
    is_target = np.arange(n) % 2 == 0
    predictors = np.stack([is_target + rng.normal(0, s, n) for s in (0.8, 1.0, 1.5, 3.0)], axis=1)
    return predictors, is_target


def test_original_weights_are_the_mean_of_the_folds_fits_from_20_seeded_random_starts(monkeypatch):
    import asd_tools.ensembles.domain_weight as dw

    predictors, is_target = _informative_predictors()
    starts = []

    def counting_minimize(fun, x0, **kwargs):
        starts.append(np.array(x0))
        assert kwargs["bounds"] == [(0.0, 1.0)] * 4  # scipy's bounds, as the original
        return minimize(fun, x0, **kwargs)

    monkeypatch.setattr(dw, "minimize", counting_minimize)
    original = WEIGHT_VARIANTS["original"]
    assert (original.weights, original.init, original.restarts, original.seed) == ("cv_average", "random", 20, 42)
    weights, fold_weights, _ = cross_validated_blend(predictors, is_target, settings=original)
    assert len(starts) == CV_FOLDS * 20  # 20 restarts per fold and no refit on all clips
    draws = np.random.RandomState(42).uniform(size=(CV_FOLDS * 20, 4))  # the original's np.random after seed 42
    assert np.allclose(np.stack(starts), draws)
    assert fold_weights.shape == (CV_FOLDS, 4)
    assert np.allclose(weights, fold_weights.mean(0))
    # Each fold's weights: the best of its 20 runs, fitted on the fold's training part only.
    folds = StratifiedKFold(CV_FOLDS, shuffle=True, random_state=42).split(predictors, is_target)
    for k, (train, _) in enumerate(folds):
        refit = fit_blend(predictors[train], is_target[train], draws[20 * k : 20 * (k + 1)])
        assert np.allclose(refit, fold_weights[k])

    starts.clear()
    monkeypatch.setattr(dw, "minimize", lambda fun, x0, **kw: starts.append(x0) or minimize(fun, x0, **kw))
    weights, fold_weights, _ = cross_validated_blend(predictors, is_target, settings=WEIGHT_VARIANTS["refit"])
    assert len(starts) == (CV_FOLDS + 1) * 5  # centre + 4 corners, per fold and once more on all clips
    assert not np.allclose(weights, fold_weights.mean(0))


def test_original_folds_are_stratified_by_section_domain_and_state():
    is_target = np.arange(120) % 2 == 0
    strata = np.array([f"{i % 3}/{i % 2}/{(i // 2) % 2}" for i in range(120)])  # 12 strata of 10
    assert (fold_strata(is_target, strata) == strata).all()
    assert (fold_strata(is_target, strata[:24]) == is_target).all()  # strata of 2 < 5 folds: the domain


def test_target_probability_is_a_sigmoid_at_temperature_015_of_the_standardised_blend():
    predictors, is_target = _informative_predictors()
    result = target_probabilities(predictors, np.arange(100).astype(str), np.ones(100, bool), is_target, [0.15, 1])
    blend = predictors @ result.weights  # the original's raw predictors (not standardised first)
    z = (blend - blend.mean()) / blend.std()
    assert np.allclose(result.probabilities["blend"], z)
    assert np.allclose(result.probabilities["prob_div0.15"], 1 / (1 + np.exp(-z / 0.15)))
    assert DS_VARIANTS["original"].div == 0.15 and DS_VARIANTS["per_machine"].div == 1.0


def test_original_domain_gmm_is_fitted_per_section_on_the_raw_window_features():
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(0)

    def embeddings(n_clips, shift):
        windows = np.repeat(np.arange(n_clips), 3)
        features = {
            "machine_logit": rng.normal(size=(len(windows), 1)),
            "norm": rng.normal(size=(len(windows), 1)),
            "domain_logit": rng.normal(size=(len(windows), 1)),
            "section_logits": rng.normal(size=(len(windows), 6)),
            "embedding": rng.normal(shift, 1, size=(len(windows), 8)),
        }
        return Embeddings(np.array([f"c{shift}_{i}" for i in range(n_clips)]), windows, features)

    inlier, test = embeddings(40, 0), embeddings(6, 1)
    inlier_sections, test_sections = np.arange(40) % 2, np.arange(6) % 2
    is_source = np.arange(40) < 30
    predictors = original_predictors(inlier, test, inlier_sections, is_source, test_sections, seed=42)
    x_in, x_test = inlier.stack(ORIGINAL_GMM_FEATURES), test.stack(ORIGINAL_GMM_FEATURES)
    assert x_in.shape[1] == 1 + 1 + 1 + 6 + 8
    fit = is_source[inlier.window_clip] & (inlier_sections[inlier.window_clip] == 1)
    gmm = GaussianMixture(1, random_state=42).fit(x_in[fit])
    clip = 3  # section 1
    expected = np.tanh(-gmm.score_samples(x_test[test.window_clip == clip])).mean()
    assert predictors[clip, 1] == pytest.approx(expected)
    assert predictors[clip, 0] == pytest.approx(test.features["domain_logit"][test.window_clip == clip].mean())


def _toy_tables():
    """Three score tables over fan and valve; the rankings differ by metric and machine type."""
    rows = {
        "A": [("a0", 0.99), ("a1", 0.98), ("a2", 0.97), ("a3", 0.96), ("a4", 0.95), ("a5", 0.94), ("a6", 0.93)],
        "B": [("b0", 0.945), ("b1", 0.5)],
        "C": [("c0", 0.935)],
    }
    tables = []
    for name, pairs in rows.items():
        board = pd.DataFrame(pairs, columns=["postprocess", "dev_hauc_mixed"])
        board["dev_hauc_domain_source"] = board["dev_hauc_mixed"]
        board["dev_official"] = 1 - board["dev_hauc_mixed"]  # the opposite order
        board["dev_fan_official"] = board["dev_official"]
        board["dev_valve_official"] = board["dev_hauc_mixed"]
        board[DEGENERATE] = ""  # as score.csv has it: no post-process is constant on a section
        tables.append(ScoreTable(name, board, {"fan": "fan.csv", "valve": "valve.csv"}))
    return tables


def _names(chosen):
    return [column for _, column in chosen]


def test_original_generalisation_takes_4_per_table_then_one_global_top_3_for_every_machine():
    original = DG_VARIANTS["original"]
    assert (original.selection, original.rank_by, original.per_table, original.top) == ("global", "hauc_mixed", 4, 3)
    tables = _toy_tables()
    members = choose_members(tables, ["fan", "valve"], "hauc_mixed", 4, 3, "global")
    assert _names(members["fan"]) == _names(members["valve"]) == ["a0", "a1", "a2"]
    # Each table gives at most 4: A's fifth best (0.95) is passed over for B's best (0.945).
    wide = choose_members(tables, ["fan", "valve"], "hauc_mixed", 4, 6, "global")["fan"]
    assert _names(wide) == ["a0", "a1", "a2", "a3", "b0", "c0"]
    # This project's first version: per machine type, by its own official score.
    per_machine = choose_members(tables, ["fan", "valve"], "official", 5, 3, "per_machine")
    assert _names(per_machine["fan"]) == ["b1", "a6", "c0"]
    assert _names(per_machine["valve"]) == ["a0", "a1", "a2"]
    assert DG_VARIANTS["per_machine"] == EnsembleVariant("per_machine", "official", 5, 3, "reference")


def test_original_specialisation_takes_6_per_table_then_a_global_top_20_by_per_domain_hauc():
    original = DS_VARIANTS["original"]
    assert (original.selection, original.per_table, original.top) == ("global", 6, 20)
    assert original.rank_by.format(domain="source") == "hauc_domain_source"
    members = choose_members(_toy_tables(), ["fan"], "hauc_domain_source", 6, 20, "global")["fan"]
    assert _names(members) == ["a0", "a1", "a2", "a3", "a4", "b0", "a5", "c0", "b1"]  # not a6: A's seventh


def test_original_tables_are_experiments_without_their_best_loss_checkpoint():
    """local/scoring.sh concatenated the interval checkpoints' tables into exp/all/<tag>/score*.csv
    (the one the ensembles glob), its list of them reset after the best-loss one was put in."""
    assert DG_VARIANTS["original"].tables == DS_VARIANTS["original"].tables == "experiment"

    def table(checkpoint, values):
        board = pd.DataFrame(
            {"postprocess": [f"{checkpoint}:{i}" for i in range(len(values))], "dev_hauc_mixed": values, DEGENERATE: ""}
        )
        return ScoreTable(f"x/{checkpoint}", board, {"fan": "f.csv"}, "x", checkpoint)

    tables = [
        table("checkpoint-best", [1.0]),
        table("checkpoint-10epochs", [0.9, 0.5]),
        table("checkpoint-20epochs", [0.8]),
    ]
    tables.append(
        ScoreTable("y/checkpoint-10epochs", tables[1].board.assign(dev_hauc_mixed=0.7), {"fan": "f.csv"}, "y")
    )
    chosen = choose_members(tables, ["fan"], "hauc_mixed", 2, 3, "global", "experiment")["fan"]
    assert _names(chosen) == ["checkpoint-10epochs:0", "checkpoint-20epochs:0", "checkpoint-10epochs:0"]
    assert chosen[2][0].tag == "y"  # x gave its 2 best over both interval checkpoints; y its own
    per_checkpoint = choose_members(tables, ["fan"], "hauc_mixed", 2, 3, "global", "checkpoint")["fan"]
    assert _names(per_checkpoint) == ["checkpoint-best:0", "checkpoint-10epochs:0", "checkpoint-20epochs:0"]


def _toy_section_scores(tmp_path):
    """One member over two sections: test clips and normal reference clips."""
    clips = [("t0", 0, "test", 1.0), ("t1", 0, "test", 3.0), ("t2", 1, "test", 10.0), ("t3", 1, "test", 20.0)]
    clips += [("t4", 1, "test", 30.0), ("r0", 0, "reference", 2.0), ("r1", 1, "reference", 0.0)]
    manifest = pd.DataFrame(clips, columns=["clip_id", "section", "subset", "pp"]).set_index("clip_id", drop=False)
    manifest["domain"] = ["source", "target", "source", "target", "source", "source", "target"]
    path = tmp_path / "fan.csv"
    manifest[["clip_id", "subset", "pp"]].to_csv(path, index=False)
    return manifest, ScoreTable("t/ckpt", pd.DataFrame({"postprocess": ["pp"], DEGENERATE: [""]}), {"fan": str(path)})


def test_original_members_are_z_scored_per_section_over_the_test_clips(tmp_path):
    manifest, table = _toy_section_scores(tmp_path)
    scores = average_scores([(table, "pp")], "fan", manifest, "test").set_index("clip_id")["ensemble"]
    assert scores[["t0", "t1"]].tolist() == pytest.approx([-1.0, 1.0])  # section 0: mean 2, std 1
    section1 = np.array([10.0, 20.0, 30.0])
    assert scores[["t2", "t3", "t4"]].to_numpy() == pytest.approx((section1 - 20) / section1.std())
    assert scores["r0"] == pytest.approx(0.0) and scores["r1"] == pytest.approx(-20 / section1.std())
    stored = average_scores([(table, "pp")], "fan", manifest, "reference").set_index("clip_id")["ensemble"]
    assert stored["t1"] == 3.0  # as the detector stage stored it
    # The specialisation's averages: over the test clips too; with w = 0 / 1 the blend is one of them.
    prob = pd.Series([0.0, 0.0, 1.0, 1.0, 1.0], index=["t0", "t1", "t2", "t3", "t4"])
    members = {"source": [(table, "pp")], "target": [(table, "pp")]}
    blended, _ = specialization([table], "fan", manifest, prob, DS_VARIANTS["original"], members)
    assert blended.set_index("clip_id")["ensemble"]["t3"] == pytest.approx(0.0)
    assert DG_VARIANTS["original"].zscore == DS_VARIANTS["original"].zscore == "test"


def test_a_variant_never_replaces_another_variants_output(tmp_path):
    settings = variant_settings("original", DG_VARIANTS["original"])
    check_variant(tmp_path, settings)  # nothing there yet
    write_record(tmp_path, settings)
    check_variant(tmp_path, dict(settings))  # a re-run with the same settings
    other = variant_settings("original", replace(DG_VARIANTS["original"], zscore="reference"))
    with pytest.raises(FileExistsError, match="--name"):
        check_variant(tmp_path, other)
    check_variant(tmp_path, other, overwrite=True)


def test_outlier_pool_batches_and_loss(tiny_root, tiny_dump, tmp_path):
    generate_outlier_pool(tmp_path / "pool", count=6, seconds=2.5)
    dump_pool(tmp_path / "pool", tiny_dump)
    pool = load_manifest(tiny_dump, ["outlier_pool"])
    assert len(pool) == 6 and set(pool.machine) == {"outlier"}
    changes = dict(train__outlier_pool="outlier_pool", train__n_pos=6, train__n_neg=6)
    cfg = load_config(edited_config(tmp_path / "pool.yaml", "asd_model.tiny.yaml", **changes), SerialOEConfig)
    task = OutlierExposureTask(cfg.train, Corpus(tiny_dump), "fan", ["fan", "valve"], "cpu")
    plan = task.sampler.epoch_plan(1)
    outliers = set(task.sampler.outlier_positions.tolist())
    for batch in plan:
        positions = [p for p, _ in batch]
        assert len(positions) == 16
        assert all(p in outliers for p in positions[12:])  # the rest of the batch: pool clips
    batch = next(iter(task.batches(1)))
    machine, section, _ = task.targets(batch[0])
    assert machine[12:].sum() == 0 and section[12:].sum() == 0
    from asd_tools.systems.serial_oe.recipe import make_model

    loss, scalars = task.loss(make_model(cfg, task.sections), batch, 0, 10)
    assert torch.isfinite(loss) and scalars["machine_loss"] > 0


def test_domain_classifier_and_both_ensembles_on_tiny(tiny_job, tmp_path):
    tmp_path = private_copy(tiny_job, tmp_path)  # System 1's tiny run: one of the ensembles' members
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
        "--figures",
        "false",  # the domain classifier's own figures: those of any System 1 run (test_report)
        *machines,
        *dirs,
    )
    assert "official score" in out
    train_log = (tmp_path / "exp/fan/asd_model.domain_classifier_tiny/train.log").read_text()
    assert "target_loss" in train_log and "source_domain_loss" in train_log
    emb = np.load(tmp_path / "exp/fan/asd_model.domain_classifier_tiny/checkpoint-best/test.npz")
    assert "feature_domain_logit" in emb.files

    common = ["--expdir", str(tmp_path / "exp"), "--dumpdir", str(tmp_path / "dump"), *machines]
    dc = ["--tag", "asd_model.domain_classifier_tiny", "--checkpoints", "checkpoint-best", "checkpoint-2epochs"]
    out = run_recipe("local/get_domain_classifier_weight.py", *common, *dc)  # the original's variant
    dc_dir = tmp_path / "exp/only_fan+valve/asd_model.domain_classifier_tiny"
    weight_dir = dc_dir / "domain_weight"
    prob = pd.read_csv(weight_dir / "fan_target_prob.csv")
    assert prob["prob_div0.15"].between(0, 1).all() and len(prob) == 48
    assert (weight_dir / "domain_weights.png").stat().st_size > 1000
    weights = pd.read_csv(weight_dir / "weights.csv")
    assert np.allclose(weights[["w0", "w1", "w2", "w3"]].sum(axis=1), 1.0) and "std3" in weights
    record = json.loads((weight_dir / "variant.json").read_text())["settings"]
    assert (record["variant"], record["weights"], record["restarts"]) == ("original", "cv_average", 20)
    run_recipe("local/get_domain_classifier_weight.py", *common, *dc, "--variant", "refit")
    assert json.loads((dc_dir / "domain_weight_refit/variant.json").read_text())["settings"]["weights"] == "refit"

    results = tmp_path / "exp/only_fan+valve"
    for variant, suffix in (("original", ""), ("per_machine", "_per_machine")):
        name = f"ensemble_dg{suffix}.only_fan+valve"
        out = run_recipe("local/domain_generalization_ave.py", *common, "--variant", variant)
        assert f"{name}: official score" in out and f"variant {variant}" in out
        dg = results / name / "average"
        assert "Official DCASE 2022 Task 2 score" in (dg / "score.md").read_text()
        assert len(list((dg / f"teams/asd_tools/{name}").glob("*.csv"))) == 12
        assert (dg / "plots/hist_fan.png").exists() and "plots/roc_valve.png" in (dg / "report.md").read_text()
        record = json.loads((dg / "variant.json").read_text())
        assert record["settings"]["variant"] == variant
        members = record["members"]
        assert "asd_model" in members["fan"][0]
        if variant == "original":  # one member list for every machine type, z-scored over test clips
            assert members["fan"] == members["valve"] and len(members["fan"]) == 3
            assert record["settings"]["zscore"] == "test"
        fan = json.loads((tmp_path / f"exp/fan/{name}/average/members.json").read_text())
        assert fan["members"] == members["fan"] and fan["settings"]["variant"] == variant

    # Another setting under the same name: refused, never silently replaced.
    result = subprocess.run(
        [sys.executable, "local/domain_generalization_ave.py", *common, "--zscore", "reference"],
        cwd=SCRIPTS,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "--name" in result.stderr

    for variant, suffix in (("original", ""), ("per_machine", "_per_machine")):
        name = f"ensemble_ds{suffix}.only_fan+valve"
        out = run_recipe(
            "local/domain_specialization_ave.py",
            *common,
            "--domain_classifier_tag",
            "asd_model.domain_classifier_tiny",
            "--variant",
            variant,
        )
        assert f"{name}: official score" in out
        record = json.loads((results / name / "average/variant.json").read_text())
        settings = record["settings"]
        assert settings["variant"] == variant and (results / name / "average/score.csv").exists()
        assert settings["div"] == (0.15 if variant == "original" else 1.0)
        assert settings["weights"]["variant"] == ("original" if variant == "original" else "refit")
        if variant == "original":
            assert record["members"]["fan"] == record["members"]["valve"]


def test_missing_inputs_name_the_command_that_makes_them(tiny_dump, tmp_path):
    def ensemble(dumpdir):
        command = ["local/domain_generalization_ave.py", "--expdir", str(tmp_path), "--dumpdir", str(dumpdir)]
        return subprocess.run(
            [sys.executable, *command, "--machines", "fan"], cwd=SCRIPTS, capture_output=True, text=True
        )

    no_dump = ensemble(tmp_path)  # the data set (and so the machine set's folder) comes from the dump's records
    assert no_dump.returncode == 1 and "holds no dumped data set: run the dump stage" in no_dump.stderr
    no_scores = ensemble(tiny_dump)  # only read
    assert no_scores.returncode == 1 and "./job.sh" in no_scores.stderr


def test_specialization_aligns_members_with_different_reference_clips(tmp_path):
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
                DEGENERATE: [""],
            }
        )
        tables.append(ScoreTable(name, board, {"fan": str(path)}))
    prob = pd.Series([0.0, 1.0, 0.0, 1.0], index=["t0", "t1", "t2", "t3"])
    variant = replace(DS_VARIANTS["per_machine"], per_table=1, top=1)
    scores, members = specialization(tables, "fan", manifest, prob, variant)
    assert sorted(scores.loc[scores.subset == "reference", "clip_id"]) == ["r0", "r2"]  # rows both members have
    assert len(members) == 2 and np.isfinite(scores["ensemble"]).all()


def test_an_ensemble_record_of_an_older_format_is_named_and_replaced_only_with_overwrite(tmp_path):
    settings = variant_settings("original", DG_VARIANTS["original"])
    (tmp_path / "variant.json").write_text(json.dumps({"settings": settings}))  # before records carried a format
    with pytest.raises(ValueError, match=rf"{tmp_path / 'variant.json'}: written by an older asd_tools \(format None"):
        check_variant(tmp_path, settings)
    check_variant(tmp_path, settings, overwrite=True)
    write_record(tmp_path, settings)
    check_variant(tmp_path, settings)  # today's record round-trips
