import numpy as np
import pandas as pd
import pytest

from asd_tools.datasets.registry import dataset_spec
from asd_tools.scoring.metrics import section_metrics, section_table, summarise
from asd_tools.utils import harmonic_mean


def _section(scores_by_clip):
    """(domain, state, score) triples -> arrays."""
    domain, state, score = zip(*scores_by_clip)
    return np.array(domain), np.array(state), np.array(score, dtype=float)


def test_perfect_detector():
    clips = [
        ("source", "normal", 0.1),
        ("source", "normal", 0.2),
        ("target", "normal", 0.3),
        ("target", "normal", 0.15),
        ("source", "anomaly", 0.9),
        ("target", "anomaly", 0.8),
    ]
    m = section_metrics(*_section(clips))
    assert m["auc_source"] == m["auc_target"] == m["pauc"] == 1.0


def test_inverted_detector():
    clips = [
        ("source", "normal", 0.9),
        ("target", "normal", 0.8),
        ("source", "anomaly", 0.1),
        ("target", "anomaly", 0.2),
    ]
    m = section_metrics(*_section(clips))
    assert m["auc_source"] == m["auc_target"] == 0.0
    # McClish standardisation: a fully inverted detector's pAUC is 0.5 * (1 + (0 - min)/(max - min))
    fpr = 0.1
    min_area = 0.5 * fpr**2
    assert m["pauc"] == pytest.approx(0.5 * (1 + (0.0 - min_area) / (fpr - min_area)))


def test_official_domains_use_all_anomalies():
    # source normal < all anomalies; target normal above the source anomaly only
    clips = [
        ("source", "normal", 0.0),
        ("target", "normal", 0.5),
        ("source", "anomaly", 0.4),
        ("target", "anomaly", 0.6),
    ]
    m = section_metrics(*_section(clips))
    assert m["auc_source"] == 1.0
    assert m["auc_target"] == 0.5  # target normal 0.5 vs anomalies {0.4, 0.6}: one of two pairs ranked right
    # the 2021 rule: target normal vs target anomaly only
    assert m["dom_auc_target"] == 1.0
    assert m["dom_auc_source"] == 1.0


def test_ties_count_half():
    clips = [
        ("source", "normal", 1.0),
        ("source", "anomaly", 1.0),
        ("target", "normal", 0.0),
        ("target", "anomaly", 2.0),
    ]
    m = section_metrics(*_section(clips))
    # source normal 1.0 vs anomalies {1.0 (tie), 2.0}: (0.5 + 1) / 2
    assert m["auc_source"] == pytest.approx(0.75)
    assert m["auc_target"] == 1.0


def test_pauc_matches_a_hand_computation():
    # 10 normals, 2 anomalies; anomaly A above all normals, anomaly B above 8 of 10 normals.
    normals = np.arange(10) / 10.0
    scores = np.concatenate([normals, [2.0, 0.75]])
    state = np.array(["normal"] * 10 + ["anomaly"] * 2)
    domain = np.array(["source"] * 12)
    m = section_metrics(domain, state, scores)
    # ROC: TPR 0.5 for FPR in [0, 0.2), then 1. Area up to FPR 0.1 = 0.05;
    # McClish: 0.5 * (1 + (0.05 - 0.005) / (0.1 - 0.005))
    assert m["pauc"] == pytest.approx(0.5 * (1 + 0.045 / 0.095))


def test_official_score_is_the_harmonic_mean_of_all_values():
    rng = np.random.default_rng(0)
    rows = []
    for machine in ("fan", "valve"):
        for section in (0, 1, 2):
            for domain in ("source", "target"):
                for state in ("normal", "anomaly"):
                    for _ in range(10):
                        shift = 1.0 if state == "anomaly" else 0.0
                        rows.append(
                            dict(
                                dataset="dev",
                                machine=machine,
                                section=section,
                                domain=domain,
                                state=state,
                                score=rng.normal(shift * (section + 1) * 0.3),
                            )
                        )
    df = pd.DataFrame(rows)
    sections = section_table(df, "score")
    summary = summarise(sections).set_index(["dataset", "machine"])
    values = sections[["auc_source", "auc_target", "pauc"]].to_numpy().ravel()
    assert len(values) == 2 * 3 * 3
    assert summary.loc[("dev", "all"), "official"] == pytest.approx(harmonic_mean(values))
    fan = sections[sections["machine"] == "fan"]
    assert summary.loc[("dev", "fan"), "auc"] == pytest.approx(
        harmonic_mean(fan[["auc_source", "auc_target"]].to_numpy().ravel())
    )
    assert summary.loc[("dev", "fan"), "pauc"] == pytest.approx(harmonic_mean(fan["pauc"]))


