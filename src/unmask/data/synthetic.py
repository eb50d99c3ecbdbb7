"""Procedural synthetic faces: the offline, deterministic default data source.

A face is a small 3-D landmark model (the iBUG 68 points plus head, hair, ear, neck and glasses
outlines) built around the mean shape that dlib's predictor finds on real photos. An *identity*
fixes the shape and the colours (skin, hair, eyes, brows, lips); a *variation* fixes pose (yaw,
pitch, roll), framing, expression, gaze, lighting, background and glasses. Each part is drawn as an
antialiased coverage mask (polygons rasterised at ``_SS`` times the size and box-filtered down),
coloured with vectorised shading (a height field lit by a directional light, ambient occlusion,
skin, hair and iris textures) and alpha-composited back to front. The parsing map takes, for every
pixel, the label of the top-most part covering at least half of it, and the landmarks are the
projected model points the parts were drawn from, so pixels, labels and points agree by
construction.

Labels follow ``PARSING_LABELS``; ``left`` is the person's left (image right), as in CelebAMask-HQ.
Ears, neck and clothes are background (the 11-label map has no class for them); glasses keep the
labels of what they cover.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from unmask.config import SyntheticSource
from unmask.io.images import encode_png

BG, SKIN, L_BROW, R_BROW, L_EYE, R_EYE, NOSE, U_LIP, MOUTH, D_LIP, HAIR = range(11)

_SS = 4  # supersampling factor of the coverage masks

# dlib's 68 points averaged over real face crops, mirrored to be symmetric; origin between the eye
# centres, unit = distance between the eye centres, y down. Index 0 is on the image-left jaw.
_MEAN_SHAPE = np.array([
    [-1.125, 0.029], [-1.116, 0.318], [-1.084, 0.605], [-1.03, 0.889], [-0.929, 1.152],
    [-0.764, 1.379], [-0.549, 1.556], [-0.294, 1.672], [0.0, 1.696], [0.294, 1.672],
    [0.549, 1.556], [0.764, 1.379], [0.929, 1.152], [1.03, 0.889], [1.084, 0.605],
    [1.116, 0.318], [1.125, 0.029],
    [-0.918, -0.225], [-0.77, -0.338], [-0.575, -0.364], [-0.376, -0.332], [-0.189, -0.253],
    [0.189, -0.253], [0.376, -0.332], [0.575, -0.364], [0.77, -0.338], [0.918, -0.225],
    [0.0, -0.026], [0.0, 0.171], [0.0, 0.367], [0.0, 0.565],
    [-0.217, 0.694], [-0.113, 0.732], [0.0, 0.768], [0.113, 0.732], [0.217, 0.694],
    [-0.695, 0.001], [-0.572, -0.073], [-0.422, -0.069], [-0.293, 0.03], [-0.435, 0.056], [-0.583, 0.054],
    [0.293, 0.03], [0.422, -0.069], [0.572, -0.073], [0.695, 0.001], [0.583, 0.054], [0.435, 0.056],
    [-0.45, 1.045], [-0.286, 0.979], [-0.121, 0.947], [0.0, 0.975], [0.121, 0.947], [0.286, 0.979],
    [0.45, 1.045], [0.295, 1.201], [0.132, 1.27], [0.0, 1.285], [-0.132, 1.27], [-0.295, 1.201],
    [-0.385, 1.056], [-0.122, 1.047], [0.0, 1.058], [0.122, 1.047], [0.385, 1.056],
    [0.124, 1.121], [0.0, 1.135], [-0.124, 1.121],
], dtype=np.float64)

# Palettes (sRGB 0..1). Skin runs light to dark; a tone is interpolated along it.
_SKIN = np.array([[245, 212, 192], [232, 186, 160], [214, 162, 128], [192, 136, 100],
                  [160, 106, 74], [120, 78, 54], [84, 54, 40]]) / 255.0
_HAIR = {
    "black": (24, 20, 19), "dark_brown": (52, 36, 28), "brown": (92, 62, 42), "auburn": (118, 58, 34),
    "dark_blond": (150, 114, 72), "blond": (205, 172, 122), "grey": (150, 148, 146), "white": (222, 220, 214),
}
_EYES = {"dark_brown": (52, 30, 18), "brown": (96, 58, 30), "hazel": (118, 92, 48), "green": (84, 108, 66),
         "blue": (74, 112, 150), "grey": (108, 118, 128)}
_STYLES = ("bald", "buzz", "short", "medium", "long")


@dataclass(frozen=True, eq=False)
class Identity:
    """Everything that stays fixed across one person's images."""

    seed: int
    name: str
    shape: np.ndarray           # (68, 3) canonical landmarks (x, y, depth), unit = eye-centre distance
    face_width: float
    head_top: float             # skull top, canonical y
    skin: np.ndarray            # (3,) sRGB 0..1
    skin_tone: float            # 0 light .. 1 dark
    hair_style: str
    hair_colour: str
    hair_rgb: np.ndarray
    hair_volume: float
    hairline: float             # canonical y of the hairline's centre
    bangs: bool
    part: float                 # -1..1: where the parting sits
    brow_rgb: np.ndarray
    brow_thickness: float
    eye_colour: str
    iris_rgb: np.ndarray
    lip_rgb: np.ndarray
    eyeliner: float
    stubble: float
    ear_size: float
    neck_width: float
    cloth_rgb: np.ndarray
    glasses_round: bool
    glasses_rgb: np.ndarray


@dataclass(frozen=True)
class FaceSample:
    image: np.ndarray           # (H, W, 3) uint8 RGB
    landmarks: np.ndarray       # (68, 2) float32 pixel coordinates (x, y)
    parsing: np.ndarray         # (H, W) uint8 labels 0..10
    identity: str


# --------------------------------------------------------------------------------------------- identity

def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]))


def _depth(xy: np.ndarray) -> np.ndarray:
    """Depth (towards the camera) of the canonical landmarks, from a head ellipsoid plus the nose."""
    x = xy[:, 0]
    z = _on_head(x, xy[:, 1])[:, 2]
    jaw = np.arange(17)
    z[jaw] = 0.9 * np.sqrt(np.clip(1 - np.abs(x[jaw]) / 1.15, 0, 1))
    z[27:31] += [0.18, 0.3, 0.42, 0.55]
    z[31:36] += [0.18, 0.3, 0.34, 0.3, 0.18]
    z[36:48] -= 0.08
    z[48:68] += 0.06
    return z


