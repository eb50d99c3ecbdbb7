"""No-training baselines for the mask segmenter (seed 001): where the occluder is, found without learning.

Each is ``fn(occluded01 (B, 3, H, W) in [0, 1], landmarks (B, 68, 2) in pixel coordinates of those
images) -> (B, 1, H, W)`` in {0, 1}, 1 = occluded, measured like a segmenter's thresholded prediction
(:func:`unmask.metrics.segmentation.segmentation_metrics`).

``lower_face``: the jaw line and nose bridge polygon of the face's 68 landmarks
(:func:`unmask.data.occlusions.geometry.lower_face_region`), which is where a face mask sits and what
``unmask infer`` inpaints without a segmenter. On the synthetic test split the landmarks are those of
the clean face before the occluder was drawn; on a real masked photo dlib finds them on the masked
face, less exactly, so this baseline is at its best here.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

from unmask.data.occlusions.geometry import lower_face_region
from unmask.errors import ConfigError, UnmaskError

MaskBaseline = Callable[[Tensor, Tensor], Tensor]


def lower_face_mask(occluded01: Tensor, landmarks: Tensor) -> Tensor:
    b, _, h, w = occluded01.shape
    if h != w or landmarks.shape != (b, 68, 2):
        raise UnmaskError(f"mask baseline: need square images (B, 3, H, H) and landmarks (B, 68, 2), got "
                          f"{tuple(occluded01.shape)} and {tuple(landmarks.shape)}")
    regions = np.stack([lower_face_region(lm, h) for lm in landmarks.detach().cpu().numpy()])
    return torch.from_numpy(regions[:, None].astype(np.float32)).to(occluded01.device)


MASK_BASELINES: dict[str, MaskBaseline] = {
    "lower_face": lower_face_mask,
}

# what a report says under its table about each mask baseline it shows
NOTES = {
    "lower_face": "the jaw-line and nose-bridge polygon of each face's 68 landmarks, no training (what "
                  "`unmask infer` inpaints without a segmenter). The synthetic masks were drawn from the "
                  "same landmarks of the clean face, so it is at its best here; on a real masked photo dlib "
                  "finds them on the masked face, less exactly.",
}


def build_mask_baseline(name: str, key: str = "baseline") -> MaskBaseline:
    """The mask baseline registered as ``name``; unknown names raise ConfigError naming ``key``."""
    try:
        return MASK_BASELINES[name]
    except KeyError:
        raise ConfigError(f"{key}: unknown mask baseline {name!r} "
                          f"(choose from {', '.join(sorted(MASK_BASELINES))})") from None
