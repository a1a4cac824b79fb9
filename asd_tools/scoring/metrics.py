"""The official DCASE Task 2 scores of every year, and the seeds' per-domain hAUC as a second metric.

Official since 2022 (``source_target_hmean``; per machine type m and section n):
  AUC source = source-domain normal clips against all anomalous clips of the section,
  AUC target = target-domain normal clips against all anomalous clips of the section,
  pAUC       = all clips, FPR cut at 0.1, McClish-standardised (sklearn ``max_fpr``);
official score = harmonic mean of all these values over the machine types and sections
of one set (dev or eval), each clamped below at 2.2e-16.

Official in 2021 (``per_domain_hmean``): AUC and pAUC per section *and domain*, each on that
domain's clips only (the per-domain columns below); harmonic mean of all of them, clamped likewise.

2020 (``per_id_mean``): AUC and pAUC per machine ID on all its clips; the evaluator reports their
arithmetic means per machine type and no single score, so the overall figure here is the arithmetic
mean of every ID's AUC and pAUC (a convention, not an official number).

Per-domain hAUC (the 2021 rule that the seed recipes print; not the official score):
AUC and pAUC computed on one domain's normal and anomalous clips only.

Mixed-domain hAUC (the original System 1 recipe's ``dev_hauc``, which ranked its ensemble members;
not the official score): AUC and pAUC on all clips of a section, both domains together.
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

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
    ranks = average_ranks(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_ranks(values) -> np.ndarray:
    """Ranks 1..n, ties sharing their mean rank (scipy's ``rankdata``, without its per-call overhead:
    the leaderboard ranks every post-process on every section). Ranks are exact halves, so the sums
    above are exact and equal to scipy's."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.concatenate(([True], ordered[1:] != ordered[:-1]))  # first position of each run of equal values
    run = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.append(first[1:], len(values)) - 1
    ranks = np.empty(len(values))
    ranks[order] = (first[run] + last[run]) / 2 + 1
    return ranks


def partial_roc_auc(y, s, max_fpr=PAUC_MAX_FPR) -> float:
    """McClish-standardised partial AUC up to ``max_fpr``, as sklearn's ``roc_auc_score(max_fpr=...)``."""
    y = np.asarray(y, dtype=bool)
    if y.all() or not y.any():
        return np.nan
    order = np.argsort(-np.asarray(s, dtype=np.float64), kind="mergesort")
    scores, hits = np.asarray(s, dtype=np.float64)[order], y[order]
    last_of_value = np.append(np.flatnonzero(np.diff(scores)), len(scores) - 1)  # one ROC point per distinct score
    tps = np.cumsum(hits)[last_of_value]
    fps = (last_of_value + 1) - tps
    tpr, fpr = np.concatenate(([0.0], tps / tps[-1])), np.concatenate(([0.0], fps / fps[-1]))
    stop = np.searchsorted(fpr, max_fpr, "right")
    tpr_cut = np.interp(max_fpr, fpr[stop - 1 : stop + 1], tpr[stop - 1 : stop + 1])
    area = np.trapezoid(np.append(tpr[:stop], tpr_cut), np.append(fpr[:stop], max_fpr))
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


class _Columns:
    """Some rows of a section table as numpy columns: ``group["a"]`` one column, ``group[["a", "b"]]``
    a (rows, columns) array, as a DataFrame's ``to_numpy()`` would give them (a DataFrame per group cost
    the leaderboard most of its time)."""

    def __init__(self, columns: dict, rows: np.ndarray):
        self.columns, self.rows = columns, rows

    def __getitem__(self, names):
        if isinstance(names, str):
            return self.columns[names][self.rows]
        return np.stack([self.columns[name][self.rows] for name in names], axis=1)


def _columns(group: _Columns, columns) -> np.ndarray:
    """The values of ``columns`` in ``group``, row by row (the order a DataFrame's ``to_numpy().ravel()``
    gives)."""
    return group[list(columns)].ravel()


