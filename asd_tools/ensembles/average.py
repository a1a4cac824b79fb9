"""Ensembles over every score table present (the seed README's "ensemble several models" step).

A score table is ``<expdir>/<set>/<tag>/<checkpoint>/score.csv`` (one row per post-process) with
its ``sources.json`` (where its per-clip scores are); ``<set>`` is the machine set's folder
(``all``, or ``only_<a>+<b>``): an ensemble over some machine types reads and writes only
results over exactly those machine types.

* domain generalisation: each table's best ``per_table`` post-processes by a development metric
  are ranked together; the per-clip scores of the best ``top`` are averaged;
* domain specialisation: one such average over the post-processes best on the source domain,
  one over those best on the target domain, each z-scored per section, blended per clip by
  the target probability w: (1 - w) * source + w * target.

Two variants (:data:`DG_VARIANTS`, :data:`DS_VARIANTS`), each written under its own name:

* ``original`` — what the original recipe's ``local/domain_generalization_ave.py`` and
  ``local/domain_specialization_ave.py`` ran: ONE member list for every machine type, ranked on
  the development score over all machine types (generalisation: 4 per experiment, top 3, by the
  mixed-domain hAUC; specialisation: 6 per experiment, top 20, by the per-domain hAUC; an
  experiment's interval checkpoints form one table, its best-loss checkpoint is left out);
  members z-scored per section over the test clips; sigmoid temperature 0.15 for w;
* ``per_machine`` — this project's first version: members chosen per machine type
  (generalisation: 5 per scored checkpoint, top 3, by the official score; specialisation: 20 per
  scored checkpoint, top 20, by the official AUC of the domain), used as stored (z-scored per
  section by the cross-fitted normal reference scores); temperature 1.0.

The result is written as an ordinary experiment (``<expdir>/<machine>/<name>/average/scores.csv``,
``<name>`` carrying the set's suffix for a subset), scored with the shared scoring module, and
its variant recorded in ``variant.json`` beside the scores: an ensemble never replaces another
variant's output of the same name unless asked to.
"""

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from asd_tools.artefacts import BEST, CLIP_SCORES, checkpoint_name
from asd_tools.provenance import FORMAT, OtherFormatError, check_format
from asd_tools.scoring.choice import eligible
from asd_tools.scoring.report import (
    FULL_SET,
    SOURCES,
    machine_set_name,
    results_dir,
    score_experiment,
    score_line,
)
from asd_tools.utils import atomic_path, atomic_write_text, write_csv

ENSEMBLE_PREFIX = "ensemble_"
CHECKPOINT = "average"
KEYS = ["clip_id", "subset"]
RECORD = "variant.json"  # the settings of an ensemble's or the domain weights' output (with the record FORMAT)
RERUN_VARIANT = "re-run it with --overwrite, or give another --name / --outdir"
DOMAINS = ("source", "target")
SELECTIONS = ("global", "per_machine")
ZSCORES = ("test", "reference")
# What one "table" of the per-table cut is: every interval checkpoint of an experiment together
# (the original's exp/all/<tag>/score*.csv, concatenated by local/scoring.sh, which left the
# best-loss checkpoint out), or each scored checkpoint on its own.
GROUPINGS = ("experiment", "checkpoint")
BEST_CHECKPOINT = checkpoint_name(BEST)  # the folder of the best checkpoint's embeddings and scores


