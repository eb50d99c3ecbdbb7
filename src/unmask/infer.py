"""``unmask infer``: a photo of a masked person in, the same photo with the face restored out.

For every face in a photo:

1. detect it and its 68 landmarks (dlib's HOG detector, as the ``align`` stage does; where it finds
   nothing, dlib's CNN detector; then both again on the photo padded by a quarter of its side, since
   tight crops lose the context a detector needs);
2. align it FFHQ-style at the model's image size (:func:`unmask.data.align.align_image`);
3. take the region to restore: the user's mask (``--mask FILE``, white = occluded) warped into the
   crop; else the mask a trained segmenter (seed 001, ``--segmenter``, by default the champion of
   ``seed001_segmentation`` when it has results) predicts on the aligned face; else the lower face from
   the landmarks (jaw line to nose bridge, where a face mask sits);
4. unmask the crop with the model: a paired inpainter (declared input image + mask) gets the region as
   its mask; an image-only model (seed 000's CycleGAN) gets the image;
5. warp the result back with the alignment's own transform (:func:`crop_to_photo`) and blend it into the
   photo inside the region, dilated and feathered; every pixel outside the dilated region is the input's,
   bit for bit;
6. write the photo (``--side-by-side``: input | region | output).

Models load without running pickled code: trial checkpoints are read with ``weights_only=True``. A
model is a checkpoint path or ``study:champion`` (that study's trial with the best validation PSNR,
from ``results/<study>/trials.parquet``). Nothing is downloaded.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from tqdm import tqdm

from unmask.data.align import _square_to_quad, align_image, ffhq_quad
from unmask.data.occlusions.geometry import lower_face_region
from unmask.errors import UnmaskError
from unmask.io.images import load_rgb
from unmask.training import Trainer, load_trainer

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
PAD_RETRY = 0.25        # retry detection on the photo padded by this share of its longer side


@dataclass(frozen=True)
class Unmasker:
    """A trained model and what it takes: its image side and whether it needs the mask."""

    trainer: Trainer
    size: int
    name: str

    @property
    def takes_mask(self) -> bool:
        return self.trainer.model_input == "image+mask"

    def segment(self, crop: np.ndarray, size: int) -> np.ndarray:
        """A segmenter's predicted occluder mask of ``crop`` (uint8 RGB), as (size, size) bool."""
        if getattr(self.trainer, "output", "image") != "mask":
            raise UnmaskError(f"{self.name}: not a segmenter (its output is {self.trainer.output!r})")
        img = cv2.resize(crop, (self.size, self.size), interpolation=cv2.INTER_AREA) if crop.shape[0] != self.size else crop
        x = torch.from_numpy(np.ascontiguousarray(img).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
        prob = self.trainer.predict_mask(x)[0, 0].numpy()
        if prob.shape[0] != size:
            prob = cv2.resize(prob, (size, size), interpolation=cv2.INTER_LINEAR)
        return prob > 0.5

    def restore(self, crop: np.ndarray, region: np.ndarray) -> np.ndarray:
        """``crop`` (size, size, 3) uint8 and ``region`` (size, size) bool -> restored crop uint8."""
        x = torch.from_numpy(np.ascontiguousarray(crop).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
        m = torch.from_numpy(region.astype(np.float32))[None, None]
        out = self.trainer.translate(x, m if self.takes_mask else None)
        return ((out[0].permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().byte().numpy()


def load_unmasker(spec: str, root: str | os.PathLike = ".") -> Unmasker:
    """The model ``spec`` names: a checkpoint file (``.pt``) or ``STUDY:champion``."""
    root = Path(root)
    if ":" in spec and not Path(spec).exists() and "://" not in spec:
        study, _, alias = spec.partition(":")
        if alias != "champion":
            raise UnmaskError(f"--model {spec}: only the alias 'champion' is known (STUDY:champion)")
        from unmask.reports.champions import champion_row
        from unmask.reports.evaluate import read_trials, resolve_location

        path = root / "results" / study / "trials.parquet"
        if not path.is_file():
            raise UnmaskError(f"{path}: missing; run the study {study!r} first (dvc repro)")
        best = champion_row(read_trials(path), str(path))
        ckpt = resolve_location(str(best["checkpoint"]), root)
        trainer = load_trainer(ckpt, device="cpu")
        size = int(best.get("image_size") or trainer.cfg.discriminator.image_size)
        return Unmasker(trainer, size, f"{study}: {best['cell_label']} seed {best['seed']}")
    path = Path(spec)
    if not path.is_file():
        raise UnmaskError(f"--model {spec}: no such checkpoint file (or give STUDY:champion)")
    trainer = load_trainer(path, device="cpu")
    return Unmasker(trainer, int(trainer.cfg.discriminator.image_size), str(path))


DEFAULT_SEGMENTER = "seed001_segmentation"


def default_segmenter(root: str | os.PathLike) -> str | None:
    """``seed001_segmentation:champion`` when that study has results, else None (lower-face region)."""
    path = Path(root) / "results" / DEFAULT_SEGMENTER / "trials.parquet"
    return f"{DEFAULT_SEGMENTER}:champion" if path.is_file() else None


FACE_MASK_KINDS = ("surgical", "cloth", "n95", "kn95", "template")


def default_model(root: str | os.PathLike, studies: Sequence[str] | dict[str, Sequence[str] | None],
                  need_mask_free: bool) -> str:
    """``STUDY:champion`` of the best champion (validation PSNR) among ``studies`` that have results and
    were trained on face masks (``studies`` maps a name to its occlusion kinds; None: all kinds);
    validation PSNR of studies on other occlusions (seed 002's centre holes) is not comparable. With
    ``need_mask_free`` only models that take the image alone (no mask was given)."""
    if isinstance(studies, dict):
        studies = [s for s, kinds in studies.items()
                   if kinds is None or any(k.split(":")[0] in FACE_MASK_KINDS for k in kinds)]
    from unmask.reports.champions import champion_row
    from unmask.reports.evaluate import read_trials, resolve_location
    from unmask.training import TrainConfig, trainer_class
    from unmask.training.checkpoint import load_state

    best: tuple[float, str] | None = None
    for study in studies:
        path = Path(root) / "results" / study / "trials.parquet"
        if not path.is_file():
            continue
        try:
            row = champion_row(read_trials(path), str(path))
        except UnmaskError:
            continue
        cfg = TrainConfig.from_dict(load_state(resolve_location(str(row["checkpoint"]), Path(root)))["config"])
        cls = trainer_class(cfg)
        if getattr(cls, "output", "image") != "image" or (need_mask_free and cls.model_input != "image"):
            continue
        score = float(row.get("val_psnr", float("nan")))
        if best is None or score > best[0]:
            best = (score, f"{study}:champion")
    if best is None:
        raise UnmaskError("no trained model found under results/ (run `dvc repro` first, or give --model)"
                          + (" that works without a mask (give --mask FILE for the paired inpainters)"
                             if need_mask_free else ""))
    return best[1]


# ----------------------------------------------------------------------------------------- geometry
def crop_to_photo(quad: np.ndarray, size: int) -> np.ndarray:
    """The 2x3 affine taking the aligned crop's pixel indices to the photo's (the alignment's own map)."""
    return _square_to_quad(np.asarray(quad, np.float64), size)


def find_faces(photo: np.ndarray, face_crop: bool = False) -> list[np.ndarray]:
    """68 landmarks per face (:func:`unmask.data.landmarks.find_faces`: HOG, CNN, padded, face crop)."""
    return find_faces_how(photo, face_crop)[0]


def find_faces_how(photo: np.ndarray, face_crop: bool = False) -> tuple[list[np.ndarray], str]:
    """:func:`find_faces` and which step found the faces ("" when none)."""
    from unmask.data.landmarks import find_faces as cascade

    return cascade(photo, upsample=1, cnn=True, pad=PAD_RETRY, face_crop=face_crop)


def blend_weights(region_photo: np.ndarray, dilate_px: int, feather_px: float) -> np.ndarray:
    """Blend weights in [0, 1] over the photo: 1 inside the region, falling off over ``feather_px``
    within a ``dilate_px`` dilation of it, exactly 0 beyond the dilation."""
    r = region_photo.astype(np.uint8)
    if dilate_px > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate_px + 1, 2 * dilate_px + 1))
        grown = cv2.dilate(r, k)
    else:
        grown = r
    w = grown.astype(np.float32)
    if feather_px > 0:
        w = cv2.GaussianBlur(w, (0, 0), feather_px)
        w = np.maximum(w, r.astype(np.float32))    # the region itself is replaced fully
    w[grown == 0] = 0.0                            # nothing changes beyond the dilated region
    return np.clip(w, 0.0, 1.0)


@dataclass
class FaceResult:
    output: np.ndarray        # the photo with this face restored
    region: np.ndarray        # (H, W) bool, the region restored (before dilation)


def unmask_face(photo: np.ndarray, landmarks: np.ndarray, model: Unmasker, user_mask: np.ndarray | None = None,
                dilate_px: int | None = None, feather_px: float | None = None,
                segmenter: Unmasker | None = None) -> FaceResult:
    """Restore one face of ``photo`` (H, W, 3 uint8) given its 68 ``landmarks`` (photo pixels)."""
    h, w = photo.shape[:2]
    size = model.size
    quad = ffhq_quad(landmarks)
    aligned = align_image(photo, landmarks, size)
    m = crop_to_photo(quad, size)
    if user_mask is not None:
        region_crop = cv2.warpAffine(user_mask.astype(np.uint8), m, (size, size),
                                     flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    elif segmenter is not None:
        seg_crop = aligned.image if segmenter.size == size else align_image(photo, landmarks, segmenter.size).image
        region_crop = segmenter.segment(seg_crop, size)
    else:
        region_crop = lower_face_region(aligned.landmarks, size)
    restored = model.restore(aligned.image, region_crop)
    back = cv2.warpAffine(restored, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = cv2.warpAffine(np.ones((size, size), np.uint8), m, (w, h), flags=cv2.INTER_NEAREST,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    if user_mask is not None:
        region = user_mask.astype(bool) & inside
    else:
        region = cv2.warpAffine(region_crop.astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    scale = float(np.hypot(*(quad[3] - quad[0]))) / size          # photo px per crop px
    dilate = dilate_px if dilate_px is not None else max(2, int(round(2 * scale)))
    feather = feather_px if feather_px is not None else max(1.0, 1.5 * scale)
    wgt = blend_weights(region, dilate, feather)
    wgt[~inside] = 0.0          # only where the crop covers the photo
    out = photo.copy()
    sel = wgt > 0
    blended = wgt[sel, None] * back[sel].astype(np.float32) + (1 - wgt[sel, None]) * photo[sel].astype(np.float32)
    out[sel] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    return FaceResult(out, region)


# ----------------------------------------------------------------------------------------- files
def list_photos(src: str | os.PathLike) -> list[Path]:
    src = Path(src)
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise UnmaskError(f"{src}: no such photo or folder")
    return sorted(p for p in src.rglob("*") if p.is_file() and not p.name.startswith("."))


def read_mask(path: str | os.PathLike, shape: tuple[int, int]) -> np.ndarray:
    """A user's mask image: white (> 127 in any channel) = occluded; must match the photo's size."""
    arr = load_rgb(path, min_side=1)
    if arr.shape[:2] != shape:
        raise UnmaskError(f"{path}: mask is {arr.shape[1]}x{arr.shape[0]}, the photo {shape[1]}x{shape[0]}")
    return arr.max(axis=2) > 127


def side_by_side(photo: np.ndarray, region: np.ndarray, output: np.ndarray) -> np.ndarray:
    mask_rgb = np.repeat((region.astype(np.uint8) * 255)[..., None], 3, axis=2)
    return np.concatenate([photo, mask_rgb, output], axis=1)


def infer(src: str | os.PathLike, out_dir: str | os.PathLike, model: Unmasker, mask: str | None = None,
          side: bool = False, progress: bool = True, segmenter: Unmasker | None = None,
          face_crop: bool = False) -> tuple[int, list[tuple[str, str]]]:
    """Restore every face of every photo under ``src`` into ``out_dir`` (same file names, PNG);
    returns (photos written, rejected (file, reason)); the rejected are listed in ``out_dir/rejected.csv``."""
    photos = list_photos(src)
    base = Path(src) if Path(src).is_dir() else Path(src).parent
    if mask is not None and len(photos) != 1:
        raise UnmaskError(f"--mask {mask}: a mask goes with one photo, {src} holds {len(photos)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rejected: list[tuple[str, str]] = []
    written = 0
    for path in tqdm(photos, desc="infer", unit="photo", disable=None if progress else True):
        try:
            photo = load_rgb(path)
            user_mask = read_mask(mask, photo.shape[:2]) if mask is not None else None
            faces = find_faces(photo, face_crop)
            if not faces:
                raise UnmaskError(f"{path}: no face found")
            out, regions = photo, np.zeros(photo.shape[:2], bool)
            for lm in faces:
                res = unmask_face(out, lm, model, user_mask, segmenter=segmenter)
                out, regions = res.output, regions | res.region
        except UnmaskError as e:          # a bad image, no face, a mask of the wrong size
            rejected.append((str(path), str(e).removeprefix(f"{path}: ")))
            continue
        image = side_by_side(photo, regions, out) if side else out
        target = out_dir / path.relative_to(base).with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        written += 1
    with open(out_dir / "rejected.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["file", "reason"])
        wr.writerows(rejected)
    return written, rejected
