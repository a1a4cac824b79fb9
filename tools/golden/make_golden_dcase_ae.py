#!/usr/bin/env python
"""Golden outputs of the organisers' DCASE autoencoder baseline, for tests/test_golden_dcase_ae.py.

Run at development time on a checkout of nttcslab/dcase2023_task2_baseline_ae (never shipped, never
copied): it imports THEIR modules (networks/dcase2023t2_ae/network.py, networks/criterion/mahala.py,
datasets/loader_common.py), feeds them a seeded 10 s clip, seeded weights and fixed batches, and writes
their outputs with the inputs and weights into one .npz, recording their repository and commit:

    python tools/golden/make_golden_dcase_ae.py --original /path/to/dcase2023_task2_baseline_ae \
        [--commit <sha> when the checkout has no .git] [--out tests/golden/dcase_ae/golden.npz]

Only what their own functions compute is golden: their features (file_to_vectors), their network's
reconstruction, their per-batch centred error blocks (cov_v_diff, cov_v) and their Mahalanobis
(loss_function_mahala). The few lines around those calls that live in their training class (the
division of the summed covariances by vectors - 1, the row means and sum / count of the Mahalanobis
matrix, the MSE mean, the gamma fit) are written out below as in their dcase2023t2_ae.py / base_model.py:
importing that class needs their whole data pipeline. Their loader imports ``fasteners`` (file locks)
at module level and uses it only for its caches; when it is not installed an empty stand-in is put in
its place (file_to_vectors does not touch it).
"""

import argparse
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import scipy.stats
import soundfile as sf
import torch
import torch.nn.functional as F

REPOSITORY = "nttcslab/dcase2023_task2_baseline_ae"
SEED = 20260101
RATE = 16000
BATCH = 64


def their_modules(original: Path):
    sys.path.insert(0, str(original))
    try:
        import fasteners  # noqa: F401
    except ImportError:
        sys.modules["fasteners"] = types.ModuleType("fasteners")
    from datasets.loader_common import file_to_vectors
    from networks.criterion.mahala import cov_v, loss_function_mahala
    from networks.dcase2023t2_ae.network import AENet

    return file_to_vectors, cov_v, loss_function_mahala, AENet


def commit_of(original: Path, given):
    if given:
        return given
    try:
        return subprocess.run(
            ["git", "-C", str(original), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        raise SystemExit(f"{original} is not a git checkout: give its commit with --commit") from None


def seeded_clip(rng) -> np.ndarray:
    """10 s (a DCASE clip's length: enough error blocks of each domain for invertible covariances) of a
    tone with harmonics and noise, as 16-bit PCM (what the dump stores)."""
    t = np.arange(10 * RATE) / RATE
    wave = 0.2 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.sin(2 * np.pi * 1320 * t) + 0.02 * rng.normal(size=t.size)
    return np.round(np.clip(wave, -1, 1) * 32767).astype(np.int16)


def seeded_network(AENet, rng):
    """Their network with seeded weights and BatchNorm statistics (so that eval mode is not the identity)."""
    torch.manual_seed(SEED)
    net = AENet(input_dim=640, block_size=128)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.copy_(torch.from_numpy(rng.normal(0, 0.5, module.num_features)))
                module.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, module.num_features)))
    return net.eval()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--original", type=Path, required=True, help="a checkout of " + REPOSITORY)
    p.add_argument("--commit", default=None, help="its commit, when the checkout has no .git")
    p.add_argument("--out", type=Path, default=Path("tests/golden/dcase_ae/golden.npz"))
    a = p.parse_args(argv)
    if not (a.original / "networks" / "dcase2023t2_ae" / "network.py").exists():
        raise SystemExit(f"{a.original}: not a checkout of {REPOSITORY} (no networks/dcase2023t2_ae/network.py)")
    a.out = a.out.resolve()  # their modules change the working directory when imported
    file_to_vectors, cov_v, loss_function_mahala, AENet = their_modules(a.original.resolve())
    rng = np.random.default_rng(SEED)
    pcm = seeded_clip(rng)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "section_00_source_train_normal_0000.wav"
        sf.write(path, pcm, RATE, subtype="PCM_16")
        # their baseline.yaml's settings (fmin 0.0, fmax null: the function's own defaults do not run on librosa 0.11)
        vectors = file_to_vectors(
            str(path), n_mels=128, n_frames=5, n_fft=1024, hop_length=512, power=2.0, fmin=0.0, fmax=None
        )
    net = seeded_network(AENet, rng)
    x = torch.from_numpy(vectors).float()
    is_target = rng.random(len(x)) < 0.3
    with torch.no_grad():
        recon, _ = net(x)
        errors = (recon - x).numpy()
        # covariances as their training class's covariance pass: per batch, their loss_function_mahala
        # (update_cov=True) centres each domain's blocks, cov_v sums their outer products
        sums, counts = [torch.zeros(128, 128), torch.zeros(128, 128)], [0, 0]
        for start in range(0, len(x), BATCH):
            rows = slice(start, start + BATCH)
            src, tgt = (~is_target[rows]).tolist(), is_target[rows].tolist()
            _, diff_source, diff_target = loss_function_mahala(
                recon[rows], x[rows], 128, update_cov=True, reduction=False, is_source_list=src, is_target_list=tgt
            )
            sums[0] += cov_v(diff_source, num=1)
            counts[0] += sum(src)
            if any(tgt):
                sums[1] += cov_v(diff_target, num=1)
                counts[1] += sum(tgt)
        cov_source, cov_target = sums[0] / (counts[0] - 1), sums[1] / (counts[1] - 1)
        net.cov_source.data, net.cov_target.data = cov_source, cov_target
        mahala = []
        for cov in (cov_source, cov_target):  # their eval(): precision, reduction=False, row means, sum / count
            precision = torch.inverse(cov)
            m_loss, num = loss_function_mahala(recon, x, 128, cov=precision, use_precision=True, reduction=False)
            mahala.append(float(torch.sum(torch.mean(m_loss, dim=1)) / num))
        mse = float(F.mse_loss(recon, x, reduction="none").mean())
    batch_scores = rng.gamma(2.0, 0.5, size=300) + 3.0  # their fit_anomaly_score_distribution / calc_decision_threshold
    shape, loc, scale = scipy.stats.gamma.fit(batch_scores)
    threshold = scipy.stats.gamma.ppf(q=0.9, a=shape, loc=loc, scale=scale)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp,
        repository=REPOSITORY,
        commit=commit_of(a.original, a.commit),
        pcm=pcm,
        vectors=vectors.astype(np.float32),
        is_target=is_target,
        batch=BATCH,
        errors=errors,
        cov_source=cov_source.numpy(),
        cov_target=cov_target.numpy(),
        mahala_source=mahala[0],
        mahala_target=mahala[1],
        mse=mse,
        batch_scores=batch_scores,
        threshold=threshold,
        **{f"weight/{k}": v.numpy() for k, v in net.state_dict().items()},
    )
    tmp.rename(a.out)
    print(f"{a.out}: {len(vectors)} vectors, their commit {commit_of(a.original, a.commit)}")


if __name__ == "__main__":
    main()
