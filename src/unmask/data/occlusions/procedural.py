"""Face masks painted from the landmarks: surgical, cloth, N95 and KN95.

The outline follows the jaw contour (landmarks 1-15) from just below the nose bridge, round the chin
(8), and closes with a top edge over the nose bridge (27-30) whose shape depends on the style -- so a
turned face, whose jaw landmarks are asymmetric, gets a turned mask for free. Shapes are rasterised
antialiased (:class:`~unmask.data.occlusions.base.Canvas`); colour, texture (pleats, fabric patterns,
grain) and shading (vertical gradient, light from a random side, darker towards the edges) are
vectorised fields over the mask's own coordinates ``s`` (0 left .. 1 right) and ``t`` (0 top edge ..
1 bottom edge). Straps or ear loops run from the mask's sides towards the ears.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from unmask.data.occlusions.base import Canvas, Layer, Occluder, Occlusion, composite
from unmask.data.occlusions.geometry import (CHIN, LIP_BOTTOM, NOSE_TIP, FaceFrame, bezier, check_landmarks,
                                             ellipse, jaw_at, jaw_chain)
from unmask.data.occlusions.patterns import edge_falloff, fabric, grain, jitter, shade, side_light, value_noise


@dataclass(frozen=True)
class MaskShape:
    """A fitted mask: its outline and the fields painters need (local = face-frame coordinates)."""

    frame: FaceFrame
    polygon: np.ndarray        # local outline, closed implicitly
    left_top: np.ndarray       # local corners where the top edge meets the sides
    right_top: np.ndarray
    left_low: np.ndarray       # local jaw points at the bottom-lip height (ear loops end here)
    right_low: np.ndarray
    nose: np.ndarray           # local top point over the nose bridge
    chin: np.ndarray           # local lowest point
    width: float               # mask width in px (u extent)
    u: np.ndarray              # HxW local coordinates of every pixel
    v: np.ndarray
    s: np.ndarray              # HxW in [0, 1]: across the mask, left to right
    t: np.ndarray              # HxW in [0, 1]: down the mask, top edge to bottom edge

    def seam_distance(self) -> np.ndarray:
        """Signed px distance of every pixel from the nose-to-chin line (< 0 on the image left)."""
        d = self.chin - self.nose
        n = np.array([d[1], -d[0]]) / max(np.hypot(*d), 1e-6)
        return (self.u - self.nose[0]) * n[0] + (self.v - self.nose[1]) * n[1]


@dataclass(frozen=True)
class MaskFit:
    """Per-style outline parameters, as fractions of the face width at the nose tip."""

    top_level: float = 0.45    # side corners' height between nose top (0) and nose tip (1)
    nose_lift: float = 0.0     # nose point raised above landmark 28, in face widths
    margin: float = 0.03       # jaw contour pushed outwards by this
    chin_drop: float = 0.04    # and the chin downwards by this
    chin_sharpness: float = 2.5  # spread of the chin drop in jaw points (small = pointed chin)
    top_edge: str = "peak"     # "peak" (two gentle curves meeting at the nose), "dome", "straight"


def fit_shape(landmarks: np.ndarray, height: int, width: int, fit: MaskFit) -> MaskShape:
    lm = check_landmarks(landmarks)
    frame = FaceFrame.from_landmarks(lm)
    loc = frame.to_local(lm)
    a = jaw_at(loc, "left", loc[NOSE_TIP, 1])
    c = jaw_at(loc, "right", loc[NOSE_TIP, 1])
    fw = max(c[0] - a[0], 1.0)
    centre = (loc[NOSE_TIP] + loc[LIP_BOTTOM]) / 2
    grown = loc.copy()
    out = grown - centre
    grown += fit.margin * fw * out / np.maximum(np.hypot(out[:, :1], out[:, 1:]), 1e-6)
    drop = np.exp(-((np.arange(68) - CHIN) / fit.chin_sharpness) ** 2) * (np.arange(68) < 17)
    grown[:, 1] += fit.chin_drop * fw * drop

    v_top = loc[28, 1] + fit.top_level * (loc[NOSE_TIP, 1] - loc[28, 1])
    bottom = jaw_chain(grown, v_top)
    lt, rt = bottom[0], bottom[-1]
    nose = loc[28] - np.array([0.0, fit.nose_lift * fw])
    if fit.top_edge == "dome":
        ctrl = np.array([nose[0], 2 * nose[1] - (lt[1] + rt[1]) / 2])
        top = bezier(lt, ctrl, rt, 24)
    elif fit.top_edge == "straight":
        top = np.concatenate([np.linspace(lt, nose, 12)[:-1], np.linspace(nose, rt, 12)])
    else:  # two shallow arcs bowing upwards, meeting at the nose
        lift = np.array([0.0, -0.03 * fw])
        top = np.concatenate([bezier(lt, (lt + nose) / 2 + lift, nose, 12)[:-1],
                              bezier(nose, (nose + rt) / 2 + lift, rt, 12)])
    top[:, 1] = np.maximum(top[:, 1], eye_floor(loc, top[:, 0], fw))
    lt, rt = top[0], top[-1]
    polygon = np.concatenate([bottom, top[::-1]])

    u, v = frame.pixel_uv(height, width)
    u0, u1 = polygon[:, 0].min(), polygon[:, 0].max()
    s = np.clip((u - u0) / max(u1 - u0, 1e-6), 0, 1)
    top_v = np.interp(u, *_monotone(top))
    bot_v = np.interp(u, *_monotone(bottom))
    t = np.clip((v - top_v) / np.maximum(bot_v - top_v, 1e-6), 0, 1)
    v_low = loc[LIP_BOTTOM, 1]
    chin = bottom[np.argmax(bottom[:, 1])]
    return MaskShape(frame, polygon, lt, rt, jaw_at(grown, "left", v_low), jaw_at(grown, "right", v_low),
                     nose, chin, float(u1 - u0), u, v, s.astype(np.float32), t.astype(np.float32))


def eye_floor(loc: np.ndarray, u: np.ndarray, fw: float, slope: float = 0.8) -> np.ndarray:
    """Highest a mask's top edge may reach at ``u`` without covering the eyes (landmarks 36-47).

    Each eye landmark casts a tent ``v_eye + margin - slope * |u - u_eye|``, so the edge may rise
    between the eyes (over the nose bridge) but stays below each eye; margin = max(1 px, 3 % width).
    """
    eyes = loc[36:48]
    margin = max(1.0, 0.03 * fw)
    tents = eyes[None, :, 1] + margin - slope * np.abs(u[:, None] - eyes[None, :, 0])
    return tents.max(axis=1)


def _monotone(chain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) of a left-to-right chain with u forced non-decreasing (for ``np.interp``)."""
    return np.maximum.accumulate(chain[:, 0]), chain[:, 1]


