"""Reconstruction terms of the paired trainers, by name: ``LOSS_TERMS.get(name, key)(pred, target, mask)``.

Every term takes generator outputs and targets in [-1, 1] of shape (B, C, H, W) and a mask (B, 1, H, W)
with 1 = hole (occluded), and returns a scalar tensor (mean over the batch). Terms that do not look at
the mask accept ``mask=None``; ``l1_hole`` and ``l1_valid`` need one.

========== =========================================================================================
name       value
========== =========================================================================================
l1         mean |pred - target|
mse        mean (pred - target)^2
dssim      (1 - SSIM) / 2   (seed 002; its loss is (mse + dssim) / 2)
ssim       1 - SSIM         (seed 004: FD-StackGAN's alpha * (L1 + (1 - SSIM)) is alpha * (l1 + ssim))
l1_hole    mean over all pixels of |pred - target| * m       (``weighted_recon(hole=1, valid=0)``)
l1_valid   mean over all pixels of |pred - target| * (1 - m) (``weighted_recon(hole=0, valid=1)``)
========== =========================================================================================

SSIM is the ``ssim`` metric's SSIM on ``(x + 1) / 2`` (see :mod:`unmask.losses.reconstruction`);
``l1_hole + l1_valid == l1``. A weighted sum of terms is the trainer's business (it reads the weights
from its config); the VGG-19 perceptual term needs weights and lives in :mod:`unmask.losses.perceptual`.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch.nn.functional as F
from torch import Tensor

from unmask.errors import UnmaskError
from unmask.losses.reconstruction import dssim, ssim_loss, weighted_recon
from unmask.registry import Registry

LossTerm = Callable[[Tensor, Tensor, Optional[Tensor]], Tensor]

LOSS_TERMS: Registry[LossTerm] = Registry("loss term")


def _need_mask(mask: Optional[Tensor], name: str) -> Tensor:
    if mask is None:
        raise UnmaskError(f"loss term {name!r} needs a mask (B, 1, H, W), 1 = hole; got None")
    return mask


@LOSS_TERMS.register("l1")
def l1_term(pred: Tensor, target: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    return F.l1_loss(pred, target)


@LOSS_TERMS.register("mse")
def mse_term(pred: Tensor, target: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    return F.mse_loss(pred, target)


@LOSS_TERMS.register("dssim")
def dssim_term(pred: Tensor, target: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    return dssim(pred, target)


@LOSS_TERMS.register("ssim")
def ssim_term(pred: Tensor, target: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    return ssim_loss(pred, target)


@LOSS_TERMS.register("l1_hole")
def l1_hole_term(pred: Tensor, target: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    return weighted_recon(pred, target, _need_mask(mask, "l1_hole"), hole=1.0, valid=0.0, kind="l1")


@LOSS_TERMS.register("l1_valid")
def l1_valid_term(pred: Tensor, target: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    return weighted_recon(pred, target, _need_mask(mask, "l1_valid"), hole=0.0, valid=1.0, kind="l1")
