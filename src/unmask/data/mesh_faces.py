"""MediaPipe FaceMesh as a face finder that sees masked faces, giving the 68-point (iBUG) layout.

dlib's detectors find about 59 % of real photos of people wearing masks (`../shared/REFERENCE-detectors.md`):
both look for a whole face. MediaPipe's FaceMesh runs its own short-range BlazeFace detector, then fits
468 points; with ``min_tracking_confidence=0`` it keeps the faces whose "face presence" score a mask
lowers, and it places the eyes and mouth corners best of the detectors measured there.

* Package: ``mediapipe==0.10.21`` (Google, **Apache-2.0**); the models (``face_detection_short_range.tflite``,
  ``face_landmark.tflite``) ship inside the wheel, nothing downloads. ``scripts/setup.sh`` installs it with
  ``--no-deps``: its metadata asks for protobuf<5, numpy<2 and a second OpenCV, none of which it needs
  here; protobuf 6.x (``pyproject.toml``) serves both it and mlflow. ``mediapipe>=0.10.30`` has no
  ``solutions`` and no face models.
* :data:`MESH_TO_68` picks, for each of the 68 iBUG points, the mesh point at the same place, so the rest
  of the project (alignment, dlib's face descriptor, the masks drawn on landmarks) is unchanged.
* A tight crop gives BlazeFace too little context, so a photo where nothing is found is tried again
  inside a grey border (:data:`GREY_PADS`), then mirrored (the detector is not symmetric).
* Every photo is shrunk to :data:`MAX_SIDE` first: time and memory are bounded whatever its size.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from functools import lru_cache
from typing import Optional

import numpy as np

MAX_FACES = 8
MAX_SIDE = 1280
GREY_PADS = (0.5, 1.0)        # border on each side, as a share of the photo's longer side
GREY = 127

# iBUG 68-point index -> MediaPipe FaceMesh (468) index at the same place. Image-left first, as dlib:
# jaw 0-16, brows 17-26, nose bridge 27-30, nostrils 31-35, eyes 36-47, outer lips 48-59, inner 60-67.
# Checked against dlib's 68 points on 111 unmasked shared crops (median distance in eye distances): eyes
# 0.03-0.06, mouth 0.03-0.07, nose 0.02-0.05; the jaw points 2-4 and 12-14 and inner brows are the mesh
# points nearest where dlib puts them (inside the 3-D silhouette), 0.08-0.13.
MESH_TO_68 = np.array([
    127, 234, 177, 215, 138, 136, 150, 176, 152, 400, 379, 365, 367, 435, 401, 454, 356,
    70, 63, 105, 66, 55, 285, 296, 334, 293, 300,
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    78, 82, 13, 312, 308, 317, 14, 87,
])

# the 68-point index each point becomes when the photo is mirrored left-right
FLIP_68 = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65])


def inside_frame(lm: np.ndarray, shape: tuple[int, ...]) -> bool:
    """Whether both eye centres and the mouth centre of 68 landmarks lie inside an image of ``shape``
    (a face found in a photo's padding -- the mirror image of a face cut by the frame -- is not)."""
    h, w = shape[:2]
    key = np.stack([lm[36:42].mean(0), lm[42:48].mean(0), (lm[48] + lm[54]) / 2])
    return bool(np.isfinite(key).all() and (key >= -0.5).all() and (key[:, 0] < w - 0.5).all()
                and (key[:, 1] < h - 0.5).all())


def available() -> bool:
    """Whether mediapipe's face mesh can be imported (``scripts/setup.sh`` installs it)."""
    try:
        _solution()
    except ImportError:
        return False
    return True


def version() -> Optional[str]:
    try:
        import mediapipe

        return str(mediapipe.__version__)
    except ImportError:
        return None


@lru_cache(maxsize=1)
def _solution():
    os.environ.setdefault("GLOG_minloglevel", "2")       # mediapipe's C++ start-up lines
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # protobuf 6 makes mediapipe print one harmless AttributeError (MessageFactory.GetPrototype) at import
    with contextlib.redirect_stderr(io.StringIO()), _quiet_native_stderr():
        from mediapipe.python.solutions import face_mesh
    return face_mesh


_lock = threading.Lock()


@contextlib.contextmanager
def _quiet_native_stderr():
    """Send file descriptor 2 to /dev/null for the block: mediapipe's C++ side (absl logging) writes
    start-up and calculator warnings there, past Python's ``sys.stderr``, on every run."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@lru_cache(maxsize=1)
def _mesh():
    with _quiet_native_stderr():
        return _solution().FaceMesh(static_image_mode=True, max_num_faces=MAX_FACES, refine_landmarks=False,
                                    min_detection_confidence=0.5, min_tracking_confidence=0.0)


def _shrunk(image: np.ndarray) -> tuple[np.ndarray, float]:
    import cv2

    longer = max(image.shape[:2])
    if longer <= MAX_SIDE:
        return image, 1.0
    scale = MAX_SIDE / float(longer)
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def _run(image: np.ndarray) -> list[np.ndarray]:
    """68 landmarks (pixel coordinates of ``image``) of every face the mesh fits."""
    h, w = image.shape[:2]
    with _lock, _quiet_native_stderr():  # one graph, not re-entrant
        result = _mesh().process(np.ascontiguousarray(image))
    faces = []
    for face in result.multi_face_landmarks or []:
        pts = np.array([(p.x, p.y) for p in face.landmark], np.float64)
        faces.append((pts[MESH_TO_68] * (w, h) - 0.5).astype(np.float32))
    return faces


def find_mesh_faces(image: np.ndarray) -> tuple[list[np.ndarray], str]:
    """68 landmarks per face found in an RGB uint8 photo and which try found them: ``"mesh"``,
    ``"mesh grey-padded"`` or ``"mesh mirrored"``; ``([], "")`` when none does."""
    import cv2

    small, scale = _shrunk(np.ascontiguousarray(image[..., :3]))
    back = lambda lm, m=0.0: ((lm + 0.5) - m) / scale - 0.5   # noqa: E731  (tried copy -> photo pixels)

    faces = [back(lm) for lm in _run(small)]
    faces = [lm for lm in faces if inside_frame(lm, image.shape)]
    if faces:
        return faces, "mesh"
    for pad in GREY_PADS:
        m = int(round(pad * max(small.shape[:2])))
        padded = cv2.copyMakeBorder(small, m, m, m, m, cv2.BORDER_CONSTANT, value=(GREY, GREY, GREY))
        shrunk, s2 = _shrunk(padded)
        faces = [back((lm + 0.5) / s2 - 0.5, m) for lm in _run(shrunk)]
        faces = [lm for lm in faces if inside_frame(lm, image.shape)]
        if faces:
            return faces, "mesh grey-padded"
    w = small.shape[1]
    faces = []
    for lm in _run(small[:, ::-1]):
        lm = lm.copy()
        lm[:, 0] = (w - 1) - lm[:, 0]
        faces.append(back(lm[FLIP_68]))
    faces = [lm for lm in faces if inside_frame(lm, image.shape)]
    return (faces, "mesh mirrored") if faces else ([], "")
