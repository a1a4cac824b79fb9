"""Diagnosis of System 1's features against the baseline's log-mel statistics, per machine type.

With clip-level features (window mean) of one experiment's checkpoint and of the baseline:
  sec_acc src / tgt   1-NN (cosine) section accuracy of the normal test clips of the source /
                      target domain against the inlier clips of all six sections
  auc src / tgt       anomaly AUC of the 1-NN Euclidean distance to the same section's inlier
                      clips, as the official metric counts it: that domain's normals against all
                      anomalies of the section; mean over the development sections 0-2
The log-mel statistics are z-scored by their inliers (as the baseline's best post-process) and
measured twice: with the baseline's inliers (train + valid) and with System 1's (valid only).
Usage (from scripts/): local/diagnose_embedding.py exp/synthetic_small asd_model.cpu/checkpoint-best [FEATURE ...]
FEATURE: a window feature of the embeddings (embedding, section_logits, ...), '+' joins several.
"""

import numpy as np
from sklearn.metrics import roc_auc_score

from asd_tools.backend.detect import subset_clips
from asd_tools.backend.embeddings import Embeddings
from asd_tools.bin.common import parser, run

MACHINES = ["bearing", "fan", "gearbox", "slider", "ToyCar", "ToyTrain", "valve"]


def clip_features(emb, names):
    x = emb.stack(names)
    n = len(emb.clip_id)
    out = np.zeros((n, x.shape[1]))
    np.add.at(out, emb.window_clip, x)
    return out / np.bincount(emb.window_clip, minlength=n)[:, None]


def flags(ids, word):
    return np.array([word in i for i in ids])


def sections(ids):
    return np.array([int(i.split("section_")[1][:2]) for i in ids])


def measure(inl, tst, names, standardize):
    xi, xt = clip_features(inl, names), clip_features(tst, names)
    if standardize:
        mu, sd = xi.mean(0), xi.std(0) + 1e-8
        xi, xt = (xi - mu) / sd, (xt - mu) / sd
    si, st = sections(inl.clip_id), sections(tst.clip_id)
    anom, target = flags(tst.clip_id, "_anomaly_"), flags(tst.clip_id, "_target_")
    unit_i = xi / (np.linalg.norm(xi, axis=1, keepdims=True) + 1e-12)
    unit_t = xt / (np.linalg.norm(xt, axis=1, keepdims=True) + 1e-12)
    correct = si[(unit_t @ unit_i.T).argmax(1)] == st
    acc = [np.mean(correct[~anom & (target == dom)]) for dom in (False, True)]
    aucs = {False: [], True: []}
    for s in range(3):
        rows = st == s
        score = np.sqrt(((xt[rows][:, None, :] - xi[si == s][None]) ** 2).sum(-1)).min(1)
        for dom in (False, True):
            keep = anom[rows] | (target[rows] == dom)
            aucs[dom].append(roc_auc_score(anom[rows][keep], score[keep]))
    return acc + [np.mean(aucs[False]), np.mean(aucs[True])]


def row(machine, feature, n_inliers, values):
    print(f"| {machine} | {feature} | {n_inliers} | " + " | ".join(f"{v:.3f}" for v in values) + " |")


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("expdir", help="the experiments' folder, e.g. exp/synthetic_small")
    p.add_argument("experiment", help="<tag>/<checkpoint>, e.g. asd_model.cpu/checkpoint-best")
    p.add_argument("features", nargs="*", default=["embedding"], help="window features; '+' joins several")
    run(lambda a: diagnose(a.expdir, a.experiment, a.features), p.parse_args(argv))


def diagnose(expdir, exp, feats):
    """The table of every machine type: the experiment's features beside the baseline's statistics."""
    print("| machine | feature | inlier clips | sec_acc src | sec_acc tgt | auc src | auc tgt |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for m in MACHINES:
        inl = Embeddings.load(f"{expdir}/{m}/{exp}/inlier.npz")
        tst = Embeddings.load(f"{expdir}/{m}/{exp}/test.npz")
        for f in feats:
            row(m, f, len(inl.clip_id), measure(inl, tst, f.split("+"), standardize=False))
        b_inl = Embeddings.load(f"{expdir}/{m}/baseline/features/inlier.npz")
        b_tst = Embeddings.load(f"{expdir}/{m}/baseline/features/test.npz")
        row(m, "logmel_stats", len(b_inl.clip_id), measure(b_inl, b_tst, ["logmel_stats"], standardize=True))
        valid_ids = set(inl.clip_id)
        keep = np.flatnonzero([i in valid_ids for i in b_inl.clip_id])
        row(m, "logmel_stats", len(keep), measure(subset_clips(b_inl, keep), b_tst, ["logmel_stats"], standardize=True))


if __name__ == "__main__":
    main()
