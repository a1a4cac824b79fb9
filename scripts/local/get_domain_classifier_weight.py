#!/usr/bin/env python3
"""Per machine type, blend four "is target" predictors of the domain classifier into P(target).

Reads the domain classifier's scored checkpoints (their sources.json leads to the embeddings),
fits the blend weights by Nelder-Mead under 5-fold cross-validation on development domain
labels, and writes, in --outdir (default <expdir>/all/<tag>/domain_weight):
  <machine>_target_prob.csv   clip_id, blend, prob_div<d> for every --divs temperature
  weights.csv                 blend weights and cross-validated domain AUC per machine type
  domain_weights.png          the weights and the probability histograms
Run after ./domain_classifier_job.sh (which trains, embeds and scores the domain classifier).
"""

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from asd_tools.bin.common import machines_arg, parser, run
from asd_tools.data.manifest import load_manifest
from asd_tools.domain_weight import domain_predictors, plot_domain_weights, target_probabilities
from asd_tools.embeddings import Embeddings
from asd_tools.scoring.report import SOURCES, results_dir
from asd_tools.utils import write_csv


def embeddings_dir(expdir, machines, tag, checkpoint, machine):
    sources = results_dir(expdir, machines, tag) / checkpoint / SOURCES
    if not sources.exists():
        raise FileNotFoundError(f"{sources} is missing: run ./domain_classifier_job.sh (all stages, then scoring)")
    scores = json.loads(sources.read_text())["scores"]
    if machine not in scores:
        raise KeyError(f"{sources} has no {machine}: run ./domain_classifier_job.sh --machines {machine}")
    return Path(scores[machine]).parent


def machine_weights(a, machine, manifest):
    predictors = []
    for checkpoint in a.checkpoints:
        folder = embeddings_dir(a.expdir, a.machines, a.tag, checkpoint, machine)
        inlier, test = Embeddings.load(folder / "inlier.npz"), Embeddings.load(folder / "test.npz")
        inlier_is_source = manifest.loc[inlier.clip_id, "domain"].to_numpy() == "source"
        predictors.append(domain_predictors(inlier, test, inlier_is_source))
    info = manifest.loc[test.clip_id]
    dev = (info["dataset"] == "dev").to_numpy()
    is_target = (info["domain"] == "target").to_numpy()
    result = target_probabilities(np.concatenate(predictors, axis=1), test.clip_id, dev, is_target, a.divs)
    labels = {"dev source": dev & ~is_target, "dev target": dev & is_target, "eval": ~dev}
    return result, labels


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--expdir", required=True, help="exp/<data>")
    p.add_argument("--dumpdir", required=True)
    p.add_argument("--machines", type=machines_arg, required=True)
    p.add_argument("--tag", default="asd_model.domain_classifier")
    p.add_argument("--checkpoints", nargs=2, default=["checkpoint-best", "checkpoint-50epochs"])
    p.add_argument("--divs", nargs="+", type=float, default=[0.5, 1.0, 2.0, 4.0], help="sigmoid temperatures")
    p.add_argument("--outdir", default=None)
    args = p.parse_args(argv)

    def main_fn(a):
        outdir = Path(a.outdir or results_dir(a.expdir, a.machines, a.tag) / "domain_weight")
        manifest = load_manifest(a.dumpdir, a.machines)
        results, rows = {}, []
        for machine in a.machines:
            result, labels = machine_weights(a, machine, manifest)
            write_csv(result.probabilities, outdir / f"{machine}_target_prob.csv")
            rows.append(
                {
                    "machine": machine,
                    "cv_domain_auc": result.cv_auc,
                    **{f"w{i}": w for i, w in enumerate(result.weights)},
                }
            )
            results[machine] = (result, labels)
            logging.info(f"{machine}: weights {np.round(result.weights, 3)}, CV domain AUC {result.cv_auc:.3f}")
        write_csv(pd.DataFrame(rows), outdir / "weights.csv")
        plot_domain_weights(results, outdir / "domain_weights.png", a.divs[0])
        print(f"domain weights -> {outdir}")

    run(main_fn, args)


if __name__ == "__main__":
    main()
