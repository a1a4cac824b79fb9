"""The trainer core shared by both systems: epochs, AMP, validation, checkpoints and resume.

A system supplies a *task* (:class:`TrainingTask`): the epoch's plan of batches, how a plan is read,
the loss of a batch, validation, and its own random state.

An optimiser step takes ``grad_accum`` batches of the plan in each of the processes (one under plain
``python``, N under ``torchrun``: see ``training/distributed.py``); the plan is padded to a whole number
of steps by repeating its first batches. With ``batch_seeds`` (always with N > 1) every batch's random
draws (mixup, dropout, ...) are seeded from (seed, epoch, batch index in the plan), so they do not
depend on which process reads the batch: N processes give the weights of one process with N times
the ``grad_accum``.

Checkpoints (in ``outdir``):
  checkpoint-last.pt       full state after the latest epoch (resume point)
  checkpoint-best.pt       model weights with the lowest validation loss
  checkpoint-<N>epochs.pt  model weights after each epoch N of ``save_epochs``
  train_history.csv        one row per epoch: train loss means, learning rate, valid metrics
Only the main process writes them, logs, draws progress bars and validates.
A killed run restarts from checkpoint-last.pt with model, optimiser, scheduler, scaler,
counters and every random state restored, so it continues as if never stopped.
Checkpoints hold only tensors, numbers, strings and plain containers (numpy random states are
stored as tensors) and are read with ``weights_only``: loading a file never runs code from it.
"""

import errno
import logging
import math
import pickle
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Protocol, Tuple

import numpy as np
import pandas as pd
import torch
from torch.utils.tensorboard import SummaryWriter

from asd_tools.artefacts import BEST, DONE, HISTORY, LAST, interval_checkpoint
from asd_tools.training import distributed
from asd_tools.utils import atomic_path, atomic_write_text, progress, write_csv


class TrainingTask(Protocol):
    """What the trainer asks of a system's task (``systems/*/task.py``)."""

    def steps_per_epoch(self) -> int:
        """Batches in one epoch's plan."""

    def plan(self, epoch: int) -> List[list]:
        """The epoch's batches, each a list of (clip position, crop start) items."""

    def loader(self, plan: List[list]) -> Iterable:
        """The plan's batches, read (an iterable of (positions, waves))."""

    def loss(self, model: torch.nn.Module, batch, step: int, max_step: int) -> Tuple[torch.Tensor, Dict[str, float]]:
        """The batch's loss and the scalars to log."""

    def validate(self, model: torch.nn.Module) -> Dict[str, float]:
        """Validation metrics, ``loss`` among them (the best checkpoint has the lowest)."""

    def seed_batch(self, seed: int) -> None:
        """Seed the task's own random draws for one batch (``batch_seeds``)."""

    def state_dict(self) -> dict:
        """The task's own random state, saved in the resume checkpoint."""

    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class TrainerSettings:
    epochs: int
    log_interval_epochs: int  # validate every this many epochs
    save_epochs: tuple  # keep the model weights after these epochs
    grad_accum: int = 1  # optimiser step every this many batches
    grad_clip: float = 0.0  # max gradient norm (0 = off)
    amp: bool = True  # mixed precision on CUDA (ignored on CPU)
    amp_dtype: str = "bfloat16"  # bfloat16 (no scaler needed) or float16 (with GradScaler)
    batch_seeds: bool = False  # seed every batch's random draws from (seed, epoch, batch); on with N processes
    seed: int = 0  # the seed of batch_seeds


def optimiser_steps_per_epoch(batches: int, grad_accum: int = 1) -> int:
    """Optimiser steps in an epoch of ``batches`` plan batches, ``grad_accum`` per step in each process."""
    return math.ceil(batches / (grad_accum * distributed.world_size()))


def whole_steps(plan, batches_per_step: int):
    """``plan`` padded to a multiple of ``batches_per_step`` by repeating its first batches."""
    count = math.ceil(len(plan) / batches_per_step) * batches_per_step
    return [plan[i % len(plan)] for i in range(count)]


def batch_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of batch ``index`` of ``epoch``'s plan (one number from three, no process in it)."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


def load_weights(expdir, checkpoint, device):
    """Model weights of ``<expdir>/<checkpoint>.pt``; a clear error names the stage that makes them."""
    path = Path(expdir) / f"{checkpoint}.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the training stage first")
    return load_checkpoint(path, device)["model"]


