"""The official DCASE Task 2 autoencoder baseline on the system core (``system: dcase_ae``).

Stage 3 trains one autoencoder per machine type (per section with ``train.per_section``, their
legacy 2020-2022 scripts) in the shared trainer core; after the last epoch it fits the source and
target covariances of the reconstruction error and their two decision thresholds, and publishes
``autoencoder.pt`` (weights, covariances, thresholds) in the training folder.

Scores: theirs are not a feature + detector pair. MAHALA's covariances are fitted to per-frame error
blocks of the training vectors, centred per training batch, in the training stage, and its distance
is taken of the clip's *mean* error block; no detector fitted on clip embeddings computes that. So
the embed stage computes the system's own clip scores, ``mse`` and ``mahala`` (one column each), and
the shared detector stage passes them on with the ``clip_score`` detector (the score is the feature;
its per-section z-scoring changes no AUC or pAUC), so that scoring, reports and submission files are
the shared ones. The decision files use the shared rule (a gamma fitted to the z-scored training-clip
scores, 90th percentile); their thresholds (fitted to batch scores) are kept in ``autoencoder.pt``.
"""

from pathlib import Path

import numpy as np
import torch

from asd_tools.artefacts import LAST, interval_checkpoint
from asd_tools.backend.embeddings import Embeddings
from asd_tools.config import config_sections
from asd_tools.systems.base import System, TrainingPhase
from asd_tools.systems.dcase_ae.config import DcaseAEConfig
from asd_tools.systems.dcase_ae.features import clips_vectors, each_clip_vectors
from asd_tools.systems.dcase_ae.network import AutoEncoder
from asd_tools.systems.dcase_ae.scores import (
    fit_covariances,
    mse_score,
    official_threshold,
    precisions,
    selective_mahalanobis,
    vector_errors,
)
from asd_tools.systems.dcase_ae.task import AutoEncoderTask, batches_of
from asd_tools.training.optim import build_scheduler
from asd_tools.training.trainer import Trainer, TrainerSettings, load_checkpoint, save_torch
from asd_tools.utils import progress

MODEL = "autoencoder"  # the one checkpoint: <training folder>/autoencoder.pt
TRAINING_LISTS = ("train", "valid")  # their training set is every training clip; the split is of vectors


def make_model(cfg: DcaseAEConfig) -> AutoEncoder:
    f, m = cfg.features, cfg.model
    return AutoEncoder(f.frames * f.n_mels, f.n_mels, m.hidden, m.layers, m.bottleneck)


def model_folders(cfg: DcaseAEConfig, corpus, machine: str, expdir: Path) -> dict:
    """section -> its model's folder (None -> ``expdir``: one model for the machine type)."""
    if not cfg.train.per_section:
        return {None: Path(expdir)}
    return {section: Path(expdir) / f"section_{section:02d}" for section in corpus.sections(machine)}


def training_clips(corpus, machine: str, section):
    clips = corpus.clips(machine, TRAINING_LISTS)
    return clips if section is None else clips[clips["section"] == section]


def scored_batches(model, task: AutoEncoderTask, plans):
    """(errors, is_target) of each batch of ``plans`` (lists of vector positions), the model as it is."""
    with torch.no_grad():
        for positions in plans:
            yield vector_errors(model, task.batch(positions)).cpu(), task.is_target[positions]


def fit_scoring(model, task: AutoEncoderTask, cfg: DcaseAEConfig, last_epoch_losses) -> dict:
    """Their extra pass after training: covariances into ``model``, then both decision thresholds."""
    model.eval()
    epochs = cfg.train.epochs
    cov_batches = scored_batches(model, task, batches_of(task.epoch_order(epochs + 1), task.batch_size))
    cov_source, cov_target = fit_covariances(cov_batches, cfg.features.n_mels)
    model.cov_source.copy_(cov_source)
    model.cov_target.copy_(cov_target)
    inverse = precisions(model)
    plans = batches_of(task.epoch_order(epochs + 2), task.batch_size) + batches_of(
        task.valid_positions, task.batch_size
    )
    mahala = [selective_mahalanobis(errors, inverse) for errors, _ in scored_batches(model, task, plans)]
    percentile = cfg.train.decision_percentile
    return {"mse": official_threshold(last_epoch_losses, percentile), "mahala": official_threshold(mahala, percentile)}


