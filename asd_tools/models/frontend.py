"""System 1's and DG-Mix's mel front end: its config schema and the module that computes it on the model's device."""

from dataclasses import dataclass
from typing import ClassVar, Dict

import torch
from torch import nn

from asd_tools.audio import has_empty_mel_band, log_compress, mel_spectrogram, most_mel_bands, spec_augment
from asd_tools.config import AT_LEAST_0, AT_LEAST_1, POSITIVE, Range
from asd_tools.constants import SAMPLE_RATE

# The numeric keys of a mel front end (System 1's and DG-Mix's frontend:, the baseline's logmel:).
MEL_RANGES = {
    "n_fft": Range(2),
    "hop_length": AT_LEAST_1,
    "n_mels": AT_LEAST_1,
    "f_min": AT_LEAST_0,
    "f_max": POSITIVE,
}


def check_mel_settings(cfg) -> None:
    """Rules across a mel front end's keys (inside ``__post_init__``; each key's own range is checked first)."""
    nyquist = SAMPLE_RATE / 2
    if not cfg.f_min < cfg.f_max <= nyquist:
        raise ValueError(
            f"f_min: {cfg.f_min}, f_max: {cfg.f_max}: need f_min < f_max <= {nyquist:g} Hz (half the sample rate)"
        )
    if has_empty_mel_band(SAMPLE_RATE, cfg.n_fft, cfg.n_mels, cfg.f_min, cfg.f_max):
        most = most_mel_bands(SAMPLE_RATE, cfg.n_fft, cfg.f_min, cfg.f_max)
        raise ValueError(
            f"n_mels: {cfg.n_mels} is out of range; allowed: [1, {most}] with n_fft {cfg.n_fft} and "
            f"{cfg.f_min:g}-{cfg.f_max:g} Hz (more bands than the FFT resolves there stay zero); lower n_mels "
            "or raise n_fft"
        )


@dataclass
class FrontendConfig:
    """Mel front end (defaults: the CNN family's 224 x 126 input for 2 s).

    The one place System 1's front-end defaults live: a model built without a front end uses them too.
    The sequence-model configs (100-203) state their own (hop 512, 0-8000 Hz, not normalised).
    """

    RANGES: ClassVar[Dict[str, Range]] = {**MEL_RANGES, "time_mask": AT_LEAST_0, "freq_mask": AT_LEAST_0}
    n_fft: int = 2048
    hop_length: int = 256
    n_mels: int = 224
    f_min: float = 50.0
    f_max: float = 7800.0
    # Window-normalised STFT (the original CNN and DG-Mix front ends); the original Transformer and
    # Conformer front end (torchaudio's defaults) was not normalised: false.
    normalized: bool = True
    log: bool = False  # the original fed magnitudes; log compression is an option
    time_mask: int = 0  # SpecAugment: widest time mask in frames (0 = off); training only
    freq_mask: int = 0  # SpecAugment: widest frequency mask in bands (0 = off)

    def __post_init__(self):
        check_mel_settings(self)


class MelFrontend(nn.Module):
    """Wave (B, T) -> mel spectrogram (B, n_mels, frames), computed on the model's device."""

    def __init__(self, cfg: FrontendConfig):
        super().__init__()
        self.cfg = cfg
        self.mel = mel_spectrogram(
            SAMPLE_RATE, cfg.n_fft, cfg.hop_length, cfg.n_mels, cfg.f_min, cfg.f_max, normalized=cfg.normalized
        )
        self.augment = spec_augment(cfg.time_mask, cfg.freq_mask)

    def forward(self, wave):
        with torch.autocast(device_type=wave.device.type, enabled=False):  # STFT in float32
            spec = self.mel(wave.float())
            if self.cfg.log:
                spec = log_compress(spec)
        if self.training and self.augment is not None:
            spec = self.augment(spec)
        return spec