def test_original_rankings_mixed_domain_and_per_domain_hauc_per_machine():
    """The original recipe ranked ensemble members by dev_hauc (AUC and pAUC of each section's clips,
    both domains together; scoring.py) and dev_<domain>_hauc: both are leaderboard columns."""
    from sklearn.metrics import roc_auc_score

    from asd_tools.scoring.report import leaderboard

    rng = np.random.default_rng(1)
    rows = [
        dict(dataset="dev", machine=m, section=s, domain=d, state=st, subset="test", clip_id=f"{m}{s}{d}{st}{i}")
        for m in ("fan", "valve")
        for s in (0, 1)
        for d in ("source", "target")
        for st in ("normal", "anomaly")
        for i in range(6)
    ]
    df = pd.DataFrame(rows)
    df["pp"] = rng.normal(size=len(df)) + (df["state"] == "anomaly") * (df["domain"] == "source")
    sections = section_table(df, "pp")
    fan0 = df[(df.machine == "fan") & (df.section == 0)]
    expected = roc_auc_score(fan0.state == "anomaly", fan0.pp)  # over both domains' clips
    assert sections.loc[0, "auc_mixed"] == pytest.approx(expected)
    summary = summarise(sections).set_index(["dataset", "machine"])
    fan = sections[sections.machine == "fan"]
    assert summary.loc[("dev", "fan"), "hauc_mixed"] == pytest.approx(
        harmonic_mean(fan[["auc_mixed", "pauc"]].to_numpy().ravel())
    )
    board = leaderboard(df, dataset_spec("dcase2022"))
    for column in ("dev_hauc_mixed", "dev_fan_hauc_mixed", "dev_hauc_domain_source", "dev_valve_hauc_domain_target"):
        assert column in board
    fan_source = summary.loc[("dev", "fan"), "hauc_domain_source"]
    assert board.loc[0, "dev_fan_hauc_domain_source"] == pytest.approx(fan_source)


def test_clamping_keeps_the_harmonic_mean_defined():
    assert harmonic_mean([0.0, 1.0], floor=2.2e-16) == pytest.approx(2 / (1 / 2.2e-16 + 1))


def test_unlabelled_sections_are_left_out():
    df = pd.DataFrame(
        dict(
            dataset=["eval"] * 4,
            machine="fan",
            section=3,
            domain="unknown",
            state="unknown",
            score=[0.1, 0.2, 0.3, 0.4],
        )
    )
    assert section_table(df, "score").empty


def test_nan_scores_are_rejected():
    with pytest.raises(ValueError, match="NaN"):
        section_metrics(np.array(["source", "source"]), np.array(["normal", "anomaly"]), np.array([0.0, np.nan]))


def test_fast_metrics_match_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    from asd_tools.scoring.metrics import partial_roc_auc, roc_auc

    rng = np.random.default_rng(3)
    for trial in range(200):
        n = int(rng.integers(4, 60))
        y = rng.random(n) < rng.uniform(0.1, 0.9)
        if y.all() or not y.any():
            continue
        s = np.round(rng.normal(y * rng.uniform(0, 2), 1.0), int(rng.integers(0, 3)))  # rounding makes ties
        assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12), trial
        assert partial_roc_auc(y, s) == pytest.approx(roc_auc_score(y, s, max_fpr=0.1), abs=1e-12), trial


def test_average_ranks_are_scipys_exactly_with_ties():
    from scipy.stats import rankdata

    from asd_tools.scoring.metrics import average_ranks

    rng = np.random.default_rng(5)
    for trial in range(100):
        values = np.round(rng.normal(size=int(rng.integers(1, 80))), int(rng.integers(0, 3)))  # ties
        assert np.array_equal(average_ranks(values), rankdata(values)), trial  # bit for bit: score.csv stays the same
    assert np.array_equal(average_ranks([3.0, 1.0, 3.0, 2.0, 3.0]), [4.0, 1.0, 4.0, 2.0, 4.0])
