"""Named real datasets: where to get them, how a local copy is laid out, and how to read it.

Each :class:`NamedDataset` lists a copy's images as :class:`Item` s -- cheap to list, decoded only
when their RAW row is made (``Item.load`` raises :class:`~unmask.errors.BadImageError` for an image
that cannot be used, which the source records as rejected instead of failing).

Downloads. All four datasets are distributed through Google Drive (or Baidu), which has no stable
direct links and publishes md5 -- never sha256 -- checksums for only some files. The usual path is
therefore ``data.dataset_root`` pointing at an already-downloaded copy; an archive of a copy can also
be fetched with ``data.url.url`` + ``data.url.sha256``. :data:`DATASETS` records each dataset's
official location and the checksums that *are* published, so a copy can be checked by hand
(``md5sum``).

Identities. FFHQ (and so CMFD) has no identity labels: every image is its own identity. CelebA uses
``identity_CelebA.txt``; CelebA-HQ uses it too, through ``CelebA-HQ-to-CelebA-mapping.txt``, when both
files are in the copy, else one identity per image.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
from PIL import Image

from unmask.data.schema import N_LANDMARKS
from unmask.errors import BadImageError, UnmaskError
from unmask.io.images import encode_png, load_rgb


# --------------------------------------------------------------------------- shared pieces
@dataclass(frozen=True)
class Item:
    """One image a source can yield. ``path`` (relative to the source root) names it in reports."""
    image_id: str
    path: str
    load: Callable[[], dict[str, Any]] = field(repr=False)  # -> RAW row; raises BadImageError


def raw_row(image_id: str, identity: str, source: str, image: np.ndarray, *,
            occluded: np.ndarray | None = None, landmarks: np.ndarray | None = None,
            parsing: np.ndarray | None = None, attrs: dict[str, Any] | None = None) -> dict[str, Any]:
    """A RAW-schema row: arrays are PNG-encoded, landmarks flattened to x0, y0, x1, y1, ..."""
    if landmarks is not None:
        landmarks = np.asarray(landmarks, dtype=np.float32).reshape(-1)
        if landmarks.size != 2 * N_LANDMARKS:
            raise ValueError(f"{image_id}: landmarks need {2 * N_LANDMARKS} values, got {landmarks.size}")
    return {
        "image_id": image_id,
        "identity": identity,
        "source": source,
        "image": encode_png(image),
        "occluded": None if occluded is None else encode_png(occluded),
        "landmarks": None if landmarks is None else landmarks.tolist(),
        "parsing": None if parsing is None else encode_png(parsing),
        "attrs": json.dumps(attrs or {}, sort_keys=True),
    }


def walk_files(root: Path) -> Iterable[Path]:
    """Files under ``root``, recursively and in sorted order, skipping hidden and ``__MACOSX`` entries."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX")
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name


def _find_file(root: Path, name: str, subdirs: Iterable[str] = ("", "Anno", "Eval")) -> Path | None:
    for sub in subdirs:
        p = root / sub / name
        if p.is_file():
            return p
    return None


def _first_dir(*candidates: Path) -> Path | None:
    return next((c for c in candidates if c.is_dir()), None)


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _resize(arr: np.ndarray, size: tuple[int, int], resample: int) -> np.ndarray:
    """Resize an HxW(x3) uint8 array to ``size`` = (width, height)."""
    if (arr.shape[1], arr.shape[0]) == size:
        return arr
    return np.asarray(Image.fromarray(arr).resize(size, resample))


# --------------------------------------------------------------------------- FFHQ
FFHQ_JSON = "ffhq-dataset-v2.json"
FFHQ_NATIVE = 1024  # the JSON's "image" landmarks are in 1024 x 1024 pixels
_FFHQ_PNG = re.compile(r"^(\d{5})\.png$")


@dataclass(frozen=True)
class _FfhqMeta:
    landmarks: np.ndarray   # (68, 2) in the pixel frame of ``size``
    size: tuple[int, int]   # (width, height) the landmarks refer to
    category: str | None    # "training" / "validation"


