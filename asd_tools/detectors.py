"""Anomaly detectors (backends), chosen by name through one registry shared by every system.

Every detector is fitted on inlier feature vectors and returns, for new vectors, a score
that is higher for more anomalous inputs.
"""

import logging
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import LocalOutlierFactor, NearestNeighbors


class Detector:
    """Base class: ``fit(inliers)`` then ``score(x)`` (higher = more anomalous)."""

    def __init__(self, k: int, seed: int = 0):
        self.k = k
        self.seed = seed

    def effective_k(self, n_inliers: int) -> int:
        """k limited by the number of inliers (tiny data sets have few)."""
        return max(1, min(self.k, n_inliers - 1))

    def fit(self, inliers: np.ndarray) -> "Detector":
        raise NotImplementedError

    def score(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class GMMDetector(Detector):
    """Gaussian mixture with k full-covariance components; score = negative log-likelihood."""

    REG_COVAR_TRIES = (1e-6, 1e-4, 1e-2)  # raised only when a fit is numerically ill-defined

    def fit(self, inliers):
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


class KNNDetector(Detector):
    """Mean Euclidean distance to the k nearest inliers."""

    def fit(self, inliers):
        self.model = NearestNeighbors(n_neighbors=min(self.k, len(inliers))).fit(inliers)
        return self

    def score(self, x):
        distances, _ = self.model.kneighbors(x)
        return distances.mean(axis=1)


class LOFDetector(Detector):
    """Local outlier factor with k neighbours (novelty mode)."""

    def fit(self, inliers):
        self.model = LocalOutlierFactor(n_neighbors=self.effective_k(len(inliers)), novelty=True).fit(inliers)
        return self

    def score(self, x):
        return -self.model.score_samples(x)


DETECTORS = {"gmm": GMMDetector, "knn": KNNDetector, "lof": LOFDetector}


def build_detector(name: str, k: int, seed: int = 0) -> Detector:
    """Instantiate a registered detector by name."""
    if name not in DETECTORS:
        raise KeyError(f"unknown detector '{name}': choose from {sorted(DETECTORS)}")
    return DETECTORS[name](k=k, seed=seed)


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


def _max_anomaly(values):
    return values[-1]


def _min_anomaly(values):
    return values[0]


def _upper_mean_anomaly(values):
    return values[len(values) // 2 :].mean()


def _lower_mean_anomaly(values):
    return values[: len(values) - len(values) // 2].mean()


def _mean(values):
    return values.mean()


def _median(values):
    return np.median(values)


# name -> function of one clip's window scores, sorted ascending (anomaly-oriented)
# (the original's four first, then the anomaly-side ones)
POOLINGS = {
    "min_anomaly": _min_anomaly,
    "lower_mean_anomaly": _lower_mean_anomaly,
    "mean": _mean,
    "median": _median,
    "max_anomaly": _max_anomaly,
    "upper_mean_anomaly": _upper_mean_anomaly,
}
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
