"""Detector registry and parameter grids: the list form's output is pinned, the mapping form, Mahalanobis."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.covariance import LedoitWolf

from asd_tools.backend.detect import DetectConfig, detector_label, run_detectors
from asd_tools.backend.detectors import (
    DETECTORS,
    POOLINGS,
    Detector,
    KDetector,
    build_detector,
    register_detector,
    register_pooling,
)
from asd_tools.backend.embeddings import Embeddings
from asd_tools.config import ConfigError, config_to_dict, from_dict, load_config, read_config
from asd_tools.systems.baseline.config import BaselineConfig
from asd_tools.systems.dcase_ae.config import DcaseAEConfig
from asd_tools.systems.dgmix.config import DGMixConfig
from asd_tools.systems.serial_oe.config import SerialOEConfig
from tests.conftest import shipped_configs

DATA = Path(__file__).resolve().parent / "data"
# the detector stage's output on LIST_FORM_CASE, written by the code before detectors declared
# their own parameter grids (commit "Pin the detector stage's list-form output ...")
PINNED_LIST_FORM = DATA / "detect_list_form.csv"
LIST_FORM = dict(
    detectors=["gmm", "knn", "lof"],
    ks=[1, 2],
    inlier_sets=["all", "so"],
    feature_sets={"embed": ["embedding"], "both": ["embedding", "section_logits"]},
    poolings=["min_anomaly", "mean"],
)


def small_case(seed=0, n_inlier=6, n_test=2, n_win=2, dim=3):
    """Random embeddings of two sections: inlier clips (two thirds source) and test clips."""
    rng = np.random.default_rng(seed)
    rows = []
    for section in (0, 1):
        domains = ["source"] * (n_inlier - n_inlier // 3) + ["target"] * (n_inlier // 3)
        rows += [(f"s{section}_in{i}", section, d) for i, d in enumerate(domains)]
        rows += [(f"s{section}_test{i}", section, "source" if i % 2 == 0 else "target") for i in range(n_test)]
    clip_info = pd.DataFrame(rows, columns=["clip_id", "section", "domain"]).set_index("clip_id")

    def embeddings(ids):
        n = len(ids) * n_win
        features = {"embedding": rng.normal(size=(n, dim)), "section_logits": rng.normal(size=(n, 2))}
        return Embeddings(np.array(ids), np.repeat(np.arange(len(ids)), n_win), features)

    inlier = embeddings([c for c in clip_info.index if "_in" in c])
    test = embeddings([c for c in clip_info.index if "_test" in c])
    return inlier, test, clip_info


def test_the_list_form_gives_the_pinned_names_and_values():
    """The shipped configs' form (detectors + ks) scores exactly as before parameter grids."""
    inlier, test, clip_info = small_case()
    got = run_detectors(inlier, test, clip_info, DetectConfig(**LIST_FORM))
    expected = pd.read_csv(PINNED_LIST_FORM)
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-9, atol=1e-12)


def test_the_mapping_form_with_the_same_grids_gives_the_same_columns():
    inlier, test, clip_info = small_case()
    grids = {name: {"k": [1, 2]} for name in LIST_FORM["detectors"]}
    cfg = DetectConfig(**{**LIST_FORM, "detectors": grids, "ks": None})
    got = run_detectors(inlier, test, clip_info, cfg)
    pd.testing.assert_frame_equal(got, pd.read_csv(PINNED_LIST_FORM), check_exact=False, rtol=1e-9, atol=1e-12)


def test_the_list_form_record_is_what_the_config_states():
    """Provenance records of existing experiments stay current: the list form is kept as written."""
    cfg = from_dict(DetectConfig, {"detectors": ["gmm", "knn"], "ks": [1, 4]})
    record = config_to_dict(cfg)
    assert record["detectors"] == ["gmm", "knn"] and record["ks"] == [1, 4]