def _ffhq_entry(d: dict) -> Any:
    """json object hook: shrink each top-level FFHQ entry to what we keep, as it is parsed."""
    img = d.get("image")
    if isinstance(img, dict) and "face_landmarks" in img and "metadata" in d:
        w, h = img.get("pixel_size", (FFHQ_NATIVE, FFHQ_NATIVE))
        return _FfhqMeta(np.asarray(img["face_landmarks"], dtype=np.float32), (int(w), int(h)),
                         d.get("category"))
    return d


def read_ffhq_json(path: Path) -> dict[int, _FfhqMeta]:
    """Image number -> landmarks and category from the official ``ffhq-dataset-v2.json``."""
    try:
        with open(path, "rb") as f:
            data = json.load(f, object_hook=_ffhq_entry)
    except (OSError, ValueError) as e:
        raise UnmaskError(f"{path}: unreadable FFHQ metadata ({e})") from None
    out = {}
    for key, meta in data.items():
        if not isinstance(meta, _FfhqMeta) or meta.landmarks.shape != (N_LANDMARKS, 2):
            raise UnmaskError(f"{path}: entry {key!r} has no 68-point image.face_landmarks")
        out[int(key)] = meta
    return out


def _ffhq_image_dir(root: Path) -> Path:
    """The copy's image folder: images1024x1024/ if present, else thumbnails128x128/, else ``root``."""
    return _first_dir(root / "images1024x1024", root / "thumbnails128x128") or root


def _numbered_files(root: Path, pattern: re.Pattern) -> dict[int, Path]:
    """Image number -> the first file under ``root`` whose name ``pattern`` matches (group 1: the number)."""
    found: dict[int, Path] = {}
    for p in walk_files(root):
        m = pattern.match(p.name)
        if m:
            found.setdefault(int(m.group(1)), p)
    return found


def _ffhq_images(root: Path) -> tuple[Path, dict[int, Path]]:
    img_dir = _ffhq_image_dir(root)
    return img_dir, _numbered_files(img_dir, _FFHQ_PNG)


def _ffhq_meta(root: Path) -> dict[int, _FfhqMeta]:
    path = _find_file(root, FFHQ_JSON, ("", "ffhq"))
    return read_ffhq_json(path) if path else {}


def _scaled_landmarks(meta: _FfhqMeta | None, image: np.ndarray) -> np.ndarray | None:
    if meta is None:
        return None
    h, w = image.shape[:2]
    return meta.landmarks * np.array([w / meta.size[0], h / meta.size[1]], dtype=np.float32)


def ffhq_items(root: Path) -> list[Item]:
    """FFHQ: ``images1024x1024/NNNNN/NNNNN.png`` (or ``thumbnails128x128/``) + optional landmark JSON."""
    img_dir, images = _ffhq_images(root)
    metas = _ffhq_meta(root)

    def item(n: int, path: Path) -> Item:
        def load() -> dict[str, Any]:
            image = load_rgb(path)
            meta = metas.get(n)
            attrs = {"category": meta.category} if meta and meta.category else {}
            return raw_row(f"{n:05d}", f"{n:05d}", "ffhq", image,
                           landmarks=_scaled_landmarks(meta, image), attrs=attrs)
        return Item(f"{n:05d}", _rel(path, root), load)

    return [item(n, p) for n, p in sorted(images.items())]


# --------------------------------------------------------------------------- CelebA (aligned)
CELEBA_ALIGNED_SIZE = (178, 218)  # (width, height) of img_align_celeba, the landmarks' pixel frame
CELEBA_PARTITIONS = {"0": "train", "1": "val", "2": "test"}


def _read_table(path: Path, n_values: int, skip: int = 0) -> dict[str, list[str]]:
    """``name v1 v2 ...`` lines -> {name: [v1, ...]}; ``skip`` header lines."""
    out = {}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if lineno <= skip or not line.strip():
                continue
            parts = line.split()
            if len(parts) != n_values + 1:
                raise UnmaskError(f"{path}:{lineno}: expected a file name and {n_values} values")
            out[parts[0]] = parts[1:]
    return out


