"""The only module that imports torchaudio (its API churns; keep it in one place).

Provides the mel-spectrogram front end used by every system, resampling for the dump
stage, and torchaudio's Conformer block for the Conformer extractor.
"""

import warnings

import torch
import torchaudio


def mel_spectrogram(
    sample_rate, n_fft, hop_length, n_mels, f_min, f_max, power=1.0, normalized=True, librosa_compatible=False
):
    """A centred mel spectrogram module (reflect-padded, HTK mel scale, unnormalised filters).

    ``normalized``: divide the STFT by the window's L2 norm (sqrt(sum w^2), about 27.7 for a
    2048-point Hann window); false keeps torchaudio's raw STFT scale.
    ``librosa_compatible``: the defaults of ``librosa.feature.melspectrogram`` (librosa >= 0.10)
    instead, as the official DCASE baseline computes it: zero padding, Slaney mel scale and
    Slaney-normalised (area 1) filters; use it with ``normalized=False``.
    """
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate,
        n_fft=n_fft,
        hop_length=hop_length,
        n_mels=n_mels,
        f_min=f_min,
        f_max=f_max,
        power=power,
        normalized=normalized,
        center=True,
        pad_mode="constant" if librosa_compatible else "reflect",
        mel_scale="slaney" if librosa_compatible else "htk",
        norm="slaney" if librosa_compatible else None,
    )


def has_empty_mel_band(sample_rate, n_fft, n_mels, f_min, f_max) -> bool:
    """Whether a mel band of this front end takes no FFT bin: its output would be zero whatever the sound
    (torchaudio only warns). More bands than the FFT resolves between f_min and f_max cause it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bank = torchaudio.functional.melscale_fbanks(n_fft // 2 + 1, f_min, f_max, n_mels, sample_rate)
    return bool((bank.max(dim=0).values == 0).any())


def most_mel_bands(sample_rate, n_fft, f_min, f_max) -> int:
    """The most mel bands that each take an FFT bin (the limit of ``has_empty_mel_band``), by bisection."""
    low, high = 1, n_fft // 2 + 1  # low has none empty; the answer is at most the bin count
    while low < high:
        middle = (low + high + 1) // 2
        if has_empty_mel_band(sample_rate, n_fft, middle, f_min, f_max):
            high = middle - 1
        else:
            low = middle
    return low


LOG_FLOOR = 1e-6  # added before the log so that silent bins stay finite


def log_compress(spec):
    """Log of a (mel) magnitude spectrogram, as both the baseline and the log-mel front ends use it."""
    return torch.log(spec + LOG_FLOOR)


def resample(wave, orig_rate: int, new_rate: int):
    """Band-limited resampling of a 1-D numpy or torch signal; returns the same kind."""
    is_numpy = not isinstance(wave, torch.Tensor)
    tensor = torch.as_tensor(wave, dtype=torch.float64) if is_numpy else wave
    out = torchaudio.functional.resample(tensor, orig_rate, new_rate)
    return out.numpy() if is_numpy else out


def conformer(input_dim, num_heads, ffn_dim, num_layers, depthwise_conv_kernel_size, dropout=0.1):
    """torchaudio's Conformer encoder (used by the Conformer extractor family)."""
    return torchaudio.models.Conformer(
        input_dim=input_dim,
        num_heads=num_heads,
        ffn_dim=ffn_dim,
        num_layers=num_layers,
        depthwise_conv_kernel_size=depthwise_conv_kernel_size,
        dropout=dropout,
    )


def spec_augment(time_mask: int, freq_mask: int):
    """SpecAugment masking of (B, n_mels, frames) spectrograms; None when both widths are 0."""
    masks = []
    if freq_mask:
        masks.append(torchaudio.transforms.FrequencyMasking(freq_mask, iid_masks=True))
    if time_mask:
        masks.append(torchaudio.transforms.TimeMasking(time_mask, iid_masks=True))
    return torch.nn.Sequential(*masks) if masks else None


def pitch_shift(waves, semitones, sample_rate):
    """Shift each wave (B, T) by its whole number of semitones (phase vocoder + resampling).

    Waves that share a shift are processed together, so a batch costs a few calls.
    """
    out = waves.clone()
    for steps in torch.unique(semitones):
        if int(steps) == 0:
            continue
        rows = semitones == steps
        out[rows] = torchaudio.functional.pitch_shift(waves[rows], sample_rate, int(steps))
    return out
