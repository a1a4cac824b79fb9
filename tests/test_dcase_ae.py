"""The official DCASE autoencoder baseline (``system: dcase_ae``): features, network, scores, threshold,
training split, and its tiny recipe end to end."""

import os

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch

from asd_tools.artefacts import CLIP_SCORES
from asd_tools.backend.detectors import build_detector
from asd_tools.config import load_config
from asd_tools.systems.dcase_ae.config import AEFeatureConfig, DcaseAEConfig
from asd_tools.systems.dcase_ae.features import EPSILON, clip_vectors, stack_frames
from asd_tools.systems.dcase_ae.network import AutoEncoder
from asd_tools.systems.dcase_ae.recipe import DcaseAE, model_folders
from asd_tools.systems.dcase_ae.scores import (
    fit_covariances,
    mahalanobis_mean_block,
    mse_score,
    official_threshold,
    selective_mahalanobis,
)
from asd_tools.systems.dcase_ae.task import AutoEncoderTask, batches_of, validation_split
from tests.conftest import CONF, run_recipe

# ------------------------------------------------------------------ features


def test_frames_are_stacked_oldest_first_with_a_hop_of_one_frame():
    log_mel = np.arange(12, dtype=float).reshape(2, 6)  # 2 bands, 6 frames: band b, frame t = 6 b + t
    vectors = stack_frames(log_mel, 3)
    assert vectors.shape == (4, 6)
    # vector 1: frames 1, 2, 3, each with its 2 bands
    assert vectors[1].tolist() == [1, 7, 2, 8, 3, 9]
    assert stack_frames(log_mel, 7).shape == (0, 14)  # too short: no vector


def test_features_match_librosa_as_the_organisers_compute_them():
    """Their common.file_to_vectors: librosa.feature.melspectrogram with its defaults, 10 log10(max(mel, eps))."""
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 2) / 16000
    wave = (0.1 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.normal(size=t.size)).astype(np.float32)
    cfg = AEFeatureConfig()
    mel = librosa.feature.melspectrogram(y=wave, sr=16000, n_fft=1024, hop_length=512, n_mels=128, power=2.0)
    log_mel = 10.0 * np.log10(np.maximum(mel, EPSILON))
    n = log_mel.shape[1] - 4
    expected = np.concatenate([log_mel[:, i : i + n].T for i in range(5)], axis=1)
    ours = clip_vectors(wave, cfg)
    assert ours.shape == expected.shape == (n, 640)
    np.testing.assert_allclose(ours, expected, atol=1e-3)  # dB; float32 STFTs of two libraries


# ------------------------------------------------------------------ network


def test_the_autoencoder_has_their_layers_and_state_dict_names():
    model = AutoEncoder(640, 128)
    linear = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert linear == [(640, 128), (128, 128), (128, 128), (128, 128), (128, 8)] + [
        (8, 128),
        (128, 128),
        (128, 128),
        (128, 128),
        (128, 640),
    ]
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(norms) == 9 and all(m.momentum == 0.01 and m.eps == 1e-3 for m in norms)
    # Linear, BatchNorm, ReLU per block: their nn.Sequential indices, so that their weights load into ours
    expected = {"cov_source", "cov_target"}
    for part, blocks in (("encoder", 5), ("decoder", 4)):
        for b in range(blocks):
            expected |= {f"{part}.{3 * b}.weight", f"{part}.{3 * b}.bias"}
            expected |= {f"{part}.{3 * b + 1}.{k}" for k in ("weight", "bias", "running_mean", "running_var")}
            expected.add(f"{part}.{3 * b + 1}.num_batches_tracked")
    expected |= {"decoder.12.weight", "decoder.12.bias"}
    assert set(model.state_dict()) == expected
    assert isinstance(model.encoder[-1], torch.nn.ReLU) and isinstance(model.decoder[-1], torch.nn.Linear)
    recon, code = model.eval()(torch.randn(3, 640))
    assert recon.shape == (3, 640) and code.shape == (3, 8) and bool((code >= 0).all())


# ------------------------------------------------------------------ scores


def their_mahalanobis(errors, precision, block_size):
    """Their loss_function_mahala(reduction=False), loss_reduction_1d, loss_reduction, written out:
    the blocks x blocks matrix d_i P d_j, its row means, their sum over the number of blocks."""
    delta = errors.reshape(-1, block_size)
    m_loss = delta @ precision @ delta.T
    return m_loss.mean(axis=1).sum() / len(delta)


def test_mahalanobis_of_the_mean_block_is_their_pairwise_average_and_the_smaller_domain_is_chosen():
    rng = np.random.default_rng(1)
    errors = rng.normal(size=(7, 4 * 3))  # 7 vectors of 3 frames x 4 bands
    a = rng.normal(size=(4, 4))
    p_source, p_target = a @ a.T + np.eye(4), np.eye(4) * 0.5
    source = their_mahalanobis(errors, p_source, 4)
    target = their_mahalanobis(errors, p_target, 4)
    t = torch.from_numpy(errors)
    assert mahalanobis_mean_block(t, torch.from_numpy(p_source)) == pytest.approx(source, rel=1e-10)
    both = (torch.from_numpy(p_source), torch.from_numpy(p_target))
    assert selective_mahalanobis(t, both) == pytest.approx(min(source, target), rel=1e-10)
    assert mse_score(t) == pytest.approx(np.mean(errors**2))