def _celeba_identities(root: Path) -> dict[str, str] | None:
    path = _find_file(root, "identity_CelebA.txt")
    return None if path is None else {k: v[0] for k, v in _read_table(path, 1).items()}


def celeba_items(root: Path) -> list[Item]:
    """CelebA aligned: ``img_align_celeba/`` + ``identity_CelebA.txt`` (required),
    ``list_landmarks_align_celeba.txt`` (5 points, kept in attrs) and ``list_eval_partition.txt``."""
    img_dir = _first_dir(root / "img_align_celeba", root / "Img" / "img_align_celeba")
    if img_dir is None:
        raise UnmaskError(f"data.dataset_root: {root} has no img_align_celeba/ folder")
    img_dir = _first_dir(img_dir / "img_align_celeba") or img_dir  # Kaggle copies nest it twice
    identities = _celeba_identities(root)
    if identities is None:
        raise UnmaskError(f"data.dataset_root: {root} has no identity_CelebA.txt (looked in ., Anno/)")
    lm_path = _find_file(root, "list_landmarks_align_celeba.txt")
    landmarks5 = _read_table(lm_path, 10, skip=2) if lm_path else {}
    part_path = _find_file(root, "list_eval_partition.txt")
    partition = _read_table(part_path, 1) if part_path else {}

    def item(path: Path) -> Item:
        name = path.name

        def load() -> dict[str, Any]:
            if name not in identities:
                raise BadImageError(f"{path}: not listed in identity_CelebA.txt")
            image = load_rgb(path)
            attrs: dict[str, Any] = {}
            if name in landmarks5:
                h, w = image.shape[:2]
                scale = np.tile([w / CELEBA_ALIGNED_SIZE[0], h / CELEBA_ALIGNED_SIZE[1]], 5)
                attrs["landmarks5"] = [round(float(v), 3) for v in np.asarray(landmarks5[name], float) * scale]
            if name in partition:
                attrs["partition"] = CELEBA_PARTITIONS.get(partition[name][0], partition[name][0])
            return raw_row(path.stem, identities[name], "celeba", image, attrs=attrs)
        return Item(path.stem, _rel(path, root), load)

    return [item(p) for p in walk_files(img_dir) if p.suffix.lower() == ".jpg"]


# --------------------------------------------------------------------------- CelebAMask-HQ
# CelebAMask-HQ's 18 part masks (plus background) in the order its own g_mask.py paints them --
# later masks overwrite earlier ones where they overlap -- and the label each gets among our 11
# (schema.PARSING_LABELS), or None: accessories -- glasses ("eye_g"), earring ("ear_r"), necklace
# ("neck_l") -- are not painted, so pixels keep the label of what they cover. Ears, hat, neck and
# cloth are background, as the synthetic source labels them (the 11 labels have no class for them).
CELEBAMASK_TO_OURS: dict[str, int | None] = {
    "skin": 1, "nose": 6, "eye_g": None, "l_eye": 4, "r_eye": 5, "l_brow": 2, "r_brow": 3,
    "l_ear": 0, "r_ear": 0, "mouth": 8, "u_lip": 7, "l_lip": 9, "hair": 10, "hat": 0,
    "ear_r": None, "neck_l": None, "neck": 0, "cloth": 0,
}
_MASK_PNG = re.compile(r"^(\d+)_([a-z_]+)\.png$")


def combine_part_masks(masks: dict[str, Path], size: tuple[int, int]) -> np.ndarray:
    """One HxW uint8 label map (our 11 labels) from CelebAMask-HQ per-part PNGs, at ``size`` (w, h)."""
    out: np.ndarray | None = None
    for label, ours in CELEBAMASK_TO_OURS.items():  # dict order = painting order
        if label not in masks or ours is None:
            continue
        on = load_rgb(masks[label]).max(axis=2) > 127
        if out is None:
            out = np.zeros(on.shape, np.uint8)
        elif on.shape != out.shape:
            raise BadImageError(f"{masks[label]}: mask is {on.shape[1]}x{on.shape[0]}, "
                                f"the others {out.shape[1]}x{out.shape[0]}")
        out[on] = ours
    if out is None:
        raise ValueError("combine_part_masks needs at least one mask")
    return _resize(out, size, Image.NEAREST)


