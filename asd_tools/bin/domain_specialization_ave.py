"""Domain specialisation ensemble: a source-specialised average of post-processes and a
target-specialised one, each z-scored per section, blended per clip by the domain classifier's
target probability w: (1 - w) * source + w * target.

--variant original (the default) does what the original recipe's local/domain_specialization_ave.py
did: per domain, each experiment's 6 best post-processes (interval checkpoints together, the
best-loss one left out) by the development per-domain hAUC (AUC and pAUC on that domain's clips;
column dev_hauc_domain_<domain>) over ALL machine types, the 20 best of them for EVERY machine
type; members and the two averages z-scored per section over the test clips; w at sigmoid
temperature 0.15 from local/get_domain_classifier_weight.py --variant original (folder
domain_weight). Name: ensemble_ds.

--variant per_machine: per machine type, the 20 best per scored checkpoint by the development
official AUC of the domain, the 20 best per machine type; members as stored (z-scored by the
normal reference scores), the averages z-scored by their reference rows; temperature 1.0, weights
from get_domain_classifier_weight.py --variant refit (folder domain_weight_refit).
Name: ensemble_ds_per_machine. Every setting can be changed on its own; the settings (and those
of the weights used) are recorded in variant.json and members.json, and an output made with other
settings is not replaced unless --overwrite (or give another --name).

Writes <expdir>/<machine>/<name>/average/ and scores it into <expdir>/<set>/<name>/average/
(score.md, submission files, histograms, variant.json).
"""

from pathlib import Path

import pandas as pd

from asd_tools.artefacts import CLIP_SCORES
from asd_tools.bin.common import machines_arg, parser, run
from asd_tools.data.corpus import Corpus
from asd_tools.data.ground_truth import labelled_manifest
from asd_tools.ensembles.average import (
    CHECKPOINT,
    DOMAINS,
    DS_VARIANTS,
    RECORD,
    add_variant_arguments,
    check_variant,
    choose_variant_members,
    describe,
    ensemble_name,
    find_score_tables,
    member_names,
    read_variant,
    score_ensemble,
    specialization,
    variant_from_args,
    variant_settings,
    write_ensemble,
)
from asd_tools.scoring.report import results_dir
from asd_tools.utils import announce

NAMES = {"original": "ensemble_ds", "per_machine": "ensemble_ds_per_machine"}
# The domain weights each variant reads (get_domain_classifier_weight.py's --variant and folder).
WEIGHT_DIRS = {"original": "domain_weight", "per_machine": "domain_weight_refit"}
RERUN_WEIGHTS = "re-run local/get_domain_classifier_weight.py (with --overwrite) to make the domain weights"


def read_target_prob(weight_dir, machine, div):
    path = Path(weight_dir) / f"{machine}_target_prob.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run local/get_domain_classifier_weight.py first")
    table = pd.read_csv(path)
    column = f"prob_div{div:g}"
    if column not in table:
        raise KeyError(
            f"{path} has no {column}; available: {[c for c in table if c.startswith('prob_')]} "
            "(get_domain_classifier_weight.py --divs)"
        )
    return table.set_index("clip_id")[column]


def weight_settings(weight_dir):
    """The settings the domain weights were made with (their ``variant.json``)."""
    settings = read_variant(weight_dir, rerun=RERUN_WEIGHTS)
    if settings is None:
        raise FileNotFoundError(f"{Path(weight_dir) / RECORD} is missing: {RERUN_WEIGHTS}")
    return settings


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--expdir", required=True, help="exp/<data>")
    p.add_argument("--dumpdir", required=True)
    p.add_argument("--machines", type=machines_arg, required=True)
    p.add_argument(
        "--weight_dir",
        default=None,
        help="output of get_domain_classifier_weight.py; unset: <expdir>/<set>/<dc tag>/ + "
        + ", ".join(f"{d} ({k})" for k, d in WEIGHT_DIRS.items()),
    )
    p.add_argument("--domain_classifier_tag", default="asd_model.domain_classifier")
    add_variant_arguments(p, DS_VARIANTS, NAMES)
    p.add_argument(
        "--div",
        type=float,
        help="sigmoid temperature of the target probability; unset: the variant's, "
        + ", ".join(f"{v.div:g} ({k})" for k, v in DS_VARIANTS.items()),
    )
    args = p.parse_args(argv)

    def main_fn(a):
        variant = variant_from_args(DS_VARIANTS, a)
        corpus = Corpus(a.dumpdir)
        default_dir = results_dir(a.expdir, a.machines, a.domain_classifier_tag, corpus.spec) / WEIGHT_DIRS[a.variant]
        weight_dir = Path(a.weight_dir or default_dir)
        settings = variant_settings(a.variant, variant, weights=weight_settings(weight_dir))
        name = ensemble_name(a.name or NAMES[a.variant], a.machines, corpus.spec)
        check_variant(results_dir(a.expdir, a.machines, name, corpus.spec) / CHECKPOINT, settings, a.overwrite)
        tables = find_score_tables(a.expdir, a.machines, corpus.spec)
        manifest = labelled_manifest(corpus, a.machines)
        members = {domain: choose_variant_members(tables, a.machines, variant, domain) for domain in DOMAINS}
        files, recorded = [], {}
        for machine in a.machines:
            prob = read_target_prob(weight_dir, machine, variant.div)
            chosen = {domain: members[domain][machine] for domain in DOMAINS}
            scores, _ = specialization(tables, machine, manifest, prob, variant, chosen)
            recorded[machine] = {domain: member_names(chosen[domain]) for domain in DOMAINS}
            outdir = write_ensemble(a.expdir, name, machine, scores, chosen["source"] + chosen["target"], settings)
            files.append(outdir / CLIP_SCORES)
        announce(f"{name}: {describe({k: v for k, v in settings.items() if k != 'weights'})}; weights {weight_dir}")
        announce(score_ensemble(files, manifest, a.expdir, a.machines, name, settings, recorded, spec=corpus.spec))

    run(main_fn, args)


if __name__ == "__main__":
    main()