def test_covariances_centre_each_batch_and_divide_by_vectors_minus_one():
    rng = np.random.default_rng(2)
    batches = [(rng.normal(size=(6, 2 * 3)), np.array([0, 0, 1, 0, 1, 0], bool)) for _ in range(3)]
    expected = []
    for domain in (False, True):
        total, count = np.zeros((3, 3)), 0
        for errors, is_target in batches:
            part = errors[is_target == domain].reshape(-1, 3)
            part = part - part.mean(axis=0)
            total += part.T @ part
            count += int((is_target == domain).sum())
        expected.append(total / (count - 1))
    source, target = fit_covariances([(torch.from_numpy(e), t) for e, t in batches], 3)
    np.testing.assert_allclose(source.numpy(), expected[0], rtol=1e-5)
    np.testing.assert_allclose(target.numpy(), expected[1], rtol=1e-5)
    only_source = [(torch.from_numpy(e), np.zeros(6, bool)) for e, _ in batches]
    source, target = fit_covariances(only_source, 3)
    assert torch.equal(source, target)  # theirs: no target vectors -> the source covariance


def test_the_decision_threshold_is_the_90th_percentile_of_a_gamma_fit():
    scores = np.random.default_rng(3).gamma(2.0, 1.5, size=200) + 1.0
    shape, loc, scale = scipy.stats.gamma.fit(scores)
    expected = scipy.stats.gamma.ppf(q=0.9, a=shape, loc=loc, scale=scale)
    assert official_threshold(scores, 0.9) == pytest.approx(expected)


def test_the_clip_score_detector_passes_one_column_on_and_refuses_more():
    detector = build_detector("clip_score", {}).fit(np.zeros((3, 1)))
    assert detector.score(np.array([[2.0], [-1.0]])).tolist() == [2.0, -1.0]
    with pytest.raises(ValueError, match="one column"):
        detector.score(np.zeros((2, 2)))


# ------------------------------------------------------------------ training split and plans


def test_validation_is_a_seeded_share_of_vectors_and_batches_of_one_are_skipped():
    train, valid = validation_split(101, 0.1, seed=5)
    assert len(valid) == 11 and len(train) == 90 and not set(train) & set(valid)
    again = validation_split(101, 0.1, seed=5)
    assert np.array_equal(train, again[0]) and np.array_equal(valid, again[1])
    assert [len(b) for b in batches_of(np.arange(9), 4)] == [4, 4]  # the last batch of 1 is left out
    task = AutoEncoderTask(np.zeros((101, 4), np.float32), np.zeros(101, bool), 8, 0.1, 5, "cpu")
    assert [list(b) for b in task.plan(3)] == [list(b) for b in task.plan(3)]  # an epoch's order is its own
    assert sorted(np.concatenate(task.plan(3))) == sorted(train)


class FakeCorpus:
    def sections(self, machine):
        return (0, 1, 2)


def test_legacy_per_section_models_each_have_a_folder_and_a_record_entry(tmp_path):
    cfg = load_config(CONF / "dcase_ae.legacy.yaml", DcaseAEConfig)
    assert cfg.train.per_section
    folders = model_folders(cfg, FakeCorpus(), "fan", tmp_path)
    assert folders == {s: tmp_path / f"section_{s:02d}" for s in (0, 1, 2)}
    files = DcaseAE().model_files(cfg, FakeCorpus(), "fan", tmp_path, "autoencoder")
    assert files["checkpoint/section_01"] == tmp_path / "section_01" / "autoencoder.pt" and len(files) == 3
    single = load_config(CONF / "dcase_ae.yaml", DcaseAEConfig)
    assert DcaseAE().model_files(single, FakeCorpus(), "fan", tmp_path, "autoencoder") == {
        "checkpoint": tmp_path / "autoencoder.pt"
    }


# ------------------------------------------------------------------ end to end


@pytest.mark.e2e
def test_tiny_recipe_trains_scores_and_writes_submissions(tiny_job, tmp_path):
    """Stages 3-6 of dcase_ae.tiny.yaml (1 epoch) on the session's tiny dump (read only), for one machine type
    (the other adds time, not a check)."""
    job, _ = tiny_job
    dirs = ["--data_root", str(job / "data"), "--dumpdir", str(job / "dump"), "--expdir", str(tmp_path / "exp")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # a 0.3 M-parameter MLP: more threads only contend
    out = run_recipe(
        "dcase_ae.sh",
        "--conf",
        "conf/tuning/dcase_ae.tiny.yaml",
        "--stage",
        "3",
        "--machines",
        "fan",
        "--figures",
        "false",
        *dirs,
        env=env,
    )
    assert "dcase_ae.tiny/autoencoder: official score" in out
    folder = tmp_path / "exp" / "fan" / "dcase_ae.tiny"
    published = torch.load(folder / "autoencoder.pt", weights_only=True)
    assert set(published["thresholds"]) == {"mse", "mahala"}
    assert all(np.isfinite(v) for v in published["thresholds"].values())
    assert published["model"]["cov_source"].abs().sum() > 0 and published["model"]["cov_target"].abs().sum() > 0
    scores = pd.read_csv(folder / "autoencoder" / CLIP_SCORES)
    assert list(scores.columns) == ["clip_id", "subset", "clip_score_all_mse_mean", "clip_score_all_mahala_mean"]
    assert scores.iloc[:, 2:].notna().all().all()
    results = tmp_path / "exp" / "only_fan" / "dcase_ae.tiny" / "autoencoder"
    assert (results / "score.md").exists()
    assert list(results.glob("teams/*/*/decision_result_*.csv"))
