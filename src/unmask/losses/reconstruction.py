"""Reconstruction losses (seed 000 Section 4.4: L1 or L2 between original and recreated image), the
SSIM-based losses of seeds 002 and 004, a mask-weighted L1/L2, and the StarGAN domain classification loss.

All image losses here take generator-space images in [-1, 1] and return a scalar mean over the batch.

* :func:`ssim_index`: differentiable mean SSIM, computed on ``(x + 1) / 2`` in [0, 1] with
  ``pytorch_msssim.ssim(data_range=1.0)``, an 11-px Gaussian window (sigma 1.5; smaller images use the
  window of :func:`unmask.metrics.image.ssim_window`), valid region only, channels averaged: the same
  SSIM as the ``ssim`` metric, so a loss value and a reported SSIM are directly comparable.
* :func:`dssim`: ``(1 - SSIM) / 2`` (seed 002's DSSIM, in [0, 1]).
* :func:`ssim_loss`: ``1 - SSIM`` (seed 004's structure loss, the SSIM half of FD-StackGAN's
  ``alpha * (L1 + (1 - SSIM))``).
* :func:`weighted_recon`: per-pixel L1/L2 weighted ``hole`` inside the mask and ``valid`` outside.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from pytorch_msssim import ssim as _ssim

from unmask.errors import ConfigError, UnmaskError
from unmask.metrics.image import SSIM_SIGMA, ssim_window

RECON_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "l1": F.l1_loss,    # E|x - x_hat|
    "l2": F.mse_loss,   # E(x - x_hat)^2
}


def build_recon_loss(name: str, key: str = "recon") -> Callable[[Tensor, Tensor], Tensor]:
    """The reconstruction loss registered as ``name``; unknown names raise ConfigError naming ``key``."""
    try:
        return RECON_LOSSES[name]
    except KeyError:
        raise ConfigError(f"{key}: unknown reconstruction loss {name!r} "
                          f"(choose from {', '.join(sorted(RECON_LOSSES))})") from None


def _check_pair(pred: Tensor, target: Tensor, fn: str) -> None:
    if pred.dim() != 4 or pred.shape != target.shape:
        raise UnmaskError(f"{fn}: need pred and target of one shape (B, C, H, W), got "
                          f"{tuple(pred.shape)} and {tuple(target.shape)}")
    if min(pred.shape[-2:]) < 2:
        raise UnmaskError(f"{fn}: images of {tuple(pred.shape[-2:])} px are too small (need >= 2)")


def ssim_index(pred: Tensor, target: Tensor) -> Tensor:
    """Mean SSIM over the batch of images in [-1, 1] (scalar, differentiable w.r.t. both inputs).

    Computed on ``(x + 1) / 2`` with data_range 1.0 (not clamped, so gradients survive values just
    outside the range); window as the ``ssim`` metric (11 px, or the largest odd size that fits).
    Half precision is promoted to float32, float64 stays float64. In float32 the variances (E[x^2] -
    mu^2) carry cancellation error ~1e-8, i.e. SSIM error up to ~2e-4 on flat regions (C2 = 9e-4)."""
    _check_pair(pred, target, "ssim")
    k = ssim_window(*pred.shape[-2:])
    dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
    return _ssim((pred.to(dtype) + 1) / 2, (target.to(dtype) + 1) / 2, data_range=1.0, size_average=True,
                 win_size=k, win_sigma=SSIM_SIGMA)


def ssim_loss(pred: Tensor, target: Tensor) -> Tensor:
    """``1 - SSIM`` (seed 004's L_SSIM, eq. 5), in [0, 2]; 0 for identical images."""
    return 1 - ssim_index(pred, target)


def dssim(pred: Tensor, target: Tensor) -> Tensor:
    """Structural dissimilarity ``(1 - SSIM) / 2`` (seed 002), in [0, 1]; 0 for identical images."""
    return (1 - ssim_index(pred, target)) / 2


WEIGHTED_KINDS = ("l1", "l2")


def weighted_recon(pred: Tensor, target: Tensor, mask: Tensor, hole: float = 1.0, valid: float = 1.0,
                   kind: str = "l1") -> Tensor:
    """Mask-weighted reconstruction loss ``mean(loss_px * (hole * m + valid * (1 - m)))``.

    ``pred``, ``target``: (B, C, H, W); ``mask``: (B, 1, H, W) or (B, C, H, W), 1 = hole (occluded),
    0 = valid, soft values weight linearly. ``loss_px`` is ``|pred - target|`` (``kind="l1"``) or
    ``(pred - target)^2`` (``"l2"``).

    Normalisation: the weighted per-pixel losses are averaged over *all* B*C*H*W elements, not over the
    mask area (the partial-convolution paper's L_hole / L_valid convention). So ``hole=valid=1`` equals
    plain L1/MSE, ``hole=1, valid=0`` is the hole error times the hole fraction, and the hole and valid
    terms add up: ``weighted_recon(h, v) == h * weighted_recon(1, 0) + v * weighted_recon(0, 1)``.
    """
    _check_pair(pred, target, "weighted_recon")
    if kind not in WEIGHTED_KINDS:
        raise ConfigError(f"weighted_recon: unknown kind {kind!r} (choose from {', '.join(WEIGHTED_KINDS)})")
    if (mask.dim() != 4 or mask.shape[0] != pred.shape[0] or mask.shape[1] not in (1, pred.shape[1])
            or mask.shape[-2:] != pred.shape[-2:]):
        raise UnmaskError(f"weighted_recon: mask must be (B, 1, H, W) = {(pred.shape[0], 1, *pred.shape[-2:])}, "
                          f"got {tuple(mask.shape)}")
    diff = pred - target
    per_px = diff.abs() if kind == "l1" else diff.pow(2)
    m = mask.to(per_px.dtype)
    return (per_px * (hole * m + valid * (1 - m))).mean()


def domain_classification_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy of the discriminator's domain logits against the true domain.

    ``logits``: (B, n_classes) or a map (B, n_classes, h, w), averaged over positions.
    ``target``: class indices (B,) or one-hot labels (B, n_classes). Domains are mutually exclusive
    (unified StarGAN over two single-label domains), so this is softmax cross-entropy.
    """
    if logits.dim() > 2:
        logits = logits.flatten(2).mean(2)
    if target.dim() == 2:
        target = target.argmax(1)
    if target.shape != logits.shape[:1] or torch.is_floating_point(target):
        raise UnmaskError(f"domain_classification_loss: target {tuple(target.shape)} does not match "
                          f"logits {tuple(logits.shape)} (need class indices (B,) or one-hot (B, C))")
    return F.cross_entropy(logits.float(), target.long())