def test_a_grid_left_out_is_the_detectors_declared_one():
    declared = KDetector.GRID["k"]
    assert DetectConfig(detectors=["knn", "mahalanobis"]).detector_settings() == [
        *[("knn", {"k": k}) for k in declared],
        ("mahalanobis", {}),
    ]
    # ks is the k grid of the detectors that take k only
    assert DetectConfig(detectors=["mahalanobis", "lof"], ks=[3]).detector_settings() == [
        ("mahalanobis", {}),
        ("lof", {"k": 3}),
    ]
    assert DetectConfig(detectors={"knn": {}, "gmm": None}).detector_settings() == [
        *[("knn", {"k": k}) for k in declared],
        *[("gmm", {"k": k}) for k in declared],
    ]


def test_the_mapping_form_reads_from_yaml_and_names_a_parameterless_detector_bare():
    inlier, test, clip_info = small_case()
    section = yaml.safe_load(
        """
        detectors:
          knn: {k: [1, 3]}
          mahalanobis: {}
        inlier_sets: [all]
        feature_sets: {embed: [embedding]}
        poolings: [mean]
        section_logit_score: false
        """
    )
    cfg = from_dict(DetectConfig, section, "conf.yaml:detect")
    scores = run_detectors(inlier, test, clip_info, cfg)
    columns = [c for c in scores.columns if c not in ("clip_id", "subset")]
    assert columns == ["knn_k1_all_embed_mean", "knn_k3_all_embed_mean", "mahalanobis_all_embed_mean"]
    assert scores[columns].notna().all().all()