def sample_identity(seed: int, name: str | None = None) -> Identity:
    """A random person, fully determined by ``seed``."""
    rng = _rng(seed, 0x1D)
    fem = rng.random() < 0.5
    s = _MEAN_SHAPE.copy()
    fw = rng.normal(1.0 if not fem else 0.97, 0.045)
    lower = rng.normal(1.0, 0.05)
    s[:, 0] *= fw
    s[:, 1] = np.where(s[:, 1] > 0.3, 0.3 + (s[:, 1] - 0.3) * lower, s[:, 1])
    jaw = s[:17]
    jaw[5:12, 0] *= rng.normal(1.0 if not fem else 0.94, 0.06)           # chin width
    sq = rng.normal(0.03 if not fem else -0.01, 0.03)                   # jaw squareness
    jaw[[3, 4, 12, 13], 0] += np.array([-1, -1, 1, 1]) * sq
    # eyes: size, openness, spacing, canthal tilt
    es, eo, sp, tilt = rng.normal(1, 0.07), rng.normal(1, 0.12), rng.normal(0, 0.025), rng.normal(0.02, 0.05)
    for idx, side in ((slice(36, 42), -1), (slice(42, 48), 1)):
        e = s[idx]
        c = e.mean(0)
        d = (e - c) * [es, es * eo]
        ang = -side * tilt
        rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        s[idx] = c + [side * sp, 0] + d @ rot.T
    # brows: height, arch, thickness
    s[17:27, 1] += rng.normal(0, 0.035)
    s[[18, 19, 24, 25], 1] -= rng.normal(0.02, 0.02)
    # nose: length, width
    s[30:36, 1] += rng.normal(0, 0.04)
    s[31:36, 0] *= rng.normal(1.0 if not fem else 0.92, 0.08)
    # mouth: width, height, lip thickness; inner lips closed at rest
    s[48:68, 0] *= rng.normal(1.0, 0.06)
    s[48:68, 1] += rng.normal(0, 0.03)
    s[[49, 50, 51, 52, 53], 1] -= rng.normal(0.0 if not fem else 0.02, 0.02)
    s[[55, 56, 57, 58, 59], 1] += rng.normal(0.0 if not fem else 0.02, 0.025)
    closed = (s[[61, 62, 63], 1] + s[[67, 66, 65], 1]) / 2
    s[[61, 62, 63], 1] = closed
    s[[67, 66, 65], 1] = closed + 0.004
    s += rng.normal(0, 0.008, s.shape)
    shape = np.concatenate([s, _depth(s)[:, None]], 1)

    tone = float(rng.beta(1.3, 1.6))
    pos = tone * (len(_SKIN) - 1)
    i0 = int(min(np.floor(pos), len(_SKIN) - 2))
    f = pos - i0
    skin_rgb = (_SKIN[i0] * (1 - f) + _SKIN[i0 + 1] * f) * np.exp(rng.normal(0, [0.03, 0.03, 0.04]))

    if tone > 0.55:
        hair_colour = rng.choice(["black", "dark_brown"], p=[0.75, 0.25])
    else:
        hair_colour = rng.choice(list(_HAIR), p=[0.2, 0.22, 0.2, 0.08, 0.1, 0.12, 0.05, 0.03])
    style = str(rng.choice(_STYLES, p=[0.0, 0.03, 0.12, 0.35, 0.5] if fem else [0.08, 0.17, 0.5, 0.2, 0.05]))
    hair_rgb = np.array(_HAIR[hair_colour]) / 255.0 * np.exp(rng.normal(0, 0.06, 3))
    brow_rgb = np.minimum(hair_rgb, np.array(_HAIR["dark_brown"]) / 255.0 * 1.6) * rng.uniform(0.7, 0.95)
    if tone > 0.5:
        eye_colour = str(rng.choice(["dark_brown", "brown"]))
    else:
        eye_colour = str(rng.choice(list(_EYES), p=[0.2, 0.25, 0.15, 0.1, 0.2, 0.1]))
    lip = skin_rgb * np.array([0.86, 0.6, 0.62]) + np.array([0.06, 0.0, 0.01])
    if fem and rng.random() < 0.45:
        paint = np.array([[0.72, 0.12, 0.16], [0.78, 0.36, 0.42], [0.66, 0.38, 0.34]])[rng.integers(3)]
        lip = 0.45 * lip + 0.55 * paint
    cloth = np.array([rng.uniform(0.05, 0.9) for _ in range(3)]) * rng.uniform(0.4, 1.0)
    return Identity(
        seed=int(seed), name=name or f"syn-seed{int(seed)}", shape=shape, face_width=float(fw),
        head_top=float(rng.normal(-1.8, 0.07)), skin=np.clip(skin_rgb, 0, 1), skin_tone=tone,
        hair_style=style, hair_colour=str(hair_colour), hair_rgb=np.clip(hair_rgb, 0, 1),
        hair_volume=float(rng.uniform(0.06, 0.28) if style in ("medium", "long") else rng.uniform(0.02, 0.12)),
        hairline=float(rng.normal(-1.2, 0.08)), bangs=bool(style != "bald" and rng.random() < (0.35 if fem else 0.15)),
        part=float(rng.uniform(-1, 1)), brow_rgb=np.clip(brow_rgb, 0, 1),
        brow_thickness=float(rng.normal(0.09 if fem else 0.12, 0.015)),
        eye_colour=eye_colour, iris_rgb=np.array(_EYES[eye_colour]) / 255.0,
        lip_rgb=np.clip(lip, 0, 1), eyeliner=float(rng.uniform(0.3, 1.0) if fem else rng.uniform(0.0, 0.3)),
        stubble=float(rng.uniform(0.2, 0.7) if (not fem and rng.random() < 0.4) else 0.0),
        ear_size=float(rng.normal(1.0, 0.08)), neck_width=float(rng.normal(0.66 if fem else 0.78, 0.04)),
        cloth_rgb=cloth, glasses_round=bool(rng.random() < 0.4),
        glasses_rgb=np.array([[0.05, 0.05, 0.05], [0.35, 0.22, 0.12], [0.7, 0.7, 0.72], [0.55, 0.1, 0.1]])[
            rng.choice(4, p=[0.5, 0.25, 0.15, 0.1])],
    )


# --------------------------------------------------------------------------------------------- geometry

