"""Vectorised colour, fabric-pattern and shading fields (``HxW`` numpy arrays) for painted occluders."""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

FABRIC_PATTERNS = ("plain", "stripes", "checks", "dots", "floral")


def jitter(rng: np.random.Generator, rgb: tuple[int, int, int], amount: float = 12.0) -> np.ndarray:
    """``rgb`` moved by up to ``amount`` per channel."""
    return np.clip(np.asarray(rgb, np.float64) + rng.uniform(-amount, amount, 3), 0, 255)


def random_colour(rng: np.random.Generator, sat: tuple[float, float] = (0.25, 0.9),
                  val: tuple[float, float] = (0.2, 0.95)) -> np.ndarray:
    """A random RGB colour (0..255) drawn in HSV."""
    r, g, b = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(*sat), rng.uniform(*val))
    return np.array([r, g, b]) * 255


def value_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Smooth noise in [0, 1] with features about ``cell`` px across (a bicubic-upsampled grid)."""
    gh, gw = int(np.ceil(height / cell)) + 2, int(np.ceil(width / cell)) + 2
    grid = rng.uniform(0, 1, (gh, gw)).astype(np.float32)
    up = cv2.resize(grid, (int(gw * cell), int(gh * cell)), interpolation=cv2.INTER_CUBIC)
    oy, ox = int(cell / 2), int(cell / 2)
    return np.clip(up[oy:oy + height, ox:ox + width], 0, 1)


def fabric(rng: np.random.Generator, u: np.ndarray, v: np.ndarray, scale: float,
           pattern: str | None = None) -> tuple[np.ndarray, dict]:
    """A patterned colour field ``HxWx3`` over local coordinates ``u, v`` (px); ``scale`` ~ mask width.

    Returns the field and the JSON attributes drawn (pattern name, colours).
    """
    pattern = pattern or FABRIC_PATTERNS[rng.integers(len(FABRIC_PATTERNS))]
    base = random_colour(rng)
    other = random_colour(rng) if rng.uniform() < 0.6 else np.clip(255 - base * 0.3, 0, 255)
    period = scale / rng.uniform(5, 10)
    if pattern == "stripes":
        theta = rng.choice([0.0, np.pi / 2, rng.uniform(0, np.pi)])
        w = (u * np.cos(theta) + v * np.sin(theta)) / period
        t = (np.sin(2 * np.pi * w) > rng.uniform(-0.5, 0.5)).astype(np.float32)
    elif pattern == "checks":
        a = (np.floor(u / period) % 2).astype(np.float32)
        b = (np.floor(v / period) % 2).astype(np.float32)
        t = (a + b) / 2  # gingham: three tones
    elif pattern == "dots":
        r = period * rng.uniform(0.18, 0.32)
        du = (u % period) - period / 2
        dv = ((v + np.floor(u / period) % 2 * period / 2) % period) - period / 2
        t = np.clip(r + 0.5 - np.hypot(du, dv), 0, 1).astype(np.float32)
    elif pattern == "floral":
        h, w_ = u.shape
        n = value_noise(rng, h, w_, max(2.0, period * 0.8))
        t = np.clip((n - 0.55) * 6, 0, 1)
        third = random_colour(rng)
        t3 = np.clip((0.35 - n) * 6, 0, 1)[..., None]
        field = base * (1 - t[..., None]) + other * t[..., None]
        return (field * (1 - t3) + third * t3).astype(np.float32), {
            "pattern": pattern, "colours": [_rgb(base), _rgb(other), _rgb(third)]}
    else:
        pattern, t = "plain", np.zeros(u.shape, np.float32)
    field = base * (1 - t[..., None]) + other * t[..., None]
    colours = [_rgb(base)] if pattern == "plain" else [_rgb(base), _rgb(other)]
    return field.astype(np.float32), {"pattern": pattern, "colours": colours}


def _rgb(c: np.ndarray) -> list[int]:
    return [int(round(x)) for x in c]


def shade(colour: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """``colour`` (RGB or an HxWx3 field) times a brightness ``factor`` (HxW), clipped to 0..255."""
    c = np.asarray(colour, np.float32)
    return np.clip((c if c.ndim == 3 else c[None, None, :]) * factor[..., None], 0, 255)


def edge_falloff(mask: np.ndarray, width: float) -> np.ndarray:
    """0 at the border of ``mask`` rising to 1 at ``width`` px inside (distance transform)."""
    if not mask.any():
        return np.zeros(mask.shape, np.float32)
    dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    return np.clip(dist / max(width, 1e-3), 0, 1).astype(np.float32)


def side_light(s: np.ndarray, strength: float, from_left: bool) -> np.ndarray:
    """Brightness factor across the shape (``s`` in [0, 1] left to right), lit from one side."""
    ramp = (0.5 - s) if from_left else (s - 0.5)
    return (1 + strength * ramp).astype(np.float32)


def grain(rng: np.random.Generator, shape: tuple[int, int], amount: float) -> np.ndarray:
    """Per-pixel fabric grain, a brightness factor around 1."""
    return (1 + rng.normal(0, amount, shape)).astype(np.float32)
