"""Detector registry and parameter grids: the list form's output is pinned, the mapping form, Mahalanobis."""

from pathlib import Path

import numpy as np
import pandas as pd

from asd_tools.detect import DetectConfig, run_detectors
from asd_tools.embeddings import Embeddings

DATA = Path(__file__).resolve().parent / "data"
# the detector stage's output on LIST_FORM_CASE, written by the code before detectors declared
# their own parameter grids (commit "Pin the detector stage's list-form output ...")
PINNED_LIST_FORM = DATA / "detect_list_form.csv"
LIST_FORM = dict(
    detectors=["gmm", "knn", "lof"],
    ks=[1, 2],
    inlier_sets=["all", "so"],
    feature_sets={"embed": ["embedding"], "both": ["embedding", "section_logits"]},
    poolings=["min_anomaly", "mean"],
)


def small_case(seed=0, n_inlier=6, n_test=2, n_win=2, dim=3):
    """Random embeddings of two sections: inlier clips (two thirds source) and test clips."""
    rng = np.random.default_rng(seed)
    rows = []
    for section in (0, 1):
        domains = ["source"] * (n_inlier - n_inlier // 3) + ["target"] * (n_inlier // 3)
        rows += [(f"s{section}_in{i}", section, d) for i, d in enumerate(domains)]
        rows += [(f"s{section}_test{i}", section, "source" if i % 2 == 0 else "target") for i in range(n_test)]
    clip_info = pd.DataFrame(rows, columns=["clip_id", "section", "domain"]).set_index("clip_id")

    def embeddings(ids):
        n = len(ids) * n_win
        features = {"embedding": rng.normal(size=(n, dim)), "section_logits": rng.normal(size=(n, 2))}
        return Embeddings(np.array(ids), np.repeat(np.arange(len(ids)), n_win), features)

    inlier = embeddings([c for c in clip_info.index if "_in" in c])
    test = embeddings([c for c in clip_info.index if "_test" in c])
    return inlier, test, clip_info


def test_the_list_form_gives_the_pinned_names_and_values():
    """The shipped configs' form (detectors + ks) scores exactly as before parameter grids."""
    inlier, test, clip_info = small_case()
    got = run_detectors(inlier, test, clip_info, DetectConfig(**LIST_FORM))
    expected = pd.read_csv(PINNED_LIST_FORM)
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-9, atol=1e-12)
