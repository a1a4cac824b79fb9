"""dcase_ae against the organisers' own code: golden outputs made by tools/golden/make_golden_dcase_ae.py
from their repository (the commit is recorded in the file) on a seeded clip, seeded weights and fixed
batches (a 10 s clip: 309 vectors). Tolerances: features 2e-3 dB at most and 1e-4 dB on average (librosa's
and torchaudio's float32 STFTs; measured 6.3e-4 and 1.2e-5), everything computed from the same vectors and
weights to float32 rounding: reconstruction errors 1e-5 (measured: equal), MSE, covariances (relative to
their largest entry) and Mahalanobis scores 1e-5 relative (measured at most 1.2e-6: their covariances are
summed and inverted in float32, ours in float64)."""

from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import torch

from asd_tools.systems.dcase_ae.config import AEFeatureConfig
from asd_tools.systems.dcase_ae.features import clip_vectors
from asd_tools.systems.dcase_ae.network import AutoEncoder
from asd_tools.systems.dcase_ae.scores import (
    fit_covariances,
    mahalanobis_mean_block,
    mse_score,
    official_threshold,
    vector_errors,
)
from asd_tools.systems.dcase_ae.task import batches_of

GOLDEN = Path(__file__).parent / "golden" / "dcase_ae" / "golden.npz"


@pytest.fixture(scope="module")
def golden():
    data = np.load(GOLDEN)
    assert str(data["repository"]) == "nttcslab/dcase2023_task2_baseline_ae" and len(str(data["commit"])) == 40
    return data


@pytest.fixture(scope="module")
def their_weights_in_ours(golden):
    model = AutoEncoder(640, 128)
    state = {k[len("weight/") :]: torch.from_numpy(golden[k]) for k in golden.files if k.startswith("weight/")}
    model.load_state_dict(state)  # strict: their state_dict names are ours
    return model.eval()


def test_features_equal_theirs(golden):
    wave = golden["pcm"].astype(np.float32) / 32768  # as soundfile / librosa read 16-bit PCM
    ours = clip_vectors(wave, AEFeatureConfig())
    assert ours.shape == golden["vectors"].shape
    difference = np.abs(ours - golden["vectors"])
    assert difference.max() < 2e-3 and difference.mean() < 1e-4


def test_reconstruction_errors_and_mse_equal_theirs(golden, their_weights_in_ours):
    with torch.no_grad():
        errors = vector_errors(their_weights_in_ours, torch.from_numpy(golden["vectors"]))
    np.testing.assert_allclose(errors.numpy(), golden["errors"], rtol=0, atol=1e-5)
    assert mse_score(errors) == pytest.approx(float(golden["mse"]), rel=1e-5)


def test_covariances_and_mahalanobis_scores_equal_theirs(golden):
    errors, is_target = torch.from_numpy(golden["errors"]), golden["is_target"]
    size = int(golden["batch"])
    plan = batches_of(np.arange(len(errors)), size)  # their consecutive batches (none of one vector here)
    assert sum(len(b) for b in plan) == len(errors)
    source, target = fit_covariances([(errors[b], is_target[b]) for b in plan], 128)
    for ours, theirs in ((source, golden["cov_source"]), (target, golden["cov_target"])):
        assert np.abs(ours.numpy() - theirs).max() <= 1e-5 * np.abs(theirs).max()
    for cov, name in ((golden["cov_source"], "mahala_source"), (golden["cov_target"], "mahala_target")):
        precision = torch.linalg.inv(torch.from_numpy(cov).double())
        assert mahalanobis_mean_block(errors, precision) == pytest.approx(float(golden[name]), rel=1e-5)


def test_decision_threshold_equals_theirs(golden):
    assert official_threshold(golden["batch_scores"], 0.9) == pytest.approx(float(golden["threshold"]), rel=1e-6)
    assert scipy.stats.gamma.fit(golden["batch_scores"])  # the fit their threshold is made from