def _celebamask_masks(anno_dir: Path | None) -> dict[int, dict[str, Path]]:
    masks: dict[int, dict[str, Path]] = {}
    if anno_dir is None:
        return masks
    for p in walk_files(anno_dir):
        m = _MASK_PNG.match(p.name)
        if m and m.group(2) in CELEBAMASK_TO_OURS:
            masks.setdefault(int(m.group(1)), {})[m.group(2)] = p
    return masks


def _celebahq_identities(root: Path) -> dict[int, tuple[str, str]]:
    """CelebA-HQ index -> (CelebA file, CelebA identity), when the copy has both files."""
    mapping = _find_file(root, "CelebA-HQ-to-CelebA-mapping.txt")
    identities = _celeba_identities(root)
    if mapping is None or identities is None:
        return {}
    out = {}
    for idx, (_, orig_file) in _read_table(mapping, 2, skip=1).items():
        if orig_file in identities:
            out[int(idx)] = (orig_file, identities[orig_file])
    return out


def celebamask_hq_items(root: Path) -> list[Item]:
    """CelebA-HQ / CelebAMask-HQ: ``CelebA-HQ-img/N.jpg`` + optional
    ``CelebAMask-HQ-mask-anno/<k>/NNNNN_<part>.png`` (combined into the ``parsing`` column)."""
    img_dir = _first_dir(root / "CelebA-HQ-img") or root
    masks = _celebamask_masks(_first_dir(root / "CelebAMask-HQ-mask-anno"))
    identities = _celebahq_identities(root)
    images = sorted((int(p.stem), p) for p in walk_files(img_dir)
                    if p.suffix.lower() in (".jpg", ".png") and p.stem.isdigit())

    def item(idx: int, path: Path) -> Item:
        image_id = f"{idx:05d}"

        def load() -> dict[str, Any]:
            image = load_rgb(path)
            parsing = None
            if idx in masks:
                parsing = combine_part_masks(masks[idx], (image.shape[1], image.shape[0]))
            attrs: dict[str, Any] = {}
            identity = image_id
            if idx in identities:
                attrs["celeba_file"], celeb = identities[idx]
                identity = f"celeba:{celeb}"
            return raw_row(image_id, identity, "celebamask_hq", image, parsing=parsing, attrs=attrs)
        return Item(image_id, _rel(path, root), load)

    return [item(i, p) for i, p in images]


# --------------------------------------------------------------------------- MaskedFace-Net CMFD
_CMFD_JPG = re.compile(r"^(\d{5})_Mask\.jpg$")


def cmfd_items(root: Path) -> list[Item]:
    """MaskedFace-Net CMFD paired with FFHQ: ``**/NNNNN_Mask.jpg`` anywhere under the root and the FFHQ
    originals as for :func:`ffhq_items`. Row ``image`` = FFHQ original, ``occluded`` = the CMFD image
    resized to it; an unpaired CMFD image is rejected."""
    _, originals = _ffhq_images(root)
    metas = _ffhq_meta(root)
    cmfd = _numbered_files(root, _CMFD_JPG)

    def item(n: int, masked: Path) -> Item:
        def load() -> dict[str, Any]:
            original = originals.get(n)
            if original is None:
                raise BadImageError(f"{masked}: no FFHQ original {n:05d}.png in the copy")
            image = load_rgb(original)
            occluded = _resize(load_rgb(masked), (image.shape[1], image.shape[0]), Image.LANCZOS)
            meta = metas.get(n)
            return raw_row(f"{n:05d}", f"{n:05d}", "cmfd", image, occluded=occluded,
                           landmarks=_scaled_landmarks(meta, image),
                           attrs={"cmfd_file": _rel(masked, root), "ffhq_file": _rel(original, root)})
        return Item(f"{n:05d}", _rel(masked, root), load)

    return [item(n, p) for n, p in sorted(cmfd.items())]


