"""Loss terms of both systems, as plain functions of model outputs and targets.

The task classes (``systems/*/task.py``) build the batches and targets and call these; keeping the
terms here lets a new system reuse them and lets a test check each against its formula.
Logits are cast to float32 first, so the terms are the same under mixed precision.
"""

import torch
import torch.nn.functional as F


# ------------------------------------------------------------------ System 1: outlier exposure
def outlier_exposure_loss(machine_logits, section_logits, machine, section, section_weight):
    """BCE(machine) + section_weight * BCE(section), the section term over rows whose class target has
    mass (positives and mixed rows with a positive share; a positive without a class, such as a 2025
    clean clip outside the attribute table, has a zero row and only the machine term). Returns (loss,
    machine term, section term)."""
    machine_loss = F.binary_cross_entropy_with_logits(machine_logits.float(), machine)
    keep = section.sum(dim=1) > 0
    section_loss = (
        F.binary_cross_entropy_with_logits(section_logits[keep].float(), section[keep])
        if keep.any()
        else machine_loss.new_zeros(())
    )
    return machine_loss + section_weight * section_loss, machine_loss, section_loss


def target_part_loss(out, machine, section, machine_weight, section_weight):
    """Domain classifier's target part: machine_weight * BCE(machine) + section_weight * BCE(section) +
    BCE(domain = target); ``out`` holds the part's "machine", "section" and "domain" logits."""
    domain_logits = out["domain"].float()
    return (
        machine_weight * F.binary_cross_entropy_with_logits(out["machine"].float(), machine)
        + section_weight * F.binary_cross_entropy_with_logits(out["section"].float(), section)
        + F.binary_cross_entropy_with_logits(domain_logits, torch.ones_like(domain_logits))
    )


def domain_loss(domain_logits, domain):
    """BCE of the domain logit (label: 1 = target, 0 = source)."""
    return F.binary_cross_entropy_with_logits(domain_logits.float(), domain)


# ------------------------------------------------------------------ System 2: DG-Mix
def variance_term(x, eps=1e-4):
    """Hinge at standard deviation 1 on every dimension (VICReg)."""
    std = torch.sqrt(x.var(dim=0) + eps)
    return F.relu(1.0 - std).mean()


def covariance_term(x):
    """Sum of squared off-diagonal covariances divided by the dimension (VICReg)."""
    n, dim = x.shape
    x = x - x.mean(dim=0)
    cov = (x.T @ x) / (n - 1)
    off_diagonal = cov - torch.diag(torch.diag(cov))
    return off_diagonal.pow(2).sum() / dim


def vicreg_mixup_loss(px, py, pz, lam, weights):
    """Loss terms of VICReg with mixup; ``lam`` has one weight per pair, shape (B/2,)."""
    lam = lam[:, None]
    invariance = F.mse_loss(pz, lam * px + (1 - lam) * py)
    variance = (variance_term(px) + variance_term(py)) / 2
    covariance = covariance_term(px) + covariance_term(py)
    loss = weights.invariance_weight * invariance + weights.variance_weight * variance
    loss = loss + weights.covariance_weight * covariance
    return loss, {"invariance": invariance.item(), "variance": variance.item(), "covariance": covariance.item()}


def mixup_consistency_loss(ex, ey, ez, lam, section_logits_z, onehot_x, onehot_y):
    """DG-Mix fine-tuning: MSE(e(z), lam e(x) + (1-lam) e(y)) and KL(section posterior of z || the mixed
    one-hots), ``lam`` one weight per pair. Returns (consistency, kl)."""
    lam = lam[:, None]
    consistency = F.mse_loss(ez, lam * ex + (1 - lam) * ey)
    target = lam * onehot_x + (1 - lam) * onehot_y
    kl = F.kl_div(F.log_softmax(section_logits_z.float(), dim=1), target, reduction="batchmean")
    return consistency, kl
