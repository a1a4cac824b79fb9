"""Score an experiment: per-clip score tables -> official score tables and submission files.

Input: one ``scores.csv`` per machine type (columns ``clip_id``, ``subset`` and one column
per post-process; rows of subset ``test`` are test clips, rows of subset ``reference`` are
normal training clips scored out-of-fold). Labels come from the manifest.

Output folder:
  score.csv      one row per post-process: official and per-domain scores, dev and eval
  sections.csv   per-section metrics of the chosen post-process
  summary.csv    per-machine harmonic means of the chosen post-process
  score.md       readable tables (official score first, per-domain hAUC second)
  teams/<team>/<system>/  official submission files for the chosen post-process
"""

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from asd_tools.artefacts import BEST, BOARD, BOARD_REPORT, checkpoint_name
from asd_tools.constants import MIN_METRIC_VALUE
from asd_tools.datasets.spec import DATASETS, unknown_machines_line
from asd_tools.scoring.choice import (
    CHANCE,
    DEGENERATE,
    PARTIAL,
    choice_lines,
    choose_postprocess,
    degenerate_sections,
    eligible,
    rank_column,
    section_rows,
)
from asd_tools.scoring.metrics import official_rule, section_groups, section_table, summarise
from asd_tools.scoring.plots import experiment_figures
from asd_tools.scoring.submission import gamma_threshold, write_submission
from asd_tools.utils import atomic_dir, atomic_write_text, harmonic_mean, write_csv

META_COLUMNS = ("clip_id", "subset")
SOURCES = "sources.json"
REPORT = "report.md"  # the score tables with the figures, readable on GitHub
RESULT = "result.json"  # the chosen post-process and what was scored (read by bin/compare)
LABEL_COLUMNS = ["machine", "dataset", "section", "domain", "state", "file_name"]
FULL_SET = "all"
# Leaderboard columns per set and machine type (and over all machine types): the official score
# and AUC per domain rank today's ensembles; the original recipe's ensembles ranked by the
# mixed-domain hAUC (generalisation) and the per-domain hAUC (specialisation).
RANK_METRICS = ("official", "auc_source", "auc_target", "hauc_mixed", "hauc_domain_source", "hauc_domain_target")


def machine_set_name(machines, spec) -> str:
    """Folder name of the results over ``machines``: "all" for every machine type of the data set
    ``spec``, else "only_<a>+<b>".

    Results over different sets of machine types never share a folder (or a submission).
    """
    known = spec.machines()
    machines = list(machines)
    if not machines:
        raise ValueError("no machine types given")
    unknown = sorted(set(machines) - set(known))
    if unknown:
        raise ValueError(unknown_machines_line(unknown, known, f" in {spec.name}"))
    if len(set(machines)) != len(machines):
        raise ValueError(f"machine types given twice: {' '.join(machines)}")
    if set(machines) == set(known):
        return FULL_SET
    return "only_" + "+".join(m for m in known if m in machines)


def checkpoint_order(names) -> list:
    """Checkpoint names as tables list them: the best one first, then by epoch (shorter names first)."""
    return sorted(names, key=lambda name: (name != checkpoint_name(BEST), len(name), name))


def results_dir(expdir, machines, tag, spec) -> Path:
    """``<expdir>/<machine set>/<tag>``: the score tables of one experiment over ``machines``."""
    return Path(expdir) / machine_set_name(machines, spec) / tag


def label_coverage(test: pd.DataFrame, spec) -> dict:
    """Per set (dev/eval) with test clips: (labelled sections, sections of the set) as (machine, section) lists."""
    coverage = {}
    for dataset, part in test.groupby("dataset"):
        expected = [(m, s) for m in machines_of(part) for s in spec.units(m, dataset)]
        known = part["state"].isin(("normal", "anomaly"))
        labelled = set(zip(part.loc[known, "machine"], part.loc[known, "section"]))
        coverage[dataset] = ([key for key in expected if key in labelled], expected)
    return coverage


def mark_partial_sets(scores: pd.DataFrame, coverage: dict) -> pd.DataFrame:
    """Rename a set whose sections are only partly labelled (eval -> eval_partial).

    Its figures then carry the suffix in every table and column (``eval_partial_official``), so
    that a score over some sections is never read as the set's official score.
    """
    partial = [d for d, (labelled, expected) in coverage.items() if labelled and len(labelled) < len(expected)]
    if not partial:
        return scores
    scores = scores.copy()
    scores["dataset"] = scores["dataset"].map(lambda d: d + PARTIAL if d in partial else d)
    return scores


