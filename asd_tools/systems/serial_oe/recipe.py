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
from asd_tools.systems.extract import extract, target_mixer
from asd_tools.systems.serial_oe.classes import load_classes, n_classes, per_section_logits, read_classes, save_classes
from asd_tools.systems.serial_oe.config import SerialOEConfig
from asd_tools.systems.serial_oe.task import OutlierExposureTask
from asd_tools.training.experiment import claim_training_dir
from asd_tools.training.optim import build_optimizer, build_scheduler
from asd_tools.training.trainer import Trainer, TrainerSettings, load_weights

CONFIG_NAME = "config.yaml"


def make_model(cfg: SerialOEConfig, classes=None):
    return build_model(cfg.model.name, frontend=cfg.frontend, n_classes=n_classes(classes), **cfg.model.params)


TRAINING_SECTIONS = ("model", "frontend", "train")  # what a trained model is made from


def training_record(cfg: SerialOEConfig, dumpdir, machines, expdir) -> Provenance:
    """Inputs of one machine type's training: every machine type's dump and lists (negatives), the pool."""
    inputs = {}
    for m in machines:
        inputs[f"dump/{m}"] = dump_identity(dumpdir, m)
        inputs.update(lists_identity(dumpdir, m, ("train", "valid")))
    if cfg.train.outlier_pool:
        inputs["dump/outlier_pool"] = dump_identity(dumpdir, cfg.train.outlier_pool)
    settings = config_sections(cfg, TRAINING_SECTIONS)
    return Provenance(expdir, "train", inputs, {**settings, "machines": list(machines)})


def train(config_path, dumpdir, machine, machines, expdir, device, force=False):
    """Train (or resume) one machine type's model; the resolved config goes to ``expdir``.

    A folder that holds a model trained from other data or training settings stops the run
    (see ``claim_training_dir``); sections read by later stages (embed, detect) may change: the
    saved config takes them and those stages see that their outputs are stale.
    """
    cfg = load_config(config_path, SerialOEConfig)
    claim_training_dir(training_record(cfg, dumpdir, machines, expdir), force)
    torch.manual_seed(cfg.train.seed)
    classes = read_classes(dumpdir, machine, cfg.train.class_target)
    model = make_model(cfg, classes)
    task = OutlierExposureTask(cfg.train, dumpdir, machine, machines, device, classes)
    optimizer = build_optimizer(cfg.train.optimizer, model, **cfg.train.optimizer_params)
    total_steps = cfg.train.epochs * task.steps_per_epoch()
    scheduler = build_scheduler(cfg.train.scheduler, optimizer, total_steps, **cfg.train.scheduler_params)
    t = cfg.train
    settings = TrainerSettings(
        t.epochs,
        t.log_interval_epochs,
        tuple(range(t.save_interval_epochs, t.epochs + 1, t.save_interval_epochs)),
        grad_clip=cfg.train.grad_clip,
        amp=cfg.train.amp,
        amp_dtype=cfg.train.amp_dtype,
    )
    save_classes(classes, expdir)  # the head's classes, needed to embed
    save_config(cfg, Path(expdir) / CONFIG_NAME)  # after every object is built from it
    n_params = sum(p.numel() for p in model.parameters())
    logging.info(
        f"{machine}: {cfg.model.name} with {n_params / 1e6:.2f} M parameters; "
        f"{task.steps_per_epoch()} steps per epoch of {cfg.train.batch_size}"
    )
    Trainer(model, task, optimizer, scheduler, settings, expdir, device).run()


def model_outputs_to_features(out, classes=None):
    """Window features of System 1: embedding, section logits, machine logit, embedding norm (and, for
    attribute classes, the class logits; section_logits then holds each section's best class)."""
    features = {
        "embedding": out["embedding"],
        "section_logits": per_section_logits(out["section"], classes),
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
    classes = load_classes(expdir, cfg.train.class_target)
    model = make_model(cfg, classes).to(device)
    model.load_state_dict(load_weights(expdir, checkpoint, device))
    corpus = Corpus(dumpdir)
    e = cfg.embed
    inliers = corpus.clips(machine, e.inlier_subsets)
    run = dict(
        n_split=e.n_split,
        batch_size=e.batch_size,
        device=device,
        to_features=partial(model_outputs_to_features, classes=classes),
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
