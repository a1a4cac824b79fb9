"""DG-Mix stages for one machine type: pre-train, fine-tune, embed (pooled per clip).

Checkpoints in ``expdir``: checkpoint-<N>epochs.pt of pre-training (default 50, 100) and
checkpoint-<pretrain epochs + finetune epochs>epochs.pt after fine-tuning (default 120).
Both stages run in the shared trainer core (resume, logging, AMP); fine-tuning keeps its
own state in ``expdir/finetune/``.
"""

import copy
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from asd_tools.artefacts import DONE, FINETUNE, LAST, checkpoint_name, interval_checkpoint
from asd_tools.backend.embeddings import Embeddings
from asd_tools.config import config_sections
from asd_tools.data.corpus import Corpus
from asd_tools.models.dgmix import DGMixExtractor, PretrainModel, Projector
from asd_tools.provenance import file_digest
from asd_tools.systems.base import System, TrainingPhase
from asd_tools.systems.dgmix.config import DGMixConfig, StageConfig
from asd_tools.systems.dgmix.task import (
    FinetuneTask,
    VICRegMixupTask,
    relative_spread,
    warn_if_collapsed,
)
from asd_tools.systems.extract import extract
from asd_tools.training.classes import load_classes, n_classes, read_classes, resolve_class_target
from asd_tools.training.optim import build_optimizer, build_scheduler
from asd_tools.training.trainer import Trainer, TrainerSettings, load_weights, optimiser_steps_per_epoch


def make_extractor(cfg: DGMixConfig, n_outputs=None, section_head=True):
    """The configured extractor; with a section head, one output per class (``n_outputs``: the machine
    type's section count from its manifest, or its attribute classes; ``training/classes.py``)."""
    if section_head and n_outputs is None:
        raise ValueError("a section head needs the number of classes (n_outputs)")
    m = cfg.model
    return DGMixExtractor(
        m.final_groups,
        section_head=section_head,
        frontend=cfg.frontend,
        tail_batchnorm=m.tail_batchnorm,
        head_relu=m.head_relu,
        init=m.init,
        n_sections=n_outputs or 1,  # unused without a section head
    )


class NeverSteps:
    """A scheduler that is built but never stepped: the original DG-Mix pre-training (``scheduler_never_steps``)."""

    def __init__(self, scheduler):
        self.scheduler = scheduler

    def step(self):
        pass

    def state_dict(self):
        return self.scheduler.state_dict()

    def load_state_dict(self, state):
        self.scheduler.load_state_dict(state)


def build_stage_optimizer(model, stage: StageConfig, updates_per_epoch):
    """The stage's optimiser and its cosine schedule with warm-up (stepped once per optimiser update)."""
    optimizer = build_optimizer(stage.optimizer, model, stage.exclude_bias_and_norm, **stage.optimizer_params)
    scheduler = build_scheduler(
        "cosine",
        optimizer,
        stage.epochs * updates_per_epoch,
        warmup_steps=stage.warmup_epochs * updates_per_epoch,
        lr_min=stage.lr_min,
        warmup_lr_init=stage.warmup_lr_init,
    )
    if stage.scheduler_never_steps:
        lr = optimizer.param_groups[0]["lr"]
        logging.warning(
            f"scheduler_never_steps: the learning rate stays at {lr:g} for the whole stage (the original DG-Mix "
            + ("pre-training bug; at lr 0 no weight changes, only BatchNorm running statistics)" if lr == 0 else "bug)")
        )
        scheduler = NeverSteps(scheduler)
    return optimizer, scheduler


def stage_trainer(model, task, stage: StageConfig, outdir, device):
    """The trainer of one DG-Mix stage (pre-training or fine-tuning); the benchmark times its steps."""
    updates_per_epoch = optimiser_steps_per_epoch(task.steps_per_epoch(), stage.grad_accum)
    optimizer, scheduler = build_stage_optimizer(model, stage, updates_per_epoch)
    settings = TrainerSettings(
        stage.epochs,
        stage.log_interval_epochs,
        tuple(stage.save_epochs),
        grad_accum=stage.grad_accum,
        amp=stage.amp,
        amp_dtype=stage.amp_dtype,
        batch_seeds=stage.batch_seeds,
        seed=stage.seed,
    )
    return Trainer(model, task, optimizer, scheduler, settings, outdir, device)


PRETRAIN_SECTIONS = ("model", "frontend", "vicreg", "pretrain")  # what a pre-trained extractor is made from
TRAINING_LISTS = ("train", "valid")
EMBEDDING_SECTIONS = ("embed", "model", "frontend")  # what its embeddings are made with (and the weights)


def pretraining(cfg: DGMixConfig, corpus: Corpus, machine, expdir: Path, device) -> TrainingPhase:
    """VICReg-with-mixup pre-training in ``expdir`` (no section head)."""

    def build():
        torch.manual_seed(cfg.pretrain.seed)
        model = PretrainModel(make_extractor(cfg, section_head=False), Projector())
        task = VICRegMixupTask(cfg.pretrain, cfg.vicreg, corpus, machine, device)
        return stage_trainer(model, task, cfg.pretrain, expdir, device)

    inputs = {f"dump/{machine}": corpus.identity(machine), **corpus.lists_identity(machine, TRAINING_LISTS)}
    return TrainingPhase(expdir, "pretrain", inputs, config_sections(cfg, PRETRAIN_SECTIONS), build)


