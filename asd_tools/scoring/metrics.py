"""The official DCASE 2022 Task 2 score, and the seeds' per-domain hAUC as a second metric.

Official (per machine type m and section n, 200 test clips):
  AUC source = source-domain normal clips against all anomalous clips of the section,
  AUC target = target-domain normal clips against all anomalous clips of the section,
  pAUC       = all clips, FPR cut at 0.1, McClish-standardised (sklearn ``max_fpr``);
official score = harmonic mean of all these values over the machine types and sections
of one set (dev or eval), each clamped below at 2.2e-16.

Per-domain hAUC (the 2021 rule that the seed recipes print; not the official score):
AUC and pAUC computed on one domain's normal and anomalous clips only.
"""

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from asd_tools.constants import MIN_METRIC_VALUE, PAUC_MAX_FPR
from asd_tools.utils import harmonic_mean

OFFICIAL_COLUMNS = ("auc_source", "auc_target", "pauc")
DOMAIN_COLUMNS = ("dom_auc_source", "dom_pauc_source", "dom_auc_target", "dom_pauc_target")


def _auc(y, s, max_fpr=None):
    if len(np.unique(y)) < 2:
        return np.nan
    return float(roc_auc_score(y, s, max_fpr=max_fpr))


def section_metrics(domain, state, score) -> dict:
    """All metrics of one section. ``domain``/``state`` are string arrays, ``score`` floats."""
    domain, state, score = np.asarray(domain), np.asarray(state), np.asarray(score, dtype=np.float64)
    if not np.all(np.isfinite(score)):
        raise ValueError("anomaly scores contain NaN or Inf")
    anomaly = state == "anomaly"
    out = {}
    for d in ("source", "target"):
        keep = anomaly | ((domain == d) & (state == "normal"))
        out[f"auc_{d}"] = _auc(anomaly[keep], score[keep])
        in_domain = domain == d
        out[f"dom_auc_{d}"] = _auc(anomaly[in_domain], score[in_domain])
        out[f"dom_pauc_{d}"] = _auc(anomaly[in_domain], score[in_domain], PAUC_MAX_FPR)
    out["pauc"] = _auc(anomaly, score, PAUC_MAX_FPR)
    return out


def section_table(df: pd.DataFrame, score_column: str) -> pd.DataFrame:
    """Per (dataset, machine, section) metrics for labelled sections.

    ``df`` needs columns dataset, machine, section, domain, state and ``score_column``;
    sections whose clips are unlabelled (evaluation set without ground truth) are left out.
    """
    labelled = df[df["state"].isin(("normal", "anomaly"))]
    rows = []
    for (dataset, machine, section), group in labelled.groupby(["dataset", "machine", "section"], sort=True):
        metrics = section_metrics(group["domain"], group["state"], group[score_column])
        rows.append({"dataset": dataset, "machine": machine, "section": int(section), **metrics})
    return pd.DataFrame(rows, columns=["dataset", "machine", "section", *OFFICIAL_COLUMNS, *DOMAIN_COLUMNS])


def summarise(sections: pd.DataFrame) -> pd.DataFrame:
    """Harmonic means per (dataset, machine) and per dataset ('all' machines).

    Columns: official (all AUCs and pAUCs), auc (source+target AUCs), pauc, and
    hauc_domain (per-domain 2021-rule AUCs and pAUCs; a different metric).
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
                    "hauc_domain": _hmean(group[list(DOMAIN_COLUMNS)].to_numpy().ravel()),
                    "hauc_domain_source": _hmean(group[["dom_auc_source", "dom_pauc_source"]].to_numpy().ravel()),
                    "hauc_domain_target": _hmean(group[["dom_auc_target", "dom_pauc_target"]].to_numpy().ravel()),
                    "sections": len(group),
                }
            )
    return pd.DataFrame(rows)


def _hmean(values):
    values = np.asarray(values, dtype=np.float64)
    if np.isnan(values).any():  # a section without both classes cannot be scored
        return np.nan
    return harmonic_mean(values, floor=MIN_METRIC_VALUE)