@dataclass(frozen=True)
class EnsembleVariant:
    """How an ensemble picks and scales its members.

    ``selection``: ``global`` ranks on the development column over all machine types
    (``dev_<metric>``) and uses the one member list for every machine type; ``per_machine``
    ranks each machine type on its own column (``dev_<machine>_<metric>``).
    ``rank_by``: the leaderboard metric (``{domain}`` is filled in by the specialisation).
    ``zscore``: ``test`` standardises every member (and the specialisation's two averages) per
    section by the mean/std of the section's test clips; ``reference`` uses the members as stored
    (the detector stage z-scored them by the section's normal reference scores) and
    standardises the specialisation's averages by their reference rows.
    ``tables``: what the per-table cut ``per_table`` applies to (:data:`GROUPINGS`).
    ``div``: sigmoid temperature of the target probability (specialisation only).
    """

    selection: str
    rank_by: str
    per_table: int
    top: int
    zscore: str
    tables: str = "checkpoint"
    div: Optional[float] = None

    def __post_init__(self):
        for value, options, key in (
            (self.selection, SELECTIONS, "selection"),
            (self.zscore, ZSCORES, "zscore"),
            (self.tables, GROUPINGS, "tables"),
        ):
            if value not in options:
                raise ValueError(f"{key} '{value}' is not one of {', '.join(options)}")
        if self.per_table < 1 or self.top < 1:
            raise ValueError("per_table and top must be at least 1")
        if self.div is not None and self.div <= 0:
            raise ValueError("the sigmoid temperature div must be positive")


DG_VARIANTS = {
    # local/domain_generalization_ave.py: n_top = 4 per score table by dev_hauc (iloc[:4]),
    # the n_mix = 3 best of them overall, for every machine type; members z-scored at inference.
    "original": EnsembleVariant("global", "hauc_mixed", per_table=4, top=3, zscore="test", tables="experiment"),
    "per_machine": EnsembleVariant("per_machine", "official", per_table=5, top=3, zscore="reference"),
}
DS_VARIANTS = {
    # local/domain_specialization_ave.py: n_top = 5 but .loc[:5] keeps 6 rows per table, by
    # dev_<domain>_hauc; n_mix = 20 overall; weights is_target_weight4_div0.15.csv.
    "original": EnsembleVariant(
        "global", "hauc_domain_{domain}", per_table=6, top=20, zscore="test", tables="experiment", div=0.15
    ),
    "per_machine": EnsembleVariant("per_machine", "auc_{domain}", per_table=20, top=20, zscore="reference", div=1.0),
}


def variant_from_args(presets: dict, args) -> EnsembleVariant:
    """The preset ``args.variant`` with the options given on the command line (not None) applied."""
    base = presets[args.variant]
    keys = ("selection", "rank_by", "per_table", "top", "zscore", "tables", "div")
    changes = {k: getattr(args, k, None) for k in keys}
    return replace(base, **{k: v for k, v in changes.items() if v is not None})


def add_variant_arguments(p, presets: dict, names: dict) -> None:
    """``--variant`` and the options that override one of its settings (unset: the variant's)."""

    def per_variant(field):
        return "unset: the variant's, " + ", ".join(f"{getattr(v, field)} ({k})" for k, v in presets.items())

    p.add_argument(
        "--variant",
        choices=sorted(presets),
        default="original",
        help="original: what the original recipe's script ran; per_machine: members chosen per machine type "
        "(this project's first version). Sets the defaults of the options below",
    )
    p.add_argument("--selection", choices=SELECTIONS, help=f"member ranking scope; {per_variant('selection')}")
    p.add_argument("--rank_by", help=f"leaderboard metric ranking the members; {per_variant('rank_by')}")
    p.add_argument("--per_table", type=int, help=f"best post-processes of each table; {per_variant('per_table')}")
    p.add_argument("--top", type=int, help=f"post-processes averaged; {per_variant('top')}")
    p.add_argument("--zscore", choices=ZSCORES, help=f"member standardisation per section; {per_variant('zscore')}")
    p.add_argument(
        "--tables",
        choices=GROUPINGS,
        help="experiment: the per-table cut over all interval checkpoints of an experiment (best-loss "
        f"checkpoint left out), checkpoint: over each scored checkpoint; {per_variant('tables')}",
    )
    p.add_argument(
        "--name", help="experiment name; unset: the variant's, " + ", ".join(f"{n} ({k})" for k, n in names.items())
    )
    p.add_argument("--overwrite", action="store_true", help="replace an output of this name made with other settings")


