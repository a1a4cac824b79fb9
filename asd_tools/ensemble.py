"""Ensembles over every score table present (the seed README's "ensemble several models" step).

A score table is ``<expdir>/<set>/<tag>/<checkpoint>/score.csv`` (one row per post-process) with
its ``sources.json`` (where its per-clip scores are); ``<set>`` is the machine set's folder
(``all``, or ``only_<a>+<b>``): an ensemble over some machine types reads and writes only
results over exactly those machine types. Per machine type:

* domain generalisation: each table's top post-processes by development official score are
  ranked together; the z-scored per-clip scores of the top ``top`` are averaged;
* domain specialisation: one such average over the top post-processes by development
  source AUC, one by target AUC, each z-scored per section by its normal reference scores,
  blended per clip by the target probability w: (1 - w) * source + w * target.

The result is written as an ordinary experiment (``<expdir>/<machine>/<name>/average/scores.csv``,
``<name>`` carrying the set's suffix for a subset) and scored with the shared scoring module.
"""

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from asd_tools.scoring.report import FULL_SET, SOURCES, machine_set_name, results_dir, score_experiment, score_line
from asd_tools.utils import atomic_path, write_csv

ENSEMBLE_PREFIX = "ensemble_"
CHECKPOINT = "average"
KEYS = ["clip_id", "subset"]


@dataclass
class ScoreTable:
    name: str  # <tag>/<checkpoint>
    board: pd.DataFrame
    sources: dict  # machine -> scores.csv path


def ensemble_name(name, machines) -> str:
    """The ensemble's experiment name: ``name`` over every machine type, ``name.<set>`` over a subset."""
    machine_set = machine_set_name(machines)
    return name if machine_set == FULL_SET else f"{name}.{machine_set}"


def find_score_tables(expdir, machines) -> list:
    """Every scored experiment over exactly ``machines`` (ensembles themselves excluded)."""
    tables = []
    folder = Path(expdir) / machine_set_name(machines)
    for path in sorted(folder.glob("*/*/score.csv")):
        tag = path.parent.parent.name
        if tag.startswith(ENSEMBLE_PREFIX):
            continue
        sources = path.parent / SOURCES
        if not sources.exists():
            raise FileNotFoundError(f"{sources} is missing: re-score {path.parent} (job.sh --stage 2)")
        board = pd.read_csv(path)
        tables.append(ScoreTable(f"{tag}/{path.parent.name}", board, json.loads(sources.read_text())["scores"]))
    if not tables:
        raise FileNotFoundError(
            f"no score tables under {folder}: run a system and its scoring over these machine types first "
            "(e.g. ./job.sh --machines ..., which scores at its stage 2)"
        )
    return tables


def top_postprocesses(tables, machine, metric, per_table, top):
    """(table, post-process) pairs with the best development ``metric`` for ``machine``."""
    column = f"dev_{machine}_{metric}"
    ranked = []
    for table in tables:
        if column not in table.board or machine not in table.sources:
            continue
        best = table.board.nlargest(per_table, column)
        ranked += [(row[column], table, row["postprocess"]) for _, row in best.iterrows()]
    if not ranked:
        raise KeyError(f"no score table has '{column}': score a system on {machine} first")
    ranked.sort(key=lambda r: -r[0])
    return [(table, name) for _, table, name in ranked[:top]]


def average_scores(chosen, machine) -> pd.DataFrame:
    """Mean of the chosen (already z-scored) columns, aligned on clip and subset."""
    frames = []
    for table, column in chosen:
        scores = pd.read_csv(table.sources[machine], usecols=KEYS + [column]).set_index(KEYS)[column]
        frames.append(scores.rename(f"{table.name}:{column}"))
    merged = pd.concat(frames, axis=1)
    return merged.mean(axis=1, skipna=True).rename("ensemble").reset_index()


