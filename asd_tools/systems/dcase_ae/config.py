"""Config schema of the official DCASE autoencoder baseline (``system: dcase_ae``).

Defaults are the organisers' (nttcslab/dcase2023_task2_baseline_ae, ``baseline.yaml``, ``common.py``):
128 mel bands x 5 frames, n_fft 1024, hop 512, power 2; Adam at lr 0.001, 100 epochs, batch 256,
10 % of the feature vectors held out for the validation loss, seed 13711; decision threshold at the
90th percentile of a gamma fitted to the training scores. ``per_section`` is the one difference of
their legacy 2020-2022 scripts (one model per section, ``tools/01_train_legacy.sh``).
"""

from dataclasses import dataclass, field
from typing import ClassVar, Dict, List

from asd_tools.backend.detect import DetectConfig, check_inlier_sets
from asd_tools.config import AT_LEAST_0, AT_LEAST_1, FRACTION, POSITIVE, Range, choice
from asd_tools.constants import SAMPLE_RATE
from asd_tools.data.split import SUBSETS
from asd_tools.systems.base import check_system_field

SCORES = ("mse", "mahala")  # the organisers' --score MSE and --score MAHALA


@dataclass
class AEFeatureConfig:
    """Log-mel energies in dB, ``frames`` consecutive frames stacked into one vector (their common.py)."""

    RANGES: ClassVar[Dict[str, Range]] = {
        "n_mels": AT_LEAST_1,
        "frames": AT_LEAST_1,
        "n_fft": Range(2),
        "hop_length": AT_LEAST_1,
        "power": POSITIVE,
        "f_min": AT_LEAST_0,
        "f_max": POSITIVE,
    }

    n_mels: int = 128
    frames: int = 5
    n_fft: int = 1024
    hop_length: int = 512
    power: float = 2.0
    f_min: float = 0.0
    f_max: float = SAMPLE_RATE / 2  # theirs: None, which librosa reads as sr / 2

    def __post_init__(self):
        if not self.f_min < self.f_max <= SAMPLE_RATE / 2:
            raise ValueError(f"features: f_min {self.f_min} and f_max {self.f_max} need 0 <= f_min < f_max <= 8000")


@dataclass
class AEModelConfig:
    """The fully connected autoencoder: ``layers`` hidden layers of ``hidden`` units each side of the code."""

    RANGES: ClassVar[Dict[str, Range]] = {"hidden": AT_LEAST_1, "layers": AT_LEAST_1, "bottleneck": AT_LEAST_1}

    hidden: int = 128
    layers: int = 4
    bottleneck: int = 8


@dataclass
class AETrainConfig:
    RANGES: ClassVar[Dict[str, Range]] = {
        "epochs": AT_LEAST_1,
        "batch_size": Range(2),
        "lr": POSITIVE,
        "validation_split": Range(0, 1, low_open=True, high_open=True),
        "seed": AT_LEAST_0,
        "decision_percentile": FRACTION,
    }

    epochs: int = 100
    batch_size: int = 256
    lr: float = 0.001  # Adam, no schedule
    validation_split: float = 0.1  # share of the training feature vectors kept for the validation loss
    seed: int = 13711
    per_section: bool = False  # true: one model per section (their legacy 2020-2022 scripts)
    decision_percentile: float = 0.9  # the gamma fit's percentile that is the decision threshold


@dataclass
class AEEmbedConfig:
    inlier_subsets: List[str] = field(default_factory=lambda: ["train", "valid"])


@dataclass
class DcaseAEConfig:
    REQUIRED_SECTIONS: ClassVar[tuple] = ("train", "detect")
    system: str = "dcase_ae"
    features: AEFeatureConfig = field(default_factory=AEFeatureConfig)
    model: AEModelConfig = field(default_factory=AEModelConfig)
    train: AETrainConfig = field(default_factory=AETrainConfig)
    embed: AEEmbedConfig = field(default_factory=AEEmbedConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)

    def __post_init__(self):
        check_system_field(self, "dcase_ae")
        for subset in self.embed.inlier_subsets:
            choice(subset, SUBSETS[:2], "embed.inlier_subsets")
        check_inlier_sets(self.detect, self.embed.inlier_subsets, "embed.inlier_subsets")
