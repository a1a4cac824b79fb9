"""The official baseline's features: log-mel energies in dB, consecutive frames stacked into one vector.

As their ``file_to_vectors`` (common.py): librosa's mel spectrogram of the waveform as the file holds it
(no normalisation of the samples or of the features: the network's first BatchNorm is the only one),
``20 / power * log10(max(mel, float64 eps))``, then every run of ``frames`` consecutive frames as one
vector (frame t's ``n_mels`` bands at ``[t * n_mels, (t + 1) * n_mels)``), hop of one frame.
The dump normalises every clip by its machine type's statistics; ``raw_wave`` undoes that first.
"""

import sys

import numpy as np
import torch

from asd_tools.audio import mel_spectrogram
from asd_tools.constants import SAMPLE_RATE
from asd_tools.systems.dcase_ae.config import AEFeatureConfig

EPSILON = sys.float_info.epsilon  # their floor before the log (float64 machine epsilon)


def mel_frontend(cfg: AEFeatureConfig):
    """librosa.feature.melspectrogram's defaults as a torch module (``audio.mel_spectrogram``)."""
    return mel_spectrogram(
        SAMPLE_RATE,
        cfg.n_fft,
        cfg.hop_length,
        cfg.n_mels,
        cfg.f_min,
        cfg.f_max,
        power=cfg.power,
        normalized=False,
        librosa_compatible=True,
    )


def stack_frames(log_mel: np.ndarray, frames: int) -> np.ndarray:
    """(n_mels, T) -> (T - frames + 1, frames * n_mels): each row frames t..t+frames-1, oldest first."""
    n_vectors = log_mel.shape[1] - frames + 1
    if n_vectors < 1:
        return np.empty((0, frames * log_mel.shape[0]), dtype=log_mel.dtype)
    return np.concatenate([log_mel[:, t : t + n_vectors].T for t in range(frames)], axis=1)


def clip_vectors(wave: np.ndarray, cfg: AEFeatureConfig, frontend=None) -> np.ndarray:
    """The feature vectors of one waveform (float32 rows of ``frames * n_mels``)."""
    frontend = frontend or mel_frontend(cfg)
    with torch.no_grad():
        mel = frontend(torch.from_numpy(np.asarray(wave, dtype=np.float32))).numpy()
    log_mel = 20.0 / cfg.power * np.log10(np.maximum(mel, EPSILON))
    return stack_frames(log_mel, cfg.frames).astype(np.float32)


def raw_wave(store, row, stats: dict) -> np.ndarray:
    """A clip's samples as its file holds them: the dump's (x - mean) / std undone (``stats``: the dump's)."""
    return (store.read(row).astype(np.float64) * stats["std"] + stats["mean"]).astype(np.float32)


def each_clip_vectors(corpus, machine: str, clips, cfg: AEFeatureConfig):
    """The feature vectors of each clip (manifest rows) in turn; a clip too short for one vector stops."""
    frontend, stats = mel_frontend(cfg), corpus.stats(machine)
    for _, row in clips.iterrows():
        rows = clip_vectors(raw_wave(corpus.store, row, stats), cfg, frontend)
        if len(rows) == 0:
            raise ValueError(
                f"{row['path']}: too short for {cfg.frames} frames of hop {cfg.hop_length}; lower features.frames"
            )
        yield rows


def clips_vectors(corpus, machine: str, clips, cfg: AEFeatureConfig):
    """Feature vectors of every clip: (vectors, the position in ``clips`` of each vector's clip)."""
    vectors = list(each_clip_vectors(corpus, machine, clips, cfg))
    if not vectors:
        return np.empty((0, cfg.frames * cfg.n_mels), dtype=np.float32), np.empty(0, dtype=int)
    owner = np.concatenate([np.full(len(v), position) for position, v in enumerate(vectors)])
    return np.concatenate(vectors), owner
