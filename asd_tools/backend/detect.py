"""The detector stage shared by every system: embeddings -> per-clip scores per post-process.

Per section and feature set, a detector is fitted on the section's inlier windows ("all"
domains or source only, "so"), scores the test windows, and the window scores are pooled
per clip. Each (detector, one point of its parameter grid, inlier set, feature set, pooling)
is one post-process column.
Window scores are anomaly-oriented before pooling; see ``asd_tools.backend.detectors`` for the pooling
names and how they map to the original recipe's (its ``max`` is our ``min_anomaly``).

Normal *reference* scores come from cross-fitting over the inlier clips (fit on the other
folds, score the held-out fold): they z-score each column within the section, so that
higher = more anomalous on a common scale, and they give the decision threshold of the
submission files. Output rows: test clips (subset ``test``) and reference clips
(subset ``reference``).
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Dict, List, Optional, Union

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from asd_tools.artefacts import CLIP_SCORES, INLIER_EMBEDDINGS, TEST_EMBEDDINGS
from asd_tools.backend.detectors import (
    DETECTORS,
    POOLINGS,
    build_detector,
    check_pooling,
    detector_parameters,
    grid_points,
    parameter_grid,
    pool_windows,
)
from asd_tools.backend.embeddings import Embeddings
from asd_tools.config import AT_LEAST_0, AT_LEAST_1, Range, choice, config_to_dict, from_dict, read_config
from asd_tools.data.corpus import Corpus, manifest_sections
from asd_tools.provenance import Provenance, file_digest
from asd_tools.utils import progress, write_csv

INLIER_SETS = ("all", "so", "valid")  # all inlier clips, source-domain ones, validation-list ones
TOO_FEW_INLIERS = ("stop", "skip")  # what the stage does when a section has fewer inliers than a detector needs
SECTION_LOGIT = "section_logit"


@dataclass
class DetectConfig:
    """Which post-processes the detector stage computes."""

    RANGES: ClassVar[Dict[str, Range]] = {"ks": AT_LEAST_1, "reference_folds": Range(2), "seed": AT_LEAST_0}

    # Detectors and their parameter grids (a parameter the config leaves out takes the values the
    # detector class declares in its GRID), in one of two forms:
    #   list:    [gmm, knn, lof]; `ks`, when given, is the k grid of every detector taking k
    #   mapping: {gmm: {k: [1, 2]}, knn: {k: [1]}, mahalanobis: {}}: a grid per detector; `ks`
    #            must then be left out (one place per value)
    detectors: Union[List[str], Dict[str, Optional[dict]]] = field(default_factory=lambda: ["gmm", "knn", "lof"])
    ks: Optional[List[int]] = None  # list form: GMM components / neighbours (None: each detector's GRID)
    inlier_sets: List[str] = field(default_factory=lambda: ["all", "so"])
    # feature set name -> embedding feature names concatenated into it
    feature_sets: dict = field(
        default_factory=lambda: {
            "all": ["machine_logit", "norm", "section_logits", "embedding"],
            "embed": ["embedding"],
            "prediction": ["machine_logit", "section_logits"],
        }
    )
    # scale features by the inliers' mean/std before fitting; off in the original recipe
    # (infer.py --use_norm "" unless "_norm" was given)
    standardize: bool = False
    # window scores -> clip score: both orientations of the order-dependent poolings (the
    # original's max / upper_mean are min_anomaly / lower_mean_anomaly) and mean, median
    poolings: List[str] = field(default_factory=lambda: list(POOLINGS))
    section_logit_score: bool = True  # the detector-free score (needs section_logits)
    reference_folds: int = 2  # cross-fitting folds for normal reference scores
    seed: int = 0
    # A section with fewer inlier windows than a detector's fit needs (a small subset of the data): stop
    # (before fitting anything, naming them) or skip those detectors for the machine type (with a note).
    too_few_inliers: str = "stop"

    def __post_init__(self):
        for name in self.detectors:
            choice(name, DETECTORS, "detectors")
        if isinstance(self.detectors, dict) and self.ks is not None:
            raise ValueError(
                "ks belongs to the list form of detectors; in the mapping form give k per detector "
                "(e.g. knn: {k: [1, 2]})"
            )
        labels = [detector_label(name, params) for name, params in self.detector_settings()]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ValueError(f"detectors: {repeated} would be computed twice (a detector or a value listed twice)")
        for name in self.inlier_sets:
            choice(name, INLIER_SETS, "inlier_sets")
        choice(self.too_few_inliers, TOO_FEW_INLIERS, "too_few_inliers")
        for name in self.poolings:
            check_pooling(name)

    def detector_settings(self) -> list:
        """Every (detector, parameters) pair the stage fits: config order, then grid order."""
        return [
            (name, params)
            for name, stated, where in self._stated_grids()
            for params in grid_points(parameter_grid(name, stated, where))
        ]

    def _stated_grids(self):
        """(detector, the parameter values the config states for it, the config key stating them)."""
        if isinstance(self.detectors, dict):
            return [(name, {} if grid is None else grid, f"detectors.{name}") for name, grid in self.detectors.items()]
        stated = []
        for name in self.detectors:
            takes_ks = self.ks is not None and "k" in detector_parameters(name)
            stated.append((name, {"k": self.ks} if takes_ks else {}, "ks" if takes_ks else "detectors"))
        return stated


def check_inlier_sets(detect: DetectConfig, inlier_subsets, subsets_key: str) -> None:
    """Cross-section rule (inside a system config's ``__post_init__``): the inlier set 'valid' fits the
    detectors on the validation-list clips among the embedded inliers, so ``inlier_subsets`` (the clip
    lists that are embedded as inliers, named ``subsets_key`` in the config) must include valid.
    Without this check the detector stage would fail after training, on 0 'valid' inlier clips.
    """
    if "valid" in detect.inlier_sets and "valid" not in inlier_subsets:
        raise ValueError(
            f"detect.inlier_sets: 'valid' fits the detectors on the validation-list inlier clips, but "
            f"{subsets_key} {list(inlier_subsets)} embeds none; add valid to {subsets_key} or drop 'valid' "
            "from detect.inlier_sets"
        )


def detector_label(detector, params):
    """The detector part of a post-process name: its name, then ``_<parameter><value>`` per parameter.

    Parameters come in constructor order: ``knn_k4`` (as before detectors had grids), and a
    parameterless detector is its bare name (``mahalanobis``).
    """
    return detector + "".join(f"_{param}{value}" for param, value in params.items())


def postprocess_name(label, inlier_set, feature_set, standardize, pooling):
    """A post-process column's name, from its ``detector_label`` on."""
    std = "_std" if standardize else ""
    return f"{label}_{inlier_set}_{feature_set}{std}_{pooling}"


def clip_folds(n_clips, folds, seed):
    """Assign clips to cross-fitting folds (windows of a clip stay together)."""
    rng = np.random.default_rng(seed)
    return rng.permutation(n_clips) % folds


def inlier_shortfalls(inlier: Embeddings, sections, clip_info: pd.DataFrame, cfg: DetectConfig, valid_ids) -> list:
    """Every (section, inlier set) whose smallest fit has fewer rows than a detector of the grid needs.

    A detector is fitted on a section's inlier windows and, for the reference scores, on each
    cross-fitting fold's complement; the smallest of these fits decides. Returns one line per
    shortfall and the labels of the detectors concerned: ([lines], {labels}).
    """
    lines, labels = [], set()
    for section in sections:
        part = _section_subset(inlier, clip_info, section)
        for inlier_set in cfg.inlier_sets:
            chosen = _inlier_choice(part, clip_info, inlier_set, valid_ids)
            if len(chosen) < cfg.reference_folds:
                continue  # named by _score_section: cross-fitting itself needs that many clips
            windows = np.bincount(part.window_clip, minlength=len(part.clip_id))[chosen]
            folds = clip_folds(len(chosen), cfg.reference_folds, cfg.seed + section)
            fewest = min(int(windows[folds != fold].sum()) for fold in np.unique(folds))
            short = [
                (detector_label(name, params), DETECTORS[name].MIN_INLIERS)
                for name, params in cfg.detector_settings()
                if DETECTORS[name].MIN_INLIERS > fewest
            ]
            if short:
                needed = max(n for _, n in short)
                lines.append(
                    f"section {section:02d}, inlier set '{inlier_set}': {len(chosen)} inlier clips "
                    f"({fewest} windows in the smallest cross-fitted fit), {needed} needed by "
                    + ", ".join(label for label, _ in short)
                )
                labels.update(label for label, _ in short)
    return lines, labels


def check_inlier_counts(inlier, sections, clip_info, cfg: DetectConfig, valid_ids, machine) -> set:
    """Before any fit: stop naming every section too small for a detector of the grid, or (with
    ``too_few_inliers: skip``) return the detector labels to leave out of this machine type's scores."""
    lines, labels = inlier_shortfalls(inlier, sections, clip_info, cfg, set(valid_ids))
    if not lines:
        return set()
    if cfg.too_few_inliers == "stop":
        raise ValueError(
            f"{machine}: too few inliers for the detector grid: " + "; ".join(lines) + ". Add training clips, "
            f"or set detect.too_few_inliers: skip to leave those detectors out of {machine}'s scores"
        )
    logging.warning(f"{machine}: left out {sorted(labels)} (detect.too_few_inliers: skip): " + "; ".join(lines))
    return labels


def run_detectors(
    inlier: Embeddings, test: Embeddings, clip_info: pd.DataFrame, cfg: DetectConfig, valid_ids=(), machine=""
) -> pd.DataFrame:
    """Scores of test and reference clips for every post-process.

    ``clip_info`` is the manifest indexed by clip_id (section and domain are read from it);
    ``valid_ids`` are the validation-list clips (the "valid" inlier set); ``machine`` names the
    machine type in errors.
    """
    if "valid" in cfg.inlier_sets and len(valid_ids) == 0:
        raise ValueError("inlier set 'valid' needs the validation list (valid_ids)")
    valid_ids = set(valid_ids)
    frames = []
    sections = sorted(clip_info.loc[test.clip_id, "section"].unique())
    skipped = check_inlier_counts(inlier, sections, clip_info, cfg, valid_ids, machine or "this machine type")
    # The fits are many and small: multi-threaded BLAS only adds overhead (6x slower measured).
    with threadpool_limits(1):
        for section in progress(sections, desc="detect"):
            inlier_part = _section_subset(inlier, clip_info, section)
            test_part = _section_subset(test, clip_info, section)
            if len(inlier_part.clip_id) == 0:
                raise ValueError(f"section {section:02d} has no inlier clips: check the inlier lists")
            frames.append(_score_section(inlier_part, test_part, clip_info, section, cfg, valid_ids, skipped))
    return pd.concat(frames, ignore_index=True)


def _section_subset(emb: Embeddings, clip_info, section) -> Embeddings:
    keep_clips = np.flatnonzero(clip_info.loc[emb.clip_id, "section"].to_numpy() == section)
    return subset_clips(emb, keep_clips)


def subset_clips(emb: Embeddings, keep_clips) -> Embeddings:
    """The embeddings of clips ``keep_clips`` (indices into ``emb.clip_id``), renumbered."""
    remap = np.full(len(emb.clip_id), -1)
    remap[keep_clips] = np.arange(len(keep_clips))
    keep_windows = remap[emb.window_clip] >= 0
    return Embeddings(
        emb.clip_id[keep_clips],
        remap[emb.window_clip[keep_windows]],
        {k: v[keep_windows] for k, v in emb.features.items()},
    )


def _inlier_choice(inlier, clip_info, inlier_set, valid_ids):
    """Positions of the inlier clips that make up one inlier set."""
    if inlier_set == "all":
        return np.arange(len(inlier.clip_id))
    if inlier_set == "so":
        return np.flatnonzero(clip_info.loc[inlier.clip_id, "domain"].to_numpy() == "source")
    return np.flatnonzero([c in valid_ids for c in inlier.clip_id])


def _score_section(inlier, test, clip_info, section, cfg, valid_ids, skipped=()):
    columns_test, columns_ref = {}, {}
    settings = [(det, params) for det, params in cfg.detector_settings() if detector_label(det, params) not in skipped]
    for inlier_set in cfg.inlier_sets:
        chosen = _inlier_choice(inlier, clip_info, inlier_set, valid_ids)
        if len(chosen) < cfg.reference_folds:
            raise ValueError(
                f"section {section:02d}: only {len(chosen)} '{inlier_set}' inlier clips; "
                f"cross-fitting needs at least {cfg.reference_folds}"
            )
        fit_set = subset_clips(inlier, chosen)
        # each inlier window's domain, for domain-aware detectors
        fit_domains = clip_info.loc[fit_set.clip_id, "domain"].to_numpy()[fit_set.window_clip]
        folds = clip_folds(len(chosen), cfg.reference_folds, cfg.seed + section)
        for fs_name, fs_keys in cfg.feature_sets.items():
            x_fit, x_test = fit_set.stack(fs_keys), test.stack(fs_keys)
            if cfg.standardize:
                mean, std = x_fit.mean(0), x_fit.std(0) + 1e-8
                x_fit, x_test = (x_fit - mean) / std, (x_test - mean) / std
            for det, params in settings:
                window_test, window_ref = _fit_and_score(
                    det, params, x_fit, x_test, fit_domains, fit_set.window_clip, folds, cfg.seed
                )
                label = detector_label(det, params)
                for pooling in cfg.poolings:
                    name = postprocess_name(label, inlier_set, fs_name, cfg.standardize, pooling)
                    columns_test[name] = pool_windows(window_test, test.window_clip, len(test.clip_id), pooling)
                    ref = pool_windows(window_ref, fit_set.window_clip, len(fit_set.clip_id), pooling)
                    columns_ref[name] = pd.Series(ref, index=fit_set.clip_id)
    if cfg.section_logit_score and "section_logits" in test.features:
        column = manifest_sections(clip_info).index(section)  # the section head's order
        for pooling in cfg.poolings:
            name = f"{SECTION_LOGIT}_{pooling}"
            columns_test[name] = _own_section_logit(test, column, pooling)
            columns_ref[name] = pd.Series(_own_section_logit(inlier, column, pooling), index=inlier.clip_id)
    return _assemble(columns_test, columns_ref, test.clip_id, inlier.clip_id)


def _fit_and_score(det, params, x_fit, x_test, domains, window_clip, folds, seed):
    """Window scores of test windows (fit on all inliers) and of inlier windows (cross-fitted)."""
    test_scores = build_detector(det, params, seed).fit(x_fit, domains).score(x_test)
    ref_scores = np.empty(len(x_fit))
    window_fold = folds[window_clip]
    for fold in np.unique(folds):
        held = window_fold == fold
        detector = build_detector(det, params, seed).fit(x_fit[~held], domains[~held])
        ref_scores[held] = detector.score(x_fit[held])
    return test_scores, ref_scores


def _own_section_logit(emb, column, pooling):
    """Detector-free score: the clip's own-section logit (``section_logits`` column), negated, pooled over windows."""
    window = -emb.features["section_logits"][:, column]
    return pool_windows(window, emb.window_clip, len(emb.clip_id), pooling)


def _assemble(columns_test, columns_ref, test_ids, inlier_ids):
    """Z-score every column by its reference scores; return test + reference rows.

    Reference rows cover every inlier clip; a column is NaN for clips outside its inlier set.
    """
    test_cols, ref_cols = {}, {}
    for name, test_values in columns_test.items():
        ref = columns_ref[name]
        mean, std = ref.mean(), ref.std(ddof=0) + 1e-12
        test_cols[name] = (test_values - mean) / std
        ref_cols[name] = ((ref - mean) / std).reindex(inlier_ids).to_numpy()
    test_df = pd.DataFrame({"clip_id": test_ids, "subset": "test", **test_cols})
    ref_df = pd.DataFrame({"clip_id": inlier_ids, "subset": "reference", **ref_cols})
    return pd.concat([test_df, ref_df], ignore_index=True)


def detect_stage(config_path, dumpdir, machine, embeddir, force=False) -> None:
    """The detector stage of one machine type's embeddings: ``<embeddir>/{inlier,test}.npz`` and the
    ``detect:`` section of ``config_path`` -> ``<embeddir>/scores.csv``; skipped while its record is current."""
    embeddir = Path(embeddir)
    section = (read_config(config_path) or {}).get("detect")  # bases merged, as every config is read
    cfg = from_dict(DetectConfig, section, f"{config_path}:detect")
    corpus = Corpus(dumpdir)
    inputs = {
        "inlier": file_digest(embeddir / INLIER_EMBEDDINGS),
        "test": file_digest(embeddir / TEST_EMBEDDINGS),
        f"dump/{machine}": corpus.identity(machine),
    }
    if "valid" in cfg.inlier_sets:
        inputs.update(corpus.lists_identity(machine, "valid"))
    record = Provenance(embeddir, "detect", inputs, {"detect": config_to_dict(cfg)})
    if record.is_current(force):
        return
    record.invalidate()
    inlier = Embeddings.load(embeddir / INLIER_EMBEDDINGS)
    test = Embeddings.load(embeddir / TEST_EMBEDDINGS)
    valid_ids = corpus.ids(machine, "valid") if "valid" in cfg.inlier_sets else ()
    scores = run_detectors(inlier, test, corpus.manifest(machine), cfg, valid_ids, machine)
    out = embeddir / CLIP_SCORES
    write_csv(scores, out, float_format="%.6g")
    record.write()
    logging.info(f"{machine}: {scores.shape[1] - 2} post-processes scored -> {out}")