def read_scores(score_files, manifest: pd.DataFrame) -> pd.DataFrame:
    """Concatenate per-machine score tables and join the manifest's labels."""
    frames = []
    for path in score_files:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run the detector stage for its machine type first")
        frames.append(pd.read_csv(path))
    scores = pd.concat(frames, ignore_index=True)
    unknown = set(scores["clip_id"]) - set(manifest.index)
    if unknown:
        raise KeyError(f"{len(unknown)} scored clips are not in the manifest, e.g. {sorted(unknown)[:3]}")
    labels = manifest.loc[scores["clip_id"], LABEL_COLUMNS].reset_index(drop=True)
    return pd.concat([labels, scores], axis=1)


def machines_of(scores: pd.DataFrame):
    """Machine types in the order their score files were read."""
    return list(dict.fromkeys(scores["machine"]))


def postprocess_columns(scores: pd.DataFrame):
    return [c for c in scores.columns if c not in META_COLUMNS and c not in LABEL_COLUMNS]


def leaderboard(scores: pd.DataFrame, spec) -> pd.DataFrame:
    """One row per post-process: official score (the year's rule) and per-domain hAUC per set and machine.

    Rows are ranked by the development official score, eligible post-processes first (see
    ``MIN_DISTINCT_SHARE``); column ``degenerate`` names the sections that make a row ineligible.
    """
    test = scores[scores["subset"] == "test"].reset_index(drop=True)
    groups, sections = section_groups(test), section_rows(test)
    rows = []
    for column in postprocess_columns(scores):
        summary = summarise(section_table(test, column, groups), spec.metric)
        row = {"postprocess": column, DEGENERATE: ";".join(degenerate_sections(test, column, sections))}
        for r in summary.to_dict("records"):
            prefix = f"{r['dataset']}" if r["machine"] == "all" else f"{r['dataset']}_{r['machine']}"
            for metric in RANK_METRICS:
                row[f"{prefix}_{metric}"] = r[metric]
            if r["machine"] == "all":
                row[f"{prefix}_hauc_domain"] = r["hauc_domain"]
        rows.append(row)
    board = pd.DataFrame(rows)
    rank_by = rank_column(board)
    if rank_by is None:
        raise ValueError("no labelled development test clips were scored: cannot rank post-processes")
    if rank_by != "dev_official":
        logging.warning("the development set is only partly labelled: post-processes are ranked on its labelled part")
    board = board.assign(_eligible=eligible(board))
    board = board.sort_values(["_eligible", rank_by], ascending=False, na_position="last", kind="stable")
    return board.drop(columns="_eligible").reset_index(drop=True)


def thresholds_for(scores: pd.DataFrame, column: str) -> dict:
    """Per machine type, the gamma threshold fitted to the reference (normal) scores."""
    reference = scores[(scores["subset"] == "reference")]
    out = {}
    for machine, group in reference.groupby("machine"):
        out[machine] = gamma_threshold(group[column].dropna().to_numpy())
    return out


def score_experiment(
    score_files, manifest, outdir, system="system", team="asd_tools", postprocess=None, figures=True, *, spec
):
    """Write every table and the submission files; return (chosen post-process, summary, coverage).

    ``spec`` is the data set's spec: its official metric and submission names.

    ``manifest`` carries the evaluation labels known so far (see ``ground_truth.label_evaluation_clips``).
    ``figures=False`` leaves the figures out of ``report.md`` (drawing them, the t-SNE map above
    all, costs about as much CPU time as the rest of the scoring).
    """
    outdir = Path(outdir)
    scores = read_scores(score_files, manifest)
    coverage = label_coverage(scores[scores["subset"] == "test"], spec)
    scores = mark_partial_sets(scores, coverage)
    board = leaderboard(scores, spec)
    best = choose_postprocess(board, postprocess)
    test = scores[scores["subset"] == "test"]
    sections = section_table(test, best)
    summary = summarise(sections, spec.metric)
    machines = machines_of(scores)
    write_csv(board, outdir / BOARD)
    # Where the per-clip scores came from: the ensembles read them through this record.
    atomic_write_text(
        outdir / SOURCES,
        json.dumps({"scores": {m: str(Path(f).resolve()) for m, f in zip(machines, score_files)}}, indent=2),
    )
    write_csv(sections, outdir / "sections.csv")
    write_csv(summary, outdir / "summary.csv")
    atomic_write_text(
        outdir / BOARD_REPORT, render_markdown(system, best, board, sections, summary, machines, coverage, spec)
    )
    result = {"system": system, "postprocess": best, "machines": machines}
    atomic_write_text(outdir / RESULT, json.dumps(result, indent=2) + "\n")
    sources = dict(zip(machines, score_files))
    chosen = test[[*META_COLUMNS, *LABEL_COLUMNS]].assign(score=test[best].to_numpy())  # not the wide table
    drawn = experiment_figures(chosen, "score", sources, manifest, outdir) if figures else {}
    atomic_write_text(outdir / REPORT, render_report(system, best, sections, summary, machines, coverage, drawn, spec))
    eval_test = test[test["dataset"].str.startswith("eval")]  # labelled or not: every evaluation clip
    if len(eval_test):
        # The whole submission folder is replaced at once: never files of two runs side by side.
        with atomic_dir(outdir / "teams" / team / system) as folder:
            chosen = eval_test[[*META_COLUMNS, *LABEL_COLUMNS]].assign(score=eval_test[best].to_numpy())
            files = write_submission(folder, chosen, thresholds_for(scores, best), spec.submission)
        logging.info(f"wrote {len(files)} submission files to {outdir / 'teams' / team / system}")
    logging.info(f"best post-process on dev: {best}; tables in {outdir}")
    return best, summary, coverage


