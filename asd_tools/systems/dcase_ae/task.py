"""Training of the official baseline's autoencoder in the shared trainer core (MSE on feature vectors).

Theirs holds every feature vector of the training clips in memory, keeps a random 10 % of the vectors
(not of the clips) for the validation loss, and trains on the rest in shuffled batches of 256,
skipping a batch of one vector (BatchNorm). So does this task: the split is a permutation seeded by
``train.seed`` (their sklearn split draws from numpy's global state, seeded the same way) and each
epoch's order is seeded by (seed, epoch), so that a resumed run sees the batches it would have seen.
The validation loss is only logged: theirs keeps the last epoch's model, and so does this system.
The task also keeps the batch losses of the epoch (their MSE threshold is fitted to the last one's).
"""

import math

import numpy as np
import torch

from asd_tools.systems.dcase_ae.scores import vector_errors


def validation_split(n_vectors: int, share: float, seed: int):
    """(training, validation) vector positions: the first ceil(share * n) of a seeded permutation
    are validation, as sklearn's train_test_split(test_size=share) orders them."""
    order = np.random.RandomState(seed).permutation(n_vectors)
    n_valid = math.ceil(share * n_vectors)
    return order[n_valid:], order[:n_valid]


def batches_of(positions, batch_size: int) -> list:
    """Consecutive batches of ``positions``; a last batch of one vector is left out (BatchNorm needs two)."""
    out = [positions[i : i + batch_size] for i in range(0, len(positions), batch_size)]
    return [b for b in out if len(b) > 1]


class AutoEncoderTask:
    """The trainer's task (``training.trainer.TrainingTask``): plans are lists of vector positions."""

    def __init__(self, vectors: np.ndarray, is_target: np.ndarray, batch_size: int, share: float, seed: int, device):
        self.vectors = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
        self.is_target = np.asarray(is_target, dtype=bool)
        self.batch_size, self.seed, self.device = batch_size, seed, torch.device(device)
        self.train_positions, self.valid_positions = validation_split(len(vectors), share, seed)
        if len(self.train_positions) < 2 or len(self.valid_positions) < 2:
            raise ValueError(
                f"{len(vectors)} training feature vectors are too few to hold out a validation share and train "
                "in batches; add training clips"
            )
        self.train_losses, self.valid_losses = [], []

    def steps_per_epoch(self) -> int:
        return len(batches_of(self.train_positions, self.batch_size))

    def epoch_order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.train_positions)

    def plan(self, epoch: int) -> list:
        self.train_losses = []  # this epoch's
        return batches_of(self.epoch_order(epoch), self.batch_size)

    def loader(self, plan):
        for positions in plan:
            yield self.batch(positions)

    def batch(self, positions) -> torch.Tensor:
        return self.vectors[positions].to(self.device)

    def loss(self, model, batch, step, max_step):
        loss = (vector_errors(model, batch) ** 2).mean()
        self.train_losses.append(loss.item())
        return loss, {"loss": loss.item()}

    def validate(self, model):
        self.valid_losses = [
            (vector_errors(model, self.batch(b)) ** 2).mean().item()
            for b in batches_of(self.valid_positions, self.batch_size)
        ]
        return {"loss": float(np.mean(self.valid_losses))}

    def seed_batch(self, seed: int) -> None:
        pass  # no random draws of its own

    def state_dict(self) -> dict:
        return {"train_losses": list(self.train_losses), "valid_losses": list(self.valid_losses)}

    def load_state_dict(self, state: dict) -> None:
        self.train_losses, self.valid_losses = list(state["train_losses"]), list(state["valid_losses"])
