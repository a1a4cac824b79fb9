"""Compare scored experiments: one table of official scores (dev / eval, overall and per machine type).

Each argument is a results folder of the scoring stage, ``exp/<data>/<set>/<tag>/<checkpoint>``
(with its ``summary.csv`` and ``result.json``), or a ``exp/<data>/<set>/<tag>`` folder, which stands
for every checkpoint scored in it. One column per experiment, headed by its provenance (data set,
machine types, config, checkpoint, post-process); figures in percent. Configs, systems, ensembles
and data sets may be mixed: a cell is empty where an experiment has no such figure.

    python -m asd_tools.bin.compare exp/synthetic_small/all/baseline/features \\
        exp/synthetic_small/all/asd_model.cpu/checkpoint-best
"""

import json
from pathlib import Path

import pandas as pd

from asd_tools.bin.common import parser, run
from asd_tools.scoring.report import RESULT, markdown_table
from asd_tools.utils import announce, atomic_write_text

PROVENANCE_ROWS = ("data set", "machine types", "config", "checkpoint", "post-process")


def results_folders(paths) -> list:
    """The checkpoint results folders named by ``paths`` (a tag folder expands to its checkpoints)."""
    folders = []
    for path in map(Path, paths):
        if (path / "summary.csv").exists():
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


def experiment_column(folder: Path) -> pd.Series:
    """Provenance and official scores (%) of one results folder."""
    result_file = folder / RESULT
    if not result_file.exists():
        raise FileNotFoundError(f"{result_file} is missing: re-score {folder} (the scoring stage writes it)")
    result = json.loads(result_file.read_text())
    summary = pd.read_csv(folder / "summary.csv")
    column = {
        "data set": folder.parents[2].name,
        "machine types": folder.parents[1].name,
        "config": folder.parent.name,
        "checkpoint": folder.name,
        "post-process": result["postprocess"],
    }
    for _, row in summary.iterrows():
        name = f"{row['dataset']} official" if row["machine"] == "all" else f"{row['dataset']} {row['machine']}"
        column[name] = f"{100 * row['official']:.2f}" if pd.notna(row["official"]) else "n/a"
    return pd.Series(column, name=f"{folder.parent.name}/{folder.name}")


def comparison_table(folders) -> pd.DataFrame:
    """Rows: provenance, then overall and per-machine official scores; one column per experiment."""
    table = pd.concat([experiment_column(f) for f in folders], axis=1)
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
