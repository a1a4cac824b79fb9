"""The simple baseline's extractor: log-mel statistics of the whole clip.

Per clip: log mel spectrogram (64 bands), mean and standard deviation of every band over
time -> a 128-d vector, one "window" per clip. The shared detector stage then fits a
per-section detector (kNN or GMM, ``conf/tuning/baseline.yaml``) on the training clips.
It is the yardstick of the synthetic set's difficulty and a check of every shared stage.
"""

from dataclasses import dataclass
from typing import ClassVar, Dict

import numpy as np
import torch

from asd_tools.audio import log_compress, mel_spectrogram
from asd_tools.backend.embeddings import Embeddings
from asd_tools.constants import SAMPLE_RATE
from asd_tools.data.manifest import ClipStore
from asd_tools.models.frontend import MEL_RANGES, check_mel_settings
from asd_tools.utils import progress


@dataclass
class LogMelConfig:
    RANGES: ClassVar[Dict] = MEL_RANGES
    n_fft: int = 1024
    hop_length: int = 512
    n_mels: int = 64
    f_min: float = 50.0
    f_max: float = 7800.0

    def __post_init__(self):
        check_mel_settings(self)


def logmel_statistics(manifest_rows, store: ClipStore, cfg: LogMelConfig) -> Embeddings:
    """One 2*n_mels vector (band means, band stds of the log mel spectrogram) per clip."""
    mel = mel_spectrogram(SAMPLE_RATE, cfg.n_fft, cfg.hop_length, cfg.n_mels, cfg.f_min, cfg.f_max)
    features = []
    with torch.no_grad():
        for _, row in progress(manifest_rows.iterrows(), total=len(manifest_rows), desc="log-mel"):
            spec = log_compress(mel(torch.from_numpy(store.read(row))))
            features.append(torch.cat([spec.mean(dim=-1), spec.std(dim=-1)]).numpy())
    n = len(features)
    return Embeddings(
        clip_id=manifest_rows["clip_id"].to_numpy(),
        window_clip=np.arange(n),
        features={"logmel_stats": np.stack(features).astype(np.float32)},
    )