def _catmull(pts: np.ndarray, closed: bool, n: int = 8) -> np.ndarray:
    """Dense Catmull-Rom curve through ``pts`` (it passes through every point)."""
    p = np.asarray(pts, dtype=np.float64)
    if closed:
        q, segs = np.concatenate([p[-1:], p, p[:2]]), len(p)
    else:
        q, segs = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]]), len(p) - 1
    t = (np.arange(n) / n)[None, :, None]
    p0, p1, p2, p3 = (q[i:i + segs, None] for i in range(4))
    c = 0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
               + (3 * p1 - p0 - 3 * p2 + p3) * t ** 3)
    c = c.reshape(-1, 2)
    return c if closed else np.concatenate([c, p[-1:]])


def _band(curve: np.ndarray, above, below) -> np.ndarray:
    """Polygon of a stroke along ``curve`` reaching ``above`` px to its left (up, for a curve drawn
    left to right in the image) and ``below`` px to its right; either may vary along the curve."""
    d = np.gradient(curve, axis=0)
    nrm = np.stack([d[:, 1], -d[:, 0]], 1) / (np.linalg.norm(d, axis=1, keepdims=True) + 1e-9)
    above = np.broadcast_to(np.asarray(above, dtype=np.float64), len(curve))[:, None]
    below = np.broadcast_to(np.asarray(below, dtype=np.float64), len(curve))[:, None]
    return np.concatenate([curve + nrm * above, (curve - nrm * below)[::-1]])


def _ellipse(c: np.ndarray, ax: np.ndarray, ay: np.ndarray, n: int = 24, power: float = 2.0) -> np.ndarray:
    """Closed (super)ellipse polygon with centre ``c`` and image-space half-axis vectors ``ax``, ``ay``."""
    th = np.linspace(0, 2 * np.pi, n, endpoint=False)[:, None]
    cx, cy = np.cos(th), np.sin(th)
    e = 2 / power
    return c + np.sign(cx) * np.abs(cx) ** e * ax + np.sign(cy) * np.abs(cy) ** e * ay


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ rx @ ry


@dataclass
class _Pose:
    """Canonical 3-D -> image: rotate, drop depth (orthographic), scale to px, shift."""

    rot: np.ndarray
    scale: float
    shift: np.ndarray

    def project(self, p) -> np.ndarray:
        p = np.asarray(p, dtype=np.float64)
        if p.shape[-1] == 2:
            p = np.concatenate([p, np.zeros(p.shape[:-1] + (1,))], -1)
        return (p @ self.rot.T)[..., :2] * self.scale + self.shift


def _on_head(x: np.ndarray, y: np.ndarray, lift: float = 0.0) -> np.ndarray:
    """Canonical points on the head ellipsoid's front surface (hairlines)."""
    z = np.sqrt(np.clip(1 - (x / 1.3) ** 2 - ((y - 0.3) / 2.2) ** 2, 0, 1)) + lift
    return np.stack([x, y, z], -1)


def _skull(ident: Identity, grow: float, y0: float = 0.05, n: int = 24) -> np.ndarray:
    """Head silhouette from the image-right side (at height ``y0``) over the top to the image-left."""
    w = 1.13 * ident.face_width + grow
    top = ident.head_top - grow
    s0 = np.arcsin(np.clip((0.05 - y0) / (0.05 - top), 0, 1) ** (1 / 0.9))
    phi = np.linspace(s0, np.pi - s0, n)
    c, s = np.cos(phi), np.sin(phi)
    x = w * np.sign(c) * np.abs(c) ** 0.8
    y = 0.05 + (top - 0.05) * np.abs(s) ** 0.9
    return np.stack([x, y, np.full(n, -0.1)], 1)


class _Mask:
    """A coverage mask (0..1) stored only inside its box of the image."""

    def __init__(self, a: np.ndarray, box: tuple[slice, slice]):
        self.a, self.box = a, box

    def full(self, size: int) -> np.ndarray:
        out = np.zeros((size, size), np.float32)
        out[self.box] = self.a
        return out


def _cover(size: int, *polys: np.ndarray, erase: tuple[np.ndarray, ...] = (), pad: int = 0,
           box: tuple[slice, slice] | None = None) -> _Mask:
    """Antialiased coverage of ``polys`` minus ``erase``: filled at ``_SS`` x inside a box (their bounding
    box plus ``pad``, or ``box``) and area-averaged down."""
    if box is None:
        allp = np.concatenate([np.asarray(p).reshape(-1, 2) for p in polys])
        x0, y0 = np.floor(allp.min(0)).astype(int) - 1 - pad
        x1, y1 = np.ceil(allp.max(0)).astype(int) + 2 + pad
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(max(x1, 1), size), min(max(y1, 1), size)
        x0, y0 = min(x0, x1 - 1), min(y0, y1 - 1)
        box = (slice(y0, y1), slice(x0, x1))
    y0, y1, x0, x1 = box[0].start, box[0].stop, box[1].start, box[1].stop
    ss = _SS if size <= 256 else 2
    img = np.zeros(((y1 - y0) * ss, (x1 - x0) * ss), np.uint8)
    for fill, group in ((255, polys), (0, erase)):
        if group:
            # 4 fractional bits; pixel centres sit on integer coordinates at every scale
            q = [np.round(((np.asarray(p) - [x0, y0] + 0.5) * ss - 0.5) * 16).astype(np.int32) for p in group]
            cv2.fillPoly(img, q, fill, lineType=cv2.LINE_8, shift=4)
    a = cv2.resize(img, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32)
    a *= 1 / 255.0
    return _Mask(a, box)


# --------------------------------------------------------------------------------------------- textures

def _noise(rng: np.random.Generator, size: int, cells: float) -> np.ndarray:
    """Smooth value noise, roughly in [-1, 1], with about ``cells`` features across the image."""
    cells = max(2, int(cells))
    g = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    return cv2.resize(g, (size, size), interpolation=cv2.INTER_CUBIC)


def _strands(rng: np.random.Generator, angle: np.ndarray, radius: np.ndarray, freq: float) -> np.ndarray:
    """Hair texture: thin streaks along rays from the crown (1-D noise read by angle, slightly wavy)."""
    n = 4096
    line = np.convolve(rng.standard_normal(n + 2).astype(np.float32), np.ones(3, np.float32) / 3, "valid")
    u = (angle + 0.015 * np.sin(radius * 0.08 + rng.uniform(0, 6))) * freq % n
    i0 = u.astype(np.int64)
    f = u - i0
    return line[i0 % n] * (1 - f) + line[(i0 + 1) % n] * f


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(a, (0, 0), sigmaX=max(float(sigma), 0.01), borderType=cv2.BORDER_REPLICATE)


