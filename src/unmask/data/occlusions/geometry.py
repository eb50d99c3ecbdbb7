"""Face geometry from the 68 iBUG landmarks, shared by every landmark-driven occluder.

Landmark groups: jaw 0-16 (image left to right, 8 = chin), brows 17-26, nose bridge 27-30, nostrils
31-35, eyes 36-41 (image left) and 42-47, mouth 48-67 (57 = bottom of the lower lip).

The face frame has ``u`` along the eye line (image left to right) and ``v`` down the face, so shapes
built in it follow a rolled head; a turned head shows up as landmark asymmetry (the nose tip moves
towards one jaw side), which shapes that follow the jaw inherit without any special casing.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from unmask.errors import UnmaskError

LEFT_JAW = np.arange(0, 9)        # top (near the ear) to chin, image-left side
RIGHT_JAW = np.arange(16, 7, -1)  # top to chin, image-right side
CHIN, NOSE_TOP, NOSE_TIP, LIP_BOTTOM = 8, 27, 30, 57


def check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (68, 2) or not np.isfinite(lm).all():
        raise UnmaskError(f"landmarks: need (68, 2) finite pixel coordinates, got shape {lm.shape}")
    return lm


@dataclass(frozen=True)
class FaceFrame:
    """Orthonormal frame at the eyes' midpoint: ``ex`` along the eye line, ``ey`` down the face."""

    origin: np.ndarray
    ex: np.ndarray
    ey: np.ndarray

    @classmethod
    def from_landmarks(cls, lm: np.ndarray) -> "FaceFrame":
        left, right = lm[36:42].mean(0), lm[42:48].mean(0)
        d = right - left
        n = float(np.hypot(*d))
        if n < 1e-6:
            raise UnmaskError("landmarks: the two eyes coincide; cannot place an occlusion")
        ex = d / n
        return cls(origin=(left + right) / 2, ex=ex, ey=np.array([-ex[1], ex[0]]))

    def to_local(self, pts: np.ndarray) -> np.ndarray:
        d = np.asarray(pts, np.float64) - self.origin
        return np.stack([d @ self.ex, d @ self.ey], axis=-1)

    def to_image(self, uv: np.ndarray) -> np.ndarray:
        uv = np.asarray(uv, np.float64)
        return self.origin + uv[..., :1] * self.ex + uv[..., 1:2] * self.ey

    def pixel_uv(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Local (u, v) of every pixel centre, each ``HxW float32``."""
        dy, dx = np.mgrid[0:height, 0:width].astype(np.float32)
        dx -= np.float32(self.origin[0])
        dy -= np.float32(self.origin[1])
        ex, ey = self.ex.astype(np.float32), self.ey.astype(np.float32)
        return dx * ex[0] + dy * ex[1], dx * ey[0] + dy * ey[1]


def jaw_at(local: np.ndarray, side: str, v: float) -> np.ndarray:
    """Where the jaw contour on ``side`` ("left"/"right", image sides) reaches height ``v`` (local).

    Above the contour's top it extends vertically; below the chin it returns the chin.
    """
    chain = local[LEFT_JAW if side == "left" else RIGHT_JAW]
    vs = chain[:, 1]
    if v <= vs[0]:
        return np.array([chain[0, 0], v])
    for i in range(len(chain) - 1):
        if vs[i] <= v <= vs[i + 1] and vs[i + 1] > vs[i]:
            t = (v - vs[i]) / (vs[i + 1] - vs[i])
            return chain[i] + t * (chain[i + 1] - chain[i])
    return chain[-1].copy()


def jaw_chain(local: np.ndarray, v_top: float) -> np.ndarray:
    """The jaw contour below height ``v_top``, from the image-left crossing round the chin to the right."""
    left = [jaw_at(local, "left", v_top)] + [local[i] for i in LEFT_JAW if local[i, 1] > v_top]
    right = [local[i] for i in RIGHT_JAW[::-1] if local[i, 1] > v_top and i != CHIN]
    right.append(jaw_at(local, "right", v_top))
    return np.array(left + right)


def anchor_points(landmarks: np.ndarray) -> np.ndarray:
    """The six MaskTheFace anchors ``a..f`` (``(6, 2)`` image pixels).

    a/c: jaw sides at the nose-tip height; b: middle of the nose bridge; d/f: jaw sides at the
    height of the bottom lip; e: the chin.
    """
    lm = check_landmarks(landmarks)
    frame = FaceFrame.from_landmarks(lm)
    loc = frame.to_local(lm)
    v_nose, v_lip = loc[NOSE_TIP, 1], loc[LIP_BOTTOM, 1]
    pts = [jaw_at(loc, "left", v_nose), (loc[NOSE_TOP] + loc[NOSE_TIP]) / 2, jaw_at(loc, "right", v_nose),
           jaw_at(loc, "left", v_lip), loc[CHIN], jaw_at(loc, "right", v_lip)]
    return frame.to_image(np.array(pts)).astype(np.float32)


def estimate_yaw(landmarks: np.ndarray) -> float:
    """Head yaw in degrees from landmark asymmetry; > 0 when the nose points towards image right.

    With ``dl``/``dr`` the distances from the nose tip to the left/right jaw at its height,
    ``yaw = asin((dl - dr) / (dl + dr))`` -- 0 for a frontal face, about 13 degrees when one side
    shows 1.6x as much cheek as the other.
    """
    lm = check_landmarks(landmarks)
    loc = FaceFrame.from_landmarks(lm).to_local(lm)
    v = loc[NOSE_TIP, 1]
    dl = loc[NOSE_TIP, 0] - jaw_at(loc, "left", v)[0]
    dr = jaw_at(loc, "right", v)[0] - loc[NOSE_TIP, 0]
    total = abs(dl) + abs(dr)
    if total < 1e-6:
        return 0.0
    return float(np.degrees(np.arcsin(np.clip((dl - dr) / total, -1, 1))))


def face_width(landmarks: np.ndarray) -> float:
    """Distance between the jaw's two ends (landmarks 0 and 16), at least 1 px."""
    return max(1.0, float(np.hypot(*(landmarks[16] - landmarks[0]))))


def bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, n: int = 16) -> np.ndarray:
    """Quadratic Bezier from ``p0`` to ``p2`` with control ``p1``, ``n`` points."""
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def ellipse(centre: np.ndarray, rx: float, ry: float, angle: float = 0.0, n: int = 48) -> np.ndarray:
    """Polygon of an ellipse rotated by ``angle`` radians."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(angle), np.sin(angle)
    x, y = rx * np.cos(t), ry * np.sin(t)
    return np.stack([centre[0] + c * x - s * y, centre[1] + s * x + c * y], axis=1)


def capsule(p0: np.ndarray, p1: np.ndarray, r: float, n: int = 12) -> np.ndarray:
    """Polygon of a stadium: the segment ``p0``-``p1`` thickened by radius ``r`` with round ends."""
    p0, p1 = np.asarray(p0, np.float64), np.asarray(p1, np.float64)
    base = np.arctan2(*(p1 - p0)[::-1])
    t0 = base + np.linspace(np.pi / 2, 3 * np.pi / 2, n)
    t1 = base + np.linspace(-np.pi / 2, np.pi / 2, n)
    arc0 = p0 + r * np.stack([np.cos(t0), np.sin(t0)], axis=1)
    arc1 = p1 + r * np.stack([np.cos(t1), np.sin(t1)], axis=1)
    return np.concatenate([arc1, arc0])


LOWER_FACE = list(range(1, 16)) + [28, 29]   # jaw line 1..15 and the nose bridge: a face mask's outline


def lower_face_region(landmarks: np.ndarray, size: int) -> np.ndarray:
    """Where a face mask would sit, from the 68 landmarks alone: the convex hull of the jaw line and
    the nose bridge, as a (size, size) bool map (``landmarks`` in that map's pixel coordinates). What
    ``unmask infer`` inpaints without a segmenter, and the segmentation studies' no-training baseline."""
    pts = np.round(np.asarray(landmarks, np.float64).reshape(-1, 2)[LOWER_FACE]).astype(np.int32)
    region = np.zeros((size, size), np.uint8)
    cv2.fillPoly(region, [cv2.convexHull(pts)], 1)
    return region.astype(bool)
