"""One experiment trained with several seeds: mean ± s.d. of the official score over the seeds.

``asd.sh --seeds "0 1 2"`` trains, embeds, detects and scores each seed as its own experiment
``<tag>/seed<N>``; the scoring stage then calls :func:`write_seed_tables`, which reads every seed's
results folder ``<results>/<tag>/seed<N>/<checkpoint>/`` and writes, beside the seed folders,

  seeds.csv   one row per checkpoint, selection, set (dev/eval) and machine type ("all": overall):
              mean, s.d. (n - 1), min, max, the per-seed values, and whether chance lies in their range
  seeds.md    the same as tables

Two selections of the post-process, because the choice on dev is itself fitted to the seed:
``chosen`` takes each seed's own choice (its score.md); ``fixed`` takes, for every seed, the one
post-process with the best mean development score over the seeds (eligible in every seed).
"""

from pathlib import Path

import numpy as np
import pandas as pd

from asd_tools.artefacts import BOARD
from asd_tools.scoring.choice import CHANCE, PARTIAL, eligible
from asd_tools.scoring.report import checkpoint_order, markdown_table
from asd_tools.utils import atomic_write_text, write_csv

SEED_PREFIX = "seed"  # the seed folders: <tag>/seed<N>
SEED_TABLE = "seeds.csv"
SEED_REPORT = "seeds.md"
VALUE_COLUMNS = ("mean", "sd", "min", "max")


def seed_folder(seed: int) -> str:
    return f"{SEED_PREFIX}{seed}"


def seed_tag(tag: str, seed: int) -> str:
    """The experiment name of one seed: its folders are ``<tag>/seed<N>`` wherever ``<tag>`` would be."""
    return f"{tag}/{seed_folder(seed)}"


def scored_checkpoints(folder: Path) -> set:
    return {p.parent.name for p in folder.glob("*/summary.csv")}


def seed_runs(tag_dir, seeds) -> dict:
    """seed -> its results folder; every seed must have been scored."""
    tag_dir = Path(tag_dir)
    runs = {seed: tag_dir / seed_folder(seed) for seed in seeds}
    missing = [str(path) for path in runs.values() if not scored_checkpoints(path)]
    if missing:
        raise FileNotFoundError(f"no scored checkpoint in {', '.join(missing)}: run the scoring stage of those seeds")
    return runs


def common_checkpoints(runs: dict) -> list:
    common = set.intersection(*(scored_checkpoints(folder) for folder in runs.values()))
    if not common:
        raise FileNotFoundError(f"no checkpoint is scored for every seed in {sorted(map(str, runs.values()))}")
    return checkpoint_order(common)


def chosen_scores(folder: Path) -> pd.DataFrame:
    """(dataset, machine, official) of a seed's own chosen post-process (its summary.csv)."""
    summary = pd.read_csv(folder / "summary.csv")
    return summary[["dataset", "machine", "official"]]


def fixed_postprocess(boards: list) -> str:
    """The post-process with the best mean development official score over the seeds, among those
    that are eligible (not nearly constant on a section) in every seed."""
    ok = set.intersection(*(set(b.loc[eligible(b), "postprocess"]) for b in boards))
    if not ok:
        raise ValueError("no post-process is eligible in every seed (each is nearly constant on some section)")
    means = pd.concat([b.set_index("postprocess").loc[sorted(ok), "dev_official"] for b in boards], axis=1).mean(axis=1)
    return means.sort_values(ascending=False, kind="stable").index[0]


def board_scores(board: pd.DataFrame, postprocess: str) -> pd.DataFrame:
    """(dataset, machine, official) of one post-process from a leaderboard row (score.csv)."""
    row = board.set_index("postprocess").loc[postprocess]
    rows = []
    for column, value in row.items():
        if not column.endswith("_official") or PARTIAL in column:
            continue  # partly labelled sets are never averaged over seeds
        dataset, _, machine = column.removesuffix("_official").partition("_")
        rows.append({"dataset": dataset, "machine": machine or "all", "official": value})
    return pd.DataFrame(rows)


