"""The baseline's stage (its recipe): log-mel statistics of one machine type's inlier and test clips."""

from pathlib import Path

from asd_tools.config import config_to_dict, load_config, save_config
from asd_tools.data.corpus import Corpus
from asd_tools.provenance import Provenance
from asd_tools.systems.baseline.config import BaselineConfig
from asd_tools.systems.baseline.features import logmel_statistics


def embed_stage(config_path, dumpdir, machine, expdir, force=False):
    """The baseline's feature stage: log-mel statistics of the inlier and test clips -> ``expdir/features/``.

    Writes ``expdir/config.yaml`` first: no model is trained, so the detect section may change freely.
    Skipped when the features' provenance record is current (``force`` recomputes).
    """
    cfg = load_config(config_path, BaselineConfig)
    expdir = Path(expdir)
    save_config(cfg, expdir / "config.yaml")
    corpus = Corpus(dumpdir)
    inputs = {f"dump/{machine}": corpus.identity(machine)}
    inputs.update(corpus.lists_identity(machine, sorted({*cfg.inlier_subsets, "test"})))
    settings = {"logmel": config_to_dict(cfg)["logmel"], "inlier_subsets": cfg.inlier_subsets}
    record = Provenance(expdir / "features", "embed", inputs, settings)
    if record.is_current(force):
        return
    record.invalidate()
    for name, subsets in (("inlier", cfg.inlier_subsets), ("test", "test")):
        clips = corpus.clips(machine, subsets)
        logmel_statistics(clips, corpus.store, cfg.logmel).save(expdir / "features" / f"{name}.npz")
    record.write()
