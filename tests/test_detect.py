"""Window poolings (both orientations, and the original recipe's names) and detector-stage defaults."""

import numpy as np
import pandas as pd
import pytest

from asd_tools.backend.detect import DetectConfig, run_detectors
from asd_tools.backend.detectors import ORIGINAL_POOLINGS, POOLINGS, pool_windows
from asd_tools.backend.embeddings import Embeddings
from asd_tools.config import ConfigError, from_dict, load_config
from asd_tools.systems.serial_oe.config import SerialOEConfig
from tests.conftest import CONF, shipped_configs

WINDOWS = np.array([1.0, 5.0, 2.0, 9.0])  # one clip's anomaly-oriented window scores
ODD_WINDOWS = np.array([1.0, 5.0, 2.0, 9.0, 4.0])
# exact clip scores of every registered pooling on WINDOWS and ODD_WINDOWS (half = ceil(n / 2))
EXPECTED = {
    "min_anomaly": (1.0, 1.0),
    "lower_mean_anomaly": ((1 + 2) / 2, (1 + 2 + 4) / 3),
    "mean": (17 / 4, 21 / 5),
    "median": (3.5, 4.0),
    "max_anomaly": (9.0, 9.0),
    "upper_mean_anomaly": ((5 + 9) / 2, (4 + 5 + 9) / 3),
}
SYSTEM1_REPRODUCTIONS = [
    f"asd_model.{n}.yaml" for n in ("000", "001", "002", "003", "100", "101", "102", "103", "200", "201", "202", "203")
] + ["asd_model.domain_classifier.yaml", "asd_model.audioset_v000.yaml"]


def _pool(values, how):
    return pool_windows(np.asarray(values), np.zeros(len(values), dtype=int), 1, how)[0]


