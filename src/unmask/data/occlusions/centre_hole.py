"""Seed 002's occlusion: a white square hole in the centre of the image."""

from __future__ import annotations

import numpy as np

from unmask.config import SynthesizeConfig
from unmask.data.occlusions.base import Occluder, Occlusion


def centre_square(height: int, width: int, fraction: float) -> tuple[slice, slice]:
    """Rows and columns of the centred square hole: side ``round(fraction * side)`` per axis,
    starting at ``(side - hole) // 2``."""
    hh, hw = int(round(fraction * height)), int(round(fraction * width))
    top, left = (height - hh) // 2, (width - hw) // 2
    return slice(top, top + hh), slice(left, left + hw)


class CentreHole(Occluder):
    """A centred square of ``fraction`` of each side, filled white (landmarks are not used)."""

    name = "centre_hole"

    def __init__(self, fraction: float = 0.3):
        if not 0 < fraction < 1:
            raise ValueError(f"centre hole fraction must be in (0, 1), got {fraction}")
        self.fraction = fraction

    @classmethod
    def from_config(cls, cfg: SynthesizeConfig) -> "CentreHole":
        return cls(cfg.centre_hole_fraction)

    def __call__(self, image: np.ndarray, landmarks: np.ndarray | None, rng: np.random.Generator) -> Occlusion:
        rows, cols = centre_square(*image.shape[:2], self.fraction)
        out = image.copy()
        out[rows, cols] = 255
        mask = np.zeros(image.shape[:2], bool)
        mask[rows, cols] = True
        return Occlusion(out, mask, self.name, {"fraction": self.fraction})
