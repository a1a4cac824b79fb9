"""DG-Mix stages for one machine type: pre-train, fine-tune, embed (pooled per clip).

Checkpoints in ``expdir``: checkpoint-<N>epochs.pt of pre-training (default 50, 100) and
checkpoint-<pretrain epochs + finetune epochs>epochs.pt after fine-tuning (default 120).
Both stages run in the shared trainer core (resume, logging, AMP); fine-tuning keeps its
own state in ``expdir/finetune/``.
"""

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from asd_tools.backend.embeddings import Embeddings, embedding_record
from asd_tools.config import config_sections, load_config, save_config
from asd_tools.data.corpus import Corpus
from asd_tools.data.manifest import dump_identity
from asd_tools.data.split import lists_identity
from asd_tools.models.dgmix import DGMixExtractor, PretrainModel, Projector
from asd_tools.provenance import Provenance, file_digest
from asd_tools.systems.base import CONFIG_NAME, System
from asd_tools.systems.dgmix.config import DGMixConfig, StageConfig
from asd_tools.systems.dgmix.task import (
    FinetuneTask,
    VICRegMixupTask,
    relative_spread,
    warn_if_collapsed,
)
from asd_tools.systems.extract import extract
from asd_tools.training import distributed
from asd_tools.training.classes import load_classes, n_classes, read_classes, resolve_class_target, save_classes
from asd_tools.training.experiment import claim_training_dir
from asd_tools.training.optim import build_optimizer, build_scheduler
from asd_tools.training.trainer import (
    DONE,
    LAST,
    Trainer,
    TrainerSettings,
    interval_checkpoint,
    load_weights,
    optimiser_steps_per_epoch,
)

FINETUNE_DIR = "finetune"


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


def pretrain(config_path, dumpdir, machine, expdir, device, force=False):
    """VICReg-with-mixup pre-training; the resolved config goes to ``expdir``.

    As in System 1, a folder pre-trained from other data or settings stops the run (``--force``
    retrains after moving it aside); the other sections of the saved config follow the new config.
    """
    cfg = load_config(config_path, DGMixConfig)
    inputs = {f"dump/{machine}": dump_identity(dumpdir, machine), **lists_identity(dumpdir, machine, TRAINING_LISTS)}
    if distributed.is_main():  # under torchrun one process claims the folder and writes into it
        claim_training_dir(Provenance(expdir, "pretrain", inputs, config_sections(cfg, PRETRAIN_SECTIONS)), force)
    distributed.barrier()
    torch.manual_seed(cfg.pretrain.seed)
    model = PretrainModel(make_extractor(cfg, section_head=False), Projector())
    task = VICRegMixupTask(cfg.pretrain, cfg.vicreg, dumpdir, machine, device)
    trainer = stage_trainer(model, task, cfg.pretrain, expdir, device)
    if distributed.is_main():
        save_config(cfg, Path(expdir) / CONFIG_NAME)
    trainer.run()


def finetune(expdir, dumpdir, machine, device, force=False):
    """Fine-tuning from the last pre-training state; publishes checkpoint-<total>epochs.pt."""
    expdir = Path(expdir)
    cfg = load_config(expdir / CONFIG_NAME, DGMixConfig)
    if not (expdir / DONE).exists():
        raise FileNotFoundError(f"{expdir / DONE} is missing: run pre-training (stage 3) first")
    outdir = expdir / FINETUNE_DIR
    published = expdir / interval_checkpoint(cfg.published_epochs())
    # resolved first: the record and the saved config name the classes the head learns
    cfg.finetune.class_target = resolve_class_target(cfg.finetune.class_target, dumpdir, machine)
    inputs = {"pretrained": file_digest(expdir / LAST), **lists_identity(dumpdir, machine, TRAINING_LISTS)}
    record = Provenance(outdir, "finetune", inputs, config_sections(cfg, ("finetune",)))
    if record.changes() == [] and published.exists() and not force:
        logging.info(f"{published} is up to date; skipping fine-tuning")
        return
    if distributed.is_main():
        claim_training_dir(record, force)
    distributed.barrier()
    torch.manual_seed(cfg.finetune.seed)
    classes = read_classes(dumpdir, machine, cfg.finetune.class_target)
    model = make_extractor(cfg, n_classes(classes, Corpus(dumpdir).sections(machine)))
    state = load_weights(expdir, Path(LAST).stem, "cpu")
    load_extractor(model, state)  # the section head starts fresh
    task = FinetuneTask(cfg.finetune, cfg.vicreg, dumpdir, machine, device, classes)
    trainer = stage_trainer(model, task, cfg.finetune, outdir, device)
    if not distributed.is_main():
        trainer.run()
        return
    save_classes(classes, outdir)  # the head's classes, needed to embed
    trainer.run()
    shutil.copyfile(outdir / interval_checkpoint(cfg.finetune.epochs), published.with_suffix(".tmp"))
    published.with_suffix(".tmp").rename(published)


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