def coverage_lines(machines, coverage, spec) -> list:
    """What a score table covers: its data set, machine types and, per set, the labelled sections."""
    known = spec.machines()
    count = f"{len(machines)} of the {len(known)}"
    lines = [
        f"Data set: {spec.title}. Machine types: {', '.join(machines)} "
        + (f"(all {len(known)})." if set(machines) == set(known) else f"({count}: a subset).")
    ]
    for dataset, (labelled, expected) in sorted(coverage.items()):
        if len(labelled) == len(expected):
            lines.append(f"{dataset}: all {len(expected)} sections labelled.")
            continue
        missing = ", ".join(f"{m} {s:02d}" for m, s in expected if (m, s) not in labelled)
        if not labelled:
            lines.append(f"{dataset}: no section is labelled (no ground truth): not scored; missing: {missing}.")
        else:
            lines.append(
                f"**{dataset}: only {len(labelled)} of {len(expected)} sections are labelled**; its figures are "
                f"shown as `{dataset}{PARTIAL}` and are NOT the official {dataset} score. Missing: {missing}."
            )
    return lines


def score_line(name, summary, coverage) -> str:
    """One console line: the official score per set, partial sets marked with their labelled share."""
    overall = summary[summary["machine"] == "all"].set_index("dataset")["official"]
    parts = []
    for dataset, value in overall.items():
        labelled, expected = coverage.get(dataset.removesuffix(PARTIAL), ([], []))
        share = f" ({len(labelled)}/{len(expected)} sections labelled)" if dataset.endswith(PARTIAL) else ""
        parts.append(f"{dataset} {100 * value:.2f}{share}")
    unscored = [d for d, (labelled, _) in coverage.items() if not labelled]
    parts += [f"{d} not scored (no ground truth)" for d in unscored]
    return f"{name}: official score " + ", ".join(parts) + f" (chance {100 * CHANCE:.0f})"