def zscore_by_reference(scores: pd.DataFrame, manifest: pd.DataFrame, column="ensemble") -> pd.Series:
    """Z-score a column per section with the mean/std of its reference (normal training) rows."""
    sections = manifest.loc[scores["clip_id"], "section"].to_numpy()
    out = scores[column].to_numpy(dtype=np.float64).copy()
    for section in np.unique(sections):
        rows = sections == section
        ref = rows & (scores["subset"].to_numpy() == "reference")
        values = scores.loc[ref, column]
        out[rows] = (out[rows] - values.mean()) / (values.std(ddof=0) + 1e-12)
    return pd.Series(out, index=scores.index)


def write_ensemble(expdir, name, machine, scores: pd.DataFrame, chosen) -> Path:
    """Save an ensemble as an ordinary experiment folder and record its members."""
    outdir = Path(expdir) / machine / name / CHECKPOINT
    write_csv(scores[KEYS + ["ensemble"]], outdir / "scores.csv")
    members = [f"{table.name}:{column}" for table, column in chosen]
    with atomic_path(outdir / "members.json") as tmp:
        Path(tmp).write_text(json.dumps(members, indent=2))
    logging.info(f"{machine}: {name} of {len(members)} post-processes -> {outdir}")
    return outdir


def generalization(tables, machine, per_table=5, top=3):
    chosen = top_postprocesses(tables, machine, "official", per_table, top)
    return average_scores(chosen, machine), chosen


def specialization(tables, machine, manifest, target_prob: pd.Series, per_table=20, top=20):
    """Blend of a source-specialised and a target-specialised average by the target probability.

    ``target_prob``: clip_id -> P(target) for test clips; reference (training) clips use their
    known domain (0 for source, 1 for target).
    """
    averages, members = [], []
    for domain in ("source", "target"):
        chosen = top_postprocesses(tables, machine, f"auc_{domain}", per_table, top)
        averages.append(average_scores(chosen, machine).rename(columns={"ensemble": domain}))
        members += chosen
    # Members may score different reference clips (inlier sets differ): keep the rows both have.
    scores = averages[0].merge(averages[1], on=KEYS, how="inner")
    parts = {domain: zscore_by_reference(scores, manifest, column=domain) for domain in ("source", "target")}
    known = (manifest.loc[scores["clip_id"], "domain"].to_numpy() == "target").astype(float)
    w = np.where(scores["subset"] == "test", scores["clip_id"].map(target_prob).to_numpy(dtype=float), known)
    if np.isnan(w).any():
        missing = scores.loc[np.isnan(w), "clip_id"].iloc[0]
        raise KeyError(f"no target probability for {missing}: run local/get_domain_classifier_weight.py first")
    scores["ensemble"] = (1 - w) * parts["source"] + w * parts["target"]
    return scores[KEYS + ["ensemble"]], members


def plot_score_histograms(scores: pd.DataFrame, manifest: pd.DataFrame, path, title) -> None:
    """Histograms of test-clip scores, development vs evaluation set (normal / anomaly where known)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    test = scores[scores["subset"] == "test"]
    info = manifest.loc[test["clip_id"]]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharex=True)
    for ax, dataset in zip(axes, ("dev", "eval")):
        for state in ("normal", "anomaly", "unknown"):
            mask = (info["dataset"].to_numpy() == dataset) & (info["state"].to_numpy() == state)
            if mask.any():
                ax.hist(test["ensemble"].to_numpy()[mask], bins=30, alpha=0.6, label=state)
        ax.set_title(f"{title}: {dataset}")
        ax.set_xlabel("anomaly score (z)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def score_ensemble(files, manifest, expdir, machines, name) -> str:
    """Score the ensemble's per-machine tables with the shared module, plot, return a summary line.

    ``manifest`` carries the known evaluation labels (``ground_truth.label_evaluation_clips``).
    """
    outdir = results_dir(expdir, machines, name) / CHECKPOINT
    _, summary, coverage = score_experiment(files, manifest, outdir, name, postprocess="ensemble")
    scores = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    plot_score_histograms(scores, manifest, outdir / "score_histograms.png", name)
    return f"{score_line(name, summary, coverage)} -> {outdir / 'score.md'}"
