"""Domain generalisation ensemble: the average of the per-clip scores of the best post-processes
over every score table present.

--variant original (the default, as the seed README's command runs it) does what the original
recipe's local/domain_generalization_ave.py did: each experiment's 4 best post-processes (over
its interval checkpoints together, the best-loss checkpoint left out, as the original's
concatenated score tables) by the development hAUC over both domains (the original's dev_hauc;
column dev_hauc_mixed) over ALL machine types, ranked together, and the 3 best averaged for
EVERY machine type; every member z-scored per section over the test clips. Name: ensemble_dg.

--variant per_machine: the 5 best per scored checkpoint by each machine type's development
official score, the 3 best per machine type, members as stored (z-scored by the normal reference
scores). Name: ensemble_dg_per_machine. Every setting can be changed on its own (--selection,
--rank_by, --per_table, --top, --zscore, --tables); the settings are recorded in variant.json and
members.json, and an output made with other settings is not replaced unless --overwrite (or give
another --name).

Writes <expdir>/<machine>/<name>/average/{scores.csv,members.json} and scores them with the
shared scoring module into <expdir>/<set>/<name>/average/ (score.md, submission files,
report.md with ROC curves and score histograms, variant.json). Run after the systems you want to
combine have been scored.
"""

from asd_tools.artefacts import CLIP_SCORES
from asd_tools.bin.common import machines_arg, parser, run
from asd_tools.data.corpus import Corpus
from asd_tools.data.ground_truth import labelled_manifest
from asd_tools.ensembles.average import (
    CHECKPOINT,
    DG_VARIANTS,
    add_variant_arguments,
    check_variant,
    choose_variant_members,
    describe,
    ensemble_name,
    find_score_tables,
    generalization,
    member_names,
    score_ensemble,
    variant_from_args,
    variant_settings,
    write_ensemble,
)
from asd_tools.scoring.report import results_dir
from asd_tools.utils import announce

NAMES = {"original": "ensemble_dg", "per_machine": "ensemble_dg_per_machine"}


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--expdir", required=True, help="exp/<data>")
    p.add_argument("--dumpdir", required=True)
    p.add_argument("--machines", type=machines_arg, required=True)
    add_variant_arguments(p, DG_VARIANTS, NAMES)
    args = p.parse_args(argv)

    def main_fn(a):
        variant = variant_from_args(DG_VARIANTS, a)
        settings = variant_settings(a.variant, variant)
        corpus = Corpus(a.dumpdir)
        name = ensemble_name(a.name or NAMES[a.variant], a.machines, corpus.spec)
        check_variant(results_dir(a.expdir, a.machines, name, corpus.spec) / CHECKPOINT, settings, a.overwrite)
        tables = find_score_tables(a.expdir, a.machines, corpus.spec)
        manifest = labelled_manifest(corpus, a.machines)
        members = choose_variant_members(tables, a.machines, variant)
        files = []
        for machine in a.machines:
            scores, chosen = generalization(tables, machine, variant, manifest, members[machine])
            files.append(write_ensemble(a.expdir, name, machine, scores, chosen, settings) / CLIP_SCORES)
        announce(f"{name}: {describe(settings)}")
        members = {m: member_names(chosen) for m, chosen in members.items()}
        announce(score_ensemble(files, manifest, a.expdir, a.machines, name, settings, members, spec=corpus.spec))

    run(main_fn, args)


if __name__ == "__main__":
    main()
