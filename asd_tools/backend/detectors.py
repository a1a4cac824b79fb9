"""Anomaly detectors (backends) and window poolings, each chosen by name from one registry
shared by every system.

A detector is one class registered with ``@register_detector(name)``. Its parameters are the
keyword arguments of its constructor (``seed`` aside: the detector stage passes its own), and
its class attribute ``GRID`` lists the values swept when a config states none, so that a
config's grid can be checked against the constructor's signature. It is fitted on inlier
feature vectors, with their domains for a domain-aware detector, and returns for new vectors a
score that is higher for more anomalous inputs.
"""

import inspect
import itertools
import logging
import warnings
from typing import ClassVar, Optional

import numpy as np
from sklearn.covariance import LedoitWolf
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import LocalOutlierFactor, NearestNeighbors

from asd_tools.config import check_params

DETECTORS = {}  # name -> Detector subclass
POOLINGS = {}  # name -> function of one clip's window scores, sorted ascending (anomaly-oriented)
SUPPLIED = ("seed",)  # constructor arguments the detector stage passes itself (detect.seed)


def _register(registry, kind, name, obj):
    if name in registry:
        raise ValueError(f"{kind} '{name}' is already registered ({registry[name].__name__})")
    registry[name] = obj
    return obj


def register_detector(name: str):
    """Class decorator: registers a ``Detector`` subclass under ``name``, the name configs use.

    Its ``GRID`` is checked against its constructor here, so that a typo fails at import.
    """

    def register(cls):
        if "seed" not in inspect.signature(cls).parameters:
            raise TypeError(f"detector '{name}': {cls.__name__}.__init__ must accept seed")
        check_params(cls.GRID, cls, f"{cls.__name__}.GRID", name, supplied=SUPPLIED)
        return _register(DETECTORS, "detector", name, cls)

    return register


def register_pooling(name: str):
    """Function decorator: registers a pooling (sorted window scores of one clip -> clip score) as ``name``."""
    return lambda fn: _register(POOLINGS, "pooling", name, fn)


class Detector:
    """Base class: ``fit(inliers, domains)`` then ``score(x)`` (higher = more anomalous).

    A subclass takes its parameters as keyword arguments of ``__init__`` (plus ``seed``) and
    lists in ``GRID`` the values a config sweeps when it gives none (none: fitted once).
    """

    GRID: ClassVar[dict] = {}  # parameter -> default values swept
    # The fewest inlier rows a fit needs (checked for every section before the detector stage fits
    # anything: backend/detect.py, inlier_shortfalls).
    MIN_INLIERS: ClassVar[int] = 1

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, inliers: np.ndarray, domains: Optional[np.ndarray] = None) -> "Detector":
        """Fit on the inlier vectors (rows); ``domains``: each row's domain ("source" / "target").

        Detectors that do not model domains ignore ``domains``.
        """
        raise NotImplementedError

    def score(self, x: np.ndarray) -> np.ndarray:
        """Anomaly score of every row of ``x`` (higher = more anomalous)."""
        raise NotImplementedError


class KDetector(Detector):
    """A detector with one size parameter ``k``: neighbours (kNN, LOF) or mixture components (GMM)."""

    GRID = {"k": [1, 2, 4, 8, 16, 32]}

    def __init__(self, k: int, seed: int = 0):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        super().__init__(seed)
        self.k = k

    def effective_k(self, n_inliers: int) -> int:
        """k limited by the number of inliers (tiny data sets have few)."""
        return max(1, min(self.k, n_inliers - 1))


@register_detector("gmm")
class GMMDetector(KDetector):
    """Gaussian mixture with k full-covariance components; score = negative log-likelihood."""

    MIN_INLIERS = 2  # k is limited to the inliers less one (effective_k); one row has no covariance

    REG_COVAR_TRIES = (1e-6, 1e-4, 1e-2)  # raised only when a fit is numerically ill-defined

    def fit(self, inliers, domains=None):
        k = self.effective_k(len(inliers))
        for reg in self.REG_COVAR_TRIES:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    self.model = GaussianMixture(k, covariance_type="full", reg_covar=reg, random_state=self.seed)
                    self.model.fit(inliers)
                return self
            except ValueError as err:
                logging.warning(f"GMM(k={k}) fit failed with reg_covar={reg} ({err}); retrying")
        raise RuntimeError(f"GMM(k={k}) could not be fitted on {inliers.shape} inliers")

    def score(self, x):
        return -self.model.score_samples(x)


