"""The baseline on the system core: nothing to train; its "embeddings" are log-mel statistics of whole clips."""

from asd_tools.config import config_to_dict
from asd_tools.systems.base import System
from asd_tools.systems.baseline.config import BaselineConfig
from asd_tools.systems.baseline.features import logmel_statistics

FEATURES = "features"  # the one "checkpoint" of a baseline experiment: expdir/features/


class Baseline(System):
    """The simple baseline: per-clip log-mel band means and standard deviations, no network.

    It has no training phase: the training stage only saves the resolved config, every section free
    to change (the features' record then sees that they are stale).
    """

    name = "baseline"
    config_class = BaselineConfig
    tiny_config = "baseline.yaml"

    def checkpoint_names(self, cfg):
        return [FEATURES]

    def inlier_subsets(self, cfg: BaselineConfig):
        return list(cfg.inlier_subsets)

    def embedding_settings(self, cfg: BaselineConfig):
        return {"logmel": config_to_dict(cfg)["logmel"], "inlier_subsets": cfg.inlier_subsets}

    def model_file(self, expdir, checkpoint):
        if checkpoint != FEATURES:
            raise ValueError(f"the baseline has one set of features, '{FEATURES}', not '{checkpoint}'")
        return None  # no weights: the features depend on the dump, the lists and the settings only

    def load_model(self, cfg, corpus, machine, expdir, checkpoint, device):
        return None

    def embed_clips(self, cfg: BaselineConfig, model, corpus, machine, clips, part, device):
        return logmel_statistics(clips, corpus.store, cfg.logmel)
