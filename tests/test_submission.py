import re

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from asd_tools.scoring.submission import gamma_threshold, write_submission


def test_gamma_threshold_is_the_fitted_90th_percentile():
    rng = np.random.default_rng(0)
    reference = rng.gamma(2.0, 1.5, 5000)
    threshold = gamma_threshold(reference)
    assert threshold == pytest.approx(scipy.stats.gamma.ppf(0.9, 2.0, scale=1.5), rel=0.05)
    # too few distinct values for a gamma fit: the empirical percentile
    assert gamma_threshold([-1.0, 1.0, -1.0, 1.0]) == pytest.approx(np.quantile([-1, 1, -1, 1], 0.9))
    with pytest.raises(ValueError):
        gamma_threshold([])


def test_files_follow_the_evaluator_format(tmp_path):
    rng = np.random.default_rng(1)
    rows = []
    for machine in ("fan", "ToyCar"):
        for section in (3, 4, 5):
            for i in rng.permutation(20):  # unsorted on purpose
                rows.append(
                    dict(
                        machine=machine,
                        section=section,
                        file_name=f"section_{section:02d}_{i:04d}.wav",
                        score=rng.normal(),
                    )
                )
    df = pd.DataFrame(rows)
    written = write_submission(tmp_path, df, {"fan": 0.5, "ToyCar": 0.0})
    assert len(written) == 2 * 3 * 2
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "anomaly_score_ToyCar_section_03_test.csv" in names
    assert "decision_result_fan_section_05_test.csv" in names
    for path in tmp_path.iterdir():
        text = path.read_text()
        assert text.endswith("\n") and "\n\n" not in text and "\r" not in text
        lines = text.splitlines()
        assert len(lines) == 20
        assert lines == sorted(lines)  # sorted by file name, no header
        for line in lines:
            name, value = line.split(",")
            assert re.fullmatch(r"section_0[345]_\d{4}\.wav", name)
            if path.name.startswith("decision_result_"):
                assert value in ("0", "1")
            else:
                float(value)
    # the written scores read back exactly, and decisions are "score strictly above threshold"
    fan3 = df[(df.machine == "fan") & (df.section == 3)].sort_values("file_name")
    scores = pd.read_csv(tmp_path / "anomaly_score_fan_section_03_test.csv", header=None)
    decisions = pd.read_csv(tmp_path / "decision_result_fan_section_03_test.csv", header=None)
    assert np.array_equal(scores[1].to_numpy(), fan3["score"].to_numpy())
    assert np.array_equal(decisions[1].to_numpy(), (fan3["score"].to_numpy() > 0.5).astype(int))