@pytest.mark.parametrize(
    "section, message",
    [
        (
            {"detectors": {"knn": {"n_neighbors": [3]}}},
            r"conf:detect: detectors\.knn: unknown key\(s\) \['n_neighbors'\] for 'knn'; valid keys are \['k'\]",
        ),
        (
            {"detectors": {"mahalanobis": {"k": [1]}}},
            r"detectors\.mahalanobis: unknown key\(s\) \['k'\].*valid keys are \[\]",
        ),
        ({"detectors": {"gmm": {"seed": [1]}}}, r"unknown key\(s\) \['seed'\]"),  # detect.seed sets it
        ({"detectors": {"svm": {}}}, "detectors: 'svm' is not one of"),
        ({"detectors": ["knn", "svm"]}, "detectors: 'svm' is not one of"),
        ({"detectors": {"knn": {"k": 4}}}, r"detectors\.knn\.k: expected a non-empty list of values, got 4"),
        ({"detectors": {"knn": {"k": []}}}, r"detectors\.knn\.k: expected a non-empty list"),
        ({"detectors": {"knn": [1, 2]}}, r"detectors\.knn: expected a mapping parameter -> list of values"),
        ({"detectors": {"lof": {"k": [0]}}}, r"detectors\.lof: k must be a positive integer, got 0"),
        ({"detectors": {"lof": {"k": [1.5]}}}, r"detectors\.lof: k must be a positive integer, got 1\.5"),
        ({"detectors": ["gmm"], "ks": [1, 0]}, r"ks: 0 in \[1, 0\] is out of range; allowed: >= 1"),
        ({"detectors": {"knn": {"k": [1]}}, "ks": [1]}, "ks belongs to the list form of detectors"),
        ({"detectors": ["knn"], "ks": [1, 1]}, r"\['knn_k1'\] would be computed twice"),
        ({"detectors": ["knn", "knn"], "ks": [1]}, r"\['knn_k1'\] would be computed twice"),
        ({"detectors": "knn"}, "conf:detect.detectors: expected list or dict, got 'knn'"),
    ],
)
def test_bad_grids_are_config_errors_naming_the_key(section, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(DetectConfig, section, "conf:detect")


class RecordingDetector(Detector):
    """A test detector with two non-k parameters; records the domains it is fitted with."""

    GRID = {"mode": ["mean"]}
    fitted_domains = []

    def __init__(self, scale: float, mode: str = "mean", seed: int = 0):
        super().__init__(seed)
        self.scale, self.mode = scale, mode

    def fit(self, inliers, domains=None):
        RecordingDetector.fitted_domains.append(domains)
        self.center = inliers.mean(axis=0)
        return self

    def score(self, x):
        return self.scale * np.linalg.norm(x - self.center, axis=1)


@pytest.fixture
def recording():
    """RecordingDetector registered as "recording" for one test."""
    RecordingDetector.fitted_domains = []
    yield register_detector("recording")(RecordingDetector)
    del DETECTORS["recording"]


def test_other_parameters_are_named_in_constructor_order_and_must_be_given(recording):
    cfg = DetectConfig(detectors={"recording": {"mode": ["mean", "max"], "scale": [0.5]}, "knn": {"k": [2]}})
    labels = [detector_label(name, params) for name, params in cfg.detector_settings()]
    assert labels == ["recording_scale0.5_modemean", "recording_scale0.5_modemax", "knn_k2"]
    with pytest.raises(ConfigError, match=r"detectors\.recording: detector 'recording' needs values for \['scale'\]"):
        from_dict(DetectConfig, {"detectors": {"recording": {}}})


def test_detectors_are_fitted_with_their_inliers_window_domains(recording):
    inlier, test, clip_info = small_case(n_win=2)
    cfg = DetectConfig(
        detectors={"recording": {"scale": [1.0]}},
        inlier_sets=["all", "so"],
        feature_sets={"embed": ["embedding"]},
        poolings=["mean"],
        reference_folds=2,
    )
    run_detectors(inlier, test, clip_info, cfg)
    # per section: "all" (one fit on every inlier, two cross-fits), then "so" (the same)
    section0 = RecordingDetector.fitted_domains[:6]
    window_domains = np.repeat(clip_info.loc[inlier.clip_id[:6], "domain"].to_numpy(), 2)  # section 0's inliers
    assert section0[0].tolist() == window_domains.tolist()
    assert sorted(np.concatenate(section0[1:3]).tolist()) == sorted(window_domains.tolist())
    assert all(set(domains) == {"source"} for domains in section0[3:])
    assert len(RecordingDetector.fitted_domains) == 12


def test_registration_refuses_a_taken_name_and_a_grid_the_constructor_does_not_take():
    with pytest.raises(ValueError, match="detector 'knn' is already registered"):
        register_detector("knn")(RecordingDetector)

    class Misdeclared(Detector):
        GRID = {"neighbours": [1]}

    with pytest.raises(ValueError, match=r"Misdeclared\.GRID: unknown key\(s\) \['neighbours'\]"):
        register_detector("misdeclared")(Misdeclared)
    with pytest.raises(ValueError, match="pooling 'mean' is already registered"):
        register_pooling("mean")(np.mean)
    assert "misdeclared" not in DETECTORS and POOLINGS["mean"] is not np.mean


def test_the_poolings_keep_their_names_and_order():
    assert list(POOLINGS) == [
        "min_anomaly",
        "lower_mean_anomaly",
        "mean",
        "median",
        "max_anomaly",
        "upper_mean_anomaly",
    ]
    assert DetectConfig().poolings == list(POOLINGS)


def test_mahalanobis_of_isotropic_inliers_is_the_hand_computed_distance():
    # the empirical covariance is already 0.5 * identity: Ledoit-Wolf does not shrink it
    shift = np.array([10.0, -3.0])
    inliers = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]) + shift
    x = np.array([[2.0, 0.0], [0.0, 0.0], [1.0, 1.0]]) + shift
    scores = build_detector("mahalanobis", {}).fit(inliers).score(x)
    assert scores == pytest.approx([4 / 0.5, 0.0, 2 / 0.5])  # squared distances, not their roots