def load_checkpoint(path, device):
    """A checkpoint's contents, refusing any pickled object that is not a tensor, number, string or container.

    Every stage loads checkpoints here, so a damaged file (empty, cut short by a full disk or a copy,
    overwritten) is one line naming it, whichever stage meets it.
    """
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" not in str(err):
            raise damaged_checkpoint(path, err) from None
        # torch's own message is many lines about trusting the source
        raise ValueError(
            f"{path} is not a checkpoint this recipe wrote: it holds pickled objects other than tensors, numbers "
            "and strings, which are never loaded since unpickling them can run code; move it away and re-run "
            "the stage that writes it"
        ) from None
    except (EOFError, KeyError, RuntimeError, OSError) as err:
        if not is_damaged_file_error(err):
            raise
        raise damaged_checkpoint(path, err) from None


def is_damaged_file_error(err: Exception) -> bool:
    """Whether torch.load's ``err`` means the file's bytes are not a whole checkpoint (rather than, say, a
    permission or a device error): an empty file gives EOFError, a file cut short a zip-reader
    RuntimeError (or EINVAL when only a few bytes are left), other bytes a KeyError of the pickle reader."""
    if isinstance(err, (EOFError, KeyError)):
        return True
    if isinstance(err, OSError):
        return err.errno == errno.EINVAL
    return "PytorchStreamReader" in str(err) or "zip archive" in str(err)


def damaged_checkpoint(path, err: Exception) -> ValueError:
    reason = f"{type(err).__name__}: {str(err).splitlines()[0][:80]}" if str(err).strip() else type(err).__name__
    size = Path(path).stat().st_size if Path(path).exists() else 0
    return ValueError(
        f"{path} is damaged or incomplete ({size} bytes; torch.load: {reason}); re-run training with --force true "
        "(the damaged file is moved aside with the rest of that model), or restore the file from a copy"
    )


NDARRAY = "__ndarray__"  # marks a numpy array stored as a tensor


