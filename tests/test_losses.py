"""The loss terms of training/losses.py against their formulas, written out by hand."""

import math

import pytest
import torch

from asd_tools.training.losses import (
    domain_loss,
    mixup_consistency_loss,
    outlier_exposure_loss,
    target_part_loss,
)


def bce(logit, label):
    p = 1 / (1 + math.exp(-logit))
    return -(label * math.log(p) + (1 - label) * math.log(1 - p))


def test_outlier_exposure_loss_counts_the_section_term_on_positive_rows_only():
    machine_logits = torch.tensor([2.0, -1.0])
    section_logits = torch.tensor([[1.0, -2.0], [5.0, 5.0]])  # the second row is a negative: not counted
    machine = torch.tensor([1.0, 0.0])
    section = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    loss, machine_loss, section_loss = outlier_exposure_loss(machine_logits, section_logits, machine, section, 10)
    expected_machine = (bce(2.0, 1) + bce(-1.0, 0)) / 2
    expected_section = (bce(1.0, 1) + bce(-2.0, 0)) / 2
    assert machine_loss.item() == pytest.approx(expected_machine, rel=1e-6)
    assert section_loss.item() == pytest.approx(expected_section, rel=1e-6)
    assert loss.item() == pytest.approx(expected_machine + 10 * expected_section, rel=1e-6)


def test_a_positive_without_a_class_has_only_the_machine_term():
    # row 2: a positive with an all-zero class row (a 2025 clean clip outside the attribute table)
    machine_logits = torch.tensor([2.0, 0.5])
    section_logits = torch.tensor([[1.0, -2.0], [-7.0, 9.0]])
    machine, section = torch.tensor([1.0, 1.0]), torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    _, machine_loss, section_loss = outlier_exposure_loss(machine_logits, section_logits, machine, section, 10)
    assert machine_loss.item() == pytest.approx((bce(2.0, 1) + bce(0.5, 1)) / 2, rel=1e-6)
    assert section_loss.item() == pytest.approx((bce(1.0, 1) + bce(-2.0, 0)) / 2, rel=1e-6)


def test_outlier_exposure_loss_without_positives_has_a_zero_section_term():
    _, _, section_loss = outlier_exposure_loss(torch.zeros(2), torch.ones(2, 3), torch.zeros(2), torch.zeros(2, 3), 10)
    assert section_loss.item() == 0.0


def test_target_part_and_domain_losses():
    out = {"machine": torch.tensor([0.5]), "section": torch.tensor([[0.0, 1.0]]), "domain": torch.tensor([-0.5])}
    loss = target_part_loss(out, torch.tensor([1.0]), torch.tensor([[0.0, 1.0]]), 2.0, 3.0)
    expected = 2 * bce(0.5, 1) + 3 * (bce(0.0, 0) + bce(1.0, 1)) / 2 + bce(-0.5, 1)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert domain_loss(torch.tensor([0.3]), torch.tensor([0.0])).item() == pytest.approx(bce(0.3, 0), rel=1e-6)


def test_mixup_consistency_loss():
    ex, ey = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    lam = torch.tensor([0.25])
    ez = torch.tensor([[0.25, 0.75]])  # exactly the mixed embedding: no consistency term
    logits = torch.tensor([[0.0, math.log(3.0)]])  # posterior 0.25 / 0.75 = the mixed one-hots: no KL
    consistency, kl = mixup_consistency_loss(ex, ey, ez, lam, logits, ex, ey)
    assert consistency.item() == pytest.approx(0.0, abs=1e-12)
    assert kl.item() == pytest.approx(0.0, abs=1e-6)
    consistency, kl = mixup_consistency_loss(ex, ey, ex, lam, torch.zeros(1, 2), ex, ey)
    assert consistency.item() == pytest.approx((0.75**2 + 0.75**2) / 2)
    assert kl.item() == pytest.approx(0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5), rel=1e-6)