# --------------------------------------------------------------------------------------------- variation

@dataclass(frozen=True)
class _Variation:
    yaw: float        # degrees; positive turns the face towards the image right
    pitch: float
    roll: float
    smile: float      # 0..1
    mouth_open: float  # canonical units the lower lip drops
    glasses: bool
    framing: float    # face width / image width
    light: tuple[float, float, float]

    def attrs(self) -> dict:
        return {"yaw": round(self.yaw, 2), "pitch": round(self.pitch, 2), "roll": round(self.roll, 2),
                "smile": round(self.smile, 3), "mouth_open": round(self.mouth_open, 3), "glasses": self.glasses}


def _sample_variation(rng: np.random.Generator, glasses_prob: float) -> _Variation:
    light = np.array([rng.normal(0, 0.5), rng.normal(-0.5, 0.3), 1.0])
    return _Variation(
        yaw=float(np.clip(rng.normal(0, 10), -25, 25)), pitch=float(np.clip(rng.normal(0, 5), -12, 12)),
        roll=float(np.clip(rng.normal(0, 5), -15, 15)), smile=float(np.clip(rng.normal(0.3, 0.35), 0, 1)),
        mouth_open=float(rng.choice([0.0, rng.uniform(0.02, 0.07), rng.uniform(0.07, 0.2)], p=[0.6, 0.28, 0.12])),
        glasses=bool(rng.random() < glasses_prob), framing=float(rng.uniform(0.46, 0.58)),
        light=tuple(float(v) for v in light / np.linalg.norm(light)),
    )


def _expression(shape: np.ndarray, smile: float, open_: float) -> np.ndarray:
    """Move the canonical landmarks for a smile (corners out and up) and an open mouth (jaw drops)."""
    s = shape.copy()
    for i, side in ((48, -1), (60, -1), (54, 1), (64, 1)):
        s[i, 0] += side * 0.07 * smile
        s[i, 1] -= 0.07 * smile
    s[[49, 53, 59, 55], 1] -= 0.03 * smile
    s[[61, 63], 1] -= 0.01 * smile
    s[[56, 57, 58, 65, 66, 67], 1] += 0.02 * smile
    s[[1, 2, 14, 15], 0] += np.array([-1, -1, 1, 1]) * 0.015 * smile
    s[[55, 56, 57, 58, 59], 1] += open_
    s[[65, 66, 67], 1] += open_ * np.array([0.9, 1.0, 0.9])
    s[3:14, 1] += open_ * 0.8 * np.array([0.1, 0.3, 0.55, 0.8, 0.95, 1.0, 0.95, 0.8, 0.55, 0.3, 0.1])
    return s


# --------------------------------------------------------------------------------------------- rendering

class _Scene:
    """One image being painted: geometry, shading fields, canvas and parsing map."""

    def __init__(self, ident: Identity, var: _Variation, size: int, rng: np.random.Generator):
        self.ident, self.var, self.size, self.rng = ident, var, size, rng
        self.shape = _expression(ident.shape, var.smile, var.mouth_open)
        rot = _rotation(*np.deg2rad([var.yaw, var.pitch, var.roll]))
        scale = var.framing * size / (self.shape[16, 0] - self.shape[0, 0])
        self.pose = _Pose(rot, scale, np.zeros(2))
        jitter = rng.normal(0, 0.025, 2)
        self.pose.shift = size * (0.5 + jitter) - self.pose.project([0.0, 0.5, 0.6])
        self.scale = scale
        self.lm = self.pose.project(self.shape)
        self.ex = (rot @ [1.0, 0, 0])[:2] * scale    # image vectors of one canonical unit
        self.ey = (rot @ [0, 1.0, 0])[:2] * scale
        self.yy, self.xx = np.mgrid[0:size, 0:size].astype(np.float32)
        self.light = np.array(var.light, np.float32)
        self.canvas = np.zeros((size, size, 3), np.float32)
        self.parsing = np.zeros((size, size), np.uint8)
        self._to_plane = np.linalg.inv(np.stack([self.ex, self.ey], 1))

    # -- helpers
    def cover(self, *polys: np.ndarray, **kw) -> _Mask:
        return _cover(self.size, *polys, **kw)

    def plane(self, p) -> np.ndarray:
        """Image px -> canonical plane units (roll and scale undone; depth ignored)."""
        return (np.asarray(p, np.float64) - self.pose.shift) @ self._to_plane.T

    def put(self, m: _Mask, rgb, label: int | None = None, opacity: float = 1.0) -> None:
        """Alpha-composite ``rgb`` (a colour, or an image-sized array) through ``m``; label where it covers."""
        a = (m.a * opacity)[..., None] if opacity != 1.0 else m.a[..., None]
        rgb = np.asarray(rgb, np.float32)
        if rgb.ndim == 3 and rgb.shape[0] == self.size and rgb.shape[1] == self.size:
            rgb = rgb[m.box]
        region = self.canvas[m.box]
        region += (rgb - region) * a
        if label is not None:
            self.parsing[m.box][m.a >= 0.5] = label

    def add_gauss(self, field: np.ndarray, amp: float, c_plane, sx: float, sy: float | None = None) -> None:
        """Add a Gaussian bump (plane-unit widths) to ``field`` only where it matters."""
        sy = sx if sy is None else sy
        c = self.pose.shift + np.asarray(c_plane) @ np.stack([self.ex, self.ey], 1).T
        rad = 3.2 * max(sx, sy) * self.scale
        x0, x1 = int(max(c[0] - rad, 0)), int(min(c[0] + rad + 1, self.size))
        y0, y1 = int(max(c[1] - rad, 0)), int(min(c[1] + rad + 1, self.size))
        if x1 <= x0 or y1 <= y0:
            return
        d = self.uv[y0:y1, x0:x1] - np.asarray(c_plane, np.float32)
        field[y0:y1, x0:x1] += amp * np.exp(-0.5 * ((d[..., 0] / sx) ** 2 + (d[..., 1] / sy) ** 2))


