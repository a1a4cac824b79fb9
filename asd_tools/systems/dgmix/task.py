"""DG-Mix training tasks for the shared trainer core: VICReg-with-mixup pre-training and fine-tuning.

Each batch of random 2 s crops is split into halves x and y; z = lam*spec(x) + (1-lam)*spec(y)
with lam ~ Beta(alpha, alpha) per pair, mixed in the spectrogram domain.
Pre-training: 25 * MSE(P(z), lam P(x) + (1-lam) P(y)) + 25 * variance + 1 * covariance (VICReg).
Fine-tuning: MSE(e(z), lam e(x) + (1-lam) e(y)) + KL(section posterior of z || mixed one-hots).
"""

import logging
import math

import numpy as np
import torch
import torch.nn.functional as F

from asd_tools.constants import WINDOW_SAMPLES
from asd_tools.data.corpus import Corpus
from asd_tools.data.windows import epoch_crops, window_loader, window_starts
from asd_tools.training.classes import class_indices, n_classes
from asd_tools.training.losses import mixup_consistency_loss, vicreg_mixup_loss

# Below this the embeddings have collapsed to one point. The measure is scale-free (the spread across rows
# relative to the embeddings' size): the original architecture's embeddings are only ~1e-3 in size (its
# initialisation and per-channel last conv), so an absolute threshold would call a healthy original run
# collapsed. Healthy runs measure 0.4-0.7; collapsed ones (every clip the same embedding) below 1e-4.
COLLAPSE_SPREAD = 1e-2


def embedding_spread(embeddings):
    """Mean over dimensions of the standard deviation across the rows (a tensor or an array): ~0 means collapse."""
    return torch.as_tensor(embeddings).float().std(dim=0).mean().item()


def relative_spread(embeddings):
    """RMS distance of the rows from their mean over the RMS of the rows: 0 when every row is the same, ~1 for
    rows spread around 0. Independent of the embeddings' scale."""
    x = torch.as_tensor(embeddings).float()
    size = x.pow(2).mean().sqrt()
    return ((x - x.mean(dim=0)).pow(2).mean().sqrt() / size).item() if size > 0 else 0.0


def warn_if_collapsed(spread, where):
    """Warn when a ``relative_spread`` says that the embeddings have collapsed to one point."""
    if spread < COLLAPSE_SPREAD:
        logging.warning(
            f"{where}: embeddings have collapsed (relative spread {spread:.2e} < {COLLAPSE_SPREAD}); "
            "anomaly scores from them are meaningless. Check the optimiser settings (exclude_bias_and_norm, lr)."
        )


def mixture_passes(sx, sy, sz, separate):
    """The batches that go through the network: [x | y | z] at once, or [x | y] then [z] (the original).

    In training mode BatchNorm normalises each pass with that pass's own statistics, so the two
    choices train different functions; the outputs are concatenated in the order x, y, z either way.
    """
    return [torch.cat([sx, sy]), sz] if separate else [torch.cat([sx, sy, sz])]


def spreads(embeddings):
    """Logged with every batch: the absolute spread (``embedding_std``) and the scale-free one."""
    embeddings = embeddings.detach()
    return {"embedding_std": embedding_spread(embeddings), "embedding_relative_spread": relative_spread(embeddings)}


