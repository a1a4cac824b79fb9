"""The official baseline's two anomaly scores of a clip and its decision threshold.

``MSE``: the mean squared reconstruction error over the clip's feature vectors and dimensions.
``MAHALA`` (selective Mahalanobis): every feature vector's reconstruction error is cut into its
``frames`` blocks of ``n_mels`` bands; with P the inverse of the source (or target) covariance of
such blocks, their ``mahalanobis`` averages d_i P d_j over every pair of the clip's blocks, which
is m P m for m the mean error block (computed so here: the same number without the blocks^2
matrix). The score is the smaller of the source and the target distance.

The covariances are fitted once after training, as their extra "epoch" does: the model in eval
mode, one shuffled pass over the training vectors (validation share left out) in batches; within
each batch the source blocks are centred on their batch mean and their outer products summed, and
likewise the target blocks; the sums are divided by (number of source / target *vectors*) - 1 (theirs
counts vectors, not blocks). Without target vectors the target covariance is the source's.

Decision threshold: the ``percentile`` of a gamma distribution fitted to their per-batch training
scores (``official_threshold``): for MSE the last epoch's training-batch losses (model in training
mode) and validation-batch losses; for MAHALA the m P m scores of whole training and validation
batches after the covariance fit. These are batch scores, not clip scores; kept as theirs.
"""

from typing import Iterable, Tuple

import numpy as np
import torch

from asd_tools.scoring.submission import gamma_threshold


def vector_errors(model, x: torch.Tensor) -> torch.Tensor:
    """Reconstruction error (reconstruction - input) of every feature vector, (N, dims)."""
    recon, _ = model(x)
    return recon - x.view(recon.shape)


def mse_score(errors: torch.Tensor) -> float:
    """Their MSE score of one clip (or batch): the mean squared error over vectors and dimensions."""
    return float((errors.double() ** 2).mean())


def blocks(errors: torch.Tensor, block_size: int) -> torch.Tensor:
    """The error vectors cut into rows of ``block_size`` (one per stacked frame), float64."""
    return errors.double().reshape(-1, block_size)


def mahalanobis_mean_block(errors: torch.Tensor, precision: torch.Tensor) -> float:
    """m P m for m the mean error block: their mahalanobis(...) averaged over every pair of blocks."""
    mean = blocks(errors, precision.shape[0]).mean(dim=0)
    return float(mean @ precision.double() @ mean)


def selective_mahalanobis(errors: torch.Tensor, precisions: Tuple[torch.Tensor, torch.Tensor]) -> float:
    """Their MAHALA score: the smaller of the source and the target distance."""
    return min(mahalanobis_mean_block(errors, p) for p in precisions)


def fit_covariances(batches: Iterable[Tuple[torch.Tensor, np.ndarray]], block_size: int):
    """(source, target) covariances of the error blocks from (errors, is_target) batches, as theirs."""
    sums = [torch.zeros(block_size, block_size, dtype=torch.float64) for _ in range(2)]
    counts = [0, 0]
    for errors, is_target in batches:
        is_target = torch.as_tensor(np.asarray(is_target, dtype=bool))
        for domain, rows in enumerate((~is_target, is_target)):
            if not bool(rows.any()):
                continue  # theirs would add NaN for a batch without source vectors; none occur in practice
            part = blocks(errors[rows], block_size)
            centred = part - part.mean(dim=0)
            sums[domain] += centred.T @ centred
            counts[domain] += int(rows.sum())
    if counts[0] < 2:
        raise ValueError("the covariance fit needs at least 2 source training vectors; the training set is empty")
    source = sums[0] / (counts[0] - 1)
    target = sums[1] / (counts[1] - 1) if counts[1] > 1 else source.clone()
    return source.float(), target.float()


def precisions(model) -> Tuple[torch.Tensor, torch.Tensor]:
    """The inverses of the model's source and target covariances, on the CPU (where the scores are taken)."""
    out = []
    for name in ("cov_source", "cov_target"):
        cov = getattr(model, name).detach().cpu().double()
        try:
            out.append(torch.linalg.inv(cov))
        except RuntimeError:
            raise ValueError(
                f"the {name} of the reconstruction error is singular (too few training vectors of that domain "
                "for its size): train on more clips, or score with mse"
            ) from None
    return tuple(out)


def official_threshold(batch_scores, percentile: float) -> float:
    """Their decision threshold: the ``percentile`` of a gamma fitted to the per-batch training scores."""
    return gamma_threshold(batch_scores, percentile)
