"""Official submission files for the evaluation sections, as each year's evaluator reads them.

For every machine type and evaluation section (or machine ID), in ``teams/<team>/<system>/``:
``anomaly_score_<stem>.csv`` (``section_03_0000.wav,2.3817``) and ``decision_result_<stem>.csv``
(``section_03_0000.wav,1``): comma-separated, no header, one row per test clip, no blank lines,
rows sorted by file name (the evaluators pair rows with the ground truth by sorting). The stem
follows the year's naming (``SUBMISSION_NAMES``): ``<machine>_section_<SS>_test`` (2022-2025),
``<machine>_section_<SS>_<source|target>_test`` (2021: one file per domain),
``<machine>_id_<NN>`` (2020).

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


# naming -> (the columns one file covers, its stem from those columns' values)
SUBMISSION_NAMES = {
    "section": (("machine", "section"), lambda m, s: f"{m}_section_{int(s):02d}_test"),
    "section_domain": (("machine", "section", "domain"), lambda m, s, d: f"{m}_section_{int(s):02d}_{d}_test"),
    "machine_id": (("machine", "section"), lambda m, s: f"{m}_id_{int(s):02d}"),
}


def write_submission(outdir, eval_scores: pd.DataFrame, thresholds: dict, naming: str = "section") -> list:
    """Write the 2 files per (machine, evaluation section[, domain]) and return their paths.

    ``eval_scores``: columns machine, section, domain, file_name, score (evaluation test clips).
    ``thresholds``: machine -> decision threshold. ``naming``: a key of ``SUBMISSION_NAMES``.
    """
    if naming not in SUBMISSION_NAMES:
        raise ValueError(f"unknown submission naming '{naming}': choose one of {', '.join(SUBMISSION_NAMES)}")
    keys, stem_of = SUBMISSION_NAMES[naming]
    outdir = Path(outdir)
    written = []
    for values, group in eval_scores.groupby(list(keys), sort=True):
        machine = values[0]
        if machine not in thresholds:
            raise KeyError(f"no decision threshold for machine type '{machine}'")
        decisions = (group["score"].to_numpy() > thresholds[machine]).astype(int)
        stem = stem_of(*values) + ".csv"
        score_path = outdir / f"anomaly_score_{stem}"
        decision_path = outdir / f"decision_result_{stem}"
        atomic_write_text(score_path, submission_rows(group["file_name"], group["score"], format_score))
        atomic_write_text(decision_path, submission_rows(group["file_name"], decisions, str))
        written += [score_path, decision_path]
    return written
