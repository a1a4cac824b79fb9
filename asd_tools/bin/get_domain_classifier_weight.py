"""Per machine type, blend four "is target" predictors of the domain classifier into P(target).

Reads the domain classifier's scored checkpoints (their sources.json leads to the embeddings),
fits the blend weights by Nelder-Mead under 5-fold cross-validation on development domain
labels, and turns the blend, standardised over the test clips, into sigmoid(z / div).

--variant original (the default, as the seed README's command runs it) does what the original
recipe's local/get_domain_classifier_weight.py did: GMM per section on the raw window features,
raw predictors, 20 seeded uniform-random Nelder-Mead starts per fold, final weights = MEAN of the
5 folds' weights; temperatures 1, 0.5, 0.3, 0.25, 0.2, 0.15, 0.1, 0.05 (the specialisation
ensemble's original variant reads 0.15). Folder: domain_weight.
--variant refit: this project's first version (GMM per machine type on the standardised
embedding, standardised predictors, weights refitted on all development clips from fixed
starts). Folder: domain_weight_refit. --predictors, --weights, --init, --restarts and --seed change one
setting each; the settings are recorded in variant.json, and an output made with other settings is
not replaced unless --overwrite (or give another --outdir).

Writes, in --outdir (default <expdir>/<set>/<tag>/<the variant's folder>):
  <machine>_target_prob.csv   clip_id, blend (standardised), prob_div<d> for every --divs temperature
  weights.csv                 final weights w<i>, the folds' spread std<i>, held-out domain AUC per machine
  domain_weights.png          the weights and the probability histograms (at --plot_div)
  variant.json                the settings
Run after ./domain_classifier_job.sh (which trains, embeds and scores the domain classifier).
"""

from dataclasses import asdict, replace
from pathlib import Path

from asd_tools.bin.common import machines_arg, parser, run
from asd_tools.data.corpus import Corpus
from asd_tools.ensembles.average import check_variant
from asd_tools.ensembles.domain_weight import (
    INITS,
    PREDICTOR_MODES,
    WEIGHT_MODES,
    WEIGHT_VARIANTS,
    write_domain_weights,
)
from asd_tools.scoring.report import results_dir

FOLDERS = {"original": "domain_weight", "refit": "domain_weight_refit"}
# The original wrote one table per temperature (is_target_weight4_div<d>.csv); 2 and 4 were this
# project's first version's softer ones.
DIVS = [1.0, 0.5, 0.3, 0.25, 0.2, 0.15, 0.1, 0.05, 2.0, 4.0]


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--expdir", required=True, help="exp/<data>")
    p.add_argument("--dumpdir", required=True)
    p.add_argument("--machines", type=machines_arg, required=True)
    p.add_argument("--tag", default="asd_model.domain_classifier")
    p.add_argument("--checkpoints", nargs=2, default=["checkpoint-best", "checkpoint-50epochs"])
    p.add_argument(
        "--variant",
        choices=sorted(WEIGHT_VARIANTS),
        default="original",
        help="original: what the original recipe's script ran; refit: this project's first version. "
        "Sets the defaults of the options below",
    )

    def per_variant(field):
        return "unset: the variant's, " + ", ".join(f"{getattr(v, field)} ({k})" for k, v in WEIGHT_VARIANTS.items())

    p.add_argument(
        "--predictors",
        choices=PREDICTOR_MODES,
        help=f"original: GMM per section on the raw features, raw predictors; standardised: GMM per machine "
        f"type on the standardised embedding, predictors standardised; {per_variant('predictors')}",
    )
    p.add_argument(
        "--weights",
        choices=WEIGHT_MODES,
        help=f"cv_average: mean of the 5 folds' weights; refit: one fit on all development clips; "
        f"{per_variant('weights')}",
    )
    p.add_argument(
        "--init",
        choices=INITS,
        help=f"Nelder-Mead starts: random (--restarts seeded uniform draws, scipy bounds [0, 1]) or spread "
        f"(centre + near-corners); {per_variant('init')}",
    )
    p.add_argument("--restarts", type=int, help=f"random starts per fit; {per_variant('restarts')}")
    p.add_argument("--seed", type=int, help=f"folds, random starts and GMM; {per_variant('seed')}")
    p.add_argument("--divs", nargs="+", type=float, default=DIVS, help="sigmoid temperatures")
    p.add_argument("--plot_div", type=float, default=0.15, help="temperature of the histograms")
    p.add_argument("--outdir", default=None, help="unset: <expdir>/<set>/<tag>/" + ", ".join(FOLDERS.values()))
    p.add_argument("--overwrite", action="store_true", help="replace an output made with other settings")
    args = p.parse_args(argv)

    def main_fn(a):
        overrides = {k: getattr(a, k) for k in ("predictors", "weights", "init", "restarts", "seed")}
        settings = replace(WEIGHT_VARIANTS[a.variant], **{k: v for k, v in overrides.items() if v is not None})
        record = {"variant": a.variant, **asdict(settings), "checkpoints": a.checkpoints, "tag": a.tag}
        spec = Corpus(a.dumpdir).spec
        outdir = Path(a.outdir or results_dir(a.expdir, a.machines, a.tag, spec) / FOLDERS[a.variant])
        check_variant(outdir, record, a.overwrite, what="set of domain weights")
        write_domain_weights(
            a.expdir, a.dumpdir, a.machines, a.tag, a.checkpoints, settings, a.divs, a.plot_div, outdir, record
        )

    run(main_fn, args)


if __name__ == "__main__":
    main()
