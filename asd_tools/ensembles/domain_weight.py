"""Per-clip probability that a clip is from the target domain (for the specialisation ensemble).

Per machine type, four "is target" predictors from the domain classifier's embeddings of two
checkpoints: the mean domain logit over windows, and a 1-component GMM fitted on the source
inlier windows (tanh of the negative log-likelihood, mean over windows). Their blend weights
(in [0, 1], normalised) maximise the development set's domain AUC, found by Nelder-Mead (scipy)
under 5-fold cross-validation; the blend, standardised over the test clips and passed through a
sigmoid with temperature ``div``, is the probability w.

Two variants (:data:`WEIGHT_VARIANTS`):

* ``original`` — what the original recipe's ``local/get_domain_classifier_weight.py`` did: the GMM
  fitted per section on the raw 137 window features (machine logit, norm, domain logit, section
  logits, embedding), predictors blended as they are; in each of the 5 folds (stratified by
  section x domain x state) the weights are fitted on the training part from 20 uniform-random
  starting points (seeded), and the final weights are the MEAN of the 5 folds' weights;
* ``refit`` — this project's first version: the GMM fitted per machine type on the standardised
  embedding with tanh of the standardised negative log-likelihood, predictors standardised before
  the blend, weights refitted on all development clips from fixed starting points (the centre and
  one near each corner); the folds only give the held-out AUC.
"""

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import StratifiedKFold

from asd_tools.artefacts import INLIER_EMBEDDINGS, TEST_EMBEDDINGS
from asd_tools.backend.detectors import pool_windows
from asd_tools.backend.embeddings import Embeddings
from asd_tools.data.corpus import Corpus
from asd_tools.ensembles.average import describe, write_record
from asd_tools.scoring.metrics import roc_auc
from asd_tools.scoring.report import SOURCES, results_dir
from asd_tools.utils import announce, atomic_path, write_csv

CV_FOLDS = 5
WEIGHT_MODES = ("cv_average", "refit")  # final weights: mean of the folds' fits, or one fit on all clips
INITS = ("random", "spread")  # Nelder-Mead starting points: seeded uniform draws, or centre + corners
PREDICTOR_MODES = ("original", "standardised")
# The original's GMM features (pred_machine, embed_norm, is_target_pred, pred_section*, e*)
ORIGINAL_GMM_FEATURES = ("machine_logit", "norm", "domain_logit", "section_logits", "embedding")


@dataclass(frozen=True)
class BlendSettings:
    """How the domain weights are found (see the module docstring for the two variants)."""

    predictors: str = "original"
    weights: str = "cv_average"
    init: str = "random"
    restarts: int = 20  # random starting points per fit (init "random")
    folds: int = CV_FOLDS
    seed: int = 42  # the original's seed_everything(42): folds, starting points, GMM

    def __post_init__(self):
        for value, options, key in (
            (self.predictors, PREDICTOR_MODES, "predictors"),
            (self.weights, WEIGHT_MODES, "weights"),
            (self.init, INITS, "init"),
        ):
            if value not in options:
                raise ValueError(f"{key} '{value}' is not one of {', '.join(options)}")
        if self.restarts < 1 or self.folds < 2:
            raise ValueError("restarts must be at least 1 and folds at least 2")


WEIGHT_VARIANTS = {
    "original": BlendSettings(),
    "refit": BlendSettings(predictors="standardised", weights="refit", init="spread"),
}


def normalised_weights(params):
    """Map free parameters to weights in [0, 1] that sum to 1."""
    w = np.clip(np.asarray(params, dtype=np.float64), 0.0, 1.0)
    return w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))


def starting_points(n, settings: BlendSettings, rng: np.random.RandomState) -> np.ndarray:
    """Nelder-Mead starting points: ``restarts`` uniform draws in [0, 1)^n, or the centre and near-corners."""
    if settings.init == "random":
        return rng.uniform(size=(settings.restarts, n))
    return np.stack([np.full(n, 0.5)] + [np.eye(n)[i] * 0.9 + 0.05 for i in range(n)])


def fit_blend(predictors: np.ndarray, is_target: np.ndarray, starts, bounded=True) -> np.ndarray:
    """Normalised weights maximising the AUC of ``predictors @ w`` for ``is_target``: the best of
    one Nelder-Mead run per starting point (the first best on ties).

    ``bounded``: scipy's bounds [0, 1] with its default tolerances, as the original; otherwise
    the weights are clipped inside the objective (this project's first version).
    """
    is_target = np.asarray(is_target, dtype=bool)

    def negative_auc(params):
        return -roc_auc(is_target, predictors @ normalised_weights(params))

    n = predictors.shape[1]
    if bounded:
        options = {"bounds": [(0.0, 1.0)] * n}
    else:
        options = {"options": {"xatol": 1e-3, "fatol": 1e-4}}
    results = [minimize(negative_auc, x0, method="Nelder-Mead", **options) for x0 in starts]
    return normalised_weights(min(results, key=lambda r: r.fun).x)