class _MixupCrops:
    """Shared data side of both stages: one machine type's clips, random crops, mixed halves."""

    def __init__(self, stage, vicreg, corpus: Corpus, machine, device, classes=None):
        """``classes``: the attribute table of the section head (None: sections; ``training/classes.py``)."""
        self.cfg, self.vicreg, self.device = stage, vicreg, torch.device(device)
        self.separate = vicreg.mixture_pass == "separate"
        self.batch_size = stage.batch_size // stage.grad_accum  # micro-batch
        train, valid = corpus.clips(machine, "train"), corpus.clips(machine, "valid")
        self.dataset = corpus.windows(train, WINDOW_SAMPLES)
        self.lengths = train["length"].to_numpy()
        # a clip's class: its section's position among the machine type's, or its attribute class
        sections = corpus.sections(machine)
        self.n_classes = n_classes(classes, sections)
        self.classes = self.class_tensor(train, classes, sections)
        self.valid_dataset = corpus.windows(valid, WINDOW_SAMPLES)
        self.valid_classes = self.class_tensor(valid, classes, sections)
        starts = [int(window_starts(n, WINDOW_SAMPLES, 3)[1]) for n in valid["length"]]
        items = list(zip(range(len(valid)), starts))
        # Validation batches keep an even size so that every clip has a mixing partner.
        size = max(2, min(self.batch_size, len(items) - len(items) % 2))
        self.valid_plan = [items[i : i + size] for i in range(0, len(items) - size + 1, size)]
        # Beta draws use the global RNG, which the trainer saves and restores on resume.
        self.beta = torch.distributions.Beta(vicreg.mixup_alpha, vicreg.mixup_alpha)

    @staticmethod
    def class_tensor(clips, classes, sections):
        own = np.ones(len(clips), dtype=bool)  # DG-Mix trains on one machine type's clips only
        return torch.from_numpy(class_indices(clips, classes, own, sections))

    def steps_per_epoch(self):
        return math.ceil(len(self.lengths) / self.batch_size)

    def plan(self, epoch):
        rng = np.random.default_rng([self.cfg.seed, epoch])
        return epoch_crops(rng, np.arange(len(self.lengths)), self.lengths, self.batch_size, WINDOW_SAMPLES)

    def loader(self, plan):
        return window_loader(self.dataset, plan, self.cfg.num_workers, self.device)

    def batches(self, epoch):
        return self.loader(self.plan(epoch))

    def seed_batch(self, seed):
        pass  # the Beta draws use torch's global RNG, which the trainer seeds

    def mixed_halves(self, model, waves):
        """Spectrograms of halves x, y and of their mixture z, with the per-pair weights."""
        spec = model.spectrogram(waves.to(self.device, non_blocking=True))
        half = spec.shape[0] // 2
        sx, sy = spec[:half], spec[half : 2 * half]
        lam = self.beta.sample((half,)).to(spec.device)
        sz = lam[:, None, None, None] * sx + (1 - lam[:, None, None, None]) * sy
        return sx, sy, sz, lam

    def validate(self, model):
        loader = window_loader(self.valid_dataset, self.valid_plan, self.cfg.num_workers, self.device)
        totals, count = {}, 0
        with torch.random.fork_rng():  # fixed mixing weights, without disturbing training's RNG
            torch.manual_seed(0)
            for positions, waves in loader:
                _, scalars = self.batch_loss(model, waves, self.valid_classes[positions])
                for k, v in scalars.items():
                    totals[k] = totals.get(k, 0.0) + v * len(positions)
                count += len(positions)
        averages = {k: v / max(count, 1) for k, v in totals.items()}
        warn_if_collapsed(averages["embedding_relative_spread"], "validation")
        return averages

    def loss(self, model, batch, step, max_step):
        positions, waves = batch
        return self.batch_loss(model, waves, self.classes[positions])

    def state_dict(self):
        return {}  # all randomness lives in the epoch plans and the global RNG

    def load_state_dict(self, state):
        pass


class VICRegMixupTask(_MixupCrops):
    """Pre-training: the extractor and a projector (``model`` is a PretrainModel)."""

    def batch_loss(self, model, waves, classes):
        sx, sy, sz, lam = self.mixed_halves(model.extractor, waves)
        half = sx.shape[0]
        embeddings, projections = [], []
        for spec in mixture_passes(sx, sy, sz, self.separate):
            embeddings.append(model.extractor.embed_spectrogram(spec))
            projections.append(model.projector(embeddings[-1]))
        embeddings, p = torch.cat(embeddings), torch.cat(projections).float()
        loss, scalars = vicreg_mixup_loss(p[:half], p[half : 2 * half], p[2 * half :], lam, self.vicreg)
        return loss, {"loss": loss.item(), **scalars, **spreads(embeddings[: 2 * half])}


class FinetuneTask(_MixupCrops):
    """Fine-tuning: embedding mixup consistency + section KL (``model`` has a section head)."""

    def batch_loss(self, model, waves, classes):
        sx, sy, sz, lam = self.mixed_halves(model, waves)
        half = sx.shape[0]
        passes = mixture_passes(sx, sy, sz, self.separate)
        embeddings = torch.cat([model.embed_spectrogram(spec) for spec in passes]).float()
        ex, ey, ez = embeddings[:half], embeddings[half : 2 * half], embeddings[2 * half :]
        onehot = F.one_hot(classes.to(lam.device), self.n_classes).float()
        consistency, kl = mixup_consistency_loss(
            ex, ey, ez, lam, model.section_head(ez), onehot[:half], onehot[half : 2 * half]
        )
        loss = consistency + kl
        scalars = {
            "consistency": consistency.item(),
            "section_kl": kl.item(),
            **spreads(embeddings[: 2 * half]),
        }
        return loss, {"loss": loss.item(), **scalars}
