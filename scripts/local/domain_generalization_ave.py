#!/usr/bin/env python3
"""Domain generalisation ensemble: per machine type, the average of the z-scored per-clip scores
of the top post-processes (by development official score) over every score table present.

Writes <expdir>/<machine>/ensemble_dg/average/{scores.csv,members.json} and scores them with the
shared scoring module into <expdir>/all/ensemble_dg/average/ (score.md, submission files,
score_histograms.png). Run after the systems you want to combine have been scored.
"""

from asd_tools.bin.common import machines_arg, parser, run
from asd_tools.ensemble import ensemble_name, find_score_tables, generalization, score_ensemble, write_ensemble
from asd_tools.scoring.ground_truth import labelled_manifest


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--expdir", required=True, help="exp/<data>")
    p.add_argument("--dumpdir", required=True)
    p.add_argument("--machines", type=machines_arg, required=True)
    p.add_argument("--per_table", type=int, default=5, help="best post-processes taken from each table")
    p.add_argument("--top", type=int, default=3, help="post-processes averaged per machine type")
    p.add_argument("--name", default="ensemble_dg")
    args = p.parse_args(argv)

    def main_fn(a):
        tables = find_score_tables(a.expdir, a.machines)
        manifest = labelled_manifest(a.dumpdir, a.machines)
        name = ensemble_name(a.name, a.machines)
        files = []
        for machine in a.machines:
            scores, chosen = generalization(tables, machine, a.per_table, a.top)
            files.append(write_ensemble(a.expdir, name, machine, scores, chosen) / "scores.csv")
        print(score_ensemble(files, manifest, a.expdir, a.machines, name))

    run(main_fn, args)


if __name__ == "__main__":
    main()