def fold_strata(is_target, strata=None, folds=CV_FOLDS):
    """Labels the folds are stratified by: ``strata`` when every stratum fills every fold, else the domain."""
    if strata is not None:
        _, counts = np.unique(strata, return_counts=True)
        if counts.min() >= folds:
            return np.asarray(strata)
        logging.warning(f"a section x domain x state stratum has fewer than {folds} clips: folds stratified by domain")
    return np.asarray(is_target)


def cross_validated_blend(predictors, is_target, strata=None, settings=BlendSettings()):
    """(final weights, each fold's weights, mean held-out AUC of the folds' weights).

    Fold k's weights are fitted on the other folds. Final weights: ``cv_average``, the mean of
    the folds' weights (the original); ``refit``, one fit on all clips.
    """
    is_target = np.asarray(is_target, dtype=bool)
    labels = fold_strata(is_target, strata, settings.folds)
    splitter = StratifiedKFold(settings.folds, shuffle=True, random_state=settings.seed)
    rng = np.random.RandomState(settings.seed)
    bounded = settings.init == "random"
    n = predictors.shape[1]
    fold_weights, aucs = [], []
    for train, held in splitter.split(predictors, labels):
        w = fit_blend(predictors[train], is_target[train], starting_points(n, settings, rng), bounded)
        fold_weights.append(w)
        aucs.append(roc_auc(is_target[held], predictors[held] @ w))
    fold_weights = np.stack(fold_weights)
    if settings.weights == "cv_average":
        weights = fold_weights.mean(0)
    else:
        weights = fit_blend(predictors, is_target, starting_points(n, settings, rng), bounded)
    return weights, fold_weights, float(np.mean(aucs))


def domain_predictors(inlier: Embeddings, test: Embeddings, inlier_is_source: np.ndarray):
    """This project's two per-clip predictors of one checkpoint: mean domain logit, GMM novelty
    (per machine type, standardised embedding) w.r.t. source inliers."""
    check_domain_logit(test)
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


def original_predictors(inlier, test, inlier_sections, inlier_is_source, test_sections, seed=42):
    """The original's two per-clip predictors of one checkpoint.

    Mean domain logit over windows; and per section, a 1-component full-covariance GMM (sklearn's
    defaults) fitted on the section's source inlier windows' raw features
    (:data:`ORIGINAL_GMM_FEATURES`), each test window scored tanh(-log-likelihood), mean over windows.
    ``*_sections`` / ``inlier_is_source``: one entry per clip.
    """
    check_domain_logit(test)
    n = len(test.clip_id)
    logit = pool_windows(test.features["domain_logit"][:, 0], test.window_clip, n, "mean")
    x_inlier, x_test = inlier.stack(ORIGINAL_GMM_FEATURES), test.stack(ORIGINAL_GMM_FEATURES)
    fit_window = np.asarray(inlier_is_source)[inlier.window_clip]
    inlier_window_section = np.asarray(inlier_sections)[inlier.window_clip]
    test_window_section = np.asarray(test_sections)[test.window_clip]
    novelty = np.empty(len(x_test))
    for section in np.unique(test_window_section):
        fit = fit_window & (inlier_window_section == section)
        if not fit.any():
            raise ValueError(f"section {section:02d} has no source inlier windows to fit the domain GMM on")
        gmm = GaussianMixture(1, random_state=seed).fit(x_inlier[fit])
        rows = test_window_section == section
        novelty[rows] = np.tanh(-gmm.score_samples(x_test[rows]))
    return np.stack([logit, pool_windows(novelty, test.window_clip, n, "mean")], axis=1)


def check_domain_logit(emb: Embeddings) -> None:
    if "domain_logit" not in emb.features:
        raise KeyError(
            "these embeddings have no domain_logit: use the domain classifier's experiment "
            "(./domain_classifier_job.sh), whose model has a domain head"
        )


def standardise(values) -> np.ndarray:
    """(x - mean) / std over the given clips (rows; ddof 0), as the original did over all test clips."""
    return (values - values.mean(0)) / (values.std(0) + 1e-12)


def sigmoid_probabilities(z, divs) -> dict:
    """``prob_div<d>``: sigmoid(z / d) of the standardised blend z, one column per temperature d."""
    return {f"prob_div{div:g}": 1.0 / (1.0 + np.exp(-z / div)) for div in divs}


@dataclass
class DomainWeights:
    weights: np.ndarray  # one per predictor
    fold_weights: np.ndarray  # (folds, predictors): each fold's fit
    cv_auc: float  # mean held-out development domain AUC of the folds' weights
    probabilities: pd.DataFrame  # clip_id, blend, prob_div<d>...


