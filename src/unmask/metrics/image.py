"""Full-reference image metrics of seed 000 Section 4.2: L1, L2, PSNR, SSIM, LPIPS, plus masked variants.

Conventions (all per image, inputs in [0, 1], clamped to it first):

* ``psnr = -10 log10(MSE)`` with MSE floored at 1e-10, so identical images give 100 dB instead of inf;
  otherwise equal to ``skimage.metrics.peak_signal_noise_ratio(data_range=1)``.
* ``ssim``: ``pytorch_msssim.ssim(data_range=1.0)`` with an 11-px Gaussian window, sigma 1.5 (valid
  region only, channels averaged), which matches scikit-image's ``structural_similarity(
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``. Images smaller than 11 px use the
  largest odd window that fits the shorter side (so there is at least one valid window); such values are
  not comparable to 11-px-window SSIM.
* ``mse255``: MSE on the 0-255 scale, ``mean((255 * (pred - target))^2)`` over pixels and channels,
  i.e. ``255^2 * l2`` (the "MSE" FD-StackGAN, seed 004, reports; lower is better).
* ``l1_masked``, ``l2_masked``, ``psnr_masked``: averaged over the masked pixels (mask > 0.5, all three
  channels) of each image only. An image with an empty mask has nothing to measure: its masked values
  are nan, and :func:`aggregate` skips nans (nanmean).
"""

from __future__ import annotations

import math
from typing import Iterable, Optional

import torch
from pytorch_msssim import ssim as _ssim
from torch import Tensor

from unmask.errors import UnmaskError

MSE_FLOOR = 1e-10
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def psnr_from_mse(mse: Tensor) -> Tensor:
    """-10 log10(MSE) for images on [0, 1], MSE floored at 1e-10 (nan stays nan)."""
    return -10 * torch.log10(mse.clamp_min(MSE_FLOOR))


def ssim_window(height: int, width: int) -> int:
    """11, or the largest odd size <= the shorter side for images smaller than that."""
    side = min(height, width, SSIM_WINDOW)
    return side if side % 2 else side - 1


def _check(pred01: Tensor, target01: Tensor, mask: Optional[Tensor]) -> None:
    if pred01.dim() != 4 or pred01.shape[1] != 3 or pred01.shape != target01.shape:
        raise UnmaskError(f"compute_metrics: need pred and target of shape (B, 3, H, W), got "
                          f"{tuple(pred01.shape)} and {tuple(target01.shape)}")
    if min(pred01.shape[-2:]) < 2:
        raise UnmaskError(f"compute_metrics: images of {tuple(pred01.shape[-2:])} px are too small (need >= 2)")
    if mask is not None and (mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] != pred01.shape[0]
                             or mask.shape[-2:] != pred01.shape[-2:]):
        raise UnmaskError(f"compute_metrics: mask must be (B, 1, H, W) = {(pred01.shape[0], 1, *pred01.shape[-2:])},"
                          f" got {tuple(mask.shape)}")


@torch.no_grad()
def compute_metrics(pred01: Tensor, target01: Tensor, mask: Optional[Tensor] = None) -> dict[str, Tensor]:
    """Per-image metrics that need no weights, each a float tensor of shape (B,) on the inputs' device.

    Keys: "l1", "l2", "mse255", "psnr", "ssim"; with ``mask`` (B, 1, H, W), 1 = occluded, also "l1_masked",
    "l2_masked", "psnr_masked". Metrics with weights (LPIPS) come from a
    :class:`~unmask.metrics.suite.MetricSuite`.
    """
    _check(pred01, target01, mask)
    pred = pred01.detach().float().clamp(0, 1)
    target = target01.detach().float().clamp(0, 1)
    diff = pred - target
    mse = diff.pow(2).flatten(1).mean(1)
    k = ssim_window(*pred.shape[-2:])
    out = {
        "l1": diff.abs().flatten(1).mean(1),
        "l2": mse,
        "mse255": (diff * 255).pow(2).flatten(1).mean(1),
        "psnr": psnr_from_mse(mse),
        "ssim": _ssim(pred, target, data_range=1.0, size_average=False, win_size=k, win_sigma=SSIM_SIGMA),
    }
    if mask is not None:
        m = (mask.detach() > 0.5).float()
        count = m.flatten(1).sum(1) * diff.shape[1]
        count = torch.where(count > 0, count, torch.full_like(count, math.nan))   # empty mask -> nan
        mse_m = (diff.pow(2) * m).flatten(1).sum(1) / count
        out["l1_masked"] = (diff.abs() * m).flatten(1).sum(1) / count
        out["l2_masked"] = mse_m
        out["psnr_masked"] = psnr_from_mse(mse_m)
    return out


def aggregate(batches: Iterable[dict[str, Tensor]]) -> dict[str, float]:
    """Mean of each metric over all images of all batches; nan values (empty masks) are skipped, and a
    metric that is nan for every image stays nan."""
    values: dict[str, list[Tensor]] = {}
    for batch in batches:
        for key, v in batch.items():
            values.setdefault(key, []).append(torch.as_tensor(v).detach().double().flatten().cpu())
    return {key: float(torch.cat(vs).nanmean()) for key, vs in values.items()}