def _original_pool(normality, name):
    """The original recipe: pool normality-oriented window scores (infer.py), negate at scoring (scoring.py)."""
    s = np.sort(normality)
    pooled = {"max": s[-1], "mean": s.mean(), "median": np.median(s), "upper_mean": s[len(s) // 2 :].mean()}[name]
    return -pooled


def test_every_pooling_has_a_pinned_value():
    assert set(EXPECTED) == set(POOLINGS)


@pytest.mark.parametrize("how", sorted(EXPECTED))
def test_pooling_values_on_known_windows(how):
    even, odd = EXPECTED[how]
    assert _pool(WINDOWS, how) == pytest.approx(even)
    assert _pool(ODD_WINDOWS, how) == pytest.approx(odd)


@pytest.mark.parametrize("how", sorted(EXPECTED))
def test_poolings_in_the_other_orientation(how):
    """Negating the window scores (normality orientation) swaps the two ends, and negates the clip score."""
    swapped = {"min_anomaly": "max_anomaly", "lower_mean_anomaly": "upper_mean_anomaly"}
    swapped.update({v: k for k, v in swapped.items()})
    for windows in (WINDOWS, ODD_WINDOWS):
        assert _pool(-windows, how) == pytest.approx(-_pool(windows, swapped.get(how, how)))


@pytest.mark.parametrize("original", sorted(ORIGINAL_POOLINGS))
def test_the_originals_poolings_are_ours_under_their_mapped_names(original):
    for windows in (WINDOWS, ODD_WINDOWS):
        normality = -windows  # what the original's detectors returned
        assert _pool(windows, ORIGINAL_POOLINGS[original]) == pytest.approx(_original_pool(normality, original))
    assert ORIGINAL_POOLINGS["max"] == "min_anomaly"  # the original's max keeps the most normal window
    assert _pool(WINDOWS, "max_anomaly") == 9.0 and _original_pool(-WINDOWS, "max") == 1.0


def test_pooling_groups_windows_by_clip():
    scores = np.array([1.0, 9.0, 5.0, 2.0, 7.0])
    clip = np.array([1, 0, 1, 0, 1])  # clip 0: [9, 2]; clip 1: [1, 5, 7]
    assert pool_windows(scores, clip, 2, "max_anomaly").tolist() == [9.0, 7.0]
    assert pool_windows(scores, clip, 2, "min_anomaly").tolist() == [2.0, 1.0]


@pytest.mark.parametrize("old", ["max", "upper_mean"])
def test_the_originals_ambiguous_names_are_errors_that_point_to_ours(old):
    with pytest.raises(ConfigError, match=f"the original recipe's '{old}' is '{ORIGINAL_POOLINGS[old]}'"):
        from_dict(DetectConfig, {"poolings": [old]})


def test_schema_defaults_follow_the_original():
    cfg = DetectConfig()
    assert cfg.standardize is False
    assert set(ORIGINAL_POOLINGS.values()) <= set(cfg.poolings)
    assert {"max_anomaly", "upper_mean_anomaly"} <= set(cfg.poolings)


@pytest.mark.parametrize("name", SYSTEM1_REPRODUCTIONS)
def test_system1_reproduction_configs_run_the_originals_detectors(name):
    detect = load_config(CONF / name, SerialOEConfig).detect
    assert detect.standardize is False  # the original's --use_norm "" (no feature scaling)
    assert set(ORIGINAL_POOLINGS.values()) <= set(detect.poolings)


def test_every_system1_config_has_both_pooling_orientations():
    files = shipped_configs("asd_model.*.yaml")
    assert len(files) > len(SYSTEM1_REPRODUCTIONS)  # the cpu and tiny configs too
    for path in files:
        poolings = set(load_config(path, SerialOEConfig).detect.poolings)
        assert set(ORIGINAL_POOLINGS.values()) | {"max_anomaly"} <= poolings, path


def test_column_names_carry_the_pooling_and_section_logit_follows():
    rng = np.random.default_rng(0)
    n_win = 3
    clip_info = pd.DataFrame(
        {"section": 0, "domain": ["source"] * 6 + ["target"] * 2 + ["source"] * 2}, index=[f"c{i}" for i in range(10)]
    )

    def emb(ids):
        n = len(ids) * n_win
        feats = {"embedding": rng.normal(size=(n, 4)), "section_logits": rng.normal(size=(n, 2))}
        return Embeddings(np.array(ids), np.repeat(np.arange(len(ids)), n_win), feats)

    inlier, test = emb([f"c{i}" for i in range(8)]), emb(["c8", "c9"])
    cfg = DetectConfig(detectors=["knn"], ks=[1], inlier_sets=["all"], feature_sets={"embed": ["embedding"]})
    scores = run_detectors(inlier, test, clip_info, cfg)
    columns = [c for c in scores.columns if c not in ("clip_id", "subset")]
    assert columns == [f"knn_k1_all_embed_{p}" for p in POOLINGS] + [f"section_logit_{p}" for p in POOLINGS]

    # the section logit's min_anomaly is the original's pooled "max" of the raw logit, negated
    # (then z-scored by the inliers' reference scores)
    def original_max(e):
        return -e.features["section_logits"][:, 0].reshape(-1, n_win).max(axis=1)

    ref = original_max(inlier)
    expected = (original_max(test) - ref.mean()) / (ref.std() + 1e-12)
    got = scores.loc[scores.subset == "test", "section_logit_min_anomaly"].to_numpy()
    assert got == pytest.approx(expected)


def _small_section_embeddings():
    """Section 00: 8 inlier clips of 3 windows; section 01: 2 inlier clips of one window each (a small subset)."""
    rng = np.random.default_rng(0)
    sections = [0] * 10 + [1] * 4
    clip_info = pd.DataFrame({"section": sections, "domain": "source"}, index=[f"c{i}" for i in range(14)])

    def emb(ids, n_win):
        features = {"embedding": rng.normal(size=(sum(n_win), 4))}
        return Embeddings(np.array(ids), np.repeat(np.arange(len(ids)), n_win), features)

    inlier = emb([f"c{i}" for i in (*range(8), 10, 11)], [3] * 8 + [1, 1])
    test = emb(["c8", "c9", "c12", "c13"], [3, 3, 1, 1])
    return inlier, test, clip_info


def test_too_few_inliers_for_a_detector_stop_the_stage_naming_section_count_and_need():
    """Issue 36, fault 8: before any fit, not a RuntimeError from inside GMM after the others were fitted."""
    inlier, test, clip_info = _small_section_embeddings()
    cfg = DetectConfig(detectors=["gmm", "knn", "lof"], ks=[1], inlier_sets=["all"], feature_sets={"e": ["embedding"]})
    with pytest.raises(ValueError) as err:
        run_detectors(inlier, test, clip_info, cfg, machine="fan")
    message = str(err.value)
    assert message.startswith("fan: too few inliers for the detector grid: section 01, inlier set 'all': ")
    assert "2 inlier clips (1 windows in the smallest cross-fitted fit), 2 needed by gmm_k1, lof_k1" in message
    assert "section 00" not in message and "detect.too_few_inliers: skip" in message and "\n" not in message


def test_too_few_inliers_skip_leaves_those_detectors_out_with_a_note(caplog):
    inlier, test, clip_info = _small_section_embeddings()
    cfg = DetectConfig(
        detectors=["gmm", "knn", "lof"],
        ks=[1],
        inlier_sets=["all"],
        feature_sets={"e": ["embedding"]},
        too_few_inliers="skip",
    )
    with caplog.at_level("WARNING"):
        scores = run_detectors(inlier, test, clip_info, cfg, machine="fan")
    assert {c.split("_all_")[0] for c in scores.columns if "_all_" in c} == {"knn_k1"}
    assert "fan: left out ['gmm_k1', 'lof_k1'] (detect.too_few_inliers: skip)" in caplog.text
    with pytest.raises(ConfigError, match="too_few_inliers: 'ask' is not one of"):
        from_dict(DetectConfig, {"too_few_inliers": "ask"})
