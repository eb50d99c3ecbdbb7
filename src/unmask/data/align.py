"""The align stage's library: FFHQ-style face alignment from 68 landmarks.

:func:`ffhq_quad` is the FFHQ crop rectangle (an oriented square) computed from the eyes and the mouth
corners. :func:`align_image` maps that square onto a ``size x size`` image as the FFHQ script does
(shrink, crop, reflect-pad with a blurred border, one quad warp, LANCZOS resize) and carries the 68
landmarks, a parsing map and an extra image (a source's own occluded photo) through the same geometry.
:func:`align_dataset` runs it over RAW shards and writes ALIGNED shards plus ``rejected.csv``: every
input row is either aligned or listed there with a reason, never dropped silently; when no row can be
aligned it still writes them, then fails with one line giving the counts by reason.

Folder photos whose identity is only their file name (RAW ``attrs["identity_from"] == "file"``: a flat
folder, or ``identity_from_subfolders: false``) also get dlib's 128-d face descriptor, computed here on
the full-resolution photo from its 68 landmarks and kept in ``attrs["face_embedding"]``: the split
stage clusters them into identities (:mod:`unmask.data.identities`). Labelled photos (sub-folders,
synthetic, named datasets) skip it: it costs about 0.3 s a face on one CPU core.

Coordinates: landmarks are pixel indices (pixel ``i`` spans ``[i, i+1)``, centre ``i``), as dlib gives
them. Every resampling step is tracked exactly in these terms, so aligned landmarks land on the aligned
features (FFHQ divides the quad by the shrink factor, a half-pixel approximation we do not copy).
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from unmask.config import AlignConfig
from unmask.data.identities import EMBEDDING_KEY, FROM_FILE, IDENTITY_FROM_KEY, embedding_to_json, face_embedding
from unmask.data.schema import ALIGNED, N_LANDMARKS
from unmask.errors import BadImageError, UnmaskError
from unmask.io.atomic import atomic_dir
from unmask.io.images import decode_png, encode_png, load_rgb
from unmask.io.shards import ShardWriter, count_rows, iter_rows

REJECTED_CSV = "rejected.csv"

# Rejection kinds: the key of AlignReport.reasons and the prefix of each rejected.csv reason.
BAD_IMAGE = "bad_image"
NO_FACE = "no_face"
MULTIPLE_FACES = "multiple_faces"
FACE_TOO_SMALL = "face_too_small"
BAD_LANDMARKS = "bad_landmarks"
BAD_PARSING = "bad_parsing"
BAD_OCCLUDED = "bad_occluded"
# how the one-line "no face aligned" error names each kind
KIND_WORDS = {BAD_IMAGE: "bad image", NO_FACE: "no face", MULTIPLE_FACES: "several faces",
              FACE_TOO_SMALL: "too small", BAD_LANDMARKS: "bad landmarks", BAD_PARSING: "bad parsing map",
              BAD_OCCLUDED: "bad occluded image"}


# --------------------------------------------------------------------------- geometry
def _eyes_mouth(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    eye_left = lm[36:42].mean(axis=0)    # image-left eye (the subject's right)
    eye_right = lm[42:48].mean(axis=0)
    mouth = (lm[48] + lm[54]) * 0.5      # the two outer mouth corners
    return eye_left, eye_right, mouth


def eye_distance(landmarks: np.ndarray) -> float:
    """Inter-ocular distance in pixels: between the means of the two 6-point eye contours."""
    eye_left, eye_right, _ = _eyes_mouth(np.asarray(landmarks, np.float64))
    return float(np.hypot(*(eye_right - eye_left)))


def ffhq_quad(landmarks: np.ndarray) -> np.ndarray:
    """The FFHQ crop square, ``(4, 2) float64``: corners top-left, bottom-left, bottom-right, top-right.

    Its centre sits a tenth of the way from the eyes to the mouth, its x axis follows the eye line
    (tilted by the eye-mouth direction) and its side is ``max(4 |e2e|, 3.6 |e2m|)``.
    """
    lm = np.asarray(landmarks, np.float64)
    eye_left, eye_right, mouth = _eyes_mouth(lm)
    eye_avg = (eye_left + eye_right) * 0.5
    e2e = eye_right - eye_left
    e2m = mouth - eye_avg
    x = e2e - np.flipud(e2m) * [-1.0, 1.0]
    x /= np.hypot(*x)
    x *= max(np.hypot(*e2e) * 2.0, np.hypot(*e2m) * 1.8)
    y = np.flipud(x) * [-1.0, 1.0]
    c = eye_avg + e2m * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def _square_to_quad(quad: np.ndarray, side: float) -> np.ndarray:
    """The 2x3 affine taking output pixel indices of a ``side``-px square onto source pixel indices.

    The quad is a square, so the map is affine: the output square's corner (0, 0) goes to quad[0],
    (side, 0) to quad[3] and (0, side) to quad[1] (corners in continuous coordinates, where pixel ``i``
    spans ``[i, i+1)``; hence the half-pixel terms for pixel centres).
    """
    ex = (quad[3] - quad[0]) / side
    ey = (quad[1] - quad[0]) / side
    t = quad[0] + 0.5 * (ex + ey)  # output centre (0.5, 0.5) -> quad[0] + 0.5 in continuous coordinates
    return np.array([[ex[0], ey[0], t[0]], [ex[1], ey[1], t[1]]])


def _map_points(points: np.ndarray, quad: np.ndarray, size: int) -> np.ndarray:
    """Where source pixel-index ``points`` land in the aligned ``size x size`` image (pixel indices)."""
    m = _square_to_quad(quad, size)
    return np.linalg.solve(m[:, :2], (np.asarray(points, np.float64) - m[:, 2]).T).T


def _median_colour(img: np.ndarray) -> list[int]:
    """Per-channel median of a uint8 image, from histograms (much faster than sorting)."""
    half = (img.shape[0] * img.shape[1] + 1) // 2
    return [int(np.searchsorted(np.cumsum(cv2.calcHist([img], [c], None, [256], [0, 256])), half))
            for c in range(img.shape[2])]


def _padded_with_blur(img: np.ndarray, pad: tuple[int, int, int, int], qsize: float) -> np.ndarray:
    """Reflect-pad ``img`` by (left, top, right, bottom) and fade the padding to a blurred median (FFHQ)."""
    left, top, right, bottom = pad
    a = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_REFLECT_101)  # = numpy "reflect"
    h, w = a.shape[:2]
    xs = np.arange(w, dtype=np.float32)[None, :]
    ys = np.arange(h, dtype=np.float32)[:, None]
    fade = np.maximum(1.0 - np.minimum(xs / max(left, 1), (w - 1 - xs) / max(right, 1)),
                      1.0 - np.minimum(ys / max(top, 1), (h - 1 - ys) / max(bottom, 1)))
    sigma = qsize * 0.02
    if sigma > 0:
        to_blur = np.clip(fade * 3.0 + 1.0, 0.0, 1.0)
        blurred = cv2.GaussianBlur(a, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
        a = cv2.blendLinear(a, blurred, 1.0 - to_blur, to_blur)
    to_median = np.clip(fade, 0.0, 1.0)
    flat = np.empty_like(a)
    flat[...] = _median_colour(a)
    return cv2.blendLinear(a, flat, 1.0 - to_median, to_median)


def _warp_photo(img: np.ndarray, quad: np.ndarray, size: int) -> np.ndarray:
    """FFHQ's shrink / crop / pad / transform / resize of an RGB photo onto ``size x size``."""
    quad = quad.copy()
    qsize = float(np.hypot(*(quad[3] - quad[0])))

    shrink = int(np.floor(qsize / size * 0.5))
    if shrink > 1:
        h, w = img.shape[:2]
        rsize = (max(int(np.rint(w / shrink)), 1), max(int(np.rint(h / shrink)), 1))
        img = np.asarray(Image.fromarray(img).resize(rsize, Image.Resampling.LANCZOS))
        quad = (quad + 0.5) * [rsize[0] / w, rsize[1] / h] - 0.5
        qsize /= shrink

    border = max(int(np.rint(qsize * 0.1)), 3)
    lo = np.floor(quad.min(axis=0)).astype(int)
    hi = np.ceil(quad.max(axis=0)).astype(int)
    h, w = img.shape[:2]
    x0, y0 = max(lo[0] - border, 0), max(lo[1] - border, 0)
    x1, y1 = min(hi[0] + border, w), min(hi[1] + border, h)
    if x1 - x0 < w or y1 - y0 < h:
        img = img[y0:y1, x0:x1]
        quad -= (x0, y0)
        lo -= (x0, y0)
        hi -= (x0, y0)

    h, w = img.shape[:2]
    pad = (max(-lo[0] + border, 0), max(-lo[1] + border, 0), max(hi[0] - w + border, 0), max(hi[1] - h + border, 0))
    if max(pad) > border - 4:
        pad = tuple(int(max(p, np.rint(qsize * 0.3))) for p in pad)
        img = _padded_with_blur(np.ascontiguousarray(img), pad, qsize)
        quad += pad[:2]

    # Sample the quad at least at the source's own resolution, then LANCZOS down (FFHQ: 4096 -> 1024).
    big = size * max(1, int(np.ceil(qsize / size)))
    warped = cv2.warpAffine(np.ascontiguousarray(img), _square_to_quad(quad, big), (big, big),
                            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    if big == size:
        return warped
    return np.asarray(Image.fromarray(warped).resize((size, size), Image.Resampling.LANCZOS))


def _warp_labels(labels: np.ndarray, quad: np.ndarray, size: int, scale: tuple[float, float]) -> np.ndarray:
    """Warp a label map with NEAREST, background (0) outside the source; ``scale`` = labels px per image px."""
    q = (quad + 0.5) * scale - 0.5
    return cv2.warpAffine(np.ascontiguousarray(labels), _square_to_quad(q, size), (size, size),
                          flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


@dataclass(frozen=True)
class Aligned:
    image: np.ndarray                # size x size x 3 uint8
    landmarks: np.ndarray            # (68, 2) float32, pixel indices in the aligned image
    parsing: Optional[np.ndarray]    # size x size uint8, or None
    extra: Optional[np.ndarray]      # size x size x 3 uint8, or None


def align_image(image: np.ndarray, landmarks: np.ndarray, size: int, parsing: Optional[np.ndarray] = None,
                extra: Optional[np.ndarray] = None) -> Aligned:
    """Align an RGB photo (and what comes with it) to a ``size x size`` FFHQ crop.

    ``landmarks`` are 68 points in ``image`` pixels. ``parsing`` is an ``HxW`` label map at any
    resolution with the image's aspect (warped with NEAREST, background outside); ``extra`` is an
    image of the same shape as ``image`` (warped exactly like it).
    """
    lm = np.asarray(landmarks, np.float64).reshape(N_LANDMARKS, 2)
    quad = ffhq_quad(lm)
    h, w = image.shape[:2]
    out_parsing = None
    if parsing is not None:
        ph, pw = parsing.shape[:2]
        out_parsing = _warp_labels(parsing, quad, size, (pw / w, ph / h))
    out_extra = None
    if extra is not None:
        if extra.shape != image.shape:
            raise ValueError(f"extra image shape {extra.shape} differs from the image's {image.shape}")
        out_extra = _warp_photo(extra, quad, size)
    return Aligned(image=_warp_photo(image, quad, size),
                   landmarks=_map_points(lm, quad, size).astype(np.float32),
                   parsing=out_parsing, extra=out_extra)


# --------------------------------------------------------------------------- dataset
class _Reject(Exception):
    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass
class AlignReport:
    n_in: int = 0
    n_aligned: int = 0
    n_rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # rejection kind -> count
    landmarks_from: dict[str, int] = field(default_factory=dict)  # "source" | "dlib" -> aligned count
    n_embedded: int = 0  # faces given a dlib face descriptor (folder photos: identities are decided at split)
    seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        return self.n_in / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        """What the stage writes to summary.json: counts only, so re-runs give identical outputs."""
        out = asdict(self)
        del out["seconds"]
        return out


def _source_landmarks(values: Any, image_id: str) -> np.ndarray:
    lm = np.asarray(values, np.float64)
    if lm.size != 2 * N_LANDMARKS:
        raise _Reject(BAD_LANDMARKS, f"{image_id}: {lm.size} landmark values, need {2 * N_LANDMARKS}")
    if not np.isfinite(lm).all():
        raise _Reject(BAD_LANDMARKS, f"{image_id}: landmarks contain NaN or infinity")
    return lm.reshape(N_LANDMARKS, 2)


def _dlib_landmarks(image: np.ndarray, image_id: str, cfg: AlignConfig) -> np.ndarray:
    from unmask.data.landmarks import find_faces

    faces, _ = find_faces(image, cfg.detector_upsample, cnn=cfg.cnn_fallback, pad=cfg.pad_retry,
                          face_crop=cfg.face_crop_fallback)
    if not faces:
        from unmask.data.mesh_faces import available

        tried = (("face mesh, " if available() else "") + "dlib HOG" + (", CNN" if cfg.cnn_fallback else "")
                 + (", padded" if cfg.pad_retry else ""))
        raise _Reject(NO_FACE, f"{image_id}: no face found ({tried}; dlib upsample {cfg.detector_upsample})")
    if len(faces) > 1:
        raise _Reject(MULTIPLE_FACES, f"{image_id}: {len(faces)} faces found, need exactly one")
    return faces[0].astype(np.float64)


def _check_face(lm: np.ndarray, shape: tuple[int, ...], image_id: str, min_eye_distance: float) -> None:
    h, w = shape[:2]
    eye_left, eye_right, mouth = _eyes_mouth(lm)
    key = np.stack([eye_left, eye_right, mouth])
    if (key < -0.5).any() or (key[:, 0] > w - 0.5).any() or (key[:, 1] > h - 0.5).any():
        raise _Reject(BAD_LANDMARKS, f"{image_id}: eyes or mouth outside the {w}x{h} image")
    with np.errstate(all="ignore"):
        quad = ffhq_quad(lm)
    if not np.isfinite(quad).all() or np.hypot(*(quad[3] - quad[0])) < 1.0:
        raise _Reject(BAD_LANDMARKS, f"{image_id}: landmarks give a degenerate crop (eyes and mouth collapse)")
    d = float(np.hypot(*(eye_right - eye_left)))
    if d < min_eye_distance:
        raise _Reject(FACE_TOO_SMALL, f"{image_id}: eye distance {d:.1f} px < {min_eye_distance:g} px")


def _decode_parsing(data: bytes, image_shape: tuple[int, ...], image_id: str) -> np.ndarray:
    try:
        labels = decode_png(data)
    except BadImageError as e:
        raise _Reject(BAD_PARSING, f"{image_id}: {e}") from None
    if labels.ndim != 2:
        raise _Reject(BAD_PARSING, f"{image_id}: parsing map has shape {labels.shape}, need HxW")
    (ph, pw), (h, w) = labels.shape, image_shape[:2]
    if abs(pw / ph - w / h) > 0.02 * (w / h):
        raise _Reject(BAD_PARSING, f"{image_id}: parsing map {pw}x{ph} does not match the {w}x{h} image")
    return labels


def _align_row(row: dict[str, Any], cfg: AlignConfig) -> tuple[dict[str, Any], str]:
    """The ALIGNED row for a RAW row and where its landmarks came from, or raise _Reject."""
    image_id = row["image_id"]
    try:
        image = load_rgb(row["image"] or b"", name=image_id)
    except BadImageError as e:
        raise _Reject(BAD_IMAGE, str(e)) from None

    if cfg.use_source_landmarks and row.get("landmarks") is not None:
        lm, origin = _source_landmarks(row["landmarks"], image_id), "source"
    else:
        lm, origin = _dlib_landmarks(image, image_id, cfg), "dlib"
    _check_face(lm, image.shape, image_id, cfg.min_eye_distance)

    parsing = _decode_parsing(row["parsing"], image.shape, image_id) if row.get("parsing") else None
    occluded = None
    if row.get("occluded"):
        try:
            occluded = load_rgb(row["occluded"], name=f"{image_id} (occluded)")
        except BadImageError as e:
            raise _Reject(BAD_OCCLUDED, str(e)) from None
        if occluded.shape != image.shape:
            raise _Reject(BAD_OCCLUDED, f"{image_id}: occluded image {occluded.shape[1]}x{occluded.shape[0]} "
                                        f"differs from the {image.shape[1]}x{image.shape[0]} photo")

    out = align_image(image, lm, cfg.size, parsing=parsing, extra=occluded)
    attrs = row.get("attrs")
    if attrs and IDENTITY_FROM_KEY in attrs:  # cheap test first: synthetic and named sources never embed
        parsed = json.loads(attrs)
        if parsed.get(IDENTITY_FROM_KEY) == FROM_FILE:  # named only by its file: its face says who it is
            parsed[EMBEDDING_KEY] = embedding_to_json(face_embedding(image, lm))
            attrs = json.dumps(parsed, sort_keys=True)
    return {
        **row,
        "attrs": attrs,
        "image": encode_png(out.image),
        "occluded": encode_png(out.extra) if out.extra is not None else None,
        "landmarks": out.landmarks.reshape(-1).tolist(),
        "parsing": encode_png(out.parsing) if out.parsing is not None else None,
    }, origin


def align_dataset(in_dir: str | Path, out_dir: str | Path, cfg: AlignConfig, progress: bool = True) -> AlignReport:
    """Align every RAW row of ``in_dir`` into ALIGNED shards in ``out_dir`` (written atomically).

    Rows that cannot be aligned go to ``out_dir/rejected.csv`` (image_id, reason); the report counts
    them by kind.
    """
    start = time.perf_counter()
    report = AlignReport()
    reasons: Counter[str] = Counter()
    origins: Counter[str] = Counter()
    total = count_rows(in_dir)
    with atomic_dir(out_dir) as tmp:
        rejected = io.StringIO()
        table = csv.writer(rejected, lineterminator="\n")
        table.writerow(["image_id", "reason"])
        with ShardWriter(tmp, ALIGNED) as writer:
            for row in tqdm(iter_rows(in_dir), total=total, desc="align", unit="img",
                            disable=None if progress else True):
                report.n_in += 1
                try:
                    out, origin = _align_row(row, cfg)
                except _Reject as r:
                    reasons[r.kind] += 1
                    table.writerow([row["image_id"], str(r)])
                    continue
                writer.write(out)
                origins[origin] += 1
                report.n_embedded += EMBEDDING_KEY in (out["attrs"] or "")
        (tmp / REJECTED_CSV).write_text(rejected.getvalue(), encoding="utf-8")
    report.n_aligned = sum(origins.values())
    report.n_rejected = sum(reasons.values())
    report.reasons = dict(sorted(reasons.items()))
    report.landmarks_from = dict(sorted(origins.items()))
    report.seconds = time.perf_counter() - start
    if report.n_aligned == 0:  # fail here, naming why, not two stages later with "no images to split"
        if report.n_in == 0:
            raise UnmaskError(f"{in_dir}: no images to align")
        counts = ", ".join(f"{KIND_WORDS.get(k, k)}: {n}" for k, n in reasons.most_common())
        raise UnmaskError(f"{out_dir}: no face aligned in {report.n_in} images ({counts}); "
                          f"see {Path(out_dir) / REJECTED_CSV}")
    return report