def target_probabilities(
    predictors, clip_ids, dev_mask, is_target, divs, strata=None, settings=BlendSettings()
) -> DomainWeights:
    """Fit the blend on development clips and turn it into probabilities for every clip.

    Predictors are standardised over every clip first only for ``predictors="standardised"``.
    """
    predictors = np.asarray(predictors, dtype=np.float64)
    if settings.predictors == "standardised":
        predictors = standardise(predictors)
    strata = None if strata is None else np.asarray(strata)[dev_mask]
    weights, fold_weights, cv_auc = cross_validated_blend(
        predictors[dev_mask], np.asarray(is_target)[dev_mask], strata, settings
    )
    blend = standardise(predictors @ weights)
    table = pd.DataFrame({"clip_id": clip_ids, "blend": blend, **sigmoid_probabilities(blend, divs)})
    return DomainWeights(weights, fold_weights, cv_auc, table)


def plot_domain_weights(results: dict, path, div) -> None:
    """Bar chart of the blend weights (fold spread as error bars) and histograms of P(target)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    machines = sorted(results)
    fig, axes = plt.subplots(2, len(machines), figsize=(3.2 * len(machines), 6), squeeze=False)
    for i, machine in enumerate(machines):
        result, labels = results[machine]
        n = len(result.weights)
        axes[0, i].bar(range(n), result.weights, yerr=result.fold_weights.std(0))
        axes[0, i].set_title(f"{machine}\nCV domain AUC {100 * result.cv_auc:.1f}")
        axes[0, i].set_xticks(range(n), ["logit\nA", "gmm\nA", "logit\nB", "gmm\nB"][:n])
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


def scored_embeddings_dir(expdir, machines, tag, checkpoint, machine, spec) -> Path:
    """The embeddings behind one scored checkpoint of the domain classifier (its sources.json)."""
    sources = results_dir(expdir, machines, tag, spec) / checkpoint / SOURCES
    if not sources.exists():
        raise FileNotFoundError(f"{sources} is missing: run ./domain_classifier_job.sh (all stages, then scoring)")
    scores = json.loads(sources.read_text())["scores"]
    if machine not in scores:
        raise KeyError(f"{sources} has no {machine}: run ./domain_classifier_job.sh --machines {machine}")
    return Path(scores[machine]).parent


def machine_weights(folders, manifest, settings: BlendSettings, divs):
    """One machine type's blend from the embeddings in ``folders`` (one per checkpoint); returns the
    DomainWeights and the test clips' groups (dev source / dev target / eval) for the plot."""
    predictors = []
    for folder in folders:
        inlier, test = Embeddings.load(folder / INLIER_EMBEDDINGS), Embeddings.load(folder / TEST_EMBEDDINGS)
        inlier_info = manifest.loc[inlier.clip_id]
        inlier_is_source = (inlier_info["domain"] == "source").to_numpy()
        if settings.predictors == "original":
            sections = manifest.loc[test.clip_id, "section"].to_numpy()
            predictors.append(
                original_predictors(
                    inlier, test, inlier_info["section"].to_numpy(), inlier_is_source, sections, settings.seed
                )
            )
        else:
            predictors.append(domain_predictors(inlier, test, inlier_is_source))
    info = manifest.loc[test.clip_id]
    dev = (info["dataset"] == "dev").to_numpy()
    is_target = (info["domain"] == "target").to_numpy()
    # The original's folds: stratified by 12 groups of 50 development clips (section x domain x state).
    strata = (info["section"].astype(str) + "/" + info["domain"] + "/" + info["state"]).to_numpy()
    result = target_probabilities(
        np.concatenate(predictors, axis=1), test.clip_id, dev, is_target, divs, strata, settings
    )
    labels = {"dev source": dev & ~is_target, "dev target": dev & is_target, "eval": ~dev}
    return result, labels


def write_domain_weights(expdir, dumpdir, machines, tag, checkpoints, settings, divs, plot_div, outdir, record):
    """Every machine type's target probabilities, the weights table, the plot and the settings record
    -> ``outdir`` (see scripts/local/get_domain_classifier_weight.py)."""
    outdir = Path(outdir)
    corpus = Corpus(dumpdir)
    results, rows = {}, []
    for machine in machines:
        folders = [scored_embeddings_dir(expdir, machines, tag, c, machine, corpus.spec) for c in checkpoints]
        result, labels = machine_weights(folders, corpus.manifest(machine), settings, divs)
        write_csv(result.probabilities, outdir / f"{machine}_target_prob.csv")
        n = len(result.weights)
        rows.append(
            {
                "machine": machine,
                "cv_domain_auc": result.cv_auc,
                **{f"w{i}": w for i, w in enumerate(result.weights)},
                **{f"std{i}": s for i, s in zip(range(n), result.fold_weights.std(0))},
            }
        )
        results[machine] = (result, labels)
        logging.info(f"{machine}: weights {np.round(result.weights, 3)}, CV domain AUC {result.cv_auc:.3f}")
    write_csv(pd.DataFrame(rows), outdir / "weights.csv")
    plot_domain_weights(results, outdir / "domain_weights.png", plot_div if plot_div in divs else divs[0])
    write_record(outdir, record)
    announce(f"domain weights ({describe(record)}) -> {outdir}")