@dataclass(frozen=True)
class OfficialRule:
    """One year's official score over a group of sections: the score, its AUC part and its pAUC part."""

    auc_columns: tuple
    pauc_columns: tuple
    average: Callable  # harmonic (clamped) or arithmetic mean
    title: str  # what the score is, in one sentence, for the score tables

    def figures(self, group) -> dict:
        aucs, paucs = _columns(group, self.auc_columns), _columns(group, self.pauc_columns)
        return {
            "official": self.average(np.concatenate([aucs, paucs])),
            "auc": self.average(aucs),
            "pauc": self.average(paucs),
        }


def _mean(values):
    values = np.asarray(values, dtype=np.float64)
    return np.nan if values.size == 0 or np.isnan(values).any() else float(values.mean())


OFFICIAL_RULES = {
    "source_target_hmean": OfficialRule(
        ("auc_source", "auc_target"),
        ("pauc",),
        lambda v: _hmean(v),
        "Harmonic mean over machine types and sections of AUC source, AUC target and pAUC "
        "(AUC per domain = that domain's normal clips against all anomalies of the section).",
    ),
    "per_domain_hmean": OfficialRule(
        ("dom_auc_source", "dom_auc_target"),
        ("dom_pauc_source", "dom_pauc_target"),
        lambda v: _hmean(v),
        "Harmonic mean over machine types, sections and domains of AUC and pAUC, each computed on "
        "that domain's normal and anomalous clips only.",
    ),
    "per_id_mean": OfficialRule(
        ("auc_mixed",),
        ("pauc",),
        _mean,
        "Arithmetic mean over machine IDs of AUC and pAUC on all of an ID's test clips; the evaluator "
        "reports these means per machine type and no single overall score (the overall row is a convention).",
    ),
}


def official_rule(metric: str) -> OfficialRule:
    if metric not in OFFICIAL_RULES:
        raise ValueError(f"unknown official metric '{metric}': choose one of {', '.join(OFFICIAL_RULES)}")
    return OFFICIAL_RULES[metric]


def summarise(sections: pd.DataFrame, metric: str = "source_target_hmean") -> pd.DataFrame:
    """Means per (dataset, machine) and per dataset ('all' machines).

    Columns: official, auc and pauc by the year's ``metric`` (``OFFICIAL_RULES``; since 2022: all
    AUCs and pAUCs, the source+target AUCs, the pAUCs), and
    hauc_domain (per-domain 2021-rule AUCs and pAUCs; a different metric), and hauc_mixed
    (AUC and pAUC of both domains together: the original recipe's ranking metric).
    """
    rule = official_rule(metric)
    rows = []
    columns = {name: sections[name].to_numpy() for name in sections.columns}
    datasets, machines = columns["dataset"], columns["machine"]
    for dataset in sorted(set(datasets)):
        in_set = datasets == dataset
        groups = [(m, in_set & (machines == m)) for m in sorted(set(machines[in_set]))] + [("all", in_set)]
        for machine, rows_of in groups:
            group = _Columns(columns, rows_of)
            rows.append(
                {
                    "dataset": dataset,
                    "machine": machine,
                    **rule.figures(group),
                    "auc_source": _hmean(group["auc_source"]),
                    "auc_target": _hmean(group["auc_target"]),
                    "hauc_domain": _hmean(_columns(group, DOMAIN_COLUMNS)),
                    "hauc_domain_source": _hmean(_columns(group, ("dom_auc_source", "dom_pauc_source"))),
                    "hauc_domain_target": _hmean(_columns(group, ("dom_auc_target", "dom_pauc_target"))),
                    "hauc_mixed": _hmean(_columns(group, ("auc_mixed", "pauc"))),
                    "sections": int(rows_of.sum()),
                }
            )
    return pd.DataFrame(rows)


def _hmean(values):
    values = np.asarray(values, dtype=np.float64)
    if np.isnan(values).any():  # a section without both classes cannot be scored
        return np.nan
    return harmonic_mean(values, floor=MIN_METRIC_VALUE)
