"""Config schema of the serial outlier-exposure system.

Defaults live here only (a config states what it changes; see ``asd_tools.config`` for ``base:``).
They are the original recipe's hyper-parameters, except that each switch reproducing a quirk of the
original code (``mixup_max_step``, ``target_part``, ``target_weight_max_step``, ``negatives``, ...)
defaults to the intent: the configs that run the original set the quirk and mark it ORIGINAL.
``num_workers`` is a loader setting, not part of the recipe. ``model.params`` left out take the
model constructor's defaults.
"""

import inspect
from dataclasses import dataclass, field
from typing import ClassVar, Dict, List, Optional

from asd_tools.backend.detect import DetectConfig, check_inlier_sets
from asd_tools.config import AT_LEAST_0, AT_LEAST_1, FRACTION, POSITIVE, Range, check_params, choice
from asd_tools.data.split import SUBSETS
from asd_tools.models import MODELS
from asd_tools.models.frontend import FrontendConfig
from asd_tools.systems.base import check_system_field
from asd_tools.training.classes import CLASS_TARGETS
from asd_tools.training.optim import OPTIMIZERS, SCHEDULERS, check_optimizer_params, check_scheduler_params

AMP_DTYPES = ("bfloat16", "float16")
MIXUP_MAX_STEPS = ("actual", "first_epoch_placeholder")
TARGET_PARTS = ("target_only", "original_mixed")
TARGET_WEIGHT_MAX_STEPS = ("actual", "placeholder")
NEGATIVE_DRAWS = ("separate", "union")
NORMALISATIONS = ("own", "positive")
SUPPLEMENTAL_KINDS = ("clean", "noise")  # 2025's supplemental clips (lists supplemental_clean / _noise)


@dataclass
class ModelConfig:
    name: str = "asd_model"  # registry name: asd_model, transformer, conformer
    params: dict = field(default_factory=dict)  # constructor arguments of that model

    def __post_init__(self):
        choice(self.name, MODELS, "model.name")
        check_params(self.params, MODELS[self.name], "model.params", self.name, supplied=("frontend", "n_classes"))