@dataclass
class ScoreTable:
    name: str  # <tag>/<checkpoint>
    board: pd.DataFrame
    sources: dict  # machine -> scores.csv path
    tag: str = ""  # the experiment
    checkpoint: str = ""


def ensemble_name(name, machines, spec) -> str:
    """The ensemble's experiment name: ``name`` over every machine type, ``name.<set>`` over a subset."""
    machine_set = machine_set_name(machines, spec)
    return name if machine_set == FULL_SET else f"{name}.{machine_set}"


def find_score_tables(expdir, machines, spec) -> list:
    """Every scored experiment over exactly ``machines`` (ensembles themselves excluded)."""
    tables = []
    folder = Path(expdir) / machine_set_name(machines, spec)
    for path in sorted(folder.glob("*/*/score.csv")):
        tag = path.parent.parent.name
        if tag.startswith(ENSEMBLE_PREFIX):
            continue
        sources = path.parent / SOURCES
        if not sources.exists():
            raise FileNotFoundError(f"{sources} is missing: re-score {path.parent} (job.sh --stage 2)")
        board = pd.read_csv(path)
        scores = json.loads(sources.read_text())["scores"]
        tables.append(ScoreTable(f"{tag}/{path.parent.name}", board, scores, tag, path.parent.name))
    if not tables:
        raise FileNotFoundError(
            f"no score tables under {folder}: run a system and its scoring over these machine types first "
            "(e.g. ./job.sh --machines ..., which scores at its stage 2)"
        )
    return tables


def rank_column(metric, machine=None) -> str:
    """The development leaderboard column: over all machine types, or of one machine type."""
    return f"dev_{metric}" if machine is None else f"dev_{machine}_{metric}"


def group_tables(tables, grouping="checkpoint") -> list:
    """Lists of score tables that the per-table cut applies to together (see :data:`GROUPINGS`)."""
    if grouping == "checkpoint":
        return [[table] for table in tables]
    groups = {}
    for table in tables:
        if table.checkpoint != BEST_CHECKPOINT:
            groups.setdefault(table.tag or table.name, []).append(table)
    if not groups:
        raise FileNotFoundError("no interval checkpoint is scored (the original left the best-loss one out)")
    return list(groups.values())


def top_postprocesses(groups, column, per_table, top, machine=None):
    """The ``top`` (table, post-process) pairs by ``column``: each group's best ``per_table``, ranked together.

    ``groups``: lists of tables (:func:`group_tables`). Ties keep the tables' order (sorted paths)
    and each table's row order. Post-processes that are (nearly) constant on a section (of ``machine``)
    are never members: see ``scoring.report.eligible``.
    """
    ranked, order = [], 0
    for group in groups:
        candidates = []
        for table in group:
            order += 1
            if column not in table.board:
                logging.warning(f"{table.name} has no '{column}': skipped (re-score it: job.sh --stage 2)")
                continue
            board = table.board[eligible(table.board, machine)]
            board = board.dropna(subset=[column]).reset_index(drop=True)
            candidates += [(row[column], order, i, table, row["postprocess"]) for i, row in board.iterrows()]
        candidates.sort(key=lambda r: (-r[0], r[1], r[2]))
        ranked += candidates[:per_table]
    if not ranked:
        raise KeyError(f"no score table has '{column}': score a system on these machine types first (job.sh)")
    ranked.sort(key=lambda r: (-r[0], r[1], r[2]))
    return [(table, name) for _, _, _, table, name in ranked[:top]]


def choose_members(tables, machines, metric, per_table, top, selection, grouping="checkpoint") -> dict:
    """machine -> members: one ranking over all machine types (``global``), or one per machine type."""
    if selection == "global":
        chosen = top_postprocesses(group_tables(tables, grouping), rank_column(metric), per_table, top)
        missing = [(t.name, m) for t, _ in chosen for m in machines if m not in t.sources]
        if missing:
            raise KeyError(f"score table {missing[0][0]} has no scores for {missing[0][1]}: re-score it")
        return {machine: chosen for machine in machines}
    members = {}
    for machine in machines:
        usable = group_tables([t for t in tables if machine in t.sources], grouping)
        members[machine] = top_postprocesses(usable, rank_column(metric, machine), per_table, top, machine)
    return members