def _shading(sc: _Scene) -> None:
    """Height field of the face -> normals -> Lambert + wrap, ambient occlusion and specular."""
    ident, size = sc.ident, sc.size
    uv = np.stack([sc.xx, sc.yy], -1) - sc.pose.shift.astype(np.float32)
    sc.uv = (uv @ sc._to_plane.T.astype(np.float32)).astype(np.float32)
    L = sc.plane(sc.lm)
    hc = sc.plane(sc.pose.project([0.0, 0.25, 0.0]))
    du = (sc.uv[..., 0] - hc[0]) / (1.25 * ident.face_width)
    dv = (sc.uv[..., 1] - hc[1]) / 2.05
    h = 1.1 * np.sqrt(np.clip(1 - du ** 2 - dv ** 2, 0, 1))
    top, tip = L[27], L[30]
    axis = (tip - top).astype(np.float32)
    rel = sc.uv - top.astype(np.float32)
    t = (rel @ axis) / float(axis @ axis)
    tc = np.clip(t, 0, 1)
    dx, dy = rel[..., 0] - tc * axis[0], rel[..., 1] - tc * axis[1]
    dseg2 = dx * dx + dy * dy
    h += 0.22 * np.exp(dseg2 * (-0.5 / 0.11 ** 2)) * (0.3 + 0.7 * tc) * (t < 1.1)
    sc.add_gauss(h, 0.12, tip + [0, 0.04], 0.1)
    sc.add_gauss(h, 0.09, L[31] + [-0.03, -0.03], 0.07)
    sc.add_gauss(h, 0.09, L[35] + [0.03, -0.03], 0.07)
    sc.eyes_c = (L[36:42].mean(0), L[42:48].mean(0))
    for c in sc.eyes_c:
        sc.add_gauss(h, -0.16, c + [0, -0.05], 0.22, 0.15)
        sc.add_gauss(h, 0.06, c + [0, -0.33], 0.3, 0.08)
        sc.add_gauss(h, 0.1, c + [0, 0.58], 0.25, 0.2)
    mc = (L[48] + L[54]) / 2
    sc.add_gauss(h, 0.07, mc, 0.32, 0.13)
    sc.add_gauss(h, 0.08, L[8] + [0, -0.22], 0.22, 0.15)
    sc.add_gauss(h, -0.04, L[57] + [0, 0.12], 0.2, 0.05)
    sc.add_gauss(h, -0.05, L[33] + [0, 0.1], 0.07, 0.06)
    # nasolabial folds: a crease from each nose wing to beyond the mouth corner
    fold = 0.006 + 0.02 * sc.var.smile
    for a, b, side in ((31, 48, -1), (35, 54, 1)):
        for k in np.linspace(0, 1, 4):
            p = L[a] * (1 - k) + L[b] * k + [side * (0.1 + 0.06 * k), 0.0 + 0.05 * k]
            sc.add_gauss(h, -fold, p, 0.06)
    hy, hx = np.gradient(h * np.float32(-sc.scale))
    inv = 1 / np.sqrt(hx * hx + hy * hy + 1)
    n = np.stack([hx * inv, hy * inv, inv], -1)
    ndl = n @ sc.light
    ao = np.clip(1 - 2.5 * np.clip(_blur(h, 0.15 * sc.scale) - h, 0, None), 0.35, 1)
    amb = sc.rng.uniform(0.3, 0.5)
    shade = (amb + (1 - amb) * np.clip((ndl + 0.3) / 1.3, 0, 1)) * ao
    half = sc.light + np.array([0, 0, 1], np.float32)
    half /= np.linalg.norm(half)
    sc.spec = (np.clip(n @ half, 0, 1) ** 24 * sc.rng.uniform(0.04, 0.16)).astype(np.float32)
    sc.shade = shade.astype(np.float32)
    # shadows turn warm (light scattered under the skin)
    sc.shade_rgb = shade[..., None] * (1 + (1 - shade[..., None]) * np.array([0.22, 0.0, -0.1], np.float32))


def _skin(sc: _Scene) -> None:
    """Skin colour with texture, blush and stubble; ``skin_lit`` adds the shading."""
    ident, size, rng = sc.ident, sc.size, sc.rng
    skin = (ident.skin * rng.uniform(0.95, 1.05)).astype(np.float32)
    tex = 1 + 0.025 * _noise(rng, size, size / 6) + 0.02 * _noise(rng, size, size / 20) \
        + 0.008 * rng.standard_normal((size, size)).astype(np.float32)
    blush = np.zeros((size, size), np.float32)
    for c in sc.eyes_c:
        sc.add_gauss(blush, rng.uniform(0.3, 1.0), c + [0, 0.62], 0.25)
    sc.add_gauss(blush, 0.5, sc.plane(sc.lm[30]), 0.12)
    img = skin * tex[..., None] * (1 + blush[..., None] * np.array([0.04, -0.04, -0.03], np.float32))
    sc.body_img = img                        # neck and ears: no beard
    if ident.stubble > 0:
        L = sc.plane(sc.lm)
        beard = np.clip((sc.uv[..., 1] - (L[33, 1] + 0.04)) / 0.15, 0, 1)
        sc.add_gauss(beard, -0.85, (L[48] + L[54]) / 2, 0.3, 0.09)
        grain = _blur(np.clip(0.6 + 0.6 * rng.standard_normal((size, size)), 0, 1).astype(np.float32),
                      0.4 * size / 128)
        mix = np.clip(ident.stubble * 0.4 * beard * grain, 0, 1)[..., None]
        img = img * (1 - mix) + (ident.hair_rgb * 0.55).astype(np.float32) * mix
    sc.skin = skin
    sc.skin_tex = tex
    sc.skin_lit = img * sc.shade_rgb + sc.spec[..., None]


def _background(sc: _Scene) -> None:
    size, rng = sc.size, sc.rng
    c1 = rng.uniform(0.05, 0.95, 3) ** rng.uniform(0.6, 1.6)
    c1 = c1.mean() + (c1 - c1.mean()) * rng.uniform(0.15, 0.9)          # mostly muted colours
    c2 = np.clip(c1 * rng.uniform(0.5, 1.3, 3), 0, 1)
    ang = rng.uniform(0, 2 * np.pi)
    g = (((sc.xx - size / 2) * np.cos(ang) + (sc.yy - size / 2) * np.sin(ang)) / size + 0.5)[..., None]
    bg = (c1 * (1 - g) + c2 * g).astype(np.float32)
    blobs = 0.18 * _noise(rng, size, rng.integers(2, 6))[..., None] \
        + 0.03 * np.stack([_noise(rng, size, 5) for _ in range(3)], -1)
    sc.canvas[:] = bg * (1 + blobs)


