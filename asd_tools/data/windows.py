"""The one windowing function and the dataset that reads windows from the dump.

Every system reads 2 s windows the same way: training takes random crops, inference
takes ``n_split`` evenly spaced windows, the last ending at the clip's end.
"""

import numpy as np
import torch

from asd_tools.data.manifest import ClipStore


def window_starts(length: int, window: int, n_split: int) -> np.ndarray:
    """Start samples of ``n_split`` evenly spaced windows (``n_split`` = 0: the whole clip once)."""
    if n_split == 0 or length <= window:
        return np.zeros(1, dtype=np.int64)
    return np.round(np.linspace(0, length - window, n_split)).astype(np.int64)


def random_starts(rng: np.random.Generator, lengths, window: int) -> np.ndarray:
    """One random crop start per clip (clips no longer than the window start at 0)."""
    lengths = np.asarray(lengths)
    return (rng.random(len(lengths)) * np.maximum(lengths - window + 1, 1)).astype(np.int64)


class WindowDataset(torch.utils.data.Dataset):
    """Reads ``(clip position, start)`` items as fixed-length float32 windows.

    ``clips`` is a manifest slice (one row per clip). Windows shorter than ``window`` (only
    in whole-clip mode for short clips) are zero-padded. Workers open their own memmaps.
    """

    def __init__(self, clips, dumpdir, window: int):
        self.clips = clips.reset_index(drop=True)
        self.rows = self.clips[["array", "offset", "length"]].to_dict("records")
        self.store = ClipStore(dumpdir)
        self.window = window

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, item):
        position, start = item
        row = self.rows[position]
        length = min(self.window, int(row["length"]) - int(start)) if self.window else int(row["length"])
        wave = self.store.read(row, int(start), length)
        if self.window and len(wave) < self.window:
            wave = np.pad(wave, (0, self.window - len(wave)))
        return position, torch.from_numpy(wave)


def collate_windows(items):
    positions, waves = zip(*items)
    return torch.as_tensor(positions), torch.stack(waves)


def window_loader(dataset, plan, num_workers, device):
    """A DataLoader over a precomputed plan: a list of batches of (clip position, start) items.

    The plan carries all randomness, so batches depend only on the plan's seed (exact resume),
    and workers only read the memory-mapped dump.
    """
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=plan,
        num_workers=num_workers,
        collate_fn=collate_windows,
        pin_memory=torch.device(device).type == "cuda",
    )


def epoch_crops(rng, positions, lengths, batch_size, window):
    """One pass over ``positions`` in random order, as batches of (position, random crop start).

    The last batch is topped up with random positions so that every batch is full.
    """
    order = rng.permutation(positions)
    plan = []
    for first in range(0, len(order), batch_size):
        chunk = order[first : first + batch_size]
        if len(chunk) < batch_size:
            chunk = np.concatenate([chunk, rng.choice(positions, batch_size - len(chunk))])
        starts = random_starts(rng, lengths[chunk], window)
        plan.append(list(zip(chunk.tolist(), starts.tolist())))
    return plan