def autoencoder_phase(cfg: DcaseAEConfig, corpus, machine, section, folder: Path, device) -> TrainingPhase:
    """One autoencoder (of the machine type, or of one section) in ``folder``."""
    t = cfg.train
    built = {}

    def build():
        clips = training_clips(corpus, machine, section)
        vectors, owner = clips_vectors(corpus, machine, clips, cfg.features)
        is_target = clips["domain"].to_numpy()[owner] == "target"
        task = AutoEncoderTask(vectors, is_target, t.batch_size, t.validation_split, t.seed, device)
        torch.manual_seed(t.seed)
        model = make_model(cfg)
        optimizer = torch.optim.Adam(model.parameters(), lr=t.lr)
        scheduler = build_scheduler("constant", optimizer, t.epochs * task.steps_per_epoch())
        settings = TrainerSettings(t.epochs, 1, (t.epochs,), amp=False, seed=t.seed)
        built["task"] = task
        return Trainer(model, task, optimizer, scheduler, settings, folder, device)

    def publish():
        """The last epoch's model (theirs keeps no best one) with its covariances and thresholds."""
        task = built["task"]
        model = make_model(cfg).to(device)
        model.load_state_dict(load_checkpoint(folder / interval_checkpoint(t.epochs), device)["model"])
        last_losses = load_checkpoint(folder / LAST, "cpu")["task"]  # the last epoch's batch losses
        thresholds = fit_scoring(model, task, cfg, last_losses["train_losses"] + last_losses["valid_losses"])
        save_torch({"model": model.state_dict(), "thresholds": thresholds}, folder / f"{MODEL}.pt")

    inputs = {f"dump/{machine}": corpus.identity(machine), **corpus.lists_identity(machine, TRAINING_LISTS)}
    if section is not None:
        inputs["section"] = int(section)
    settings = config_sections(cfg, ("features", "model", "train"))
    return TrainingPhase(folder, "train", inputs, settings, build, None, (folder / f"{MODEL}.pt").exists, publish)


class DcaseAE(System):
    """The official DCASE autoencoder baseline: MSE and selective-Mahalanobis clip scores."""

    name = "dcase_ae"
    config_class = DcaseAEConfig
    seed_keys = ("train.seed",)
    tiny_config = "dcase_ae.tiny.yaml"

    def training_phases(self, cfg: DcaseAEConfig, corpus, machine, machines, expdir, device):
        for section, folder in model_folders(cfg, corpus, machine, expdir).items():
            yield autoencoder_phase(cfg, corpus, machine, section, folder, device)

    def checkpoint_names(self, cfg):
        return [MODEL]

    def inlier_subsets(self, cfg: DcaseAEConfig):
        return list(cfg.embed.inlier_subsets)

    def embedding_settings(self, cfg: DcaseAEConfig):
        return config_sections(cfg, ("features", "model", "train", "embed"))

    def model_files(self, cfg, corpus, machine, expdir, checkpoint):
        folders = model_folders(cfg, corpus, machine, expdir)
        return {
            "checkpoint" if section is None else f"checkpoint/section_{section:02d}": folder / f"{checkpoint}.pt"
            for section, folder in folders.items()
        }

    def load_model(self, cfg: DcaseAEConfig, corpus, machine, expdir, checkpoint, device):
        """section (None: every section) -> (model in eval mode, (source, target) precisions)."""
        models = {}
        for section, folder in model_folders(cfg, corpus, machine, expdir).items():
            model = make_model(cfg).to(device)
            model.load_state_dict(load_checkpoint(folder / f"{checkpoint}.pt", device)["model"])
            models[section] = (model.eval(), precisions(model))
        return models

    def embed_clips(self, cfg: DcaseAEConfig, model, corpus, machine, clips, part, device):
        """Per clip: its MSE and MAHALA scores (the whole clip's vectors in one batch, as theirs)."""
        scores = np.zeros((len(clips), 2))
        sections = clips["section"].to_numpy() if cfg.train.per_section else [None] * len(clips)
        each = progress(each_clip_vectors(corpus, machine, clips, cfg.features), total=len(clips), desc=part)
        with torch.no_grad():
            for i, vectors in enumerate(each):
                ae, inverse = model[sections[i]]
                errors = vector_errors(ae, torch.from_numpy(vectors).to(device)).cpu()
                scores[i] = mse_score(errors), selective_mahalanobis(errors, inverse)
        return Embeddings(
            clip_id=clips["clip_id"].to_numpy(),
            window_clip=np.arange(len(clips)),
            features={"mse": scores[:, :1], "mahala": scores[:, 1:]},
        )