@dataclass
class OETrainConfig:
    RANGES: ClassVar[Dict[str, Range]] = {
        "batch_size": Range(2),
        "n_target": AT_LEAST_0,
        "mixup_alpha": POSITIVE,
        "section_loss_weight": AT_LEAST_0,
        "pitch_shift_std": AT_LEAST_0,
        "epochs": AT_LEAST_1,
        "log_interval_epochs": AT_LEAST_1,
        "save_interval_epochs": AT_LEAST_1,
        "grad_clip": AT_LEAST_0,
        "grad_accum": AT_LEAST_1,
        "num_workers": AT_LEAST_0,
        "valid_negatives_per_machine": AT_LEAST_0,
        "seed": AT_LEAST_0,
        "target_batch_size": AT_LEAST_0,
        "target_mix_ratio": FRACTION,
        "target_machine_weight": AT_LEAST_0,
        "n_pos": AT_LEAST_0,
        "n_neg": AT_LEAST_0,
        "pool_fixed_crops": AT_LEAST_0,
    }
    batch_size: int = 128  # half positives (this machine type), half negatives (the others)
    n_target: int = 0  # positives replaced by random target-domain clips in every batch
    use_mixup: bool = True
    mixup_alpha: float = 0.2  # Beta(alpha, alpha) weight per sample
    section_loss_weight: float = 10.0  # loss = BCE(machine) + weight * BCE(section)
    # What the section head classifies: section (the original) or attribute, one class per (section,
    # attribute string) pair of the training names; auto: attribute where a machine type's training clips
    # hold one section (the first-shot years), section otherwise (training/classes.py). The head's width
    # follows (the code passes it to the model as n_classes).
    class_target: str = "auto"
    pitch_shift_std: float = 0.0  # semitones ~ N(0, std), rounded; 0 = off
    epochs: int = 300  # one epoch = one pass over the source training clips
    log_interval_epochs: int = 5  # validation interval
    save_interval_epochs: int = 50  # checkpoint interval
    optimizer: str = "adamw"
    optimizer_params: dict = field(default_factory=lambda: {"lr": 1.0e-3, "weight_decay": 0.0})
    scheduler: str = "onecycle"
    scheduler_params: dict = field(default_factory=lambda: {"max_lr": 1.0e-3})
    grad_clip: float = 0.0
    # Plan batches per optimiser step in each process; N torchrun processes (--ngpu N) multiply it by N.
    grad_accum: int = 1
    # Seed each batch's random draws (mixup, dropout) from (seed, epoch, batch index): always on with N
    # processes; true makes one process reproduce an N-process run (with N times the grad_accum).
    batch_seeds: bool = False
    amp: bool = True  # mixed precision on CUDA
    amp_dtype: str = "bfloat16"
    num_workers: int = 0  # batch readers: 0 = background threads of this process (fastest); N = DataLoader workers
    valid_negatives_per_machine: int = 200  # validation negatives drawn from each other machine type
    seed: int = 0
    # max_step of the mixup apply rate cos(pi/2 step/max_step). actual: epochs x steps per epoch.
    # first_epoch_placeholder (the original trainer): during the first epoch, epochs x 99 999 (its
    # steps-per-epoch placeholder before an epoch has ended), so the rate stays about 1 in epoch 1.
    mixup_max_step: str = "actual"
    # Domain classifier (needs model.params.domain_head: true)
    target_batch_size: int = 0  # clips in the target part of every batch (0 = off)
    target_mix_ratio: float = 0.5  # share of the target part that is mixed (see target_part)
    target_machine_weight: float = 0.5  # target loss = w_m BCE(machine) + w_s BCE(section) + BCE(domain)
    # What the target part is. target_only (the intent): target clips of this machine type, the mixed
    # share mixed among themselves. original_mixed (what the original code ran): target clips, the mixed
    # share each mixed with a random training clip of ANY machine type (this type's source clips or the
    # other types' clips), machine and section labels mixed alike (the partner's own section kept).
    target_part: str = "target_only"
    # max_step of the target-loss weight c(step). actual: epochs x steps per epoch (c rises to 1 at
    # mid-training). placeholder: epochs x 99 999, the original's steps-per-epoch placeholder, so c stays
    # about 1e-4 or less over the whole run.
    target_weight_max_step: str = "actual"
    # The domain BCE of the batch's source positives (label 0) inside c(step) (the original) or outside it.
    source_domain_loss_in_target_weight: bool = False
    # External outlier exposure: unrelated sounds as extra negatives
    outlier_pool: Optional[str] = None  # pool sub-folder of the dump folder, e.g. outlier_pool (bin/dump_pool)
    n_pos: int = 0  # positives per batch (0 = batch_size / 2)
    n_neg: int = 0  # negatives per batch (0 = batch_size / 2); see negatives
    # separate: n_neg clips of the other machine types, the rest of the batch pool clips (a fixed pool
    # share). union (the original): n_neg clips drawn from the other types' clips and the pool together, so
    # the pool's share is its share of that union (about 98 % with the AudioSet pool).
    negatives: str = "separate"
    # Statistics that negatives and pool clips are normalised with. own: each machine type's and the
    # pool's own (as dumped). positive (the original's external-OE recipe): this machine type's, i.e.
    # (x * std_own + mean_own - mean_m) / std_m at batch time.
    negative_normalisation: str = "own"
    pool_fixed_crops: int = 0  # 0: pool crops anywhere; N: one of N fixed crops per clip (the original: 5)
    # 2025's supplemental clips as extra training data (not in the original, which predates them):
    # clean: this type's clean machine clips join its source positives (with their section's class, or
    # the machine term only where attribute classes lack their attributes), the other types' join the
    # negatives; noise: every type's noise-only clips join the negatives ("not this machine").
    supplemental: List[str] = field(default_factory=list)

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
        choice(self.class_target, CLASS_TARGETS, "train.class_target")
        choice(self.mixup_max_step, MIXUP_MAX_STEPS, "train.mixup_max_step")
        choice(self.target_part, TARGET_PARTS, "train.target_part")
        choice(self.target_weight_max_step, TARGET_WEIGHT_MAX_STEPS, "train.target_weight_max_step")
        choice(self.negatives, NEGATIVE_DRAWS, "train.negatives")
        choice(self.negative_normalisation, NORMALISATIONS, "train.negative_normalisation")
        if self.negatives == "union" and not self.outlier_pool:
            raise ValueError("train.negatives: union draws from the outlier pool; set train.outlier_pool")
        if self.negatives == "union" and self.n_pos + self.n_neg != self.batch_size:
            raise ValueError("train.negatives: union needs train.n_pos + train.n_neg == train.batch_size")
        for kind in self.supplemental:
            choice(kind, SUPPLEMENTAL_KINDS, "train.supplemental")


