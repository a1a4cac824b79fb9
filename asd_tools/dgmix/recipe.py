"""DG-Mix stages for one machine type: pre-train, fine-tune, embed (pooled per clip).

Checkpoints in ``expdir``: checkpoint-<N>epochs.pt of pre-training (default 50, 100) and
checkpoint-<pretrain epochs + finetune epochs>epochs.pt after fine-tuning (default 120).
Both stages run in the shared trainer core (resume, logging, AMP); fine-tuning keeps its
own state in ``expdir/finetune/``.
"""

import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from asd_tools.config import load_config, save_config
from asd_tools.data.manifest import load_manifest
from asd_tools.data.split import read_list, read_lists
from asd_tools.dgmix.config import DGMixConfig, StageConfig
from asd_tools.dgmix.tasks import FinetuneTask, PretrainModel, VICRegMixupTask, embedding_spread, warn_if_collapsed
from asd_tools.embeddings import Embeddings, embedded_already
from asd_tools.extract import extract
from asd_tools.models.dgmix import DGMixExtractor, Projector
from asd_tools.training.optim import build_optimizer, build_scheduler
from asd_tools.training.trainer import DONE, LAST, Trainer, TrainerSettings, interval_checkpoint, load_weights

CONFIG_NAME = "config.yaml"
FINETUNE_DIR = "finetune"


def make_extractor(cfg: DGMixConfig, section_head=True):
    return DGMixExtractor(cfg.model.final_groups, section_head=section_head, frontend=cfg.frontend)


def _trainer(model, task, stage: StageConfig, outdir, device):
    optimizer = build_optimizer(stage.optimizer, model, stage.exclude_bias_and_norm, **stage.optimizer_params)
    updates_per_epoch = math.ceil(task.steps_per_epoch() / stage.grad_accum)
    scheduler = build_scheduler(
        "cosine",
        optimizer,
        stage.epochs * updates_per_epoch,
        warmup_steps=stage.warmup_epochs * updates_per_epoch,
        lr_min=stage.lr_min,
    )
    settings = TrainerSettings(
        stage.epochs,
        stage.log_interval_epochs,
        tuple(stage.save_epochs),
        grad_accum=stage.grad_accum,
        amp=stage.amp,
        amp_dtype=stage.amp_dtype,
    )
    return Trainer(model, task, optimizer, scheduler, settings, outdir, device)


def pretrain(config_path, dumpdir, machine, expdir, device):
    """VICReg-with-mixup pre-training; the resolved config goes to ``expdir``."""
    cfg = load_config(config_path, DGMixConfig)
    torch.manual_seed(cfg.pretrain.seed)
    model = PretrainModel(make_extractor(cfg, section_head=False), Projector())
    task = VICRegMixupTask(cfg.pretrain, cfg.vicreg, dumpdir, machine, device)
    trainer = _trainer(model, task, cfg.pretrain, expdir, device)
    save_config(cfg, Path(expdir) / CONFIG_NAME)
    trainer.run()


def finetune(expdir, dumpdir, machine, device):
    """Fine-tuning from the last pre-training state; publishes checkpoint-<total>epochs.pt."""
    expdir = Path(expdir)
    cfg = load_config(expdir / CONFIG_NAME, DGMixConfig)
    if not (expdir / DONE).exists():
        raise FileNotFoundError(f"{expdir / DONE} is missing: run pre-training (stage 3) first")
    published = expdir / interval_checkpoint(cfg.pretrain.epochs + cfg.finetune.epochs)
    if published.exists():
        logging.info(f"{published} exists; skipping fine-tuning")
        return
    torch.manual_seed(cfg.finetune.seed)
    model = make_extractor(cfg)
    state = load_weights(expdir, Path(LAST).stem, "cpu")
    model.load_state_dict(extractor_weights(state), strict=False)  # the section head starts fresh
    task = FinetuneTask(cfg.finetune, cfg.vicreg, dumpdir, machine, device)
    outdir = expdir / FINETUNE_DIR
    _trainer(model, task, cfg.finetune, outdir, device).run()
    shutil.copyfile(outdir / interval_checkpoint(cfg.finetune.epochs), published.with_suffix(".tmp"))
    published.with_suffix(".tmp").rename(published)


def extractor_weights(state):
    """Extractor weights from a pre-training (extractor + projector) or fine-tuning checkpoint."""
    prefix = "extractor."
    if any(k.startswith(prefix) for k in state):
        return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    return state


def clip_mean(emb: Embeddings) -> Embeddings:
    """Average the windows of each clip: one embedding per clip."""
    frame = pd.DataFrame(emb.features["embedding"]).groupby(emb.window_clip).mean()
    return Embeddings(emb.clip_id, np.arange(len(emb.clip_id)), {"embedding": frame.to_numpy(np.float32)})


def embed(expdir, dumpdir, machine, checkpoint, device):
    """Clip embeddings of the inlier and test clips with one checkpoint -> ``expdir/<checkpoint>/``."""
    expdir = Path(expdir)
    cfg = load_config(expdir / CONFIG_NAME, DGMixConfig)
    outdir = expdir / checkpoint
    if embedded_already(outdir):
        return
    model = make_extractor(cfg).to(device)
    model.load_state_dict(extractor_weights(load_weights(expdir, checkpoint, device)), strict=False)
    manifest = load_manifest(dumpdir, [machine])
    e = cfg.embed
    n_split = 0 if e.pool == "first" else e.n_split  # "first": whole clip, first time position

    def to_features(out):
        return {"embedding": out["embedding"]}

    for name, ids in (
        ("inlier", read_lists(dumpdir, machine, e.inlier_subsets)),
        ("test", read_list(dumpdir, machine, "test")),
    ):
        emb = clip_mean(
            extract(model, manifest.loc[ids], dumpdir, n_split, e.batch_size, device, to_features, e.num_workers)
        )
        warn_if_collapsed(embedding_spread(emb.features["embedding"]), f"{machine}/{checkpoint}/{name}")
        emb.save(outdir / f"{name}.npz")
    logging.info(f"{machine}/{checkpoint}: clip embeddings written to {outdir}")