@register_detector("knn")
class KNNDetector(KDetector):
    """Mean Euclidean distance to the k nearest inliers."""

    def fit(self, inliers, domains=None):
        self.model = NearestNeighbors(n_neighbors=min(self.k, len(inliers))).fit(inliers)
        return self

    def score(self, x):
        distances, _ = self.model.kneighbors(x)
        return distances.mean(axis=1)


@register_detector("lof")
class LOFDetector(KDetector):
    """Local outlier factor with k neighbours (novelty mode)."""

    MIN_INLIERS = 2  # a row's neighbours are the others: at least one

    def fit(self, inliers, domains=None):
        self.model = LocalOutlierFactor(n_neighbors=self.effective_k(len(inliers)), novelty=True).fit(inliers)
        return self

    def score(self, x):
        return -self.model.score_samples(x)


@register_detector("mahalanobis")
class MahalanobisDetector(Detector):
    """Squared Mahalanobis distance to the inliers' mean under their Ledoit-Wolf shrunk covariance.

    The official DCASE Task 2 baselines score by a Mahalanobis distance since 2023. Shrinkage
    towards a scaled identity keeps the covariance invertible when the features outnumber the
    inliers, as they do in a section of a few dozen clips.
    """

    def fit(self, inliers, domains=None):
        self.model = LedoitWolf().fit(inliers)
        return self

    def score(self, x):
        return self.model.mahalanobis(x)  # squared distances


@register_detector("mahalanobis_domain")
class DomainMahalanobisDetector(Detector):
    """Squared Mahalanobis distance to the nearer domain mean, under one pooled within-domain covariance.

    Each domain's inliers are centred on their own mean, and one Ledoit-Wolf covariance is fitted
    to the centred windows of both domains together: it describes how normal sounds vary *within*
    a domain, with the many source clips lending their estimate to the few target clips. A test
    window scores its distance to the nearer of the two means, so that a target-domain normal is
    not an outlier only for being far from the source clips (the domain of a test clip is not
    known). With inliers of one domain only (e.g. inlier set ``so``) this is ``mahalanobis``.
    """

    def fit(self, inliers, domains=None):
        domains = np.full(len(inliers), "source") if domains is None else np.asarray(domains)
        groups = [inliers[domains == d] for d in np.unique(domains)]
        self.means = np.stack([g.mean(axis=0) for g in groups])
        centred = np.concatenate([g - g.mean(axis=0) for g in groups])
        self.model = LedoitWolf(assume_centered=True).fit(centred)
        return self

    def score(self, x):
        return np.min([self.model.mahalanobis(x - mean) for mean in self.means], axis=0)


@register_detector("clip_score")
class ClipScoreDetector(Detector):
    """No detector: the one feature column is the anomaly score already (fits nothing).

    For a system whose embeddings are its own clip scores, higher = more anomalous (``dcase_ae``'s
    MSE and MAHALA), so that they go through the shared detector stage, reports and submission files.
    """

    def fit(self, inliers, domains=None):
        return self

    def score(self, x):
        if x.shape[1] != 1:
            raise ValueError(
                f"clip_score takes a feature set of one column (a clip score), not {x.shape[1]}: give it "
                "one score per feature set in detect.feature_sets"
            )
        return x[:, 0]


def build_detector(name: str, params: dict, seed: int = 0) -> Detector:
    """Instantiate a registered detector by name with one point of its grid."""
    if name not in DETECTORS:
        raise KeyError(f"unknown detector '{name}': choose from {sorted(DETECTORS)}")
    return DETECTORS[name](**params, seed=seed)


def _parameters(name: str) -> list:
    """Constructor parameters of detector ``name`` that a config may set, in constructor order."""
    parameters = inspect.signature(DETECTORS[name]).parameters.values()
    settable = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p for p in parameters if p.kind in settable and p.name not in SUPPLIED]


def detector_parameters(name: str) -> list:
    """Names of the parameters a config may set for detector ``name``, in constructor order."""
    return [p.name for p in _parameters(name)]


