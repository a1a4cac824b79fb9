"""Score an experiment over machine types: official DCASE 2022 tables and submission files.

Reads ``<expdir>/<machine>/<tag>/<checkpoint>/scores.csv`` for each machine type and writes
``<expdir>/all/<tag>/<checkpoint>/{score.csv,score.md,sections.csv,summary.csv,teams/...}``.
"""

from pathlib import Path

from asd_tools.bin.common import machines_arg, parser, run
from asd_tools.data.manifest import load_manifest
from asd_tools.scoring.report import score_experiment


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--dumpdir", required=True)
    p.add_argument("--expdir", required=True)
    p.add_argument("--machines", type=machines_arg, required=True)
    p.add_argument("--tag", required=True, help="experiment name (the config's name)")
    p.add_argument("--checkpoint", required=True, help="sub-folder holding scores.csv, e.g. checkpoint-best")
    p.add_argument("--team", default="asd_tools")
    p.add_argument("--postprocess", default=None, help="score this column instead of the best on dev")
    args = p.parse_args(argv)

    def main_fn(a):
        expdir = Path(a.expdir)
        files = [expdir / m / a.tag / a.checkpoint / "scores.csv" for m in a.machines]
        outdir = expdir / "all" / a.tag / a.checkpoint
        manifest = load_manifest(a.dumpdir, a.machines)
        best, summary = score_experiment(files, manifest, outdir, f"{a.tag}_{a.checkpoint}", a.team, a.postprocess)
        overall = summary[summary["machine"] == "all"].set_index("dataset")["official"]
        figures = ", ".join(f"{d} {100 * v:.2f}" for d, v in overall.items())
        print(f"{a.tag}/{a.checkpoint}: official score ({best}): {figures} -> {outdir / 'score.md'}")

    run(main_fn, args)


if __name__ == "__main__":
    main()
