"""Official submission files for the evaluation sections, as the DCASE 2022 evaluator reads them.

For every machine type and evaluation section, in ``teams/<team>/<system>/``:
``anomaly_score_<machine>_section_<SS>_test.csv`` (``section_03_0000.wav,2.3817``) and
``decision_result_<machine>_section_<SS>_test.csv`` (``section_03_0000.wav,1``):
comma-separated, no header, one row per test clip, no blank lines.

Decision rule of the official baseline: per machine type, a gamma distribution is
fitted to normal (training-clip) anomaly scores; a clip is anomalous when its score is
strictly above the distribution's 90th percentile.
"""

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats

from asd_tools.constants import DECISION_PERCENTILE
from asd_tools.utils import atomic_write_text

MIN_DISTINCT_FOR_GAMMA = 3


def gamma_threshold(reference_scores, percentile=DECISION_PERCENTILE) -> float:
    """Percentile of a gamma distribution (shape, loc, scale) fitted to normal scores.

    With fewer than 3 distinct scores (tiny data sets) no gamma can be fitted: the empirical
    percentile is used instead, with a warning.
    """
    reference_scores = np.asarray(reference_scores, dtype=np.float64)
    if reference_scores.size == 0:
        raise ValueError("a decision threshold needs normal reference scores; none were given")
    if len(np.unique(reference_scores)) < MIN_DISTINCT_FOR_GAMMA:
        logging.warning(
            f"only {len(np.unique(reference_scores))} distinct normal scores: no gamma fit, "
            "the decision threshold is their empirical percentile"
        )
        return float(np.quantile(reference_scores, percentile))
    params = scipy.stats.gamma.fit(reference_scores)
    return float(scipy.stats.gamma.ppf(percentile, *params))


def format_score(value: float) -> str:
    """Shortest text that reads back as the same float (no ties created by rounding)."""
    return repr(float(value))


def submission_rows(file_names, values, formatter) -> str:
    order = np.argsort(np.asarray(file_names))
    names, values = np.asarray(file_names)[order], np.asarray(values)[order]
    return "".join(f"{name},{formatter(value)}\n" for name, value in zip(names, values))


def write_submission(outdir, eval_scores: pd.DataFrame, thresholds: dict) -> list:
    """Write the 2 files per (machine, evaluation section) and return their paths.

    ``eval_scores``: columns machine, section, file_name, score (evaluation test clips).
    ``thresholds``: machine -> decision threshold.
    """
    outdir = Path(outdir)
    written = []
    for (machine, section), group in eval_scores.groupby(["machine", "section"], sort=True):
        if machine not in thresholds:
            raise KeyError(f"no decision threshold for machine type '{machine}'")
        decisions = (group["score"].to_numpy() > thresholds[machine]).astype(int)
        stem = f"{machine}_section_{int(section):02d}_test.csv"
        score_path = outdir / f"anomaly_score_{stem}"
        decision_path = outdir / f"decision_result_{stem}"
        atomic_write_text(score_path, submission_rows(group["file_name"], group["score"], format_score))
        atomic_write_text(decision_path, submission_rows(group["file_name"], decisions, str))
        written += [score_path, decision_path]
    return written