def plain_state(state):
    """``state`` with numpy arrays as {NDARRAY: tensor} and numpy scalars as Python numbers, so that
    ``weights_only`` loading accepts it (e.g. np.random.get_state() or a Generator's MT19937 state)."""
    if isinstance(state, np.ndarray):
        return {NDARRAY: torch.from_numpy(state.copy())}
    if isinstance(state, np.generic):
        return state.item()
    if isinstance(state, dict):
        return {k: plain_state(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(plain_state(v) for v in state)
    return state


def numpy_state(state):
    """The inverse of :func:`plain_state`."""
    if isinstance(state, dict):
        if state.keys() == {NDARRAY}:
            return state[NDARRAY].numpy()
        return {k: numpy_state(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(numpy_state(v) for v in state)
    return state


def rng_state():
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_torch(obj, path):
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


class Trainer:
    def __init__(self, model, task: TrainingTask, optimizer, scheduler, settings: TrainerSettings, outdir, device):
        self.model, self.task = model.to(device), task
        self.rank, self.world = distributed.rank(), distributed.world_size()
        self.main = self.rank == 0
        distributed.broadcast_state(self.model)  # every process starts from the same weights
        self.optimizer, self.scheduler = optimizer, scheduler
        self.settings, self.outdir, self.device = settings, Path(outdir), torch.device(device)
        self.use_amp = settings.amp and self.device.type == "cuda"
        self.amp_dtype = getattr(torch, settings.amp_dtype)
        self.scaler = torch.amp.GradScaler(enabled=self.use_amp and self.amp_dtype == torch.float16)
        self.epoch, self.step, self.best_loss = 0, 0, math.inf
        self.history = []  # one row per epoch: train means and, when validated, valid metrics
        self.max_step = settings.epochs * optimiser_steps_per_epoch(task.steps_per_epoch(), settings.grad_accum)
        self.batch_seeds = settings.batch_seeds or self.world > 1
        self.writer = None

    # ------------------------------------------------------------------ state
    def state_dict(self):
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "best_loss": self.best_loss,
            "history": self.history,
            "rng": plain_state(rng_state()),
            "task": plain_state(self.task.state_dict()),
        }

    def load_state_dict(self, state):
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step, self.best_loss = state["epoch"], state["step"], state["best_loss"]
        self.history = list(state.get("history", []))
        self.task.load_state_dict(numpy_state(state["task"]))
        set_rng_state(numpy_state(state["rng"]))

    def resume(self) -> bool:
        path = self.outdir / LAST
        if not path.exists():
            return False
        # On the CPU: random states must be CPU tensors; model and optimiser states move to their parameters.
        self.load_state_dict(load_checkpoint(path, "cpu"))
        logging.info(f"resumed from {path} after epoch {self.epoch} (step {self.step})")
        return True

    # ------------------------------------------------------------------ loop
    def run(self):
        """Train to ``settings.epochs``, resuming if a previous run left a checkpoint."""
        if (self.outdir / DONE).exists():
            logging.info(f"{self.outdir}: training already finished; skipping")
            return
        self.outdir.mkdir(parents=True, exist_ok=True)
        self.resume()
        self.writer = SummaryWriter(self.outdir / "tensorboard") if self.main else None
        processes = f", {self.world} processes" if self.world > 1 else ""
        logging.info(
            f"training on {self.device} (amp: {self.use_amp}{processes}), {self.max_step} optimiser steps in all"
        )
        while self.epoch < self.settings.epochs:
            self.epoch += 1
            # plain floats: the history lives in checkpoint-last.pt, which is read with weights_only
            row = {"epoch": self.epoch, **{f"train_{k}": float(v) for k, v in self._train_epoch().items()}}
            if not self.main:
                continue  # the main process validates and writes; the others wait in the next all-reduce
            if self.epoch % self.settings.log_interval_epochs == 0 or self.epoch == self.settings.epochs:
                row.update({f"valid_{k}": float(v) for k, v in self._validate().items()})
            self.history.append(row)
            if self.epoch in self.settings.save_epochs:
                save_torch(
                    {"model": self.model.state_dict(), "epoch": self.epoch},
                    self.outdir / interval_checkpoint(self.epoch),
                )
            save_torch(self.state_dict(), self.outdir / LAST)
            # after the resume point: a killed run rewrites it from the restored history
            write_csv(pd.DataFrame(self.history), self.outdir / HISTORY)
        if self.main:
            self.writer.close()
            atomic_write_text(self.outdir / DONE, f"epochs: {self.epoch}\nbest_loss: {self.best_loss}\n")
        distributed.barrier()  # every process returns once the files are there

    def _train_epoch(self):
        self.model.train()
        totals, count, start = {}, 0, time.time()
        # this process's batches: one of every `world` of the plan, padded to whole optimiser steps
        plan = whole_steps(self.task.plan(self.epoch), self.settings.grad_accum * self.world)
        shard = plan[self.rank :: self.world]
        bar = progress(
            self.task.loader(shard),
            total=len(shard),
            desc=f"epoch {self.epoch}/{self.settings.epochs}",
            leave=False,
            disable=not self.main,
        )
        for i, batch in enumerate(bar):
            if self.batch_seeds:
                self._seed_batch(i * self.world + self.rank)
            loss, scalars = self.train_step(batch, i)
            for k, v in scalars.items():
                totals[k] = totals.get(k, 0.0) + v
            count += 1
            bar.set_postfix(loss=f"{loss.item():.4f}")
        samples = count * self.task.batch_size * self.world
        elapsed = time.time() - start
        means = {k: v / max(count, 1) for k, v in totals.items()}  # the main process's batches
        if not self.main:
            return means
        for k, v in means.items():
            self.writer.add_scalar(f"train/{k}", v, self.epoch)
        self.writer.add_scalar("train/samples_per_second", samples / elapsed, self.epoch)
        self.writer.add_scalar("train/lr", self.optimizer.param_groups[0]["lr"], self.epoch)
        text = ", ".join(f"{k} {v:.4f}" for k, v in means.items())
        logging.info(f"epoch {self.epoch}: train {text} ({samples / elapsed:.1f} samples/s)")
        return {**means, "lr": self.optimizer.param_groups[0]["lr"]}

    def _seed_batch(self, index):
        """Seed torch's global RNG (dropout, Beta draws) and the task's own draws for plan batch ``index``."""
        seed = batch_seed(self.settings.seed, self.epoch, index)
        torch.manual_seed(seed)
        self.task.seed_batch(seed)

    def train_step(self, batch, index):
        """One batch (the ``index``-th of its epoch): loss, backward, and an optimiser step after every
        ``grad_accum`` batches. The model must be in training mode. Returns (loss, scalars)."""
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            loss, scalars = self.task.loss(self.model, batch, self.step, self.max_step)
        self.scaler.scale(loss / self.settings.grad_accum).backward()
        if (index + 1) % self.settings.grad_accum == 0:
            self._optimiser_step()
        return loss, scalars

    def _optimiser_step(self):
        distributed.average_gradients(self.model.parameters())  # scaled gradients: the scale is the same everywhere
        if self.settings.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1

    def _validate(self):
        self.model.eval()
        with torch.no_grad(), torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            metrics = self.task.validate(self.model)
        for k, v in metrics.items():
            self.writer.add_scalar(f"valid/{k}", v, self.epoch)
        logging.info(f"epoch {self.epoch}: valid " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        if metrics["loss"] < self.best_loss:
            self.best_loss = metrics["loss"]
            save_torch({"model": self.model.state_dict(), "epoch": self.epoch}, self.outdir / BEST)
            logging.info(f"epoch {self.epoch}: best validation loss so far -> {BEST}")
        return metrics