def finetuning(cfg: DGMixConfig, corpus: Corpus, machine, expdir: Path, device) -> TrainingPhase:
    """Fine-tuning from the last pre-training state in ``expdir/finetune/``; publishes its final weights
    as ``expdir/checkpoint-<pretrain + finetune epochs>epochs.pt``."""
    if not (expdir / DONE).exists():
        raise FileNotFoundError(f"{expdir / DONE} is missing: run pre-training (stage 3) first")
    outdir = expdir / FINETUNE
    published = expdir / interval_checkpoint(cfg.published_epochs())
    # resolved first, in a copy: the record names the classes the head learns (the saved config keeps "auto")
    resolved = copy.deepcopy(cfg)
    stage = resolved.finetune
    stage.class_target = resolve_class_target(stage.class_target, corpus, machine)
    classes = read_classes(corpus, machine, stage.class_target)

    def build():
        torch.manual_seed(stage.seed)
        model = make_extractor(cfg, n_classes(classes, corpus.sections(machine)))
        load_extractor(model, load_weights(expdir, checkpoint_name(LAST), "cpu"))  # the section head starts fresh
        task = FinetuneTask(stage, cfg.vicreg, corpus, machine, device, classes)
        return stage_trainer(model, task, stage, outdir, device)

    def publish():
        tmp = published.with_suffix(".tmp")
        shutil.copyfile(outdir / interval_checkpoint(stage.epochs), tmp)
        tmp.rename(published)

    inputs = {"pretrained": file_digest(expdir / LAST), **corpus.lists_identity(machine, TRAINING_LISTS)}
    settings = config_sections(resolved, ("finetune",))
    return TrainingPhase(outdir, "finetune", inputs, settings, build, classes, published.exists, publish)


def extractor_weights(state):
    """Extractor weights from a pre-training (extractor + projector) or fine-tuning checkpoint."""
    prefix = "extractor."
    if any(k.startswith(prefix) for k in state):
        return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    return state


def load_extractor(model, state):
    """Load extractor weights into ``model``; only the section head may be missing (pre-training has none).

    Any other missing or unexpected key means the checkpoint was made with another architecture
    (e.g. ``model.tail_batchnorm``), which is an error rather than a silently half-loaded model.
    """
    result = model.load_state_dict(extractor_weights(state), strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("section_head.")]
    if missing or result.unexpected_keys:
        raise RuntimeError(
            f"checkpoint does not fit the configured extractor: missing {missing}, unexpected "
            f"{result.unexpected_keys}; was it made with other model settings (final_groups, tail_batchnorm, "
            "head_relu)?"
        )


def clip_embedding(out) -> dict:
    """The window feature of DG-Mix: the extractor's embedding."""
    return {"embedding": out["embedding"]}


def clip_mean(emb: Embeddings) -> Embeddings:
    """Average the windows of each clip: one embedding per clip."""
    frame = pd.DataFrame(emb.features["embedding"]).groupby(emb.window_clip).mean()
    return Embeddings(emb.clip_id, np.arange(len(emb.clip_id)), {"embedding": frame.to_numpy(np.float32)})


class DGMix(System):
    """System 2: VICReg-with-mixup pre-training, then fine-tuning with a section head; clip embeddings
    (the mean of the windows) go to the detectors."""

    name = "dgmix"
    config_class = DGMixConfig
    seed_keys = ("pretrain.seed", "finetune.seed")
    tiny_config = "dgmix.tiny.yaml"

    def training_phases(self, cfg: DGMixConfig, corpus, machine, machines, expdir, device):
        """Pre-training, then fine-tuning (each resumes or is skipped when finished); no negatives."""
        yield pretraining(cfg, corpus, machine, expdir, device)
        yield finetuning(cfg, corpus, machine, expdir, device)

    def checkpoint_names(self, cfg: DGMixConfig):
        return list(cfg.embed.checkpoints)

    def embedding_settings(self, cfg: DGMixConfig):
        return config_sections(cfg, EMBEDDING_SECTIONS)

    def load_model(self, cfg: DGMixConfig, corpus, machine, expdir, checkpoint, device):
        class_target = resolve_class_target(cfg.finetune.class_target, corpus, machine)
        classes = load_classes(expdir / FINETUNE, class_target)
        model = make_extractor(cfg, n_classes(classes, corpus.sections(machine))).to(device)
        load_extractor(model, load_weights(expdir, checkpoint, device))
        return model

    def embed_clips(self, cfg: DGMixConfig, model, corpus, machine, clips, part, device):
        """Clip embeddings: the mean of the windows' (or, with ``pool: first``, the whole clip's)."""
        e = cfg.embed
        n_split = 0 if e.pool == "first" else e.n_split  # "first": whole clip, first time position
        emb = clip_mean(extract(model, clips, corpus, n_split, e.batch_size, device, clip_embedding, e.num_workers))
        warn_if_collapsed(relative_spread(emb.features["embedding"]), f"{machine}/{part}")
        return emb
