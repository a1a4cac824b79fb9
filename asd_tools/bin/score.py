"""Score an experiment over machine types: the data set's official score tables and submission files.

Reads ``<expdir>/<machine>/<tag>/<checkpoint>/scores.csv`` for each machine type and writes
``<expdir>/<set>/<tag>/<checkpoint>/{score.csv,score.md,sections.csv,summary.csv,teams/...}``,
where ``<set>`` is ``all`` for every machine type and ``only_<a>+<b>`` for a subset, so that
results over different machine types never share a folder. Evaluation labels come from the
evaluator's ground truth at scoring time (default: ``<data root>/ground_truth`` of the dump).
A checkpoint whose inputs (score tables, ground truth, settings) are unchanged is not re-scored.
"""

import logging
from pathlib import Path

import pandas as pd

from asd_tools.artefacts import CLIP_SCORES
from asd_tools.bin.common import bool_arg, machines_arg, parser, run, seeds_arg, verify_arg
from asd_tools.data.corpus import Corpus
from asd_tools.data.ground_truth import default_ground_truth_dir, ground_truth_inputs, labelled_manifest
from asd_tools.provenance import Provenance, file_digest
from asd_tools.scoring.report import checkpoint_order, label_coverage, results_dir, score_experiment, score_line
from asd_tools.scoring.seeds import SEED_REPORT, seed_lines, seed_tag, write_seed_tables
from asd_tools.utils import announce


def experiment_checkpoints(expdir, machines, tag):
    """Checkpoints with a score table for every machine type; errors say which folder is missing."""
    found = {}
    for machine in machines:
        folder = Path(expdir) / machine / tag
        if not folder.is_dir():
            tags = sorted(p.name for p in folder.parent.iterdir() if p.is_dir()) if folder.parent.is_dir() else []
            raise FileNotFoundError(
                f"{folder} does not exist: no experiment '{tag}' for {machine} "
                f"(experiments there: {', '.join(tags) or 'none'}); check --tag and --machines, "
                "or run the training stages first"
            )
        found[machine] = {p.parent.name for p in folder.glob("*/scores.csv")}
        if not found[machine]:
            raise FileNotFoundError(f"no scores.csv under {folder}: run the detector stage for {machine} first")
    common = set.intersection(*found.values())
    for machine, names in found.items():
        if names - common:
            logging.warning(f"{machine}/{tag}: {sorted(names - common)} not scored for every machine type; skipped")
    if not common:
        raise FileNotFoundError(f"no checkpoint of '{tag}' has scores for all of {' '.join(machines)}")
    return checkpoint_order(common)


def score_checkpoint(a, tag, corpus, labelled, gt_inputs, checkpoint):
    files = [Path(a.expdir) / m / tag / checkpoint / CLIP_SCORES for m in a.machines]
    outdir = results_dir(a.expdir, a.machines, tag, corpus.spec) / checkpoint
    record = Provenance(
        outdir,
        "score",
        inputs={
            **{f"scores/{m}": file_digest(f) for m, f in zip(a.machines, files)},
            **{f"dump/{m}": corpus.identity(m) for m in a.machines},
            **gt_inputs,
        },
        settings={"machines": a.machines, "team": a.team, "postprocess": a.postprocess, "figures": a.figures},
    )
    name = f"{tag}/{checkpoint}"
    if record.is_current(a.force):
        summary = pd.read_csv(outdir / "summary.csv")
        test = labelled[labelled["split"] == "test"]
        announce(
            score_line(name, summary, label_coverage(test, corpus.spec)) + f" -> {outdir / 'score.md'} (up to date)"
        )
        return
    record.invalidate()
    system = f"{tag}_{checkpoint}".replace("/", "_")  # a seed's tag is <tag>/seed<N>: one folder name
    _, summary, coverage = score_experiment(
        files, labelled, outdir, system, a.team, a.postprocess, figures=a.figures, spec=corpus.spec
    )
    record.write()
    announce(score_line(name, summary, coverage) + f" -> {outdir / 'score.md'}")


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--dumpdir", required=True)
    p.add_argument("--expdir", required=True)
    p.add_argument("--machines", type=machines_arg, required=True)
    p.add_argument("--tag", required=True, help="experiment name (the config's name)")
    p.add_argument("--checkpoint", default=None, help="sub-folder holding scores.csv (default: every checkpoint)")
    p.add_argument(
        "--ground_truth_dir", default=None, help="evaluator ground truth (default: <data root>/ground_truth)"
    )
    p.add_argument("--team", default="asd_tools")
    p.add_argument("--postprocess", default=None, help="score this column instead of the best on dev")
    p.add_argument(
        "--figures",
        type=bool_arg,
        default=True,
        help="true: draw ROC curves, histograms, t-SNE maps and training curves into report.md (about half the time)",
    )
    p.add_argument("--force", action="store_true", help="re-score even when the tables are current")
    verify_arg(p)
    p.add_argument(
        "--where",
        action="store_true",
        help="print the results folder of this experiment and exit (an error when it has nothing to score)",
    )
    p.add_argument(
        "--seeds",
        type=seeds_arg,
        default=None,
        help='training seeds, e.g. "0 1 2": score each <tag>/seed<N>, then write <results>/<tag>/seeds.{csv,md}',
    )
    args = p.parse_args(argv)

    def main_fn(a):
        corpus = Corpus(a.dumpdir)
        tags = [a.tag] if a.seeds is None else [seed_tag(a.tag, seed) for seed in a.seeds]
        # first: a missing experiment (a mistyped --tag) is the one error, whatever else is missing, and
        # --where fails with it too, so that the recipe makes no results folder for it
        checkpoints = {
            t: [a.checkpoint] if a.checkpoint else experiment_checkpoints(a.expdir, a.machines, t) for t in tags
        }
        if a.where:
            print(results_dir(a.expdir, a.machines, a.tag, corpus.spec))
            return
        gt_dir = a.ground_truth_dir or default_ground_truth_dir(a.dumpdir, a.machines)
        labelled = labelled_manifest(corpus, a.machines, gt_dir)
        gt_inputs = ground_truth_inputs(corpus.manifest(a.machines), gt_dir, corpus.spec)
        for tag in tags:
            for checkpoint in checkpoints[tag]:
                score_checkpoint(a, tag, corpus, labelled, gt_inputs, checkpoint)
        if a.seeds is not None:
            tag_dir = results_dir(a.expdir, a.machines, a.tag, corpus.spec)
            table = write_seed_tables(tag_dir, a.tag, a.seeds)
            for line in seed_lines(table):
                announce(f"{a.tag}, {len(a.seeds)} seeds, {line}")
            announce(f"seed tables: {tag_dir / SEED_REPORT}")

    run(main_fn, args)


if __name__ == "__main__":
    main()