def choose_variant_members(tables, machines, variant: "EnsembleVariant", domain=None) -> dict:
    """machine -> members chosen as ``variant`` says (``domain`` fills the specialisation's metric)."""
    metric = variant.rank_by.format(domain=domain) if domain else variant.rank_by
    return choose_members(tables, machines, metric, variant.per_table, variant.top, variant.selection, variant.tables)


def zscore_per_section(scores: pd.DataFrame, manifest: pd.DataFrame, column, basis) -> pd.Series:
    """Standardise ``column`` per section by the mean/std (ddof 0) of its ``basis`` rows.

    ``basis``: ``test`` (the section's test clips, as the original recipe did: over development
    and evaluation clips alike, since a section is in one of them) or ``reference`` (the section's
    normal training clips scored out-of-fold). Every row of the section gets the same map.
    """
    sections = manifest.loc[scores["clip_id"], "section"].to_numpy()
    subset = scores["subset"].to_numpy()
    values = scores[column].to_numpy(dtype=np.float64)
    out = values.copy()
    for section in np.unique(sections):
        rows = sections == section
        basis_values = values[rows & (subset == basis)]
        basis_values = basis_values[np.isfinite(basis_values)]
        if basis_values.size == 0:
            raise ValueError(f"section {section:02d} has no {basis} scores in '{column}' to standardise by")
        out[rows] = (values[rows] - basis_values.mean()) / (basis_values.std() + 1e-12)
    return pd.Series(out, index=scores.index)


def average_scores(chosen, machine, manifest=None, zscore="reference") -> pd.DataFrame:
    """Mean of the chosen columns, aligned on clip and subset (``zscore="test"``: each standardised first)."""
    frames = []
    for table, column in chosen:
        scores = pd.read_csv(table.sources[machine], usecols=KEYS + [column])
        if zscore == "test":
            scores[column] = zscore_per_section(scores, manifest, column, "test")
        frames.append(scores.set_index(KEYS)[column].rename(f"{table.name}:{column}"))
    merged = pd.concat(frames, axis=1)
    return merged.mean(axis=1, skipna=True).rename("ensemble").reset_index()


def generalization(tables, machine, variant: EnsembleVariant, manifest=None, members=None):
    """(scores, members) of the domain generalisation average for one machine type.

    ``members``: the chosen (table, post-process) pairs; chosen per ``variant`` when not given.
    """
    if members is None:
        members = choose_variant_members(tables, [machine], variant)[machine]
    return average_scores(members, machine, manifest, variant.zscore), members


def specialization(tables, machine, manifest, target_prob: pd.Series, variant: EnsembleVariant, members=None):
    """Blend of a source-specialised and a target-specialised average by the target probability.

    ``target_prob``: clip_id -> P(target) for test clips; reference (training) clips use their
    known domain (0 for source, 1 for target). ``members``: domain -> chosen pairs (chosen per
    ``variant`` when not given). Returns (scores, every member).
    """
    averages, chosen_all = [], []
    for domain in DOMAINS:
        if members is None:
            chosen = choose_variant_members(tables, [machine], variant, domain)[machine]
        else:
            chosen = members[domain]
        averages.append(average_scores(chosen, machine, manifest, variant.zscore).rename(columns={"ensemble": domain}))
        chosen_all += chosen
    # Members may score different reference clips (inlier sets differ): keep the rows both have.
    scores = averages[0].merge(averages[1], on=KEYS, how="inner")
    parts = {domain: zscore_per_section(scores, manifest, domain, variant.zscore) for domain in DOMAINS}
    known = (manifest.loc[scores["clip_id"], "domain"].to_numpy() == "target").astype(float)
    w = np.where(scores["subset"] == "test", scores["clip_id"].map(target_prob).to_numpy(dtype=float), known)
    if np.isnan(w).any():
        missing = scores.loc[np.isnan(w), "clip_id"].iloc[0]
        raise KeyError(f"no target probability for {missing}: run local/get_domain_classifier_weight.py first")
    scores["ensemble"] = (1 - w) * parts["source"] + w * parts["target"]
    return scores[KEYS + ["ensemble"]], chosen_all