def with_chance(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with a column ``vs chance``: the official score minus chance, in signed points."""
    distance = table["official"].map(lambda v: "n/a" if pd.isna(v) else f"{100 * (v - CHANCE):+.2f}")
    return table.assign(**{"vs chance": distance})


# ---------------------------------------------------------------------------- markdown
def markdown_table(df: pd.DataFrame, percent_columns=()) -> str:
    """A GitHub-markdown table; ``percent_columns`` are printed as percentages (2 decimals)."""

    def cell(column, value):
        if column in percent_columns:
            return "n/a" if pd.isna(value) else f"{100 * value:.2f}"
        return str(value)

    header = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---" if c not in percent_columns else "---:" for c in df.columns) + "|"
    body = ["| " + " | ".join(cell(c, v) for c, v in zip(df.columns, row)) + " |" for row in df.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def domain_auc_table(sections: pd.DataFrame):
    """Rows source_dev, source_eval, target_dev, target_eval; columns AUC and <machine>_auc (harmonic means)."""
    machines = sorted(sections["machine"].unique())
    rows = []
    for domain in ("source", "target"):
        for dataset in ("dev", "eval"):
            part = sections[sections["dataset"] == dataset]
            if part.empty:
                continue
            row = {"": f"{domain}_{dataset}", "AUC": _hmean_column(part[f"dom_auc_{domain}"])}
            for machine in machines:
                row[f"{machine}_auc"] = _hmean_column(part.loc[part["machine"] == machine, f"dom_auc_{domain}"])
            rows.append(row)
    table = pd.DataFrame(rows)
    return table, set(table.columns) - {""}


def _hmean_column(values):
    values = np.asarray(values, dtype=np.float64)
    return np.nan if values.size == 0 or np.isnan(values).any() else harmonic_mean(values, MIN_METRIC_VALUE)


def section_columns(spec) -> tuple:
    """The per-section figures the year's official score is made of."""
    rule = official_rule(spec.metric)
    return rule.auc_columns + rule.pauc_columns


def render_markdown(system, best, board, sections, summary, machines, coverage, spec) -> str:
    metric_cols = (
        "official",
        "auc",
        "pauc",
        "auc_source",
        "auc_target",
        "hauc_domain",
        "hauc_domain_source",
        "hauc_domain_target",
    )
    overall = with_chance(summary[summary["machine"] == "all"][["dataset", "official", "auc", "pauc"]])
    per_machine = with_chance(summary[summary["machine"] != "all"][["dataset", "machine", "official", "auc", "pauc"]])
    per_section = sections[["dataset", "machine", "section", *section_columns(spec)]]
    domain = summary[summary["machine"] == "all"][
        ["dataset", "hauc_domain_source", "hauc_domain_target", "hauc_domain"]
    ]
    top = board.head(10)
    sets = [d + suffix for d in DATASETS for suffix in ("", PARTIAL)]
    top_cols = ["postprocess"] + [c for c in [f"{d}_official" for d in sets] + ["dev_hauc_domain"] if c in top]
    top_cols += [DEGENERATE] if DEGENERATE in top else []
    parts = [
        f"# {system}\n",
        *(f"{line}\n" for line in coverage_lines(machines, coverage, spec)),
        f"Post-process chosen by the development official score: `{best}`.\n",
        *(f"{line}\n" for line in choice_lines(board, best)),
        f"## Official {spec.title} score (%; chance = {100 * CHANCE:.0f})\n",
        official_rule(spec.metric).title + "\n",
        markdown_table(overall, metric_cols),
        "\n### Per machine type\n",
        markdown_table(per_machine, metric_cols),
        "\n### Per section\n",
        markdown_table(per_section, {*metric_cols, *section_columns(spec)}),
        "\n## Per-domain hAUC (%) — the 2021 rule"
        + ("" if spec.metric == "per_domain_hmean" else ", the seeds' metric, NOT the official score")
        + "\n",
        "AUC and pAUC on one domain's normal and anomalous clips only, harmonic means.\n",
        markdown_table(domain, metric_cols),
        "\n## Per-domain AUC by machine type (%) — the DG-Mix README's table, 2021 rule\n",
        "AUC of one domain's normal and anomalous clips (no pAUC), harmonic mean over sections "
        "(`AUC`: over all machine types too).\n",
        markdown_table(*domain_auc_table(sections)),
        "\n## Top post-processes (by development official score, %; set-aside ones last)\n",
        markdown_table(top[top_cols], set(top_cols) - {"postprocess", DEGENERATE}),
    ]
    return "\n".join(parts)


def render_report(system, best, sections, summary, machines, coverage, figures, spec) -> str:
    """``report.md``: the official score, the per-section table and every figure, per machine type."""
    percent = {"official", "auc", "pauc", *section_columns(spec)}
    overall = with_chance(summary[summary["machine"] == "all"][["dataset", "official", "auc", "pauc"]])
    per_machine = with_chance(summary[summary["machine"] != "all"][["dataset", "machine", "official", "auc", "pauc"]])
    per_section = sections[["dataset", "machine", "section", *section_columns(spec)]]
    parts = [
        f"# Report: {system}\n",
        *(f"{line}\n" for line in coverage_lines(machines, coverage, spec)),
        f"Post-process chosen by the development official score: `{best}`; every figure shows it. "
        "All tables: `score.md`.\n",
        f"## Official {spec.title} score (%; chance = {100 * CHANCE:.0f})\n",
        markdown_table(overall, percent),
        "\n## Per machine type\n",
        markdown_table(per_machine, percent),
        "\n## Per section\n",
        markdown_table(per_section, percent),
    ]
    if not figures:
        parts.append("\nFigures were not drawn (scored with `--figures false`).\n")
    for machine in machines:
        parts.append(f"\n## {machine}\n")
        for title, path in figures.get(machine, []):
            parts.append(f"### {title}\n\n![{machine}: {title}]({path})\n")
    return "\n".join(parts)
