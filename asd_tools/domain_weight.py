"""Per-clip probability that a clip is from the target domain (for the specialisation ensemble).

Per machine type, four "is target" predictors from the domain classifier's embeddings of two
checkpoints: the mean domain logit over windows, and a 1-component GMM fitted on the source
inlier windows (tanh of the standardised negative log-likelihood, mean over windows). Their
blend weights (in [0, 1], normalised) maximise the development set's domain AUC, found by
Nelder-Mead (scipy) under 5-fold cross-validation; the blend, standardised and passed through
a sigmoid with temperature ``div``, is the probability w.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import StratifiedKFold

from asd_tools.detectors import pool_windows
from asd_tools.embeddings import Embeddings
from asd_tools.utils import atomic_path

CV_FOLDS = 5


def normalised_weights(params):
    """Map free parameters to weights in [0, 1] that sum to 1."""
    w = np.clip(np.asarray(params, dtype=np.float64), 0.0, 1.0)
    return w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))


def fit_blend(predictors: np.ndarray, is_target: np.ndarray, seed=0) -> np.ndarray:
    """Weights maximising the AUC of ``predictors @ w`` for ``is_target`` (Nelder-Mead)."""

    def negative_auc(params):
        return -roc_auc_score(is_target, predictors @ normalised_weights(params))

    n = predictors.shape[1]
    starts = [np.full(n, 0.5)] + [np.eye(n)[i] * 0.9 + 0.05 for i in range(n)]
    best = min(
        (minimize(negative_auc, x0, method="Nelder-Mead", options={"xatol": 1e-3, "fatol": 1e-4}) for x0 in starts),
        key=lambda r: r.fun,
    )
    return normalised_weights(best.x)


def cross_validated_blend(predictors, is_target, seed=0):
    """(weights fitted on all clips, mean held-out AUC over 5 folds)."""
    folds = StratifiedKFold(CV_FOLDS, shuffle=True, random_state=seed)
    aucs = []
    for train, held in folds.split(predictors, is_target):
        w = fit_blend(predictors[train], is_target[train], seed)
        aucs.append(roc_auc_score(is_target[held], predictors[held] @ w))
    return fit_blend(predictors, is_target, seed), float(np.mean(aucs))


def domain_predictors(inlier: Embeddings, test: Embeddings, inlier_is_source: np.ndarray):
    """Two per-clip predictors of one checkpoint: mean domain logit, GMM novelty w.r.t. source inliers."""
    if "domain_logit" not in test.features:
        raise KeyError(
            "these embeddings have no domain_logit: use the domain classifier's experiment "
            "(./domain_classifier_job.sh), whose model has a domain head"
        )
    n = len(test.clip_id)
    logit = pool_windows(test.features["domain_logit"][:, 0], test.window_clip, n, "mean")
    source_windows = np.isin(inlier.window_clip, np.flatnonzero(inlier_is_source))
    x_fit = inlier.features["embedding"][source_windows].astype(np.float64)
    mean, std = x_fit.mean(0), x_fit.std(0) + 1e-8
    gmm = GaussianMixture(1, covariance_type="full", reg_covar=1e-3, random_state=0).fit((x_fit - mean) / std)
    fit_nll = -gmm.score_samples((x_fit - mean) / std)
    nll = -gmm.score_samples((test.features["embedding"].astype(np.float64) - mean) / std)
    novelty = np.tanh((nll - fit_nll.mean()) / (fit_nll.std() + 1e-8))
    return np.stack([logit, pool_windows(novelty, test.window_clip, n, "mean")], axis=1)


@dataclass
class DomainWeights:
    weights: np.ndarray  # one per predictor
    cv_auc: float  # mean held-out development domain AUC
    probabilities: pd.DataFrame  # clip_id, blend, prob_div<d>...


def target_probabilities(predictors, clip_ids, dev_mask, is_target, divs, seed=0) -> DomainWeights:
    """Fit the blend on development clips and turn it into probabilities for every clip."""
    z = (predictors - predictors.mean(0)) / (predictors.std(0) + 1e-12)
    weights, cv_auc = cross_validated_blend(z[dev_mask], is_target[dev_mask], seed)
    blend = z @ weights
    blend = (blend - blend.mean()) / (blend.std() + 1e-12)
    table = pd.DataFrame({"clip_id": clip_ids, "blend": blend})
    for div in divs:
        table[f"prob_div{div:g}"] = 1.0 / (1.0 + np.exp(-blend / div))
    return DomainWeights(weights, cv_auc, table)


def plot_domain_weights(results: dict, path, div) -> None:
    """Bar chart of the blend weights and histograms of the target probability, per machine type."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    machines = sorted(results)
    fig, axes = plt.subplots(2, len(machines), figsize=(3.2 * len(machines), 6), squeeze=False)
    for i, machine in enumerate(machines):
        result, labels = results[machine]
        axes[0, i].bar(range(len(result.weights)), result.weights)
        axes[0, i].set_title(f"{machine}\nCV domain AUC {100 * result.cv_auc:.1f}")
        axes[0, i].set_xticks(
            range(len(result.weights)), ["logit\nA", "gmm\nA", "logit\nB", "gmm\nB"][: len(result.weights)]
        )
        prob = result.probabilities[f"prob_div{div:g}"].to_numpy()
        for name, mask in labels.items():
            axes[1, i].hist(prob[mask], bins=20, range=(0, 1), alpha=0.6, label=name)
        axes[1, i].set_xlabel(f"P(target), div {div:g}")
        axes[1, i].legend(fontsize=7)
    axes[0, 0].set_ylabel("blend weight")
    axes[1, 0].set_ylabel("clips")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