# --------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class PublishedFile:
    """One file of a dataset as its publishers list it."""
    path: str               # where it sits inside the dataset root
    url: str
    md5: str | None = None  # as published (none of these datasets publishes sha256)
    size: int | None = None


@dataclass(frozen=True)
class NamedDataset:
    name: str
    title: str
    homepage: str
    layout: str                               # what data.dataset_root must contain
    items: Callable[[Path], list[Item]]
    files: tuple[PublishedFile, ...] = ()
    note: str = ""


# Sources of the table: FFHQ -- NVlabs/ffhq-dataset download_ffhq.py (json_spec: Drive id, size and md5
# of the metadata JSON; each image's own md5 is inside that JSON). CelebA -- the Drive ids and md5s
# torchvision's CelebA dataset class checks (the CelebA page itself publishes no checksums).
# CelebAMask-HQ and MaskedFace-Net publish Drive folders only, with no checksums.
DATASETS: dict[str, NamedDataset] = {d.name: d for d in (
    NamedDataset(
        "ffhq", "Flickr-Faces-HQ", "https://github.com/NVlabs/ffhq-dataset",
        "images1024x1024/ (or thumbnails128x128/) with NNNNN.png files, optionally ffhq-dataset-v2.json",
        ffhq_items,
        files=(PublishedFile("ffhq-dataset-v2.json",
                             "https://drive.google.com/uc?id=16N0RV4fHI6joBuKbQAoG34V_cQk7vxSA",
                             md5="425ae20f06a4da1d4dc0f46d40ba5fd6", size=267793842),
               PublishedFile("images1024x1024/",
                             "https://drive.google.com/drive/folders/1u2xu7bSrWxrbUxk-dT-UvEJq8IjdmNTP")),
        note="per-image md5s are in ffhq-dataset-v2.json"),
    NamedDataset(
        "celeba", "CelebA (aligned and cropped)", "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html",
        "img_align_celeba/ and identity_CelebA.txt, list_landmarks_align_celeba.txt, "
        "list_eval_partition.txt (in the root, Anno/ or Eval/)",
        celeba_items,
        files=(PublishedFile("img_align_celeba.zip", "https://drive.google.com/uc?id=0B7EVK8r0v71pZjFTYXZWM3FlRnM",
                             md5="00d2c5bc6d35e252742224ab0c1e8fcb"),
               PublishedFile("identity_CelebA.txt",
                             "https://drive.google.com/uc?id=1_ee_0u7vcNLOfNLegJRHmolfH5ICW-XS",
                             md5="32bd1bd63d3c78cd57e08160ec5ed1e2"),
               PublishedFile("list_landmarks_align_celeba.txt",
                             "https://drive.google.com/uc?id=0B7EVK8r0v71pd0FJY3Blby1HUTQ",
                             md5="cc24ecafdb5b50baae59b03474781f8c"),
               PublishedFile("list_eval_partition.txt",
                             "https://drive.google.com/uc?id=0B7EVK8r0v71pY0NSMzRuSXJEVkk",
                             md5="d32c9cbf5e040fd4025c592c306e6668"))),
    NamedDataset(
        "celebamask_hq", "CelebAMask-HQ (CelebA-HQ images + part masks)",
        "https://github.com/switchablenorms/CelebAMask-HQ",
        "CelebA-HQ-img/ (N.jpg) and optionally CelebAMask-HQ-mask-anno/<k>/NNNNN_<part>.png, "
        "CelebA-HQ-to-CelebA-mapping.txt + identity_CelebA.txt",
        celebamask_hq_items, note="no checksums published"),
    NamedDataset(
        "cmfd", "MaskedFace-Net CMFD (correctly masked FFHQ faces)", "https://github.com/cabani/MaskedFace-Net",
        "CMFD images NNNNN_Mask.jpg anywhere under the root, plus the FFHQ originals in "
        "images1024x1024/ (or thumbnails128x128/), optionally ffhq-dataset-v2.json",
        cmfd_items, note="no checksums published"),
)}
