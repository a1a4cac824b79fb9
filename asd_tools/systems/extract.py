"""Embedding extraction shared by both systems: windows of clips -> :class:`Embeddings`.

Windows of many clips are batched together; the model's outputs are turned into named
window features by the system's ``to_features`` function.
"""

import numpy as np
import torch

from asd_tools.backend.embeddings import Embeddings
from asd_tools.constants import WINDOW_SAMPLES
from asd_tools.data.corpus import Corpus
from asd_tools.data.windows import random_starts, window_loader, window_starts
from asd_tools.utils import progress


def clip_windows(lengths, n_split):
    """(clip position, start) of every window of every clip, in clip order."""
    return [(i, int(s)) for i, n in enumerate(lengths) for s in window_starts(int(n), WINDOW_SAMPLES, n_split)]


@torch.no_grad()
def extract(model, clips, corpus: Corpus, n_split, batch_size, device, to_features, num_workers=0, mix_partner=None):
    """Run ``model`` over the windows of ``clips`` (a manifest slice) and return their features.

    ``mix_partner``: optional function (positions, waves) -> waves, applied to every batch
    (used to create target-mixed inlier windows).
    """
    model.eval()
    window = 0 if n_split == 0 else WINDOW_SAMPLES
    items = clip_windows(clips["length"].to_numpy(), n_split)
    if n_split == 0 and clips["length"].nunique() > 1:
        batch_size = 1  # whole clips of different lengths cannot share a batch
    plan = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    loader = window_loader(corpus.windows(clips, window), plan, num_workers, device)
    features, positions = {}, []
    for batch_positions, waves in progress(loader, desc="embed", leave=False):
        waves = waves.to(device, non_blocking=True)
        if mix_partner is not None:
            waves = mix_partner(batch_positions, waves)
        for name, value in to_features(model(waves)).items():
            features.setdefault(name, []).append(value.float().cpu().numpy())
        positions.append(batch_positions.numpy())
    return Embeddings(
        clip_id=clips["clip_id"].to_numpy(),
        window_clip=np.concatenate(positions),
        features={k: np.concatenate(v) for k, v in features.items()},
    )


def target_mixer(clips, target_clips, corpus: Corpus, alpha, seed, device):
    """Mix each inlier window with a random 2 s crop of a target clip of the same section.

    Weight ~ Beta(alpha, alpha) per window; creates target-like inlier windows.
    """
    rng = np.random.default_rng(seed)
    dataset = corpus.windows(target_clips, WINDOW_SAMPLES)
    by_section = {s: np.flatnonzero(target_clips["section"].to_numpy() == s) for s in target_clips["section"].unique()}
    sections = clips["section"].to_numpy()
    lengths = target_clips["length"].to_numpy()

    def mix(positions, waves):
        partners = []
        for p in positions.numpy():
            pool = by_section.get(sections[p])
            if pool is None or len(pool) == 0:
                raise ValueError(f"section {sections[p]:02d} has no target training clips for target mixup")
            choice = int(rng.choice(pool))
            start = int(random_starts(rng, lengths[[choice]], WINDOW_SAMPLES)[0])
            partners.append(dataset[(choice, start)][1])
        lam = torch.as_tensor(rng.beta(alpha, alpha, len(positions)), dtype=waves.dtype, device=waves.device)
        return lam[:, None] * waves + (1 - lam[:, None]) * torch.stack(partners).to(waves.device)

    return mix
