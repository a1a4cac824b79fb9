"""Stages 3 (train) and 4 (embed) of the serial outlier-exposure system for one machine type."""

import logging
from functools import partial
from pathlib import Path

import numpy as np
import torch

from asd_tools.backend.embeddings import Embeddings, embedding_record
from asd_tools.config import config_sections, load_config, save_config
from asd_tools.data.corpus import Corpus
from asd_tools.data.manifest import dump_identity
from asd_tools.data.split import lists_identity
from asd_tools.models import build_model
from asd_tools.provenance import Provenance
from asd_tools.systems.base import CONFIG_NAME, System
from asd_tools.systems.extract import extract, target_mixer
from asd_tools.systems.serial_oe.config import OETrainConfig, SerialOEConfig
from asd_tools.systems.serial_oe.task import SUPPLEMENTAL_LISTS, OutlierExposureTask
from asd_tools.training import distributed
from asd_tools.training.classes import (
    load_classes,
    n_classes,
    per_section_logits,
    read_classes,
    resolve_class_target,
    save_classes,
)
from asd_tools.training.experiment import claim_training_dir
from asd_tools.training.optim import build_optimizer, build_scheduler
from asd_tools.training.trainer import (
    BEST,
    Trainer,
    TrainerSettings,
    interval_checkpoint,
    load_weights,
    optimiser_steps_per_epoch,
)


def make_model(cfg: SerialOEConfig, sections, classes=None):
    """The configured extractor, its section head one output per section of ``sections`` (the machine
    type's, from its manifest) or per attribute class of ``classes``."""
    n = n_classes(classes, sections)
    return build_model(cfg.model.name, frontend=cfg.frontend, n_classes=n, **cfg.model.params)


TRAINING_SECTIONS = ("model", "frontend", "train")  # what a trained model is made from


def training_record(cfg: SerialOEConfig, dumpdir, machines, expdir) -> Provenance:
    """Inputs of one machine type's training: every machine type's dump and lists (negatives), the pool."""
    inputs = {}
    lists = ("train", "valid", *(SUPPLEMENTAL_LISTS[kind] for kind in cfg.train.supplemental))
    for m in machines:
        inputs[f"dump/{m}"] = dump_identity(dumpdir, m)
        inputs.update(lists_identity(dumpdir, m, lists))
    if cfg.train.outlier_pool:
        inputs["dump/outlier_pool"] = dump_identity(dumpdir, cfg.train.outlier_pool)
    settings = config_sections(cfg, TRAINING_SECTIONS)
    if not cfg.train.supplemental:  # records made before the key existed stay current
        del settings["train"]["supplemental"]
    return Provenance(expdir, "train", inputs, {**settings, "machines": list(machines)})


def saved_epochs(t: OETrainConfig) -> tuple:
    """The epochs after which training keeps the weights (checkpoint-<N>epochs.pt)."""
    return tuple(range(t.save_interval_epochs, t.epochs + 1, t.save_interval_epochs))


def checkpoints(expdir) -> list:
    """The checkpoints that training writes by its saved config: best, then every kept epoch."""
    cfg = load_config(Path(expdir) / CONFIG_NAME, SerialOEConfig)
    return [Path(BEST).stem] + [Path(interval_checkpoint(e)).stem for e in saved_epochs(cfg.train)]


def training_config(config_path, dumpdir, machine) -> SerialOEConfig:
    """The config that trains ``machine``, with ``class_target`` resolved from the corpus: the
    record and the saved config name the classes the head learns, never ``auto``."""
    cfg = load_config(config_path, SerialOEConfig)
    cfg.train.class_target = resolve_class_target(cfg.train.class_target, dumpdir, machine)
    return cfg


def train(config_path, dumpdir, machine, machines, expdir, device, force=False):
    """Train (or resume) one machine type's model; the resolved config goes to ``expdir``.

    A folder that holds a model trained from other data or training settings stops the run
    (see ``claim_training_dir``); sections read by later stages (embed, detect) may change: the
    saved config takes them and those stages see that their outputs are stale.
    """
    cfg = training_config(config_path, dumpdir, machine)
    if distributed.is_main():  # under torchrun one process claims the folder and writes into it
        claim_training_dir(training_record(cfg, dumpdir, machines, expdir), force)
    distributed.barrier()
    trainer, classes = build_trainer(cfg, dumpdir, machine, machines, expdir, device)
    if distributed.is_main():
        save_classes(classes, expdir)  # the head's classes, needed to embed
        save_config(cfg, Path(expdir) / CONFIG_NAME)  # after every object is built from it
    n_params = sum(p.numel() for p in trainer.model.parameters())
    logging.info(
        f"{machine}: {cfg.model.name} with {n_params / 1e6:.2f} M parameters; "
        f"{trainer.task.steps_per_epoch()} steps per epoch of {cfg.train.batch_size}"
    )
    trainer.run()


