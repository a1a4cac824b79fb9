"""The official DCASE 2022 Task 2 score, and the seeds' per-domain hAUC as a second metric.

Official (per machine type m and section n, 200 test clips):
  AUC source = source-domain normal clips against all anomalous clips of the section,
  AUC target = target-domain normal clips against all anomalous clips of the section,
  pAUC       = all clips, FPR cut at 0.1, McClish-standardised (sklearn ``max_fpr``);
official score = harmonic mean of all these values over the machine types and sections
of one set (dev or eval), each clamped below at 2.2e-16.

Per-domain hAUC (the 2021 rule that the seed recipes print; not the official score):
AUC and pAUC computed on one domain's normal and anomalous clips only.

Mixed-domain hAUC (the original System 1 recipe's ``dev_hauc``, which ranked its ensemble members;
not the official score): AUC and pAUC on all clips of a section, both domains together.
"""

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from asd_tools.constants import MIN_METRIC_VALUE, PAUC_MAX_FPR
from asd_tools.utils import harmonic_mean

OFFICIAL_COLUMNS = ("auc_source", "auc_target", "pauc")
DOMAIN_COLUMNS = ("dom_auc_source", "dom_pauc_source", "dom_auc_target", "dom_pauc_target")


def roc_auc(y, s) -> float:
    """Area under the ROC curve (Mann-Whitney form; ties count one half). NaN without both classes."""
    y = np.asarray(y, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return np.nan
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def partial_roc_auc(y, s, max_fpr=PAUC_MAX_FPR) -> float:
    """McClish-standardised partial AUC up to ``max_fpr``, as sklearn's ``roc_auc_score(max_fpr=...)``."""
    y = np.asarray(y, dtype=bool)
    if y.all() or not y.any():
        return np.nan
    order = np.argsort(-np.asarray(s, dtype=np.float64), kind="mergesort")
    scores, hits = np.asarray(s, dtype=np.float64)[order], y[order]
    last_of_value = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # one ROC point per distinct score
    tps = np.cumsum(hits)[last_of_value]
    fps = (last_of_value + 1) - tps
    tpr, fpr = np.r_[0.0, tps / tps[-1]], np.r_[0.0, fps / fps[-1]]
    stop = np.searchsorted(fpr, max_fpr, "right")
    tpr_cut = np.interp(max_fpr, fpr[stop - 1 : stop + 1], tpr[stop - 1 : stop + 1])
    area = np.trapezoid(np.r_[tpr[:stop], tpr_cut], np.r_[fpr[:stop], max_fpr])
    min_area, max_area = 0.5 * max_fpr**2, max_fpr
    return float(0.5 * (1 + (area - min_area) / (max_area - min_area)))


def section_metrics(domain, state, score) -> dict:
    """All metrics of one section. ``domain``/``state`` are string arrays, ``score`` floats."""
    domain, state, score = np.asarray(domain), np.asarray(state), np.asarray(score, dtype=np.float64)
    if not np.all(np.isfinite(score)):
        raise ValueError("anomaly scores contain NaN or Inf")
    anomaly = state == "anomaly"
    out = {}
    for d in ("source", "target"):
        keep = anomaly | ((domain == d) & (state == "normal"))
        out[f"auc_{d}"] = roc_auc(anomaly[keep], score[keep])
        in_domain = domain == d
        out[f"dom_auc_{d}"] = roc_auc(anomaly[in_domain], score[in_domain])
        out[f"dom_pauc_{d}"] = partial_roc_auc(anomaly[in_domain], score[in_domain])
    out["pauc"] = partial_roc_auc(anomaly, score)
    out["auc_mixed"] = roc_auc(anomaly, score)
    return out


def section_groups(df: pd.DataFrame):
    """Row positions and labels of every labelled (dataset, machine, section), computed once."""
    labelled = df["state"].isin(("normal", "anomaly")).to_numpy()
    keys = df.loc[labelled, ["dataset", "machine", "section"]]
    groups = []
    for (dataset, machine, section), rows in keys.groupby(["dataset", "machine", "section"], sort=True).indices.items():
        positions = np.flatnonzero(labelled)[rows]
        groups.append(
            (
                (dataset, machine, int(section)),
                positions,
                df["domain"].to_numpy()[positions],
                df["state"].to_numpy()[positions],
            )
        )
    return groups


def section_table(df: pd.DataFrame, score_column: str, groups=None) -> pd.DataFrame:
    """Per (dataset, machine, section) metrics for labelled sections.

    ``df`` needs columns dataset, machine, section, domain, state and ``score_column``;
    sections whose clips are unlabelled (evaluation set without ground truth) are left out.
    ``groups`` (from :func:`section_groups`) saves regrouping when many columns are scored.
    """
    groups = section_groups(df) if groups is None else groups
    scores = df[score_column].to_numpy(dtype=np.float64)
    rows = [
        {"dataset": key[0], "machine": key[1], "section": key[2], **section_metrics(domain, state, scores[positions])}
        for key, positions, domain, state in groups
    ]
    columns = ["dataset", "machine", "section", *OFFICIAL_COLUMNS, *DOMAIN_COLUMNS, "auc_mixed"]
    return pd.DataFrame(rows, columns=columns)


def summarise(sections: pd.DataFrame) -> pd.DataFrame:
    """Harmonic means per (dataset, machine) and per dataset ('all' machines).

    Columns: official (all AUCs and pAUCs), auc (source+target AUCs), pauc, and
    hauc_domain (per-domain 2021-rule AUCs and pAUCs; a different metric), and hauc_mixed
    (AUC and pAUC of both domains together: the original recipe's ranking metric).
    """
    rows = []
    for dataset, per_set in sections.groupby("dataset", sort=True):
        groups = [(m, g) for m, g in per_set.groupby("machine", sort=True)] + [("all", per_set)]
        for machine, group in groups:
            aucs = group[["auc_source", "auc_target"]].to_numpy().ravel()
            paucs = group["pauc"].to_numpy()
            rows.append(
                {
                    "dataset": dataset,
                    "machine": machine,
                    "official": _hmean(np.concatenate([aucs, paucs])),
                    "auc": _hmean(aucs),
                    "pauc": _hmean(paucs),
                    "auc_source": _hmean(group["auc_source"]),
                    "auc_target": _hmean(group["auc_target"]),
                    "hauc_domain": _hmean(group[list(DOMAIN_COLUMNS)].to_numpy().ravel()),
                    "hauc_domain_source": _hmean(group[["dom_auc_source", "dom_pauc_source"]].to_numpy().ravel()),
                    "hauc_domain_target": _hmean(group[["dom_auc_target", "dom_pauc_target"]].to_numpy().ravel()),
                    "hauc_mixed": _hmean(group[["auc_mixed", "pauc"]].to_numpy().ravel()),
                    "sections": len(group),
                }
            )
    return pd.DataFrame(rows)


def _hmean(values):
    values = np.asarray(values, dtype=np.float64)
    if np.isnan(values).any():  # a section without both classes cannot be scored
        return np.nan
    return harmonic_mean(values, floor=MIN_METRIC_VALUE)
