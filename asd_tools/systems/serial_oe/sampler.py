"""Which clips and crops make up System 1's batches: the epoch plan of outlier-exposure training.

The sampler knows only positions into the task's clip table (this machine type's source and
target training clips, the other machine types' clips, the outlier pool) and their lengths; it
draws every batch of an epoch from a generator seeded with (seed, epoch), so a plan depends on
nothing else and a resumed run reads exactly the batches it would have read.
"""

import math

import numpy as np

from asd_tools.constants import WINDOW_SAMPLES
from asd_tools.data.windows import random_starts
from asd_tools.systems.serial_oe.config import OETrainConfig


class OutlierExposureSampler:
    def __init__(self, cfg: OETrainConfig, lengths, source, target, negatives, outliers, name="this machine type"):
        self.cfg, self.lengths = cfg, lengths
        self.source_positions, self.target_positions = source, target
        self.negative_positions, self.outlier_positions = negatives, outliers
        self.n_outliers = cfg.batch_size - cfg.n_pos - cfg.n_neg
        # what the n_neg negatives are drawn from: the other types' clips, or those and the pool together
        self.negative_draw = np.concatenate([negatives, outliers]) if cfg.negatives == "union" else negatives
        # mixing partners of the original's target part: any training clip of any machine type but this
        # type's target clips (its sampler's "all source" set: this type's source clips and the negatives)
        self.partner_positions = np.concatenate([source, negatives])
        if (cfg.n_target or cfg.target_batch_size) and len(target) == 0:
            raise ValueError(f"{name}: target clips are asked for but the training list has none")
        if (self.n_outliers or cfg.negatives == "union") and len(outliers) == 0:
            raise ValueError(f"{cfg.outlier_pool} holds no clips for the outlier share of the batch")

    def steps_per_epoch(self):
        return math.ceil(len(self.source_positions) / self.cfg.n_pos)

    def n_mixed_targets(self):
        """Clips of the target part that are mixed (the first ones)."""
        return int(round(self.cfg.target_batch_size * self.cfg.target_mix_ratio))

    def epoch_plan(self, epoch):
        """The (position, crop start) items of every batch of ``epoch`` (depends on seed and epoch only).

        Batch layout: n_pos positives (the last n_target of them target clips), n_neg negatives,
        the rest of batch_size outliers, then target_batch_size target clips (domain classifier),
        then (target_part: original_mixed) one mixing partner per mixed target clip.
        """
        rng = np.random.default_rng([self.cfg.seed, epoch])
        order = rng.permutation(self.source_positions)
        n_pos, cfg = self.cfg.n_pos, self.cfg
        plan = []
        for step in range(self.steps_per_epoch()):
            positives = order[step * n_pos : (step + 1) * n_pos]
            if len(positives) < n_pos:  # top up the last batch with random source clips
                positives = np.concatenate([positives, rng.choice(self.source_positions, n_pos - len(positives))])
            if cfg.n_target:
                positives[-cfg.n_target :] = rng.choice(self.target_positions, cfg.n_target)
            parts = [positives, rng.choice(self.negative_draw, cfg.n_neg)]
            if self.n_outliers:
                parts.append(rng.choice(self.outlier_positions, self.n_outliers))
            if cfg.target_batch_size:
                parts.append(rng.choice(self.target_positions, cfg.target_batch_size))
                if cfg.target_part == "original_mixed":
                    parts.append(rng.choice(self.partner_positions, self.n_mixed_targets()))
            positions = np.concatenate(parts)
            starts = random_starts(rng, self.lengths[positions], WINDOW_SAMPLES)
            if cfg.pool_fixed_crops:
                starts = self._fixed_pool_starts(rng, positions, starts)
            plan.append(list(zip(positions.tolist(), starts.tolist())))
        return plan

    def _fixed_pool_starts(self, rng, positions, starts):
        """Pool clips start at one of N fixed crops ((length - window) // N) * i, i < N, as the
        original dumped N = 5 crops of every AudioSet clip and read one at random."""
        n = self.cfg.pool_fixed_crops
        pool = np.isin(positions, self.outlier_positions)
        hop = np.maximum(self.lengths[positions[pool]] - WINDOW_SAMPLES, 0) // n
        starts = starts.copy()
        starts[pool] = hop * rng.integers(n, size=int(pool.sum()))
        return starts
