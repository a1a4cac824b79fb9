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


def pool_windows(window_scores: np.ndarray, window_clip: np.ndarray, n_clips: int, how: str) -> np.ndarray:
    """Pool window scores into clip scores: max, mean, median or upper_mean (mean of the upper half)."""
    if how not in POOLINGS:
        raise KeyError(f"unknown pooling '{how}': choose from {POOLINGS}")
    order = np.argsort(window_clip, kind="stable")
    bounds = np.searchsorted(window_clip[order], np.arange(n_clips + 1))
    out = np.empty(n_clips)
    for c in range(n_clips):
        values = np.sort(window_scores[order[bounds[c] : bounds[c + 1]]])
        if how == "max":
            out[c] = values[-1]
        elif how == "mean":
            out[c] = values.mean()
        elif how == "median":
            out[c] = np.median(values)
        else:
            out[c] = values[len(values) // 2 :].mean()
    return out


POOLINGS = ("max", "mean", "median", "upper_mean")