def member_names(chosen) -> list:
    return [f"{table.name}:{column}" for table, column in chosen]


def read_variant(folder, rerun=RERUN_VARIANT) -> Optional[dict]:
    """The settings recorded in ``folder/variant.json`` (None when there is none); a record of another
    format raises ``OtherFormatError`` naming ``rerun``."""
    path = Path(folder) / RECORD
    if not path.exists():
        return None
    return check_format(path, json.loads(path.read_text()), rerun)["settings"]


def check_variant(folder, settings: dict, overwrite=False, what="ensemble") -> None:
    """Refuse to replace an output made with other settings (unless ``overwrite``).

    ``folder/variant.json`` records the settings of the output there (written last); an output
    without it (a run that did not finish) is replaced with a warning.
    """
    try:
        old = read_variant(folder)
    except OtherFormatError:
        if not overwrite:
            raise
        logging.warning(f"replacing {folder} (written by another asd_tools format; --overwrite)")
        return
    if old is None:
        if Path(folder).exists() and any(Path(folder).iterdir()):
            logging.warning(f"{folder} has no {RECORD} (a run that did not finish): replacing it")
        return
    if old != settings and not overwrite:
        raise FileExistsError(
            f"{folder} holds a {what} made with other settings ({json.dumps(old)}); this run is "
            f"{json.dumps(settings)}. Give another --name (or --outdir) to keep both, or --overwrite to replace it"
        )
    if old != settings:
        logging.warning(f"replacing {folder} (settings were {json.dumps(old)})")


def write_record(folder, settings: dict, **extra) -> None:
    """Record the settings an output was made with (written last, after the outputs)."""
    record = {"format": FORMAT, "settings": settings, **extra}
    atomic_write_text(Path(folder) / RECORD, json.dumps(record, indent=2))


def write_ensemble(expdir, name, machine, scores: pd.DataFrame, chosen, settings=None) -> Path:
    """Save an ensemble as an ordinary experiment folder and record its members (and variant)."""
    outdir = Path(expdir) / machine / name / CHECKPOINT
    write_csv(scores[KEYS + ["ensemble"]], outdir / CLIP_SCORES)
    members = member_names(chosen)
    with atomic_path(outdir / "members.json") as tmp:
        Path(tmp).write_text(json.dumps({"settings": settings, "members": members}, indent=2))
    logging.info(f"{machine}: {name} of {len(members)} post-processes -> {outdir}")
    return outdir


def variant_settings(variant_name: str, variant: EnsembleVariant, **extra) -> dict:
    """What an ensemble output was made with: the preset's name and every setting."""
    settings = {"variant": variant_name, **asdict(variant), **extra}
    return {k: v for k, v in settings.items() if v is not None}


def describe(settings: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in settings.items())


def score_ensemble(files, manifest, expdir, machines, name, settings=None, members=None, *, spec) -> str:
    """Score the ensemble's per-machine tables with the shared module (tables, figures, report.md).

    ``manifest`` carries the known evaluation labels (``ground_truth.label_evaluation_clips``);
    ``settings`` (the variant) and ``members`` (machine -> names) go into ``variant.json``.
    """
    outdir = results_dir(expdir, machines, name, spec) / CHECKPOINT
    _, summary, coverage = score_experiment(files, manifest, outdir, name, postprocess="ensemble", spec=spec)
    if settings is not None:
        write_record(outdir, settings, members=members or {})
    return f"{score_line(name, summary, coverage)} -> {outdir / 'score.md'}"
