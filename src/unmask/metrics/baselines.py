"""Classical inpainting baselines to show beside the GANs: fill the masked region without learning.

Each baseline is ``fn(occluded01 (B, 3, H, W) in [0, 1], mask (B, 1, H, W), 1 = occluded) -> (B, 3, H, W)
in [0, 1]`` on the input's device and dtype. Pixels outside the mask are returned exactly as given
(the filled region is pasted into the input). They run per image on the CPU.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
import torch
from skimage.restoration import inpaint_biharmonic
from torch import Tensor

from unmask.errors import ConfigError, UnmaskError

INPAINT_RADIUS = 3   # px, cv2.inpaint's neighbourhood

Baseline = Callable[[Tensor, Tensor], Tensor]
_FillFn = Callable[[np.ndarray, np.ndarray], np.ndarray]   # (H, W, 3) float in [0, 1], (H, W) bool


def _cv2_fill(flag: int) -> _FillFn:
    def fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        img8 = np.ascontiguousarray(np.round(image * 255).astype(np.uint8))   # cv2.inpaint needs uint8
        out = cv2.inpaint(img8, hole.astype(np.uint8) * 255, INPAINT_RADIUS, flag)
        return out.astype(np.float64) / 255
    return fill


def _biharmonic_fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    return inpaint_biharmonic(image, hole, channel_axis=-1)


def _per_image(fill: _FillFn) -> Baseline:
    def baseline(occluded01: Tensor, mask: Tensor) -> Tensor:
        if occluded01.dim() != 4 or occluded01.shape[1] != 3 or mask.shape != (
                occluded01.shape[0], 1, *occluded01.shape[-2:]):
            raise UnmaskError(f"baseline: need occluded (B, 3, H, W) and mask (B, 1, H, W), got "
                              f"{tuple(occluded01.shape)} and {tuple(mask.shape)}")
        images = occluded01.detach().cpu().double().clamp(0, 1).permute(0, 2, 3, 1).numpy()
        holes = (mask.detach().cpu() > 0.5)[:, 0].numpy()
        filled = images.copy()
        for i, (image, hole) in enumerate(zip(images, holes)):
            if hole.all():
                raise UnmaskError(f"baseline: image {i} of the batch is masked entirely (nothing to inpaint from)")
            if hole.any():
                filled[i][hole] = np.clip(fill(image, hole), 0, 1)[hole]
        return torch.from_numpy(filled).permute(0, 3, 1, 2).to(occluded01.device, occluded01.dtype)
    return baseline


def input_baseline(occluded01: Tensor, mask: Tensor) -> Tensor:
    """The occluded image unchanged: the floor every method must beat."""
    return occluded01.detach().clamp(0, 1).clone()


BASELINES: dict[str, Baseline] = {
    "input": input_baseline,
    "telea": _per_image(_cv2_fill(cv2.INPAINT_TELEA)),            # fast marching (Telea 2004)
    "navier_stokes": _per_image(_cv2_fill(cv2.INPAINT_NS)),       # Bertalmio et al. 2001
    "biharmonic": _per_image(_biharmonic_fill),                   # skimage biharmonic equation
}


def build_baseline(name: str, key: str = "baseline") -> Baseline:
    """The baseline registered as ``name``; unknown names raise ConfigError naming ``key``."""
    try:
        return BASELINES[name]
    except KeyError:
        raise ConfigError(f"{key}: unknown baseline {name!r} (choose from {', '.join(sorted(BASELINES))})") from None
