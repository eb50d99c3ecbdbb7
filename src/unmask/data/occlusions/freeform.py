"""Seed 004-style free-form occluders: sunglasses, a hand, a scarf, or brush strokes (one per image).

Seed 004 (Sec. 4.4.1) paints sunglasses, scarves, hands and the like over CelebA faces; we draw
them from the landmarks. Brush strokes follow DeepFill v2's free-form masks: 1-4 strokes, each 4-12
vertices joined by segments whose directions alternate between about +2*pi/5 and -2*pi/5
(+- 2*pi/15) from a random base heading, with lengths ~ N(r, r/2) for r = image diagonal / 8 and
widths 12-40 px at 256 px (scaled with the image here).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from unmask.data.occlusions.base import Canvas, Layer, Occluder, Occlusion, composite
from unmask.data.occlusions.geometry import FaceFrame, capsule, check_landmarks, ellipse, face_width
from unmask.data.occlusions.patterns import edge_falloff, fabric, grain, jitter, random_colour, shade, value_noise

LENS_COLOURS = {"black": (22, 22, 24), "brown": (52, 36, 22), "green": (24, 44, 32),
                "blue": (30, 42, 78), "mirror": (150, 160, 172)}
FRAME_COLOURS = {"black": (18, 18, 18), "gold": (190, 160, 80), "silver": (170, 172, 178),
                 "tortoise": (96, 58, 30), "red": (160, 30, 36)}
SKIN_TONES = ((255, 219, 190), (241, 194, 160), (224, 172, 130), (198, 134, 94), (160, 100, 66),
              (112, 70, 44), (80, 50, 32))


def _superellipse(centre: np.ndarray, rx: float, ry: float, power: float, angle: float,
                  n: int = 48) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    x = rx * np.sign(c) * np.abs(c) ** (2 / power)
    y = ry * np.sign(s) * np.abs(s) ** (2 / power)
    ca, sa = np.cos(angle), np.sin(angle)
    return np.stack([centre[0] + ca * x - sa * y, centre[1] + sa * x + ca * y], axis=1)


def sunglasses(image: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> tuple[list[Layer], dict]:
    """Two lenses over the eyes (landmarks 36-47) in a frame, a bridge and temples to the jaw ends."""
    h, w = image.shape[:2]
    frame = FaceFrame.from_landmarks(lm)
    angle = float(np.arctan2(frame.ex[1], frame.ex[0]))
    eye_w = (np.hypot(*(lm[39] - lm[36])) + np.hypot(*(lm[45] - lm[42]))) / 2
    rx = eye_w * rng.uniform(0.85, 1.05)
    ry = rx * rng.uniform(0.65, 0.85)
    power = float(rng.choice([2.0, 3.0, 4.5]))  # round, soft, wayfarer-square
    thick = max(1.0, rx * rng.uniform(0.12, 0.22))
    lens_names, frame_names = list(LENS_COLOURS), list(FRAME_COLOURS)
    lens_name, frame_name = lens_names[rng.integers(len(lens_names))], frame_names[rng.integers(len(frame_names))]
    centres = [lm[36:42].mean(0) + 0.1 * ry * frame.ey, lm[42:48].mean(0) + 0.1 * ry * frame.ey]

    rims, lenses = Canvas(h, w), Canvas(h, w)
    for ci in centres:
        rims.polygon(_superellipse(ci, rx + thick, ry + thick, power, angle))
        lenses.polygon(_superellipse(ci, rx, ry, power, angle))
    inner = [centres[0] + rx * frame.ex, centres[1] - rx * frame.ex]
    lift = -0.35 * ry * frame.ey
    rims.polyline(np.array([inner[0] + lift, (inner[0] + inner[1]) / 2 + 1.3 * lift, inner[1] + lift]), thick)
    for ci, end, sign in ((centres[0], lm[0], -1), (centres[1], lm[16], 1)):
        start = ci + sign * (rx + thick / 2) * frame.ex + lift
        rims.polyline(np.array([start, end + lift]), thick * 0.8)

    u, v = frame.pixel_uv(h, w)
    cu, cv_ = frame.to_local(np.array(centres)).mean(0)
    factor = 0.75 + 0.45 * np.clip((v - cv_) / (2 * ry) + 0.5, 0, 1)  # darker at the top
    streak = np.exp(-(((u - cu) + 0.8 * (v - cv_) - rng.uniform(-rx, rx)) / (0.25 * rx)) ** 2)
    lens_rgb = jitter(rng, LENS_COLOURS[lens_name], 6)
    lens_colour = np.clip(shade(lens_rgb, factor) + 70 * streak[..., None], 0, 255)
    frame_rgb = jitter(rng, FRAME_COLOURS[frame_name], 8)
    attrs = {"lens": lens_name, "frame": frame_name, "shape": {2.0: "round", 3.0: "soft", 4.5: "square"}[power]}
    return [(rims.alpha(), frame_rgb), (lenses.alpha(), lens_colour)], attrs


def hand(image: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> tuple[list[Layer], dict]:
    """A palm ellipse with four finger capsules and a thumb, skin-coloured and shaded, over part of the face."""
    h, w = image.shape[:2]
    fw = face_width(lm)
    targets = {"mouth": lm[48:68].mean(0), "left_cheek": (lm[3] + lm[31]) / 2,
               "right_cheek": (lm[13] + lm[35]) / 2, "eyes": lm[36:48].mean(0), "chin": (lm[8] + lm[57]) / 2}
    where = list(targets)[rng.integers(len(targets))]
    theta = rng.uniform(-np.pi * 0.95, -np.pi * 0.05)  # fingers point upwards-ish
    d = np.array([np.cos(theta), np.sin(theta)])       # along the fingers
    n = np.array([-d[1], d[0]])                        # across the palm
    scale = fw * rng.uniform(0.9, 1.2)
    palm_centre = targets[where] - d * 0.12 * scale + rng.normal(0, 0.04 * fw, 2)
    prx, pry = 0.2 * scale, 0.22 * scale                 # across, along
    palm = Canvas(h, w).polygon(ellipse(palm_centre, pry, prx, theta))
    thumb_side = 1 if rng.integers(2) else -1
    t0 = palm_centre + thumb_side * n * 0.12 * scale - d * 0.05 * scale
    t_dir = d * np.cos(0.8) + thumb_side * n * np.sin(0.8)
    palm.polygon(capsule(t0, t0 + t_dir * 0.26 * scale, 0.055 * scale))
    fingers_a, fingers_b = Canvas(h, w), Canvas(h, w)
    lengths = np.array([0.3, 0.36, 0.34, 0.27]) * scale * rng.uniform(0.9, 1.1, 4)
    for i, length in enumerate(lengths):
        across = (i - 1.5) * 0.095 * scale * -thumb_side
        base = palm_centre + d * 0.15 * scale + n * across
        tip = base + (d + n * 0.08 * (i - 1.5)) * length
        (fingers_a if i % 2 == 0 else fingers_b).polygon(capsule(base, tip, 0.048 * scale))
    skin = jitter(rng, SKIN_TONES[rng.integers(len(SKIN_TONES))], 10)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    along = ((x - palm_centre[0]) * d[0] + (y - palm_centre[1]) * d[1]) / (0.6 * scale)
    ramp = 1 - 0.12 * along + 0.1 * ((x - palm_centre[0]) * n[0] + (y - palm_centre[1]) * n[1]) / scale
    layers = []
    for canvas in (palm, fingers_a, fingers_b):
        a = canvas.alpha()
        edge = edge_falloff(a >= 0.5, 0.05 * scale)
        layers.append((a, shade(skin, ramp * (0.7 + 0.3 * np.sqrt(edge)))))
    return layers, {"over": where, "skin": [int(c) for c in skin]}


def scarf(image: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> tuple[list[Layer], dict]:
    """Cloth pulled up over the lower face, from between nose tip and lips to beyond the image bottom."""
    h, w = image.shape[:2]
    frame = FaceFrame.from_landmarks(lm)
    loc = frame.to_local(lm)
    fw = face_width(lm)
    v_top = loc[30, 1] + rng.uniform(-0.3, 0.35) * (loc[51, 1] - loc[30, 1])
    u = np.linspace(loc[0, 0] - 0.6 * fw, loc[16, 0] + 0.6 * fw, 40)
    sag = 0.08 * fw * ((u - loc[30, 0]) / fw) ** 2  # the scarf rises towards the nose
    wave = 0.025 * fw * np.sin(u / fw * rng.uniform(8, 14) + rng.uniform(0, 2 * np.pi))
    top = np.stack([u, v_top + sag + wave], axis=1)
    far = loc[:, 1].max() + 2 * (h + w)
    polygon = np.concatenate([top, [[u[-1], far], [u[0], far]]])
    alpha = Canvas(h, w).polygon(frame.to_image(polygon)).alpha()
    pu, pv = frame.pixel_uv(h, w)
    field, attrs = fabric(rng, pu, pv, fw)
    phi = rng.uniform(-0.6, 0.6)
    folds = np.sin(2 * np.pi * (pu * np.cos(phi) + pv * np.sin(phi)) / (fw * rng.uniform(0.18, 0.3))
                   + 3 * value_noise(rng, h, w, max(2.0, fw / 4)))
    factor = (0.88 + 0.12 * folds) * grain(rng, (h, w), 0.03)
    factor *= 0.75 + 0.25 * np.sqrt(edge_falloff(alpha >= 0.5, 0.08 * fw))
    return [(alpha, shade(field, factor))], attrs


def strokes(image: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> tuple[list[Layer], dict]:
    """DeepFill v2-style free-form brush strokes (see the module docstring), starting on the face."""
    h, w = image.shape[:2]
    k = min(h, w) / 256
    radius = np.hypot(h, w) / 8
    lo, hi = lm.min(0), lm.max(0)
    canvas = Canvas(h, w)
    n_strokes = int(rng.integers(1, 5))
    for _ in range(n_strokes):
        p = rng.uniform(lo, hi)
        n_vertex = int(rng.integers(4, 13))
        mean_angle = 2 * np.pi / 5
        turn = rng.uniform(mean_angle - 2 * np.pi / 15, mean_angle + 2 * np.pi / 15, n_vertex)
        turn[::2] *= -1
        base = rng.uniform(0, 2 * np.pi)
        width = rng.uniform(12, 40) * k
        for i in range(n_vertex):
            heading = base + turn[i]
            length = np.clip(rng.normal(radius, radius / 2), 0, 2 * radius)
            q = np.clip(p + length * np.array([np.cos(heading), np.sin(heading)]), 0, [w - 1, h - 1])
            canvas.polyline(np.array([p, q]), width)
            p = q
    colour = random_colour(rng, sat=(0, 1), val=(0, 1)) if rng.uniform() < 0.7 else np.full(3, 255.0)
    return [(canvas.alpha(), colour)], {"strokes": n_strokes, "rgb": [int(c) for c in colour]}


STYLES: dict[str, Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[list[Layer], dict]]] = {
    "sunglasses": sunglasses, "hand": hand, "scarf": scarf, "strokes": strokes}


class FreeForm(Occluder):
    """One of :data:`STYLES`, drawn uniformly per image (or a fixed ``style``)."""

    name = "freeform"

    def __init__(self, style: str | None = None):
        if style is not None and style not in STYLES:
            raise ValueError(f"unknown free-form style {style!r} (choose from {', '.join(STYLES)})")
        self.style = style

    def __call__(self, image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> Occlusion:
        lm = check_landmarks(landmarks)
        style = self.style or list(STYLES)[rng.integers(len(STYLES))]
        layers, attrs = STYLES[style](image, lm, rng)
        out, mask = composite(image, layers)
        return Occlusion(out, mask, f"{self.name}:{style}", attrs)