def spread(values: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, machine): mean, sample s.d., min, max over the seed columns, and the chance flag."""
    array = values.to_numpy(dtype=np.float64)
    out = pd.DataFrame(
        {
            "mean": np.nanmean(array, axis=1),
            "sd": np.nanstd(array, axis=1, ddof=1) if array.shape[1] > 1 else np.nan,
            "min": np.nanmin(array, axis=1),
            "max": np.nanmax(array, axis=1),
        },
        index=values.index,
    )
    # chance within the seeds' range: the figure cannot be told from a random scorer at this many seeds
    out["near_chance"] = (out["min"] <= CHANCE) & (CHANCE <= out["max"])
    return pd.concat([out, values], axis=1)


def seed_table(runs: dict) -> pd.DataFrame:
    """Rows: checkpoint x selection x (dataset, machine); columns: the spread and one column per seed."""
    tables = []
    for checkpoint in common_checkpoints(runs):
        folders = {seed: folder / checkpoint for seed, folder in runs.items()}
        boards = [pd.read_csv(f / BOARD) for f in folders.values()]
        fixed = fixed_postprocess(boards)
        selections = {
            "chosen": {s: chosen_scores(f) for s, f in folders.items()},
            f"fixed: {fixed}": {s: board_scores(b, fixed) for s, b in zip(folders, boards)},
        }
        for selection, per_seed in selections.items():
            values = pd.concat(
                {seed_folder(s): t.set_index(["dataset", "machine"])["official"] for s, t in per_seed.items()}, axis=1
            )
            values = values[~values.index.get_level_values("dataset").str.endswith(PARTIAL)]
            table = spread(values).reset_index()
            tables.append(table.assign(checkpoint=checkpoint, selection=selection))
    table = pd.concat(tables, ignore_index=True)
    first = ["checkpoint", "selection", "dataset", "machine", *VALUE_COLUMNS, "near_chance"]
    order = table["machine"].map(lambda m: (m != "all", m))
    table = table.assign(_order=order).sort_values(["checkpoint", "selection", "dataset", "_order"], kind="stable")
    return table[first + [c for c in table.columns if c not in first and c != "_order"]].reset_index(drop=True)


def mean_sd(row) -> str:
    """``51.23 ± 1.40`` in percent (``51.23`` alone for one seed), ``≈ chance`` when chance is in the range."""
    text = f"{100 * row['mean']:.2f}" + ("" if pd.isna(row["sd"]) else f" ± {100 * row['sd']:.2f}")
    return text + (" (≈ chance)" if row["near_chance"] else "")


def render_seed_report(tag: str, table: pd.DataFrame, seeds) -> str:
    parts = [
        f"# {tag}: {len(seeds)} training seeds ({', '.join(map(str, seeds))})\n",
        f"Official score (%), mean ± s.d. over the seeds (sample s.d., n - 1); chance = {100 * CHANCE:.0f}. "
        "`≈ chance`: chance lies within the seeds' range, so this figure cannot be told from a random scorer. "
        "`chosen`: each seed's post-process chosen on its development score (optimistic: fitted to the seed); "
        "`fixed`: one post-process for every seed, the best mean development score over the seeds.\n",
    ]
    for (checkpoint, selection), part in table.groupby(["checkpoint", "selection"], sort=False):
        shown = part.assign(official=part.apply(mean_sd, axis=1))
        seeds_cols = [c for c in part.columns if c.startswith(SEED_PREFIX)]
        parts.append(f"\n## {checkpoint}, {selection}\n")
        parts.append(markdown_table(shown[["dataset", "machine", "official", *seeds_cols]], set(seeds_cols)))
    return "\n".join(parts)


def write_seed_tables(tag_dir, tag: str, seeds) -> pd.DataFrame:
    """Write ``seeds.csv`` and ``seeds.md`` into ``tag_dir`` (``<results>/<tag>``); return the table."""
    table = seed_table(seed_runs(tag_dir, seeds))
    write_csv(table, Path(tag_dir) / SEED_TABLE)
    atomic_write_text(Path(tag_dir) / SEED_REPORT, render_seed_report(tag, table, seeds))
    return table


def seed_lines(table: pd.DataFrame) -> list:
    """Console lines: the overall mean ± s.d. per checkpoint and selection."""
    overall = table[table["machine"] == "all"]
    lines = []
    for (checkpoint, selection), part in overall.groupby(["checkpoint", "selection"], sort=False):
        figures = ", ".join(f"{r['dataset']} {mean_sd(r)}" for _, r in part.iterrows())
        lines.append(f"{checkpoint} ({selection}): official {figures} (chance 50)")
    return lines