class ProceduralMask(Occluder):
    """Shared fitting, straps and compositing; subclasses paint the body and pick the straps."""

    fit: ClassVar[MaskFit] = MaskFit()

    def __call__(self, image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> Occlusion:
        h, w = image.shape[:2]
        shape = fit_shape(landmarks, h, w, self.fit)
        body = Canvas(h, w).polygon(shape.frame.to_image(shape.polygon)).alpha()
        inside = body >= 0.5
        colour, attrs, strap_rgb = self.paint(rng, shape, inside)
        light = side_light(shape.s, rng.uniform(0.1, 0.35), bool(rng.integers(2)))
        factor = light * (1 - rng.uniform(0.05, 0.15) * shape.t)  # vertical gradient
        factor *= 0.72 + 0.28 * np.sqrt(edge_falloff(inside, 0.15 * shape.width))
        layers: list[Layer] = []
        lines, strap_w = self.straps(shape, landmarks)
        canvas = Canvas(h, w)
        for line in lines:
            canvas.polyline(shape.frame.to_image(line), strap_w)
        layers.append((canvas.alpha(), np.asarray(strap_rgb, np.float32)))
        layers.append((body, shade(colour, factor)))
        layers.extend(self.extras(rng, shape, attrs, h, w))
        out, mask = composite(image, layers)
        return Occlusion(out, mask, self.name, attrs)

    @abstractmethod
    def paint(self, rng: np.random.Generator, shape: MaskShape,
              inside: np.ndarray) -> tuple[np.ndarray, dict, np.ndarray]:
        """The unlit body colour (HxWx3 or (3,)), the attributes drawn and the straps' RGB."""

    def straps(self, shape: MaskShape, landmarks: np.ndarray) -> tuple[list[np.ndarray], float]:
        """Ear loops by default: (local polylines, width px)."""
        return ear_loops(shape, landmarks), max(1.0, 0.022 * shape.width)

    def extras(self, rng: np.random.Generator, shape: MaskShape, attrs: dict, h: int, w: int) -> list[Layer]:
        """Layers drawn over the body (e.g. an exhalation valve)."""
        return []


def ear_loops(shape: MaskShape, landmarks: np.ndarray) -> list[np.ndarray]:
    """Two loops from each top corner out past the jaw end (ear) and back to the jaw at lip height."""
    loc = shape.frame.to_local(np.asarray(landmarks, np.float64))
    loops = []
    for top, low, ear_i, sign in ((shape.left_top, shape.left_low, 0, -1), (shape.right_top, shape.right_low, 16, 1)):
        ear = loc[ear_i] + np.array([sign * 0.06 * shape.width, 0.02 * shape.width])
        ctrl = 2 * ear - (top + low) / 2  # the curve passes through ``ear``
        loops.append(bezier(top, ctrl, low, 20))
    return loops


SURGICAL_COLOURS = {"white": (236, 238, 240), "blue": (128, 184, 226), "green": (126, 196, 182),
                    "black": (38, 38, 42), "pink": (238, 172, 192)}


class SurgicalMask(ProceduralMask):
    """Pleated three-ply mask in white, blue, green, black or pink, with a bound edge and ear loops."""

    name = "surgical"
    fit = MaskFit(top_level=0.45, margin=0.04, chin_drop=0.04, top_edge="peak")

    def paint(self, rng, shape, inside):
        name = list(SURGICAL_COLOURS)[rng.integers(len(SURGICAL_COLOURS))]
        base = jitter(rng, SURGICAL_COLOURS[name], 8)
        t = shape.t + 0.04 * np.sin(np.pi * shape.s)  # pleats sag slightly towards the middle
        factor = np.ones_like(t)
        n_pleats = int(rng.integers(2, 4))
        width = 0.05
        for k in range(n_pleats):
            tk = 0.25 + 0.5 * (k + 0.5) / n_pleats
            d = (t - tk) / width
            factor += 0.10 * np.exp(-(d + 0.6) ** 2) - 0.22 * np.exp(-(d - 0.5) ** 2)  # ridge, then shadow
        band = edge_falloff(inside, max(1.0, 0.05 * shape.width)) < 1
        factor = np.where(band, factor * 0.9, factor) * grain(rng, t.shape, 0.015)
        attrs = {"colour": name, "rgb": [int(x) for x in base], "pleats": n_pleats}
        return shade(base, factor), attrs, base * 0.97


class ClothMask(ProceduralMask):
    """Fabric mask: plain, stripes, checks, dots or a floral-ish pattern; rounded, with grain."""

    name = "cloth"
    fit = MaskFit(top_level=0.5, margin=0.05, chin_drop=0.07, top_edge="peak")

    def paint(self, rng, shape, inside):
        field, attrs = fabric(rng, shape.u, shape.v, shape.width)
        factor = 1 - 0.22 * (2 * shape.s - 1) ** 2  # the cloth bulges over nose and mouth
        wrinkles = value_noise(rng, *shape.s.shape, max(2.0, shape.width / 6))
        factor *= (0.92 + 0.12 * wrinkles) * grain(rng, shape.s.shape, 0.03)
        if rng.uniform() < 0.5:  # a centre seam, as on two-panel masks
            factor = np.where(np.abs(shape.seam_distance()) < max(0.5, 0.012 * shape.width), factor * 0.75, factor)
            attrs["seam"] = True
        return shade(field, factor), attrs, np.asarray(attrs["colours"][0], np.float64) * 0.9


N95_COLOURS = {"white": (240, 240, 234), "grey": (168, 170, 172), "cream": (228, 224, 206)}
STRAP_COLOURS = {"yellow": (238, 210, 60), "blue": (70, 110, 200), "white": (235, 235, 235),
                 "green": (90, 170, 110), "orange": (240, 150, 60)}


class N95Mask(ProceduralMask):
    """Moulded cup respirator: dome shading, a rim, head straps, optionally an exhalation valve."""

    name = "n95"
    fit = MaskFit(top_level=0.8, nose_lift=0.02, margin=0.01, chin_drop=0.08, chin_sharpness=3.0, top_edge="dome")

    def paint(self, rng, shape, inside):
        name = list(N95_COLOURS)[rng.integers(len(N95_COLOURS))]
        base = jitter(rng, N95_COLOURS[name], 6)
        r2 = (2 * shape.s - 1) ** 2 + (1.6 * shape.t - 0.9) ** 2
        factor = 1.05 - 0.2 * np.clip(r2, 0, 1.5)
        rim = edge_falloff(inside, max(1.0, 0.06 * shape.width)) < 1
        factor = np.where(rim, factor * 1.06, factor) * grain(rng, r2.shape, 0.03)
        valve = bool(rng.uniform() < 0.4)
        strap = list(STRAP_COLOURS)[rng.integers(len(STRAP_COLOURS))]
        attrs = {"colour": name, "valve": valve, "straps": strap}
        return shade(base, factor), attrs, jitter(rng, STRAP_COLOURS[strap], 10)

    def straps(self, shape, landmarks):
        """Two head straps, from upper and lower sides of the cup out towards the back of the head."""
        w = shape.width
        lines = []
        for top, low, sign in ((shape.left_top, shape.left_low, -1), (shape.right_top, shape.right_low, 1)):
            upper = top + (low - top) * 0.15
            lower = top + (low - top) * 0.85
            lines.append(np.array([upper, upper + [sign * 0.9 * w, -0.12 * w]]))
            lines.append(np.array([lower, lower + [sign * 0.9 * w, 0.05 * w]]))
        return lines, max(1.0, 0.03 * w)

    def extras(self, rng, shape, attrs, h, w):
        if not attrs["valve"]:
            return []
        side = -1 if rng.integers(2) else 1
        centre_local = np.array([shape.nose[0] + side * 0.22 * shape.width,
                                 shape.nose[1] + 0.6 * (shape.chin[1] - shape.nose[1])])
        centre = shape.frame.to_image(centre_local)
        r = 0.12 * shape.width
        angle = float(np.arctan2(shape.frame.ex[1], shape.frame.ex[0]))
        alpha = Canvas(h, w).polygon(ellipse(centre, r, r * 0.85, angle)).alpha()
        colour = jitter(rng, [(120, 122, 126), (236, 236, 232), (230, 120, 50)][rng.integers(3)], 8)
        d = np.hypot(shape.u - centre_local[0], shape.v - centre_local[1]) / r
        factor = np.where((d > 0.55) & (d < 0.7), 0.7, 1.0) * (1.1 - 0.25 * d)  # a ring, domed cap
        slits = (np.abs(np.sin((shape.v - centre_local[1]) / max(r, 1e-6) * 7)) < 0.25) & (d < 0.5)
        factor = np.where(slits, factor * 0.75, factor)
        return [(alpha, shade(colour, factor))]


class KN95Mask(ProceduralMask):
    """Folded KN95: white, pointed nose and chin, a central vertical seam, welded edges, ear loops."""

    name = "kn95"
    fit = MaskFit(top_level=0.5, nose_lift=0.04, margin=0.04, chin_drop=0.1, chin_sharpness=1.2,
               top_edge="straight")

    def paint(self, rng, shape, inside):
        base = jitter(rng, (242, 242, 240), 6)
        d = shape.seam_distance()
        lit_left = rng.integers(2) == 1
        factor = np.where((d < 0) == lit_left, 1.04, 0.9)  # the two folded halves catch light differently
        factor = np.where(np.abs(d) < max(0.5, 0.01 * shape.width), factor * 0.72, factor)  # the seam
        edge = edge_falloff(inside, max(1.0, 0.05 * shape.width))
        weld = (edge > 0.45) & (edge < 0.75)
        factor = np.where(weld, factor * 0.9, factor) * grain(rng, d.shape, 0.015)
        return shade(base, factor), {"colour": "white", "lit": "left" if lit_left else "right"}, base * 0.96


