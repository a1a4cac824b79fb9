#!/usr/bin/env python3
"""Domain specialisation ensemble: per machine type, a source-specialised average (top post-processes
by development source AUC) and a target-specialised one (by target AUC), each z-scored per
section, blended per clip by the domain classifier's target probability w:
(1 - w) * source + w * target.

Needs local/get_domain_classifier_weight.py's output. Writes <expdir>/<machine>/ensemble_ds/average/
and scores it into <expdir>/all/ensemble_ds/average/ (score.md, submission files, histograms).
"""

from pathlib import Path

import pandas as pd

from asd_tools.bin.common import machines_arg, parser, run
from asd_tools.ensemble import ensemble_name, find_score_tables, score_ensemble, specialization, write_ensemble
from asd_tools.scoring.ground_truth import labelled_manifest
from asd_tools.scoring.report import results_dir


def read_target_prob(weight_dir, machine, div):
    path = Path(weight_dir) / f"{machine}_target_prob.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run local/get_domain_classifier_weight.py first")
    table = pd.read_csv(path)
    column = f"prob_div{div:g}"
    if column not in table:
        raise KeyError(f"{path} has no {column}; available: {[c for c in table if c.startswith('prob_')]}")
    return table.set_index("clip_id")[column]


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--expdir", required=True, help="exp/<data>")
    p.add_argument("--dumpdir", required=True)
    p.add_argument("--machines", type=machines_arg, required=True)
    p.add_argument(
        "--weight_dir",
        default=None,
        help="output of get_domain_classifier_weight.py (default <expdir>/all/<dc tag>/domain_weight)",
    )
    p.add_argument("--domain_classifier_tag", default="asd_model.domain_classifier")
    p.add_argument("--div", type=float, default=1.0, help="sigmoid temperature of the target probability")
    p.add_argument("--per_table", type=int, default=20)
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--name", default="ensemble_ds")
    args = p.parse_args(argv)

    def main_fn(a):
        weight_dir = a.weight_dir or results_dir(a.expdir, a.machines, a.domain_classifier_tag) / "domain_weight"
        tables = find_score_tables(a.expdir, a.machines)
        manifest = labelled_manifest(a.dumpdir, a.machines)
        name = ensemble_name(a.name, a.machines)
        files = []
        for machine in a.machines:
            prob = read_target_prob(weight_dir, machine, a.div)
            scores, chosen = specialization(tables, machine, manifest, prob, a.per_table, a.top)
            files.append(write_ensemble(a.expdir, name, machine, scores, chosen) / "scores.csv")
        print(score_ensemble(files, manifest, a.expdir, a.machines, name))

    run(main_fn, args)


if __name__ == "__main__":
    main()
