"""The one windowing function and the dataset that reads windows from the dump.

Every system reads 2 s windows the same way: training takes random crops, inference
takes ``n_split`` evenly spaced windows, the last ending at the clip's end.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
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
    ``read_batch`` reads a whole batch into one buffer: the loader asks for batches, not items, so
    that the per-item cost (an array, a tensor and a collate step per window) is not paid.
    """

    def __init__(self, clips, dumpdir, window: int):
        self.clips = clips.reset_index(drop=True)
        self.store = ClipStore(dumpdir)
        self.window = window
        self.rows = self.clips[["array", "offset", "length"]].to_dict("records")
        codes, self.arrays = pd.factorize(self.clips["array"])
        self.array_code = np.asarray(codes, dtype=np.int64)
        self.offsets = self.clips["offset"].to_numpy(np.int64)
        self.lengths = self.clips["length"].to_numpy(np.int64)

    def __len__(self):
        return len(self.clips)

    def __getitem__(self, item):
        """One window, read on its own: the per-item path, kept for single reads and as the reference
        that ``read_batch`` equals."""
        position, start = item
        row = self.rows[position]
        length = min(self.window, int(row["length"]) - int(start)) if self.window else int(row["length"])
        wave = self.store.read(row, int(start), length)
        if self.window and len(wave) < self.window:
            wave = np.pad(wave, (0, self.window - len(wave)))
        return position, torch.from_numpy(wave)

    def read_batch(self, items, pin_memory=False):
        """``items``: (clip position, start) pairs -> (positions, waves): a (B,) tensor and a (B, W) float32
        tensor, W the window (whole-clip mode, window 0: the clips' common length, which they must share).

        Each window is one contiguous slice of the memory map copied (and, for a 16-bit PCM dump,
        normalised) straight into a preallocated batch buffer (page-locked with ``pin_memory``, so the
        copy to a GPU can overlap compute): no per-window array, tensor or collate step (the per-item
        path's cost).
        """
        items = np.asarray(items, dtype=np.int64).reshape(-1, 2)
        positions, starts = items[:, 0], items[:, 1]
        available = self.lengths[positions] - starts  # samples from the start to the clip's end
        if self.window:
            width = self.window
        elif len(np.unique(self.lengths[positions])) == 1:
            width = int(available.max())
        else:
            raise ValueError("whole clips of different lengths cannot share a batch: use batches of one clip")
        waves = torch.empty((len(items), width), dtype=torch.float32, pin_memory=pin_memory)
        out = waves.numpy()
        first = self.offsets[positions] + starts
        count = np.minimum(available, width)
        for row, (code, begin, n) in enumerate(zip(self.array_code[positions], first, count)):
            self.store.copy(self.arrays[code], begin, out[row, :n])  # int16 PCM is normalised in this copy
            out[row, n:] = 0.0  # a window past the clip's end is zero-padded
        return torch.from_numpy(positions), waves


class _PlannedBatches(torch.utils.data.Dataset):
    """The plan's batches as the items of a DataLoader: item ``i`` is batch ``i``, read at once."""

    def __init__(self, dataset: WindowDataset, plan):
        self.dataset, self.plan = dataset, plan

    def __len__(self):
        return len(self.plan)

    def __getitem__(self, i):
        return self.dataset.read_batch(self.plan[i])


class PrefetchedBatches:
    """The plan's batches read in the main process by a few background threads, in plan order.

    Reading is a memory copy out of the page cache, which releases the GIL, so threads overlap it with
    the training step without worker processes (no fork, no pickled dataset, no inter-process copy of
    every batch). At most ``depth`` batches wait ahead; leaving the loop early cancels the rest.
    """

    def __init__(self, dataset: WindowDataset, plan, threads=2, depth=3, pin_memory=False):
        self.dataset, self.plan = dataset, plan
        self.threads, self.depth, self.pin_memory = threads, depth, pin_memory

    def __len__(self):
        return len(self.plan)

    def __iter__(self):
        # DataLoader's iterator draws its workers' base seed from torch's global RNG, with or without
        # workers; drawing it here too keeps the training's random stream (mixup, dropout), and so its
        # results, the same whichever reads the batches
        torch.empty((), dtype=torch.int64).random_()
        pool = ThreadPoolExecutor(self.threads, thread_name_prefix="window-reader")
        try:
            pending = []
            for i in range(len(self.plan)):
                while len(pending) < self.depth and i + len(pending) < len(self.plan):
                    pending.append(pool.submit(self.dataset.read_batch, self.plan[i + len(pending)], self.pin_memory))
                yield pending.pop(0).result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def window_loader(dataset, plan, num_workers, device):
    """The batches of a precomputed plan: a list of batches of (clip position, start) items.

    The plan carries all randomness, so batches depend only on the plan's seed (exact resume), and the
    readers only read the memory-mapped dump, a whole batch per request: with ``num_workers`` 0 by
    threads of this process (``PrefetchedBatches``, the fastest here), otherwise by DataLoader workers.
    """
    pin_memory = torch.device(device).type == "cuda"
    if num_workers == 0:
        return PrefetchedBatches(dataset, plan, pin_memory=pin_memory)
    return torch.utils.data.DataLoader(
        _PlannedBatches(dataset, plan),
        batch_size=None,  # each item is already a batch
        num_workers=num_workers,
        pin_memory=pin_memory,
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