def _hair_texture(sc: _Scene) -> None:
    ident, size, rng = sc.ident, sc.size, sc.rng
    crown = sc.pose.project([ident.part * 0.45, ident.head_top - 0.1, 0.5])
    ang = np.arctan2(sc.xx - crown[0], sc.yy - crown[1])
    rad = np.hypot(sc.xx - crown[0], sc.yy - crown[1])
    f = size / 128
    strands = 0.6 * _strands(rng, ang, rad, 150 * f) + 0.4 * _strands(rng, ang, rad, 50 * f)
    # volume: lit from the light's side, a sheen band around the crown, darker far from it
    r = rad / sc.scale
    side = ((sc.xx - crown[0]) * sc.light[0] + (sc.yy - crown[1]) * sc.light[1]) / (rad + 1e-3)
    sheen = 0.35 * np.exp(-0.5 * ((r - 0.6) / 0.14) ** 2) * (0.6 + 0.4 * side)
    val = np.clip(0.62 + 0.32 * strands + 0.15 * side - 0.08 * np.clip(r - 1.2, 0, 2), 0.12, 1.5)
    sc.hair_img = ident.hair_rgb.astype(np.float32) * val[..., None] + (sheen[..., None] * (ident.hair_rgb + 0.12))


def _hair_back(sc: _Scene) -> None:
    ident = sc.ident
    if ident.hair_style not in ("medium", "long"):
        return
    v = ident.hair_volume
    end = 1.2 + (0.55 if ident.hair_style == "medium" else 2.2) + sc.rng.normal(0, 0.1)
    sk = _skull(ident, v + 0.06)
    wide = sk[0, 0] + 0.08
    side = np.array([[wide, 0.6, -0.3], [wide + 0.15, end - 0.4, -0.3], [wide + 0.05, end, -0.3],
                     [0.5, end + 0.1, -0.3]])
    pts = sc.pose.project(np.concatenate([side[::-1], sk, side * [-1, 1, 1]]))
    curve = _catmull(pts, True, 6)
    curve += sc.rng.standard_normal(curve.shape) * 0.012 * sc.scale
    _put_hair(sc, sc.cover(curve, pad=3), 0.78)


def _neck_and_clothes(sc: _Scene) -> None:
    ident, rng = sc.ident, sc.rng
    nw = ident.neck_width * ident.face_width
    neck = sc.pose.project(np.array([[-nw, 0.9, -0.3], [-nw - 0.05, 2.3, -0.3], [-nw - 0.25, 3.4, -0.3],
                                     [nw + 0.25, 3.4, -0.3], [nw + 0.05, 2.3, -0.3], [nw, 0.9, -0.3]]))
    jaw_y = sc.plane(sc.lm[8])[1]
    neck_shade = 0.5 + 0.3 * np.clip((sc.uv[..., 1] - jaw_y) / 0.6, 0, 1)
    tone = sc.shade_rgb.mean((0, 1))
    sc.put(sc.cover(_catmull(neck, True, 4)), sc.body_img * (neck_shade[..., None] * tone * 1.15), BG)
    ny = 2.35 + rng.uniform(-0.1, 0.25)
    cloth = np.array([[-4, 3.4], [-2.2, ny + 0.2], [-nw - 0.05, ny], [0, ny + rng.uniform(0.1, 0.5)],
                      [nw + 0.05, ny], [2.2, ny + 0.2], [4, 3.4], [4, 7], [-4, 7]])
    cloth = sc.pose.project(np.concatenate([cloth, np.full((len(cloth), 1), -0.3)], 1))
    folds = 1 + 0.12 * _noise(rng, sc.size, 5)[..., None]
    sc.put(sc.cover(cloth), ident.cloth_rgb.astype(np.float32) * (0.7 + 0.3 * tone) * folds, BG)


def _ears(sc: _Scene) -> None:
    e = sc.ident.ear_size
    for side, j in ((-1, 0), (1, 16)):
        x0 = sc.shape[j, 0] - side * 0.07
        ear = np.array([[x0, -0.18], [x0 + side * 0.14 * e, -0.3 * e], [x0 + side * 0.24 * e, -0.1],
                        [x0 + side * 0.2 * e, 0.3 * e], [x0 + side * 0.1 * e, 0.55 * e], [x0, 0.62 * e]])
        ear = sc.pose.project(np.concatenate([ear, np.full((6, 1), -0.25)], 1))
        m = sc.cover(_catmull(ear, True, 5))
        sc.put(m, sc.body_img[m.box] * sc.shade_rgb[m.box] * np.array([0.85, 0.76, 0.74], np.float32), BG)


def _face(sc: _Scene) -> None:
    jaw = _catmull(sc.lm[:17], False, 6)
    skull = _catmull(sc.pose.project(_skull(sc.ident, 0.0)), False, 3)[1:-1]
    m = sc.cover(np.concatenate([jaw, skull]))
    sc.face = m
    edge = np.clip(_blur(m.full(sc.size), 0.05 * sc.scale), 0, 1)[m.box]   # darker towards the outline
    sc.put(m, sc.skin_lit[m.box] * (0.7 + 0.3 * edge[..., None]), SKIN)


def _nose(sc: _Scene) -> None:
    lm, ex, ey = sc.lm, sc.ex, sc.ey
    poly = _catmull(np.array([
        lm[27] - 0.09 * ex, lm[29] - 0.13 * ex, lm[31] - 0.06 * ex - 0.02 * ey, lm[31] + 0.04 * ey,
        lm[33] + 0.05 * ey, lm[35] + 0.04 * ey, lm[35] + 0.06 * ex - 0.02 * ey, lm[29] + 0.13 * ex,
        lm[27] + 0.09 * ex]), True, 4)
    m = sc.cover(poly)
    sc.put(m, sc.skin_lit, NOSE)
    for c in ((lm[31] + lm[32]) / 2 - 0.015 * ey, (lm[34] + lm[35]) / 2 - 0.015 * ey):
        sc.put(sc.cover(_ellipse(c, 0.055 * ex, 0.028 * ey, 16)), sc.skin * 0.22, opacity=0.85)


