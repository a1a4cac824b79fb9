"""Config schema of DG-Mix.

Defaults live here only (a config states what it changes; see ``asd_tools.config`` for ``base:``).
Losses, stages and schedules default to the original hyper-parameters; the original code's bugs are
switches that default to the fix (``scheduler_never_steps``, ``exclude_bias_and_norm``, ``embed.pool``;
dgmix.original.yaml sets them), and the architecture switches (``model``, ``vicreg.mixture_pass``) to
this project's first version, so that configs saved before they existed still describe their
checkpoints. ``num_workers`` is a loader setting, not part of the recipe.
"""

from dataclasses import dataclass, field
from typing import ClassVar, Dict, List

from asd_tools.artefacts import BEST, LAST, interval_checkpoint
from asd_tools.backend.detect import DetectConfig, check_inlier_sets
from asd_tools.config import AT_LEAST_0, AT_LEAST_1, POSITIVE, Range, choice
from asd_tools.data.split import SUBSETS
from asd_tools.models.dgmix import EMBEDDING_SIZE, INITS, dgmix_frontend
from asd_tools.models.frontend import FrontendConfig
from asd_tools.systems.base import check_system_field
from asd_tools.training.classes import CLASS_TARGETS
from asd_tools.training.optim import OPTIMIZERS, check_optimizer_params

POOLS = ("mean", "first")
MIXTURE_PASSES = ("joint", "separate")


@dataclass
class DGMixModelConfig:
    """The extractor's tail, section head and initialisation.

    The original (DGMix asd_tools/models/mobilenetv2.py, vicreg.py): final_groups 320, no tail
    BatchNorm, no head ReLU, mobilenet_v2 init. The defaults are this project's first version, so
    that a saved config written before these keys existed still describes its checkpoints.
    """

    RANGES: ClassVar[Dict[str, Range]] = {"final_groups": AT_LEAST_1}

    final_groups: int = 8  # groups of the last 1x1 convolution (the original: 320, one scale per channel)
    tail_batchnorm: bool = True  # BatchNorm between the 4x2 depthwise conv and its ReLU6 (the original: none)
    head_relu: bool = True  # ReLU between the section head's two Linear layers (the original: none)
    init: str = "torch"  # "mobilenet_v2": the original's conv init N(0, 2 / (k_h k_w out)); "torch": defaults

    def __post_init__(self):
        choice(self.init, INITS, "model.init")
        if EMBEDDING_SIZE % self.final_groups:
            raise ValueError(f"model.final_groups: {self.final_groups} does not divide {EMBEDDING_SIZE}")


@dataclass
class StageConfig:
    """One training stage (pre-training or fine-tuning)."""

    RANGES: ClassVar[Dict[str, Range]] = {
        "epochs": AT_LEAST_1,
        "batch_size": Range(2),
        "grad_accum": AT_LEAST_1,
        "warmup_epochs": AT_LEAST_0,
        "warmup_lr_init": AT_LEAST_0,
        "lr_min": AT_LEAST_0,
        "save_epochs": AT_LEAST_1,
        "log_interval_epochs": AT_LEAST_1,
        "num_workers": AT_LEAST_0,
        "seed": AT_LEAST_0,
    }

    epochs: int = 100
    batch_size: int = 2048
    grad_accum: int = 1  # micro-batches per optimiser step (batch_size is the micro-batch x grad_accum)
    # Seed each micro-batch's random draws from (seed, epoch, batch index): always on with N torchrun
    # processes (each takes one of every N micro-batches, so they multiply grad_accum by N).
    batch_seeds: bool = False
    optimizer: str = "lars"
    optimizer_params: dict = field(
        default_factory=lambda: {"lr": 0.8, "weight_decay": 1.0e-4, "momentum": 0.9, "trust_coeff": 0.001}
    )
    # Biases and norm parameters: no weight decay and no LARS adaptation (VICReg's LARS); see build_optimizer.
    exclude_bias_and_norm: bool = True
    warmup_epochs: int = 10  # cosine schedule warm-up
    warmup_lr_init: float = 0.0  # learning rate at the start of the warm-up (timm's warmup_lr_init)
    lr_min: float = 2.0e-3  # cosine schedule floor
    # The original's pre-training bug (DGMix trainer_dgmix.py: the scheduler is stepped only when
    # stage == "prettrain", a typo): the schedule is built but never stepped. timm's CosineLRScheduler
    # sets the learning rate to warmup_lr_init when it is built (if there is a warm-up), so the whole
    # stage runs at warmup_lr_init: at 0 no parameter changes (only BatchNorm running statistics do).
    scheduler_never_steps: bool = False
    save_epochs: List[int] = field(default_factory=lambda: [50, 100])  # checkpoints kept
    log_interval_epochs: int = 5
    amp: bool = True
    amp_dtype: str = "bfloat16"
    num_workers: int = 0
    seed: int = 0

    def __post_init__(self):
        choice(self.optimizer, OPTIMIZERS, "optimizer")
        check_optimizer_params(self.optimizer, self.optimizer_params, "optimizer_params")
        if self.batch_size % (2 * self.grad_accum):
            raise ValueError("batch_size must be divisible by 2 * grad_accum (mixup pairs the two halves)")


