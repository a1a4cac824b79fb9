"""The baseline's stages: nothing to train; its "embeddings" are log-mel statistics of whole clips."""

import logging
from pathlib import Path

from asd_tools.config import config_to_dict, load_config, save_config
from asd_tools.data.corpus import Corpus
from asd_tools.provenance import Provenance
from asd_tools.systems.base import CONFIG_NAME, System
from asd_tools.systems.baseline.config import BaselineConfig
from asd_tools.systems.baseline.features import logmel_statistics

FEATURES = "features"  # the one "checkpoint" of a baseline experiment: expdir/features/


def save_baseline_config(config_path, expdir, machine):
    """The training stage of a system without a model: only the resolved config goes to ``expdir``.

    Written every time: no trained model depends on it, so every section may change freely (the
    feature stage's record then sees that its statistics are stale).
    """
    cfg = load_config(config_path, BaselineConfig)
    save_config(cfg, Path(expdir) / CONFIG_NAME)
    logging.info(f"{machine}: nothing to train (log-mel statistics); config saved to {expdir}/{CONFIG_NAME}")


def embed_features(expdir, dumpdir, machine, force=False):
    """Log-mel statistics of the inlier and test clips -> ``expdir/features/``.

    Skipped when the features' provenance record is current (``force`` recomputes).
    """
    expdir = Path(expdir)
    cfg = load_config(expdir / CONFIG_NAME, BaselineConfig)
    corpus = Corpus(dumpdir)
    inputs = {f"dump/{machine}": corpus.identity(machine)}
    inputs.update(corpus.lists_identity(machine, sorted({*cfg.inlier_subsets, "test"})))
    settings = {"logmel": config_to_dict(cfg)["logmel"], "inlier_subsets": cfg.inlier_subsets}
    record = Provenance(expdir / FEATURES, "embed", inputs, settings)
    if record.is_current(force):
        return
    record.invalidate()
    for name, subsets in (("inlier", cfg.inlier_subsets), ("test", "test")):
        clips = corpus.clips(machine, subsets)
        logmel_statistics(clips, corpus.store, cfg.logmel).save(expdir / FEATURES / f"{name}.npz")
    record.write()


class Baseline(System):
    """The simple baseline: per-clip log-mel band means and standard deviations, no network."""

    name = "baseline"
    config_class = BaselineConfig

    def train(self, config_path, dumpdir, machine, machines, expdir, device, force=False):
        save_baseline_config(config_path, expdir, machine)

    def checkpoints(self, expdir):
        return [FEATURES]

    def embed(self, expdir, dumpdir, machine, checkpoint, device, force=False):
        if checkpoint != FEATURES:
            raise ValueError(f"the baseline has one set of features, '{FEATURES}', not '{checkpoint}'")
        embed_features(expdir, dumpdir, machine, force)
