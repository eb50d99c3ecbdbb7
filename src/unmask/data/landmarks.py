"""Finding faces: MediaPipe's face mesh first (:mod:`unmask.data.mesh_faces`), then dlib's HOG and CNN
detectors with its 68-point shape predictor (the iBUG layout) as fallbacks.

The predictor's weights ship inside the ``face_recognition_models`` wheel. Its ``__init__`` imports
``pkg_resources`` (gone from current setuptools), so we locate the package directory with
``importlib.util.find_spec`` instead of importing it.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from unmask.data import mesh_faces
from unmask.data.mesh_faces import inside_frame
from unmask.errors import UnmaskError

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
CNN_DETECTOR_FILE = "mmod_human_face_detector.dat"


def predictor_path() -> Path:
    return model_path(PREDICTOR_FILE)


def model_path(name: str) -> Path:
    """A model file shipped in the ``face_recognition_models`` wheel."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise UnmaskError("face_recognition_models is not installed (pip install face-recognition-models); "
                          "it carries dlib's 68-point landmark model")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise UnmaskError(f"{path}: dlib model missing from face_recognition_models")
    return path


@lru_cache(maxsize=1)
def _models():
    import dlib  # imported lazily: only alignment without source landmarks needs it

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(predictor_path()))


def detect_faces(image: np.ndarray, upsample: int = 1) -> list[tuple[int, int, int, int]]:
    """Face boxes ``(left, top, right, bottom)`` found by dlib's HOG detector in an RGB uint8 image."""
    detector, _ = _models()
    return [(r.left(), r.top(), r.right(), r.bottom()) for r in detector(np.ascontiguousarray(image), upsample)]


def detect_landmarks(image: np.ndarray, upsample: int = 1) -> list[np.ndarray]:
    """68 landmarks, ``(68, 2) float32`` in pixel coordinates, for every face dlib detects."""
    detector, predictor = _models()
    img = np.ascontiguousarray(image)
    out = []
    for r in detector(img, upsample):
        shape = predictor(img, r)
        out.append(np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32))
    return out


@lru_cache(maxsize=1)
def _cnn_detector():
    import dlib

    return dlib.cnn_face_detection_model_v1(str(model_path(CNN_DETECTOR_FILE)))


def detect_landmarks_cnn(image: np.ndarray, upsample: int = 1) -> list[np.ndarray]:
    """As :func:`detect_landmarks` with dlib's CNN (MMOD) face detector, which also ships in
    ``face_recognition_models``: slower (about 0.4 s a 224 px photo at upsample 0), but it finds faces
    the HOG detector misses (masked lower faces, tight crops)."""
    _, predictor = _models()
    img = np.ascontiguousarray(image)
    return [np.array([(p.x, p.y) for p in predictor(img, d.rect).parts()], dtype=np.float32)
            for d in _cnn_detector()(img, upsample)]


FACE_CROP_INSET = 0.12     # face-crop fallback: the face box inset by this share of each side
# Each detector sees a copy of the photo no larger than this many pixels a side *after* its upsampling
# (dlib doubles the image per upsample step): a 12-megapixel photo would otherwise take tens of GB and
# minutes (dlib's CNN costs about 6.5 s a megapixel on one core). Landmarks are mapped back to the photo.
HOG_MAX_SIDE = 2048
CNN_MAX_SIDE = 640


def _shrunk(image: np.ndarray, max_side: int, upsample: int) -> tuple[np.ndarray, float]:
    """``image`` resized so that its longer side times 2**upsample is at most ``max_side``, and the
    factor (copy px per photo px; 1 when it already fits)."""
    import cv2

    longer = max(image.shape[:2])
    scale = min(1.0, max_side / float(longer * 2 ** upsample))
    if scale >= 1.0:
        return image, 1.0
    size = (max(1, int(round(image.shape[1] * scale))), max(1, int(round(image.shape[0] * scale))))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def find_faces(image: np.ndarray, upsample: int = 1, cnn: bool = True, pad: float = 0.25,
               face_crop: bool = False, mesh: bool = True) -> tuple[list[np.ndarray], str]:
    """68 landmarks per face and which step found them, trying in turn until one finds a face:

    0. ``"mesh"``, ``"mesh grey-padded"``, ``"mesh mirrored"`` (``mesh``, when mediapipe is installed):
       MediaPipe's face mesh (:func:`unmask.data.mesh_faces.find_mesh_faces`), which finds 96 % of the
       shared real masked photos against 52 % for the dlib steps below (``benchmarks/detect_faces.py``);
    1. ``"hog"``: dlib's HOG detector;
    2. ``"cnn"``: dlib's CNN detector (``cnn``), which finds more masked lower faces;
    3. ``"hog padded"`` / ``"cnn padded"``: both on the image reflect-padded by ``pad`` of its longer side
       (tight crops lose the context a detector needs), the landmarks mapped back; faces whose eyes or
       mouth fall in the padding (mirror images of a face cut by the frame) are dropped;
    4. ``"face crop"`` (``face_crop``: the image is known to be a crop of one face): the 68-point
       predictor in the box inset :data:`FACE_CROP_INSET` from the edges.

    Each detector runs on a copy bounded by :data:`HOG_MAX_SIDE` / :data:`CNN_MAX_SIDE` (after
    upsampling), so time and memory are bounded whatever the photo's size.
    ``([], "")`` when nothing finds a face."""
    import cv2

    if mesh and mesh_faces.available():
        faces, how = mesh_faces.find_mesh_faces(image)
        if faces:
            return faces, how
    steps = [("hog", detect_landmarks, 0, HOG_MAX_SIDE)]
    steps += [("cnn", detect_landmarks_cnn, 0, CNN_MAX_SIDE)] if cnn else []
    margin = int(round(pad * max(image.shape[:2])))
    if margin:
        steps += [(f"{name} padded", fn, margin, cap) for name, fn, _, cap in list(steps)]
    padded = None
    for name, detect, m, cap in steps:
        if m and padded is None:
            padded = cv2.copyMakeBorder(np.ascontiguousarray(image), m, m, m, m, cv2.BORDER_REFLECT_101)
        small, scale = _shrunk(padded if m else image, cap, upsample)
        faces = [(lm + 0.5) / scale - 0.5 - m for lm in detect(small, upsample)]
        faces = [lm.astype(np.float32) for lm in faces if inside_frame(lm, image.shape)]
        if faces:
            return faces, name
    if face_crop:
        h, w = image.shape[:2]
        box = (int(FACE_CROP_INSET * w), int(FACE_CROP_INSET * h),
               int((1 - FACE_CROP_INSET) * w), int((1 - FACE_CROP_INSET) * h))
        return [landmarks_in_box(image, box)], "face crop"
    return [], ""


def landmarks_in_box(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Run only the shape predictor inside a given box (used to measure landmark error)."""
    import dlib

    _, predictor = _models()
    shape = predictor(np.ascontiguousarray(image), dlib.rectangle(*map(int, box)))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
