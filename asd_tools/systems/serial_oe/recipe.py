"""System 1, serial outlier exposure: its training phase and its window features, on the system core."""

from functools import partial
from typing import Callable, NamedTuple

import numpy as np
import torch

from asd_tools.artefacts import BEST, checkpoint_name, interval_checkpoint
from asd_tools.backend.embeddings import Embeddings
from asd_tools.config import config_sections
from asd_tools.data.corpus import Corpus
from asd_tools.models import build_model
from asd_tools.systems.base import System, TrainingPhase
from asd_tools.systems.extract import extract, target_mixer
from asd_tools.systems.serial_oe.config import OETrainConfig, SerialOEConfig
from asd_tools.systems.serial_oe.task import SUPPLEMENTAL_LISTS, OutlierExposureTask
from asd_tools.training.classes import (
    load_classes,
    n_classes,
    per_section_logits,
    read_classes,
    resolve_class_target,
)
from asd_tools.training.optim import build_optimizer, build_scheduler
from asd_tools.training.trainer import Trainer, TrainerSettings, load_weights, optimiser_steps_per_epoch


def make_model(cfg: SerialOEConfig, sections, classes=None):
    """The configured extractor, its section head one output per section of ``sections`` (the machine
    type's, from its manifest) or per attribute class of ``classes``."""
    n = n_classes(classes, sections)
    return build_model(cfg.model.name, frontend=cfg.frontend, n_classes=n, **cfg.model.params)


TRAINING_SECTIONS = ("model", "frontend", "train")  # what a trained model is made from
EMBEDDING_SECTIONS = ("embed", "model", "frontend")  # what its embeddings are made with (and the weights)


def training_inputs(cfg: SerialOEConfig, corpus: Corpus, machines) -> dict:
    """Inputs of one machine type's training: every machine type's dump and lists (negatives), the pool."""
    inputs = {}
    lists = ("train", "valid", *(SUPPLEMENTAL_LISTS[kind] for kind in cfg.train.supplemental))
    for m in machines:
        inputs[f"dump/{m}"] = corpus.identity(m)
        inputs.update(corpus.lists_identity(m, lists))
    if cfg.train.outlier_pool:
        inputs["dump/outlier_pool"] = corpus.identity(cfg.train.outlier_pool)
    return inputs


def training_settings(cfg: SerialOEConfig, machines) -> dict:
    return {**config_sections(cfg, TRAINING_SECTIONS), "machines": list(machines)}


def saved_epochs(t: OETrainConfig) -> tuple:
    """The epochs after which training keeps the weights (checkpoint-<N>epochs.pt)."""
    return tuple(range(t.save_interval_epochs, t.epochs + 1, t.save_interval_epochs))


def build_trainer(cfg: SerialOEConfig, corpus: Corpus, machine, machines, expdir, device, classes=None) -> Trainer:
    """The trainer of one machine type's model (seeded model, task, optimiser, schedule); ``classes``:
    the head's attribute classes (None: sections). The benchmark times its steps."""
    torch.manual_seed(cfg.train.seed)
    model = make_model(cfg, corpus.sections(machine), classes)
    task = OutlierExposureTask(cfg.train, corpus, machine, machines, device, classes)
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
    return Trainer(model, task, optimizer, scheduler, settings, expdir, device)


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


class EmbeddingModel(NamedTuple):
    """A checkpoint ready to embed: the network, and its outputs -> window features (which name each
    section's best class under attribute classes)."""

    network: torch.nn.Module
    to_features: Callable


def _with_target_mixup(inlier_emb, model, inliers, corpus, machine, e, run):
    """Append target-mixed copies of every inlier window (as extra windows of the same clip)."""
    training = corpus.clips(machine, ["train", "valid"])
    targets = training[training["domain"] == "target"]
    mixer = target_mixer(inliers, targets, corpus, e.target_mixup_alpha, e.seed, run["device"])
    mixed = extract(model, inliers, corpus, mix_partner=mixer, **run)
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
    tiny_config = "asd_model.tiny.yaml"

    def training_phases(self, cfg: SerialOEConfig, corpus, machine, machines, expdir, device):
        """One phase. ``class_target`` is resolved from the corpus first: the record and the saved config
        name the classes the head learns, never ``auto``."""
        cfg.train.class_target = resolve_class_target(cfg.train.class_target, corpus, machine)
        classes = read_classes(corpus, machine, cfg.train.class_target)
        yield TrainingPhase(
            expdir,
            "train",
            training_inputs(cfg, corpus, machines),
            training_settings(cfg, machines),
            build=lambda: build_trainer(cfg, corpus, machine, machines, expdir, device, classes),
            classes=classes,
        )

    def checkpoint_names(self, cfg: SerialOEConfig):
        """The best checkpoint, then every kept epoch's."""
        return [checkpoint_name(BEST)] + [checkpoint_name(interval_checkpoint(e)) for e in saved_epochs(cfg.train)]

    def embedding_lists(self, cfg: SerialOEConfig):
        target_mixup = ("train", "valid") if cfg.embed.target_mixup else ()
        return sorted({*cfg.embed.inlier_subsets, "test", *target_mixup})

    def embedding_settings(self, cfg: SerialOEConfig):
        return config_sections(cfg, EMBEDDING_SECTIONS)

    def load_model(self, cfg: SerialOEConfig, corpus, machine, expdir, checkpoint, device):
        classes = load_classes(expdir, resolve_class_target(cfg.train.class_target, corpus, machine))
        network = make_model(cfg, corpus.sections(machine), classes).to(device)
        network.load_state_dict(load_weights(expdir, checkpoint, device))
        to_features = partial(model_outputs_to_features, sections=corpus.sections(machine), classes=classes)
        return EmbeddingModel(network, to_features)

    def embed_clips(self, cfg: SerialOEConfig, model: "EmbeddingModel", corpus, machine, clips, part, device):
        """Window features (``model_outputs_to_features``); inliers with target-mixed copies when configured."""
        e = cfg.embed
        run = dict(
            n_split=e.n_split,
            batch_size=e.batch_size,
            device=device,
            to_features=model.to_features,
            num_workers=e.num_workers,
        )
        emb = extract(model.network, clips, corpus, **run)
        if part == "inlier" and e.target_mixup:
            emb = _with_target_mixup(emb, model.network, clips, corpus, machine, e, run)
        return emb