@dataclass
class EmbedConfig:
    RANGES: ClassVar[Dict[str, Range]] = {
        "n_split": AT_LEAST_0,
        "batch_size": AT_LEAST_1,
        "target_mixup_alpha": POSITIVE,
        "num_workers": AT_LEAST_0,
        "seed": AT_LEAST_0,
    }
    inlier_subsets: List[str] = field(default_factory=lambda: ["valid"])  # inlier clips: valid, or train+valid
    n_split: int = 10  # evenly spaced 2 s windows per clip; 0 = the whole clip once ("10 s" mode)
    batch_size: int = 256  # windows per forward pass (across clips)
    target_mixup: bool = False  # add inlier windows mixed with target crops of the same section
    target_mixup_alpha: float = 0.2
    num_workers: int = 0
    seed: int = 0

    def __post_init__(self):
        for subset in self.inlier_subsets:
            choice(subset, SUBSETS[:2], "embed.inlier_subsets")


@dataclass
class SerialOEConfig:
    REQUIRED_SECTIONS: ClassVar[tuple] = ("model", "train")
    system: str = "serial_oe"  # the systems registry's name (asd_tools.systems.registry)
    model: ModelConfig = field(default_factory=ModelConfig)
    frontend: FrontendConfig = field(default_factory=FrontendConfig)
    train: OETrainConfig = field(default_factory=OETrainConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)

    def __post_init__(self):
        """Rules across sections, checked at load rather than failing later in a stage."""
        check_system_field(self, "serial_oe")
        _check_domain_head(self.model, self.train)
        _check_heads_divide_tokens(self.model, self.frontend)
        check_inlier_sets(self.detect, self.embed.inlier_subsets, "embed.inlier_subsets")


def model_argument(model: ModelConfig, name: str):
    """Constructor argument ``name`` of the configured model: as ``model.params`` gives it, else the
    constructor's default (None when the model takes no such argument)."""
    if name in model.params:
        return model.params[name]
    parameter = inspect.signature(MODELS[model.name]).parameters.get(name)
    return None if parameter is None else parameter.default


def _check_domain_head(model: ModelConfig, train: OETrainConfig):
    """A target part (domain classifier) is trained on the domain logit, which only a domain head gives;
    without this check training fails at its first step with KeyError: 'domain'."""
    if train.target_batch_size and not model_argument(model, "domain_head"):
        raise ValueError(
            f"train.target_batch_size: {train.target_batch_size} trains a domain classifier, whose loss needs "
            "the model's domain logit, but model.params.domain_head is not true; set model.params.domain_head: "
            "true (as asd_model.domain_classifier.yaml does) or train.target_batch_size: 0"
        )


def _check_heads_divide_tokens(model: ModelConfig, frontend: FrontendConfig):
    """The sequence models' tokens are mel frames, n_mels wide, split across the attention heads;
    without this check the model fails to build with torch's 'embed_dim must be divisible by num_heads'."""
    heads = model_argument(model, "num_heads")
    if heads and frontend.n_mels % heads:
        divisors = [str(d) for d in range(1, frontend.n_mels + 1) if frontend.n_mels % d == 0]
        some = ", ".join(divisors[:8]) + (", ..." if len(divisors) > 8 else "")
        raise ValueError(
            f"model.params.num_heads: {heads} does not divide frontend.n_mels: {frontend.n_mels}, the width of "
            f"the {model.name}'s tokens; choose num_heads among {some} or change frontend.n_mels"
        )
