"""Config schema of the serial outlier-exposure system (defaults = the original recipe's)."""

from dataclasses import dataclass, field
from typing import ClassVar, List, Optional

from asd_tools.config import check_params, choice
from asd_tools.data.split import SUBSETS
from asd_tools.detect import DetectConfig
from asd_tools.models import MODELS
from asd_tools.models.asd_model import FrontendConfig
from asd_tools.training.optim import OPTIMIZERS, SCHEDULERS, check_optimizer_params, check_scheduler_params

AMP_DTYPES = ("bfloat16", "float16")


@dataclass
class ModelConfig:
    name: str = "asd_model"  # registry name: asd_model, transformer, conformer
    params: dict = field(default_factory=dict)  # constructor arguments of that model

    def __post_init__(self):
        choice(self.name, MODELS, "model.name")
        check_params(self.params, MODELS[self.name], "model.params", self.name, supplied=("frontend",))


@dataclass
class OETrainConfig:
    batch_size: int = 128  # half positives (this machine type), half negatives (the others)
    n_target: int = 0  # positives replaced by random target-domain clips in every batch
    use_mixup: bool = True
    mixup_alpha: float = 0.2  # Beta(alpha, alpha) weight per sample
    section_loss_weight: float = 10.0  # loss = BCE(machine) + weight * BCE(section)
    pitch_shift_std: float = 0.0  # semitones ~ N(0, std), rounded; 0 = off
    epochs: int = 300  # one epoch = one pass over the source training clips
    log_interval_epochs: int = 5  # validation interval
    save_interval_epochs: int = 50  # checkpoint interval
    optimizer: str = "adamw"
    optimizer_params: dict = field(default_factory=lambda: {"lr": 1.0e-3, "weight_decay": 0.0})
    scheduler: str = "onecycle"
    scheduler_params: dict = field(default_factory=lambda: {"max_lr": 1.0e-3})
    grad_clip: float = 0.0
    amp: bool = True  # mixed precision on CUDA
    amp_dtype: str = "bfloat16"
    num_workers: int = 2  # DataLoader workers reading the memory-mapped dump
    valid_negatives_per_machine: int = 200  # validation negatives drawn from each other machine type
    seed: int = 0
    # Domain classifier (needs model.params.domain_head: true)
    target_batch_size: int = 0  # target-domain clips of this machine type added to every batch (0 = off)
    target_mix_ratio: float = 0.5  # share of that target batch mixed among themselves
    target_machine_weight: float = 0.5  # target loss = w_m BCE(machine) + w_s BCE(section) + BCE(domain)
    # External outlier exposure: unrelated sounds as extra negatives
    outlier_pool: Optional[str] = None  # pool sub-folder of the dump folder, e.g. outlier_pool (bin/dump_pool)
    n_pos: int = 0  # positives per batch (0 = batch_size / 2)
    n_neg: int = 0  # negatives from the other machine types (0 = batch_size / 2); the rest are outliers

    def __post_init__(self):
        choice(self.optimizer, OPTIMIZERS, "train.optimizer")
        choice(self.scheduler, SCHEDULERS, "train.scheduler")
        check_optimizer_params(self.optimizer, self.optimizer_params, "train.optimizer_params")
        check_scheduler_params(self.scheduler, self.scheduler_params, "train.scheduler_params")
        choice(self.amp_dtype, AMP_DTYPES, "train.amp_dtype")
        if self.batch_size < 2 or self.batch_size % 2:
            raise ValueError("train.batch_size must be an even number >= 2")
        self.n_pos = self.n_pos or self.batch_size // 2
        self.n_neg = self.n_neg or self.batch_size // 2
        if self.n_pos + self.n_neg > self.batch_size:
            raise ValueError("train.n_pos + train.n_neg must not exceed train.batch_size")
        if self.n_pos + self.n_neg < self.batch_size and not self.outlier_pool:
            raise ValueError("train.n_pos + train.n_neg < batch_size needs train.outlier_pool for the rest")
        if not 0 <= self.n_target <= self.n_pos:
            raise ValueError("train.n_target must lie in [0, n_pos]")


@dataclass
class EmbedConfig:
    inlier_subsets: List[str] = field(default_factory=lambda: ["valid"])  # inlier clips: valid, or train+valid
    n_split: int = 10  # evenly spaced 2 s windows per clip; 0 = the whole clip once ("10 s" mode)
    batch_size: int = 256  # windows per forward pass (across clips)
    target_mixup: bool = False  # add inlier windows mixed with target crops of the same section
    target_mixup_alpha: float = 0.2
    num_workers: int = 2
    seed: int = 0

    def __post_init__(self):
        for subset in self.inlier_subsets:
            choice(subset, SUBSETS[:2], "embed.inlier_subsets")


@dataclass
class SerialOEConfig:
    REQUIRED_SECTIONS: ClassVar[tuple] = ("model", "train")
    model: ModelConfig = field(default_factory=ModelConfig)
    frontend: FrontendConfig = field(default_factory=FrontendConfig)
    train: OETrainConfig = field(default_factory=OETrainConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