def test_mahalanobis_uses_the_shrunk_covariance_and_the_inliers_mean():
    rng = np.random.default_rng(1)
    inliers = rng.normal(size=(30, 4)) * [1.0, 2.0, 0.5, 3.0] + 5.0
    x = rng.normal(size=(5, 4))
    shrunk = LedoitWolf().fit(inliers).covariance_
    diff = x - inliers.mean(axis=0)
    expected = np.einsum("ij,jk,ik->i", diff, np.linalg.inv(shrunk), diff)
    assert build_detector("mahalanobis", {}).fit(inliers).score(x) == pytest.approx(expected)


def test_mahalanobis_scores_far_points_higher_even_with_more_features_than_inliers():
    rng = np.random.default_rng(2)
    inliers = rng.normal(size=(10, 50))  # singular empirical covariance (rank 9)
    direction = rng.normal(size=50)
    x = np.outer([0.0, 1.0, 2.0, 4.0], direction)
    scores = build_detector("mahalanobis", {}).fit(inliers).score(x)
    assert np.all(np.isfinite(scores)) and np.all(np.diff(scores) > 0)


@pytest.mark.parametrize("path", shipped_configs(), ids=lambda p: p.name)
def test_shipped_configs_keep_their_record_and_post_process_names(path):
    """Every shipped config uses the list form: same detect record, same ``<detector>_k<k>`` names in the same
    order; dcase_ae's parameterless ``clip_score`` is named as it is written."""
    schema = {"asd_model": SerialOEConfig, "dgmix": DGMixConfig, "baseline": BaselineConfig, "dcase_ae": DcaseAEConfig}[
        path.name.split(".")[0]
    ]
    stated = read_config(path)["detect"]
    detect = load_config(path, schema).detect
    if schema is DcaseAEConfig:
        assert [detector_label(name, params) for name, params in detect.detector_settings()] == ["clip_score"]
        return
    record = config_to_dict(detect)
    assert record["detectors"] == stated["detectors"] and record["ks"] == stated["ks"]
    labels = [detector_label(name, params) for name, params in detect.detector_settings()]
    assert labels == [f"{name}_k{k}" for name in stated["detectors"] for k in stated["ks"]]


def test_domain_mahalanobis_measures_from_the_nearer_domain_mean_with_the_pooled_within_domain_covariance():
    rng = np.random.default_rng(3)
    source = rng.normal(size=(40, 3)) * [1.0, 2.0, 0.5]
    target = rng.normal(size=(8, 3)) * [1.0, 2.0, 0.5] + [20.0, 0.0, 0.0]
    inliers = np.concatenate([source, target])
    domains = np.array(["source"] * 40 + ["target"] * 8)
    x = rng.normal(size=(6, 3)) + np.repeat([[0.0, 0, 0], [20.0, 0, 0]], 3, axis=0)
    centred = np.concatenate([source - source.mean(0), target - target.mean(0)])
    precision = np.linalg.inv(LedoitWolf(assume_centered=True).fit(centred).covariance_)

    def squared(mean):
        diff = x - mean
        return np.einsum("ij,jk,ik->i", diff, precision, diff)

    expected = np.minimum(squared(source.mean(0)), squared(target.mean(0)))
    scores = build_detector("mahalanobis_domain", {}).fit(inliers, domains).score(x)
    assert scores == pytest.approx(expected)
    # a target-domain normal is near its own domain: one covariance over both domains calls it far
    pooled = build_detector("mahalanobis", {}).fit(inliers).score(x)
    assert scores[3:].max() < pooled[3:].min()


def test_domain_mahalanobis_of_one_domain_is_mahalanobis():
    rng = np.random.default_rng(4)
    inliers, x = rng.normal(size=(30, 4)), rng.normal(size=(5, 4))
    one = build_detector("mahalanobis_domain", {}).fit(inliers, np.array(["source"] * 30)).score(x)
    centred = LedoitWolf(assume_centered=True).fit(inliers - inliers.mean(0))
    assert one == pytest.approx(centred.mahalanobis(x - inliers.mean(0)))
    assert build_detector("mahalanobis_domain", {}).fit(inliers).score(x) == pytest.approx(one)