def _brows(sc: _Scene) -> None:
    ident = sc.ident
    for idx, label, thick_at_end in ((slice(17, 22), R_BROW, True), (slice(22, 27), L_BROW, False)):
        curve = _catmull(sc.lm[idx], False, 6)
        k = np.linspace(0, 1, len(curve))
        w = ident.brow_thickness * sc.scale * (1.0 - 0.55 * ((1 - k) if thick_at_end else k))
        m = sc.cover(_band(curve, 0.3 * w, 0.7 * w))
        hairs = np.clip(0.85 + 0.3 * _noise(sc.rng, sc.size, sc.size / 5)[m.box], 0.5, 1)
        rgb = ident.brow_rgb.astype(np.float32) * (0.65 + 0.35 * sc.shade[m.box][..., None])
        sc.put(_Mask(m.a * hairs, m.box), rgb)
        sc.parsing[m.box][m.a >= 0.5] = label


def _eyes(sc: _Scene) -> None:
    ident, rng, lm = sc.ident, sc.rng, sc.lm
    gaze = rng.normal(0, [0.1, 0.04])
    for idx, label, outer_first in ((slice(36, 42), R_EYE, True), (slice(42, 48), L_EYE, False)):
        e = lm[idx]
        width = float(np.linalg.norm(e[3] - e[0]))
        c = e.mean(0)
        upper = _catmull(e[[0, 1, 2, 3]], False, 8)
        m = sc.cover(_catmull(e, True, 8), pad=int(0.5 * width))
        ys, xs = sc.yy[m.box], sc.xx[m.box]
        order = np.argsort(upper[:, 0])
        lid_y = np.interp(xs, upper[order, 0], upper[order, 1])
        below = np.clip((ys - lid_y) / max(width * 0.3, 1e-3), 0, 1)[..., None]   # lid shadow
        shade = sc.shade[m.box][..., None]
        sclera = np.array([0.9, 0.86, 0.83], np.float32) * (0.5 + 0.5 * below) * (0.65 + 0.35 * shade)
        sc.put(m, sclera, label)
        ic = c + gaze * width - 0.03 * width * sc.ey / sc.scale
        ir = 0.25 * width
        iris_m = sc.cover(_ellipse(ic, np.array([ir, 0]), np.array([0, ir]), 24), box=m.box)
        ia = _Mask(iris_m.a * m.a, m.box)
        rr = np.hypot(xs - ic[0], ys - ic[1]) / ir
        ang = np.arctan2(ys - ic[1], xs - ic[0])
        fib = 1 + 0.15 * np.sin(ang * 11 + rng.uniform(0, 6)) * np.sin(ang * 5)
        iris = ident.iris_rgb.astype(np.float32) * ((1.2 - 0.7 * rr ** 2) * fib)[..., None] * (0.45 + 0.55 * below)
        iris = np.where((rr < 0.45)[..., None], np.float32(0.03), iris)
        sc.put(ia, iris)
        lxy = np.array(sc.light[:2]) / (np.linalg.norm(sc.light[:2]) + 1e-6)
        g = ic + lxy * 0.35 * ir
        glint = np.exp(-0.5 * (np.hypot(xs - g[0], ys - g[1]) / max(0.2 * ir, 0.4)) ** 2) * m.a
        sc.put(_Mask(glint.astype(np.float32), m.box), (1.0, 1.0, 1.0), opacity=0.8)
        # lashes and lids
        lw = (0.035 + 0.03 * ident.eyeliner) * sc.scale
        prof = np.linspace(1.0, 0.45, len(upper)) if outer_first else np.linspace(0.45, 1.0, len(upper))
        sc.put(sc.cover(_band(upper, lw * prof, 0.35 * lw * prof)),
               np.array([0.05, 0.035, 0.03], np.float32) + 0.25 * ident.brow_rgb.astype(np.float32), opacity=0.92)
        lower = _catmull(e[[3, 4, 5, 0]], False, 6)
        sc.put(sc.cover(_band(lower, 0.22 * lw, 0.22 * lw)), sc.skin * 0.45, opacity=0.35)
        lid = sc.cover(_band(upper, 0.13 * sc.scale, -0.6 * lw * prof))
        sc.put(lid, sc.skin_lit[lid.box] * (0.72 - 0.1 * ident.eyeliner), opacity=0.6)
        crease = upper - 0.12 * sc.ey
        sc.put(sc.cover(_band(crease, 0.3 * lw, 0.3 * lw)), sc.skin * 0.45, opacity=0.35)


def _mouth(sc: _Scene) -> None:
    ident, lm = sc.ident, sc.lm
    outer_up = _catmull(lm[48:55], False, 6)
    inner_up = _catmull(lm[60:65], False, 6)
    outer_lo = _catmull(lm[[54, 55, 56, 57, 58, 59, 48]], False, 6)
    inner_lo = _catmull(lm[[64, 65, 66, 67, 60]], False, 6)
    lip_img = ident.lip_rgb.astype(np.float32) * sc.shade_rgb * (0.95 + 0.05 * sc.skin_tex[..., None])
    inner = sc.cover(np.concatenate([inner_up, inner_lo[1:-1]]))
    if inner.a.max() >= 0.5:
        sc.put(inner, np.array([0.2, 0.06, 0.06], np.float32) * sc.shade_rgb[inner.box], MOUTH)
        down = sc.ey / np.linalg.norm(sc.ey)
        teeth = sc.cover(np.concatenate([inner_up, (inner_up + (0.07 + 0.04 * sc.var.smile) * sc.scale * down)[::-1]]),
                         box=inner.box)
        t = teeth.a * inner.a
        u = sc.uv[inner.box][..., 0] - sc.plane(lm[62])[0]
        gap = 0.82 + 0.18 * np.cos(u / 0.09 * np.pi) ** 2
        rgb = np.array([0.88, 0.84, 0.78], np.float32) * (gap * (0.55 + 0.45 * sc.shade[inner.box]))[..., None]
        sc.put(_Mask(t, inner.box), rgb)
    sc.put(sc.cover(np.concatenate([outer_up, inner_up[::-1]])), lip_img * 0.85, U_LIP)
    hl = np.zeros((sc.size, sc.size), np.float32)
    sc.add_gauss(hl, 0.3, sc.plane((lm[57] + lm[66]) / 2), 0.11, 0.03)
    sc.put(sc.cover(np.concatenate([outer_lo, inner_lo[::-1]])), lip_img * (1 + hl[..., None]), D_LIP)
    if inner.a.max() < 0.5:
        sc.put(sc.cover(_band(inner_up, 0.014 * sc.scale, 0.014 * sc.scale)), ident.lip_rgb * 0.3, opacity=0.75)


