"""Dice loss (seed 001, eq. 1) and the segmentation metrics on hand cases."""

import pytest
import torch

from unmask.losses.segmentation import dice_loss
from unmask.metrics.segmentation import segmentation_metrics


def _half():
    t = torch.zeros(1, 1, 4, 4)
    t[..., :2, :] = 1          # top half is the mask
    return t


def test_dice_loss_all_correct_all_wrong_and_half():
    t = _half()
    assert dice_loss(t, t).item() == pytest.approx(0.0, abs=1e-6)
    assert dice_loss(1 - t, t).item() == pytest.approx(1.0)
    p = torch.zeros_like(t)
    p[..., :1, :] = 1          # finds half of the mask, nothing else: 2*4 / (4 + 8)
    assert dice_loss(p, t).item() == pytest.approx(1 - 8 / 12, rel=1e-5)
    assert dice_loss(torch.full_like(t, 0.5), t).item() == pytest.approx(1 - 2 * 4 / (4 + 8), rel=1e-5)


def test_dice_loss_of_two_empty_masks_is_zero_and_it_has_a_gradient():
    z = torch.zeros(1, 1, 4, 4)
    assert dice_loss(z, z).item() == 0.0
    p = torch.full((1, 1, 4, 4), 0.3, requires_grad=True)
    dice_loss(p, _half()).backward()
    assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_metrics_all_correct_all_wrong_and_half():
    t = _half()
    right = segmentation_metrics(t, t)
    assert {k: v.item() for k, v in right.items()} == {"pixel_acc": 1.0, "iou": 1.0, "dice": 1.0}
    wrong = segmentation_metrics(1 - t, t)
    assert {k: v.item() for k, v in wrong.items()} == {"pixel_acc": 0.0, "iou": 0.0, "dice": 0.0}
    p = torch.zeros_like(t)
    p[..., :1, :] = 1
    half = {k: v.item() for k, v in segmentation_metrics(p, t).items()}
    assert half == pytest.approx({"pixel_acc": 0.75, "iou": 0.5, "dice": 8 / 12})