@dataclass
class VICRegConfig:
    RANGES: ClassVar[Dict[str, Range]] = {
        "invariance_weight": AT_LEAST_0,
        "variance_weight": AT_LEAST_0,
        "covariance_weight": AT_LEAST_0,
        "mixup_alpha": POSITIVE,
    }
    invariance_weight: float = 25.0
    variance_weight: float = 25.0
    covariance_weight: float = 1.0
    mixup_alpha: float = 0.5  # lambda ~ Beta(alpha, alpha) per pair
    # How x, y and their mixture z go through the extractor (both stages), which decides the batches that
    # training-mode BatchNorm normalises over: "separate" = (x, y) in one pass, z in another (the
    # original, DGMix vicreg.py forward); "joint" = x, y and z in one pass (this project's first version).
    mixture_pass: str = "joint"

    def __post_init__(self):
        choice(self.mixture_pass, MIXTURE_PASSES, "vicreg.mixture_pass")


@dataclass
class DGMixEmbedConfig:
    RANGES: ClassVar[Dict[str, Range]] = {"n_split": AT_LEAST_0, "batch_size": AT_LEAST_1, "num_workers": AT_LEAST_0}
    inlier_subsets: List[str] = field(default_factory=lambda: ["train", "valid"])  # "all" inliers
    n_split: int = 10  # 2 s windows per clip, pooled to one clip embedding
    pool: str = "mean"  # mean of the windows, or "first": whole clip, first time position (original)
    batch_size: int = 256
    checkpoints: List[str] = field(
        default_factory=lambda: ["checkpoint-50epochs", "checkpoint-100epochs", "checkpoint-120epochs"]
    )
    num_workers: int = 0

    def __post_init__(self):
        choice(self.pool, POOLS, "embed.pool")
        for subset in self.inlier_subsets:
            choice(subset, SUBSETS[:2], "embed.inlier_subsets")


def _dgmix_detect():
    return DetectConfig(
        detectors=["knn"],
        ks=[1],
        inlier_sets=["all", "valid"],
        feature_sets={"embed": ["embedding"]},
        standardize=False,
        poolings=["mean"],
        section_logit_score=False,
    )


@dataclass
class FinetuneConfig(StageConfig):
    """Fine-tuning: a stage plus what its section head classifies (``training/classes.py``): section
    (the original), attribute ((section, attribute) pairs), or auto (attribute where a machine type's
    training clips hold one section, the first-shot years; section otherwise)."""

    class_target: str = "auto"

    def __post_init__(self):
        super().__post_init__()
        choice(self.class_target, CLASS_TARGETS, "finetune.class_target")


def _finetune():
    return FinetuneConfig(
        epochs=20,
        batch_size=64,
        optimizer="adamw",
        optimizer_params={"lr": 1.0e-4, "weight_decay": 1.0e-4},
        warmup_epochs=0,
        lr_min=1.0e-4,
        save_epochs=[20],
    )


@dataclass
class DGMixConfig:
    REQUIRED_SECTIONS: ClassVar[tuple] = ("model", "pretrain", "finetune")
    system: str = "dgmix"  # the systems registry's name (asd_tools.systems.registry)
    model: DGMixModelConfig = field(default_factory=DGMixModelConfig)
    frontend: FrontendConfig = field(default_factory=dgmix_frontend)
    vicreg: VICRegConfig = field(default_factory=VICRegConfig)
    pretrain: StageConfig = field(default_factory=StageConfig)
    finetune: FinetuneConfig = field(default_factory=_finetune)
    embed: DGMixEmbedConfig = field(default_factory=DGMixEmbedConfig)
    detect: DetectConfig = field(default_factory=_dgmix_detect)

    def __post_init__(self):
        """Rules across sections, checked at load rather than failing after hours of training."""
        check_system_field(self, "dgmix")
        self._check_published_checkpoint()
        self._check_embedded_checkpoints()
        check_inlier_sets(self.detect, self.embed.inlier_subsets, "embed.inlier_subsets")

    def published_epochs(self) -> int:
        """The epoch count in the fine-tuned checkpoint's name: pre-training's epochs plus fine-tuning's."""
        return self.pretrain.epochs + self.finetune.epochs

    def _check_published_checkpoint(self):
        """Fine-tuning publishes the checkpoint of its last epoch; without this check that copy fails
        after fine-tuning has run, on a checkpoint that was never saved."""
        if self.finetune.epochs not in self.finetune.save_epochs:
            raise ValueError(
                f"finetune.save_epochs {self.finetune.save_epochs} lacks finetune.epochs ({self.finetune.epochs}): "
                f"the fine-tuned model is published from that epoch's checkpoint (as "
                f"checkpoint-{self.published_epochs()}epochs); add {self.finetune.epochs} to finetune.save_epochs"
            )

    def _check_embedded_checkpoints(self):
        """embed.checkpoints must name checkpoints that training writes; without this check the embedding
        stage fails after training, on a missing file."""
        written = [_stem(interval_checkpoint(e)) for e in self.pretrain.save_epochs if e <= self.pretrain.epochs]
        written += [_stem(interval_checkpoint(self.published_epochs())), _stem(BEST), _stem(LAST)]
        unknown = [name for name in self.embed.checkpoints if name not in written]
        if unknown:
            raise ValueError(
                f"embed.checkpoints {unknown} are not written by training, which writes {written} "
                f"(pre-training: pretrain.save_epochs up to pretrain.epochs, best, last; fine-tuning: "
                f"pretrain.epochs + finetune.epochs); name those, or change pretrain.save_epochs or the epochs"
            )


def _stem(checkpoint_file: str) -> str:
    return checkpoint_file.removesuffix(".pt")