def _put_hair(sc: _Scene, m: _Mask, brightness: float) -> None:
    """Hair through a softened edge, darker towards its outline (volume); labelled where it covers."""
    soft = _blur(m.a, 0.4 * sc.size / 128)
    depth = _blur(m.a, 0.12 * sc.scale)
    rgb = sc.hair_img[m.box] * (brightness * (0.55 + 0.5 * depth))[..., None]
    sc.put(_Mask(soft, m.box), rgb)
    sc.parsing[m.box][m.a >= 0.5] = HAIR


def _hair_front(sc: _Scene) -> None:
    ident, shape = sc.ident, sc.shape
    if ident.hair_style == "bald":
        return
    buzz = ident.hair_style == "buzz"
    v = 0.0 if buzz else ident.hair_volume
    short = ident.hair_style in ("buzz", "short")
    sk = _skull(ident, v, y0=-0.3 if short else 0.05, n=28)
    hl = ident.hairline
    if ident.bangs:
        hl = float(np.mean(shape[17:27, 1])) - sc.rng.uniform(0.1, 0.22)
    half = 1.1 * ident.face_width
    xs = np.linspace(-1.0, 1.0, 15) * half
    rel = np.abs(xs) / half
    ys = hl + (0.05 if ident.bangs else -0.12) * rel + (0.55 if ident.bangs else 0.8) * rel ** 4 \
        + 0.05 * np.sin(rel * 9) * ident.bangs + 0.03 * ident.part * (xs > 0)
    ys = np.minimum(ys, -0.3 if short else -0.15)
    line = _on_head(xs, ys, 0.05)
    cap = _catmull(np.concatenate([sc.pose.project(sk), sc.pose.project(line)]), True, 3)
    m = sc.cover(cap, pad=3)
    if buzz:
        sc.put(m, sc.hair_img * 0.6 + sc.skin_lit * 0.4, HAIR, opacity=0.8)
        return
    # the hair's soft shadow on the forehead
    shadow = _blur(m.full(sc.size), 0.05 * sc.scale)
    shadow = np.roll(shadow, int(round(0.04 * sc.scale)), axis=0) * sc.face.full(sc.size)
    sc.canvas *= (1 - 0.3 * shadow)[..., None]
    _put_hair(sc, m, 1.0)


def _glasses(sc: _Scene) -> None:
    ident, lm, ex, ey = sc.ident, sc.lm, sc.ex, sc.ey
    frame = ident.glasses_rgb.astype(np.float32)
    power = 2.0 if ident.glasses_round else 5.0
    rims = []
    for idx in (slice(36, 42), slice(42, 48)):
        c = lm[idx].mean(0) - 0.02 * ey
        outer = _ellipse(c, 0.32 * ex, 0.22 * ey, 40, power)
        inner = _ellipse(c, 0.28 * ex, 0.185 * ey, 40, power)
        rims.append(outer)
        sc.put(sc.cover(inner), (1.0, 1.0, 1.0), opacity=0.08)
        sc.put(sc.cover(outer, erase=(inner,)), frame * (0.8 + 0.4 * sc.shade[..., None]))
    bridge = _catmull(np.array([rims[0][0], lm[27] - 0.03 * ey, rims[1][20]]), False, 6)
    sc.put(sc.cover(_band(bridge, 0.025 * sc.scale, 0.025 * sc.scale)), frame)
    for start, j in ((rims[0][20], 0), (rims[1][0], 16)):
        arm = _catmull(np.array([start, lm[j] - 0.15 * ey]), False, 4)
        sc.put(sc.cover(_band(arm, 0.02 * sc.scale, 0.02 * sc.scale)), frame)


def _camera(sc: _Scene) -> np.ndarray:
    """White balance, exposure, lens blur and sensor noise -> uint8."""
    rng = sc.rng
    img = sc.canvas * np.exp(rng.normal(0, [0.04, 0.02, 0.05])).astype(np.float32) * rng.uniform(0.9, 1.12)
    img = _blur(img.astype(np.float32), rng.uniform(0.35, 0.7) * sc.size / 128)
    img += rng.normal(0, rng.uniform(0.004, 0.012), img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def _render(identity: Identity, variation_seed: int, size: int, glasses_prob: float) -> tuple[FaceSample, dict]:
    rng = _rng(identity.seed, variation_seed, 0x7A)
    var = _sample_variation(rng, glasses_prob)
    sc = _Scene(identity, var, size, rng)
    _shading(sc)
    _skin(sc)
    _hair_texture(sc)
    for part in (_background, _hair_back, _neck_and_clothes, _ears, _face, _nose, _brows, _eyes, _mouth,
                 _hair_front):
        part(sc)
    if var.glasses:
        _glasses(sc)
    sample = FaceSample(image=_camera(sc), landmarks=sc.lm.astype(np.float32), parsing=sc.parsing,
                        identity=identity.name)
    return sample, var.attrs()


def render_face(identity: Identity, variation_seed: int, size: int, glasses_prob: float = 0.15) -> FaceSample:
    """Render one image of ``identity``; pose, expression, light, background and glasses follow the seed."""
    return _render(identity, variation_seed, size, glasses_prob)[0]


# --------------------------------------------------------------------------------------------- rows

def generate_rows(cfg: SyntheticSource, seed: int, limit: int | None = None) -> Iterator[dict]:
    """Rows of schema ``RAW``: ``cfg.n_identities`` people x ``cfg.images_per_identity`` images each."""
    count = 0
    for i in range(cfg.n_identities):
        ident = sample_identity(int(_rng(seed, i, 0x1D).integers(2 ** 31)), name=f"syn-{i:04d}")
        for k in range(cfg.images_per_identity):
            if limit is not None and count >= limit:
                return
            vseed = int(_rng(seed, i, k, 0x7A).integers(2 ** 31))
            s, attrs = _render(ident, vseed, cfg.size, cfg.glasses_prob)
            attrs.update(identity_seed=ident.seed, variation_seed=vseed, hair_style=ident.hair_style,
                         hair_colour=ident.hair_colour, eye_colour=ident.eye_colour,
                         skin_tone=round(ident.skin_tone, 3))
            yield {
                "image_id": f"syn-{i:04d}-{k:02d}", "identity": ident.name, "source": "synthetic",
                "image": encode_png(s.image), "occluded": None,
                "landmarks": s.landmarks.reshape(-1).tolist(), "parsing": encode_png(s.parsing),
                "attrs": json.dumps(attrs, sort_keys=True),
            }
            count += 1