def clip_mean(emb: Embeddings) -> Embeddings:
    """Average the windows of each clip: one embedding per clip."""
    frame = pd.DataFrame(emb.features["embedding"]).groupby(emb.window_clip).mean()
    return Embeddings(emb.clip_id, np.arange(len(emb.clip_id)), {"embedding": frame.to_numpy(np.float32)})


def embed(expdir, dumpdir, machine, checkpoint, device, force=False):
    """Clip embeddings of the inlier and test clips with one checkpoint -> ``expdir/<checkpoint>/``."""
    expdir = Path(expdir)
    cfg = load_config(expdir / CONFIG_NAME, DGMixConfig)
    outdir = expdir / checkpoint
    subsets = sorted({*cfg.embed.inlier_subsets, "test"})
    settings = config_sections(cfg, ("embed", "model", "frontend"))
    record = embedding_record(outdir, expdir / f"{checkpoint}.pt", dumpdir, machine, subsets, settings)
    if record.is_current(force):
        return
    record.invalidate()
    corpus = Corpus(dumpdir)
    classes = load_classes(expdir / FINETUNE_DIR, resolve_class_target(cfg.finetune.class_target, dumpdir, machine))
    model = make_extractor(cfg, n_classes(classes, corpus.sections(machine))).to(device)
    load_extractor(model, load_weights(expdir, checkpoint, device))
    e = cfg.embed
    n_split = 0 if e.pool == "first" else e.n_split  # "first": whole clip, first time position

    def to_features(out):
        return {"embedding": out["embedding"]}

    for name, subsets in (("inlier", e.inlier_subsets), ("test", "test")):
        clips = corpus.clips(machine, subsets)
        emb = clip_mean(extract(model, clips, dumpdir, n_split, e.batch_size, device, to_features, e.num_workers))
        warn_if_collapsed(relative_spread(emb.features["embedding"]), f"{machine}/{checkpoint}/{name}")
        emb.save(outdir / f"{name}.npz")
    record.write()
    logging.info(f"{machine}/{checkpoint}: clip embeddings written to {outdir}")


class DGMix(System):
    """System 2: VICReg-with-mixup pre-training, then fine-tuning with a section head; clip embeddings
    (the mean of the windows) go to the detectors."""

    name = "dgmix"
    config_class = DGMixConfig
    seed_keys = ("pretrain.seed", "finetune.seed")

    def train(self, config_path, dumpdir, machine, machines, expdir, device, force=False):
        """Pre-training, then fine-tuning (each resumes or is skipped when finished); no negatives."""
        pretrain(config_path, dumpdir, machine, expdir, device, force)
        finetune(expdir, dumpdir, machine, device, force)

    def checkpoints(self, expdir):
        return list(load_config(Path(expdir) / CONFIG_NAME, DGMixConfig).embed.checkpoints)

    def embed(self, expdir, dumpdir, machine, checkpoint, device, force=False):
        embed(expdir, dumpdir, machine, checkpoint, device, force)