def parameter_grid(name: str, stated: dict, where: str) -> dict:
    """Detector ``name``'s grid: its ``GRID`` with the values a config states, per parameter.

    Returns parameter -> list of values, in constructor order. Checked against the constructor's
    signature, errors naming the config key ``where``; every point is built once, so that a bad
    value fails when the config is read, not mid-run.
    """
    if not isinstance(stated, dict):
        raise ValueError(f"{where}: expected a mapping parameter -> list of values, got {stated!r}")
    check_params(stated, DETECTORS[name], where, name, supplied=SUPPLIED)
    grid = {**DETECTORS[name].GRID, **stated}
    for param, values in grid.items():
        if not isinstance(values, (list, tuple)) or len(values) == 0:
            raise ValueError(f"{where}.{param}: expected a non-empty list of values, got {values!r}")
    missing = [p.name for p in _parameters(name) if p.default is p.empty and p.name not in grid]
    if missing:
        raise ValueError(f"{where}: detector '{name}' needs values for {missing}")
    grid = {param: list(grid[param]) for param in detector_parameters(name) if param in grid}
    for params in grid_points(grid):
        try:
            build_detector(name, params)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: {err}") from None
    return grid


def grid_points(grid: dict) -> list:
    """Every combination of a grid's values (parameter -> list) as keyword dicts, the last parameter fastest."""
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


# Window poolings. Every detector here returns ANOMALY-oriented window scores (higher = more
# anomalous), and pooling acts on those. The original recipe pooled NORMALITY-oriented scores
# (GMM log-likelihood, negative kNN distance, LOF score_samples) and negated the pooled value at
# scoring, so its order statistics pick the opposite end: its ``max`` keeps the most normal
# window. Order-dependent poolings therefore carry the orientation in their name:
#   ours                 window(s) kept                        the original recipe's name
#   max_anomaly          the most anomalous window             (none)
#   min_anomaly          the most normal window                max
#   upper_mean_anomaly   mean of the most anomalous half       (none)
#   lower_mean_anomaly   mean of the most normal half          upper_mean
#   mean, median         orientation-free                      mean, median
# A "half" is ceil(n / 2) windows (it includes the median window when n is odd), as in the
# original's ``sorted(x)[len(x) // 2:]``.
# Registration order is the default order of ``detect.poolings``: the original's four first,
# then the anomaly-side ones.


@register_pooling("min_anomaly")
def _min_anomaly(values):
    return values[0]


@register_pooling("lower_mean_anomaly")
def _lower_mean_anomaly(values):
    return values[: len(values) - len(values) // 2].mean()


@register_pooling("mean")
def _mean(values):
    return values.mean()


@register_pooling("median")
def _median(values):
    return np.median(values)


@register_pooling("max_anomaly")
def _max_anomaly(values):
    return values[-1]


@register_pooling("upper_mean_anomaly")
def _upper_mean_anomaly(values):
    return values[len(values) // 2 :].mean()


# the original recipe's pooling names (infer.py's agg list) -> ours that compute the same clip score
ORIGINAL_POOLINGS = {
    "max": "min_anomaly",
    "mean": "mean",
    "median": "median",
    "upper_mean": "lower_mean_anomaly",
}


def check_pooling(name: str) -> str:
    """Validate a pooling name; the original's order-dependent names get a pointer to ours."""
    if name in POOLINGS:
        return name
    hint = ""
    if name in ORIGINAL_POOLINGS:
        hint = (
            f" ('{name}' is ambiguous: the original recipe's '{name}' is '{ORIGINAL_POOLINGS[name]}' here; "
            "names ending in _anomaly say which end of the anomaly-oriented window scores they keep)"
        )
    raise ValueError(f"unknown pooling '{name}': choose from {list(POOLINGS)}{hint}")


def pool_windows(window_scores: np.ndarray, window_clip: np.ndarray, n_clips: int, how: str) -> np.ndarray:
    """Pool anomaly-oriented window scores into clip scores with the registered pooling ``how``."""
    pool = POOLINGS[check_pooling(how)]
    order = np.argsort(window_clip, kind="stable")
    bounds = np.searchsorted(window_clip[order], np.arange(n_clips + 1))
    out = np.empty(n_clips)
    for c in range(n_clips):
        out[c] = pool(np.sort(window_scores[order[bounds[c] : bounds[c + 1]]]))
    return out
