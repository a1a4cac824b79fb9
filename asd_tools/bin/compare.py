"""Compare scored experiments: one table of official scores (dev / eval, overall and per machine type).

Each argument is a results folder of the scoring stage, ``exp/<data>/<set>/<tag>/<checkpoint>``
(with its ``summary.csv`` and ``result.json``), or a ``exp/<data>/<set>/<tag>`` folder, which stands
for every checkpoint scored in it; a tag trained with ``--seeds`` (its ``seeds.csv``) shows the mean ±
s.d. over its seeds per checkpoint. One column per experiment, headed by its provenance (data set,
machine types, config, checkpoint, post-process); figures in percent. Configs, systems, ensembles
and data sets may be mixed: a cell is empty where an experiment has no such figure.

    python -m asd_tools.bin.compare exp/synthetic_small/all/baseline/features \\
        exp/synthetic_small/all/asd_model.cpu/checkpoint-best
"""

import json
from pathlib import Path

import pandas as pd

from asd_tools.bin.common import parser, run
from asd_tools.scoring.report import FULL_SET, RESULT, markdown_table
from asd_tools.scoring.seeds import SEED_PREFIX, SEED_TABLE, mean_sd
from asd_tools.utils import announce, atomic_write_text

PROVENANCE_ROWS = ("data set", "machine types", "config", "checkpoint", "post-process")


def results_folders(paths) -> list:
    """The results folders named by ``paths``: a checkpoint folder, or a tag folder, which expands to its
    checkpoints, or, where it holds seeds (``seeds.csv``), stands for their mean ± s.d."""
    folders = []
    for path in map(Path, paths):
        if (path / "summary.csv").exists() or (path / SEED_TABLE).exists():
            folders.append(path)
            continue
        found = sorted(p.parent for p in path.glob("*/summary.csv"))
        if not found:
            raise FileNotFoundError(
                f"{path} holds no scored experiment (no summary.csv in it or its sub-folders): give "
                "exp/<data>/<set>/<tag>/<checkpoint> folders written by the scoring stage"
            )
        folders += found
    return folders


def set_folder(folder: Path) -> Path:
    """The machine-set folder (``all`` or ``only_...``) above a results folder."""
    for parent in folder.parents:
        if parent.name == FULL_SET or parent.name.startswith("only_"):
            return parent
    raise FileNotFoundError(f"{folder} is not inside exp/<data>/<set>/: give a folder written by the scoring stage")


def provenance(tag_folder: Path, checkpoint: str, postprocess: str) -> dict:
    """The provenance rows of one column; ``tag_folder``: ``<set>/<tag>`` (or ``<set>/<tag>/seed<N>``)."""
    machine_set = set_folder(tag_folder / checkpoint)
    return {
        "data set": machine_set.parent.name,
        "machine types": machine_set.name,
        "config": str(tag_folder.relative_to(machine_set)),
        "checkpoint": checkpoint,
        "post-process": postprocess,
    }


def score_rows(summary: pd.DataFrame, cell) -> dict:
    """Row name -> ``cell(row)`` for every (set, machine type) row of a summary ("dev official" overall)."""
    rows = {}
    for _, row in summary.iterrows():
        name = f"{row['dataset']} official" if row["machine"] == "all" else f"{row['dataset']} {row['machine']}"
        rows[name] = cell(row)
    return rows


def percent(row) -> str:
    return f"{100 * row['official']:.2f}" if pd.notna(row["official"]) else "n/a"


def seeds_columns(folder: Path) -> list:
    """One column per checkpoint of a tag folder with seeds: mean ± s.d. of the post-process each seed chose."""
    table = pd.read_csv(folder / SEED_TABLE)
    table = table[table["selection"] == "chosen"]
    seeds = [c for c in table.columns if c.startswith(SEED_PREFIX)]
    columns = []
    for checkpoint, part in table.groupby("checkpoint", sort=False):
        column = provenance(folder, checkpoint, f"chosen per seed ({len(seeds)} seeds: mean ± s.d.)")
        column.update(score_rows(part, mean_sd))
        columns.append(pd.Series(column, name=f"{column['config']}/{checkpoint}"))
    return columns


def experiment_columns(folder: Path) -> list:
    """Provenance and official scores (%) of one results folder (one column; one per checkpoint for seeds)."""
    if (folder / SEED_TABLE).exists() and not (folder / "summary.csv").exists():
        return seeds_columns(folder)
    result_file = folder / RESULT
    if not result_file.exists():
        raise FileNotFoundError(f"{result_file} is missing: re-score {folder} (the scoring stage writes it)")
    result = json.loads(result_file.read_text())
    summary = pd.read_csv(folder / "summary.csv")
    column = provenance(folder.parent, folder.name, result["postprocess"])
    column.update(
        score_rows(summary, lambda row: f"{100 * row['official']:.2f}" if pd.notna(row["official"]) else "n/a")
    )
    return [pd.Series(column, name=f"{column['config']}/{folder.name}")]


def comparison_table(folders) -> pd.DataFrame:
    """Rows: provenance, then overall and per-machine official scores; one column per experiment."""
    table = pd.concat([column for f in folders for column in experiment_columns(f)], axis=1)
    scores = [r for r in table.index if r not in PROVENANCE_ROWS]
    overall = sorted(r for r in scores if r.endswith(" official"))
    machines = sorted(set(scores) - set(overall), key=lambda r: (r.split(" ")[0], r.split(" ", 1)[1].lower()))
    return table.loc[list(PROVENANCE_ROWS) + overall + machines].fillna("")


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("experiments", nargs="+", help="results folders: exp/<data>/<set>/<tag>[/<checkpoint>]")
    p.add_argument("--output", default=None, help="also write the table (Markdown) to this file")
    args = p.parse_args(argv)

    def main_fn(a):
        table = comparison_table(results_folders(a.experiments))
        text = markdown_table(table.reset_index().rename(columns={"index": ""}))
        announce(text.rstrip("\n"))
        if a.output:
            atomic_write_text(a.output, text)

    run(main_fn, args)


if __name__ == "__main__":
    main()
