"""What every occluder returns, and the compositing that keeps its mask exact.

An occluder paints antialiased layers (coverage ``alpha`` in [0, 1] plus a colour) over a clean face.
:func:`composite` turns them into the occluded image and its binary mask with one rule: a pixel is
occluded iff its total coverage is >= 0.5; occluded pixels are alpha-blended (soft edges), all other
pixels are copied from the clean image untouched. So the mask is a superset of the changed pixels and
the image outside the mask equals the clean image bit for bit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw

from unmask.config import SynthesizeConfig

MASK_THRESHOLD = 0.5  # coverage at or above which a pixel counts as occluded
SUPERSAMPLE = 4       # shapes are drawn at this many times the output resolution, then box-filtered


@dataclass(frozen=True)
class Occlusion:
    """An occluded face: ``image`` (HxWx3 uint8), ``mask`` (HxW bool, True = occluded)."""

    image: np.ndarray
    mask: np.ndarray
    kind: str                      # e.g. "surgical", "template:KN95", "freeform:sunglasses"
    attrs: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable parameters drawn


class Occluder(ABC):
    """``occluder(image, landmarks, rng) -> Occlusion``; built from the synthesize config."""

    name: ClassVar[str]

    @classmethod
    def from_config(cls, cfg: SynthesizeConfig) -> "Occluder":
        return cls()

    @abstractmethod
    def __call__(self, image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> Occlusion:
        """Occlude ``image`` (HxWx3 uint8) given its 68 iBUG landmarks ((68, 2) float32, pixels)."""


Layer = tuple[np.ndarray, np.ndarray]  # (alpha HxW float in [0, 1], colour HxWx3 or (3,) float 0..255)


def composite(clean: np.ndarray, layers: Sequence[Layer]) -> tuple[np.ndarray, np.ndarray]:
    """Stack ``layers`` (bottom first) over ``clean``; returns ``(image uint8, mask bool)``."""
    h, w = clean.shape[:2]
    premult = np.zeros((h, w, 3), np.float32)
    cover = np.zeros((h, w), np.float32)
    for alpha, colour in layers:
        a = alpha.astype(np.float32)
        premult = a[..., None] * np.asarray(colour, np.float32) + (1 - a[..., None]) * premult
        cover = a + (1 - a) * cover
    return composite_premultiplied(clean, premult, cover)


def composite_premultiplied(clean: np.ndarray, premult: np.ndarray,
                            cover: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blend premultiplied colour ``premult`` with coverage ``cover`` where ``cover >= 0.5``."""
    mask = cover >= MASK_THRESHOLD
    blended = np.clip(np.rint(premult + (1 - cover[..., None]) * clean), 0, 255).astype(np.uint8)
    return np.where(mask[..., None], blended, clean), mask


class Canvas:
    """Antialiased coverage: shapes drawn at ``SUPERSAMPLE``x with Pillow, box-filtered to 1x.

    Coordinates are output pixels with pixel centres at integers (the landmarks' convention).
    """

    def __init__(self, height: int, width: int, ss: int = SUPERSAMPLE):
        self.h, self.w, self.ss = height, width, ss
        self._im = Image.new("L", (width * ss, height * ss), 0)
        self._draw = ImageDraw.Draw(self._im)

    def _xy(self, pts: np.ndarray) -> list[tuple[float, float]]:
        p = (np.asarray(pts, np.float64).reshape(-1, 2) + 0.5) * self.ss - 0.5
        return [tuple(q) for q in p]

    def polygon(self, pts: np.ndarray, value: int = 255) -> "Canvas":
        if len(pts) >= 3:
            self._draw.polygon(self._xy(pts), fill=value)
        return self

    def polyline(self, pts: np.ndarray, width: float, value: int = 255) -> "Canvas":
        """A stroke of ``width`` px with round joints and round caps."""
        xy = self._xy(pts)
        wss = max(1, int(round(width * self.ss)))
        if len(xy) >= 2:
            self._draw.line(xy, fill=value, width=wss)
        r = wss / 2
        for x, y in xy:  # round joints and caps
            self._draw.ellipse([x - r, y - r, x + r, y + r], fill=value)
        return self

    def alpha(self) -> np.ndarray:
        """Coverage in [0, 1], ``HxW float32``."""
        return box_downscale(np.asarray(self._im, np.float32), self.ss) / 255.0


def box_downscale(arr: np.ndarray, ss: int) -> np.ndarray:
    """Average ``ss`` x ``ss`` blocks (``cv2.INTER_AREA`` is exactly that for an integer factor)."""
    h, w = arr.shape[0] // ss, arr.shape[1] // ss
    return cv2.resize(arr, (w, h), interpolation=cv2.INTER_AREA)