def build_trainer(cfg: SerialOEConfig, dumpdir, machine, machines, expdir, device):
    """The trainer of one machine type's model (seeded model, task, optimiser, schedule) and the
    head's attribute classes (None: sections). The benchmark times its steps."""
    torch.manual_seed(cfg.train.seed)
    classes = read_classes(dumpdir, machine, resolve_class_target(cfg.train.class_target, dumpdir, machine))
    model = make_model(cfg, Corpus(dumpdir).sections(machine), classes)
    task = OutlierExposureTask(cfg.train, dumpdir, machine, machines, device, classes)
    t = cfg.train
    optimizer = build_optimizer(t.optimizer, model, **t.optimizer_params)
    total_steps = t.epochs * optimiser_steps_per_epoch(task.steps_per_epoch(), t.grad_accum)
    scheduler = build_scheduler(t.scheduler, optimizer, total_steps, **t.scheduler_params)
    settings = TrainerSettings(
        t.epochs,
        t.log_interval_epochs,
        saved_epochs(t),
        grad_accum=t.grad_accum,
        grad_clip=t.grad_clip,
        amp=t.amp,
        amp_dtype=t.amp_dtype,
        batch_seeds=t.batch_seeds,
        seed=t.seed,
    )
    return Trainer(model, task, optimizer, scheduler, settings, expdir, device), classes


def model_outputs_to_features(out, sections, classes=None):
    """Window features of System 1: embedding, section logits (one column per section of ``sections``),
    machine logit, embedding norm (and, for attribute classes, the class logits; section_logits then holds
    each section's best class)."""
    features = {
        "embedding": out["embedding"],
        "section_logits": per_section_logits(out["section"], classes, sections),
        "machine_logit": out["machine"][:, None],
        "norm": out["embedding"].norm(dim=1, keepdim=True),
    }
    if "domain" in out:
        features["domain_logit"] = out["domain"][:, None]
    if classes is not None:
        features["class_logits"] = out["section"]
    return features


def embed(expdir, dumpdir, machine, checkpoint, device, force=False):
    """Embeddings of the inlier and test clips with one checkpoint -> ``expdir/<checkpoint>/``."""
    expdir = Path(expdir)
    cfg = load_config(expdir / CONFIG_NAME, SerialOEConfig)
    outdir = expdir / checkpoint
    lists = {*cfg.embed.inlier_subsets, "test", *(("train", "valid") if cfg.embed.target_mixup else ())}
    settings = config_sections(cfg, ("embed", "model", "frontend"))
    record = embedding_record(outdir, expdir / f"{checkpoint}.pt", dumpdir, machine, sorted(lists), settings)
    if record.is_current(force):
        return
    record.invalidate()
    classes = load_classes(expdir, resolve_class_target(cfg.train.class_target, dumpdir, machine))
    corpus = Corpus(dumpdir)
    sections = corpus.sections(machine)
    model = make_model(cfg, sections, classes).to(device)
    model.load_state_dict(load_weights(expdir, checkpoint, device))
    e = cfg.embed
    inliers = corpus.clips(machine, e.inlier_subsets)
    run = dict(
        n_split=e.n_split,
        batch_size=e.batch_size,
        device=device,
        to_features=partial(model_outputs_to_features, sections=sections, classes=classes),
        num_workers=e.num_workers,
    )
    inlier_emb = extract(model, inliers, dumpdir, **run)
    if e.target_mixup:
        inlier_emb = _with_target_mixup(inlier_emb, model, inliers, corpus, machine, e, run)
    inlier_emb.save(outdir / "inlier.npz")
    test = corpus.clips(machine, "test")
    extract(model, test, dumpdir, **run).save(outdir / "test.npz")
    record.write()
    logging.info(f"{machine}/{checkpoint}: embedded {len(inliers)} inlier and {len(test)} test clips")


def _with_target_mixup(inlier_emb, model, inliers, corpus, machine, e, run):
    """Append target-mixed copies of every inlier window (as extra windows of the same clip)."""
    training = corpus.clips(machine, ["train", "valid"])
    dumpdir = corpus.dumpdir
    targets = training[training["domain"] == "target"]
    mixer = target_mixer(inliers, targets, dumpdir, e.target_mixup_alpha, e.seed, run["device"])
    mixed = extract(model, inliers, dumpdir, mix_partner=mixer, **run)
    return Embeddings(
        inlier_emb.clip_id,
        np.concatenate([inlier_emb.window_clip, mixed.window_clip]),
        {k: np.concatenate([v, mixed.features[k]]) for k, v in inlier_emb.features.items()},
    )


class SerialOE(System):
    """System 1: a CNN (or sequence model) trained to tell this machine type's sections from the other
    machine types' clips (outlier exposure); its window embeddings and logits go to the detectors."""

    name = "serial_oe"
    config_class = SerialOEConfig
    seed_keys = ("train.seed",)

    def train(self, config_path, dumpdir, machine, machines, expdir, device, force=False):
        train(config_path, dumpdir, machine, machines, expdir, device, force)

    def checkpoints(self, expdir):
        return checkpoints(expdir)

    def embed(self, expdir, dumpdir, machine, checkpoint, device, force=False):
        embed(expdir, dumpdir, machine, checkpoint, device, force)
