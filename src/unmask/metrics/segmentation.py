"""Mask segmentation metrics (seed 001): pixel accuracy, IoU and Dice of a thresholded prediction."""

from __future__ import annotations

import torch
from torch import Tensor


@torch.no_grad()
def segmentation_metrics(prob: Tensor, target: Tensor, threshold: float = 0.5) -> dict[str, Tensor]:
    """Per image (B,): ``pixel_acc`` (share of pixels right), ``iou`` (|P and T| / |P or T|) and ``dice``
    (2 |P and T| / (|P| + |T|)) of ``prob > threshold`` against ``target > 0.5``. An image where both
    masks are empty scores 1 on IoU and Dice (nothing to find, nothing found)."""
    if prob.shape != target.shape:
        raise ValueError(f"segmentation_metrics: prediction {tuple(prob.shape)} and target {tuple(target.shape)} differ")
    p = (prob > threshold).flatten(1)
    t = (target > 0.5).flatten(1)
    inter = (p & t).sum(1).float()
    union = (p | t).sum(1).float()
    sizes = p.sum(1).float() + t.sum(1).float()
    one = torch.ones_like(inter)
    return {"pixel_acc": (p == t).float().mean(1),
            "iou": torch.where(union > 0, inter / union.clamp_min(1), one),
            "dice": torch.where(sizes > 0, 2 * inter / sizes.clamp_min(1), one)}
