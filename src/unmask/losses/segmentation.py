"""Seed 001's Dice loss for the mask segmenter (eq. 1): ``1 - 2 sum(p t) / (sum(p^2) + sum(t^2))``."""

from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-6


def dice_loss(prob: Tensor, target: Tensor, eps: float = EPS) -> Tensor:
    """Mean over the batch of ``1 - 2 sum(p t) / (sum(p^2) + sum(t^2) + eps)`` per image.

    ``prob`` (B, 1, H, W) in [0, 1] (the segmenter's sigmoid), ``target`` the true mask in {0, 1}.
    0 when the two agree exactly, 1 when they do not overlap at all. Two empty masks count as agreeing
    (loss 0), where the bare formula is 0 / 0."""
    if prob.shape != target.shape:
        raise ValueError(f"dice_loss: prediction {tuple(prob.shape)} and target {tuple(target.shape)} differ")
    p, t = prob.flatten(1).float(), target.flatten(1).float()
    inter = (p * t).sum(1)
    denom = (p * p).sum(1) + (t * t).sum(1)
    dice = torch.where(denom > 0, 2 * inter / (denom + eps), torch.ones_like(denom))
    return (1 - dice).mean()
