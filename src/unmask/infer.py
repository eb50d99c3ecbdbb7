"""``unmask infer``: a photo of a masked person in, the same photo with the face restored out.

For every face in a photo:

1. find it and its 68 landmarks with the align stage's finder (:func:`unmask.data.landmarks.find_faces`:
   MediaPipe's face mesh, dlib's detectors where it finds nothing); a face whose crop is smaller than
   :data:`MIN_FACE_PX` is left as it is and listed in ``rejected.csv`` with its size;
2. align it FFHQ-style at ``max(model size, WORK_MIN_PX)`` (:func:`unmask.data.align.align_image`);
3. take the region to restore: the user's mask (``--mask FILE``, white = occluded) warped into the
   crop; else the mask a trained segmenter (seed 001, ``--segmenter``, by default the champion of
   ``seed001_segmentation`` when it has results) predicts on the aligned face; else the lower face from
   the landmarks (jaw line to nose bridge, where a face mask sits);
   a predicted mask is cleaned at photo resolution (holes filled, edges smoothed, grown over its rim);
4. unmask the crop with the model at its own size: a paired inpainter (declared input image + mask)
   gets the region as its mask; an image-only model (seed 000's CycleGAN) gets the image; the output is
   upsampled to the aligned crop;
5. warp the result back with the alignment's own transform (:func:`crop_to_photo`), match its colour to
   the skin around the region, and Poisson-blend it into the photo inside the region, dilated; every
   pixel outside the dilated region is the input's, bit for bit;
6. write the photo (``--side-by-side``: input | region | output).

What it never does: write over an input (an ``--out`` equal to or inside the input folder is refused,
and so is any output that would land on an input file), let two inputs share an output (``a.jpg`` and
``a.png`` are written as ``a.jpg.png`` and ``a.png.png``), follow a symbolic link inside ``--out``, or
leave a half-written file (every output is written to a temporary sibling and renamed: a full disk
stops the run with one line and the earlier output of that name intact). Detection works on a bounded
copy of the photo (:data:`unmask.data.landmarks.HOG_MAX_SIDE`) and all per-face work on the window the
face covers, so a 50-megapixel photo costs seconds and well under 2 GB. A photo that fails for any
reason is its own row in ``rejected.csv`` (rewritten as the run goes) and the run goes on.

Models load without running pickled code: trial checkpoints are read with ``weights_only=True``. A
model is a checkpoint path or ``study:champion`` (that study's champion under the one rule of
:mod:`unmask.studies.champion`, the trial its sweep recorded in ``results/<study>/sweep.json``). Nothing is downloaded.
"""

from __future__ import annotations

import csv
import io
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from tqdm import tqdm

from unmask.data.align import _square_to_quad, align_image, ffhq_quad
from unmask.data.occlusions.geometry import lower_face_region
from unmask.data.sources import display_name, list_folder
from unmask.errors import UnmaskError
from unmask.io.atomic import write_bytes
from unmask.io.images import PNG_COMPRESS_LEVEL, load_rgb
from unmask.io.named import naming
from unmask.training import Trainer, load_trainer

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


# what each option of ``unmask infer`` takes, by the trainer's declared output
ROLES = {"model": "image", "segmenter": "mask"}


def load_unmasker(spec: str, root: str | os.PathLike = ".", role: str = "model", needs: str | None = None) -> Unmasker:
    """The model ``spec`` names: a checkpoint file (``.pt``) or ``STUDY:champion``. ``role`` is the
    option that names it (``model``: it must output an image; ``segmenter``: a mask); ``needs`` the
    output it must declare where that is another (``unmask edit``'s ``--model`` needs a portrait
    editor, its ``--parser`` a parsing), checked against the trainer's declared ``output``."""
    root = Path(root)
    if ":" in spec and not Path(spec).exists() and "://" not in spec:
        study, _, alias = spec.partition(":")
        if alias != "champion":
            raise UnmaskError(f"--{role} {spec}: only the alias 'champion' is known (STUDY:champion)")
        from unmask.evaluation.evaluate import resolve_location
        from unmask.evaluation.leaderboard import deployable_champion

        path = root / "results" / study / "trials.parquet"
        if not path.is_file():
            raise UnmaskError(f"{path}: missing; run the study {study!r} first (dvc repro)")
        best, _ = deployable_champion(study, root / "results", root)   # among the configurations a photo can run
        ckpt = resolve_location(str(best["checkpoint"]), root)
        trainer = load_trainer(ckpt, device="cpu")
        size = int(best.get("image_size") or trainer.cfg.image_size)
        unmasker = Unmasker(trainer, size, f"{study}: {best['cell_label']} seed {best['seed']}")
    else:
        path = Path(spec)
        if not path.is_file():
            raise UnmaskError(f"--{role} {spec}: no such checkpoint file (or give STUDY:champion)")
        trainer = load_trainer(path, device="cpu")
        unmasker = Unmasker(trainer, int(trainer.cfg.image_size), str(path))
    output = getattr(unmasker.trainer, "output", "image")
    if not unmasker.trainer.deployable(unmasker.trainer.cfg):
        raise UnmaskError(f"--{role} {spec}: this model needs what only a test set has (its trainer "
                          f"{unmasker.trainer.cfg.framework} reads more than {unmasker.trainer.model_input}); "
                          f"give a checkpoint of a configuration that runs on a photo")
    want = needs or ROLES[role]
    if output != want:
        other = next((r for r, o in ROLES.items() if o == output), None) if needs is None else None
        raise UnmaskError(f"--{role} {spec}: its trainer ({unmasker.trainer.cfg.framework}) outputs "
                          f"{_article(output)} {output}; --{role} needs one that outputs {_article(want)} {want}"
                          + (f" (give it as --{other})" if other else ""))
    return unmasker


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


DEFAULT_SEGMENTER = "seed001_segmentation"


def default_segmenter(root: str | os.PathLike) -> str | None:
    """``seed001_segmentation:champion`` when that study has results, else None (lower-face region)."""
    path = Path(root) / "results" / DEFAULT_SEGMENTER / "trials.parquet"
    return f"{DEFAULT_SEGMENTER}:champion" if path.is_file() else None


FACE_MASK_KINDS = ("surgical", "cloth", "n95", "kn95", "template")


LEADERBOARDS = ("results/benchmark_real/leaderboard", "results/leaderboard")   # real faces first


def leaderboard_choice(root: str | os.PathLike, need_mask_free: bool) -> tuple[str, str] | None:
    """``(STUDY:champion, why)`` of the leaderboard champion with the best mean masked PSNR -- on the
    real-face leaderboard (``unmask benchmark-real``) when one was measured, else the synthetic one --
    among those that take what is given; None without a leaderboard."""
    from unmask.evaluation.leaderboard import load_leaderboard

    for where in LEADERBOARDS:
        folder = Path(root) / where
        if not folder.is_dir():
            continue
        try:
            scores, info = load_leaderboard(folder)
        except UnmaskError:
            continue
        means = scores.groupby("method")["psnr_masked"].mean()
        rows = [m for m in info["methods"] if m["kind"] == "champion" and m["name"] in means
                and (not need_mask_free or m["model_input"] == "image")]
        if rows:
            best = max(rows, key=lambda m: means[m["name"]])
            return f"{best['study']}:champion", f"best masked PSNR on {where} ({means[best['name']]:.2f} dB)"
    return None


def default_model(root: str | os.PathLike, studies: Sequence[str] | dict[str, Sequence[str] | None],
                  need_mask_free: bool) -> str:
    """``STUDY:champion`` of the best champion on the leaderboard (:func:`leaderboard_choice`: the
    real-face one first) that takes what is given; without a leaderboard, the best validation PSNR
    among ``studies`` that have results and were trained on face masks (``studies`` maps a name to its
    occlusion kinds; None: all kinds); validation PSNR of studies on other occlusions (seed 002's centre
    holes) is not comparable. With ``need_mask_free`` only models that take the image alone (no mask
    was given)."""
    chosen = leaderboard_choice(root, need_mask_free)
    if chosen is not None:
        return chosen[0]
    if isinstance(studies, dict):
        studies = [s for s, kinds in studies.items()
                   if kinds is None or any(k.split(":")[0] in FACE_MASK_KINDS for k in kinds)]
    from unmask.evaluation.champions import champion_row
    from unmask.evaluation.evaluate import read_trials, resolve_location
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
        if (getattr(cls, "output", "image") != "image" or (need_mask_free and cls.model_input != "image")
                or not cls.deployable(cfg)):
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
    """68 landmarks per face (:func:`unmask.data.landmarks.find_faces`: face mesh, then dlib's HOG, CNN,
    padded, face crop): the same finder as the align stage's."""
    return find_faces_how(photo, face_crop)[0]


def find_faces_how(photo: np.ndarray, face_crop: bool = False) -> tuple[list[np.ndarray], str]:
    """:func:`find_faces` and which step found the faces ("" when none)."""
    from unmask.data.landmarks import find_faces as cascade

    return cascade(photo, upsample=1, cnn=True, pad=PAD_RETRY, face_crop=face_crop)


EXACT_GROW_PX = 16      # dilations up to this radius use the elliptic kernel; wider ones a distance map


def grow(region: np.ndarray, radius: int) -> np.ndarray:
    """``region`` (bool) dilated by a disc of ``radius`` px: cv2's elliptic kernel for small radii, the
    exact Euclidean distance map for wide ones (a 50-megapixel photo's face needs radii of hundreds of
    px, where the kernel would take minutes)."""
    r = region.astype(np.uint8)
    if radius <= 0:
        return region.astype(bool)
    if radius <= EXACT_GROW_PX:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        return cv2.dilate(r, k).astype(bool)
    return cv2.distanceTransform(1 - r, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) <= radius


def blend_weights(region_photo: np.ndarray, dilate_px: int, feather_px: float) -> np.ndarray:
    """Blend weights in [0, 1] over the photo: 1 inside the region, falling off over ``feather_px``
    within a ``dilate_px`` dilation of it, exactly 0 beyond the dilation. A wide feather is blurred on a
    copy reduced by a quarter of it (a smooth ramp loses nothing) and resized back."""
    grown = grow(region_photo, dilate_px)
    w = grown.astype(np.float32)
    if feather_px > 0:
        f = max(1, int(feather_px // 4))
        if f > 1:
            h0, w0 = w.shape
            small = cv2.resize(w, (max(1, w0 // f), max(1, h0 // f)), interpolation=cv2.INTER_AREA)
            w = cv2.resize(cv2.GaussianBlur(small, (0, 0), feather_px / f), (w0, h0), interpolation=cv2.INTER_LINEAR)
        else:
            w = cv2.GaussianBlur(w, (0, 0), feather_px)
        w = np.maximum(w, region_photo.astype(np.float32))    # the region itself is replaced fully
    w[~grown] = 0.0                                            # nothing changes beyond the dilated region
    return np.clip(w, 0.0, 1.0)


WORK_MIN_PX = 64          # the aligned face is restored and composited at least this large
MIN_FACE_PX = 24          # a face whose crop side is smaller (photo px) is left as it is, and listed
RIM_FRAC = 0.025          # a predicted mask is grown by this share of the crop side (the mask's rim)
RING_FRAC = 0.06          # skin ring for the colour match: this wide, just outside the grown region
MAX_COLOUR_SHIFT = 40.0   # at most this many levels per channel
SEAMLESS_MAX_SIDE = 1600  # Poisson blending on windows up to this side; wider ones are feathered


@dataclass
class FaceResult:
    output: np.ndarray        # the photo with this face restored
    region: np.ndarray        # (H, W) bool, the region restored (before dilation)


class FaceTooSmall(UnmaskError):
    """A face whose crop is smaller than :data:`MIN_FACE_PX` in the photo."""


def clean_region(region: np.ndarray, crop_side: float) -> np.ndarray:
    """A predicted occluder mask at photo resolution made whole: its holes filled (print on a mask, a
    logo), its edges smoothed, and grown by :data:`RIM_FRAC` of the face's crop side to cover the mask's
    rim, which a blocky low-resolution prediction leaves behind."""
    if not region.any():
        return region.astype(bool)
    k = max(1, int(round(0.03 * crop_side)))
    closed = ~grow(~grow(region, k), k)           # closing by distance maps: any radius costs the same
    contours, _ = cv2.findContours(closed.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros(region.shape, np.uint8)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    sigma = max(0.5, 0.015 * crop_side)
    f = max(1, int(sigma // 2))                    # a wide blur runs on a reduced copy (a smooth edge)
    h0, w0 = filled.shape
    soft = filled.astype(np.float32)
    if f > 1:
        soft = cv2.resize(soft, (max(1, w0 // f), max(1, h0 // f)), interpolation=cv2.INTER_AREA)
    soft = cv2.GaussianBlur(soft, (0, 0), sigma / f)
    if f > 1:
        soft = cv2.resize(soft, (w0, h0), interpolation=cv2.INTER_LINEAR)
    return grow((soft > 0.5) | filled.astype(bool), max(1, int(round(RIM_FRAC * crop_side))))


def match_colour(restored: np.ndarray, photo: np.ndarray, region: np.ndarray, inside: np.ndarray,
                 crop_side: float) -> np.ndarray:
    """``restored`` (window, uint8) with its region's colour shifted, per channel, so that the region's
    border band has the mean of the photo's skin ring just outside it (at most
    :data:`MAX_COLOUR_SHIFT` levels); the photo's own pixels are not changed. The means are taken on a
    copy reduced to about 1024 px a side, so a large face costs no more than a small one."""
    f = max(1, int(np.ceil(max(region.shape) / 1024)))
    if f > 1:
        size = (max(1, region.shape[1] // f), max(1, region.shape[0] // f))
        small = lambda a, how: cv2.resize(a, size, interpolation=how)   # noqa: E731
        r_s = small(region.astype(np.uint8), cv2.INTER_NEAREST).astype(bool)
        in_s = small(inside.astype(np.uint8), cv2.INTER_NEAREST).astype(bool)
        rest_s, photo_s, side_s = small(restored, cv2.INTER_AREA), small(photo, cv2.INTER_AREA), crop_side / f
    else:
        r_s, in_s, rest_s, photo_s, side_s = region, inside, restored, photo, crop_side
    ring_w = max(2, int(round(RING_FRAC * side_s)))
    outside = grow(r_s, ring_w) & ~grow(r_s, 1) & in_s
    band = r_s & grow(~r_s, max(1, ring_w // 2))
    if outside.sum() < 8 or band.sum() < 8:
        return restored
    shift = photo_s[outside].astype(np.float32).mean(0) - rest_s[band].astype(np.float32).mean(0)
    shift = np.clip(shift, -MAX_COLOUR_SHIFT, MAX_COLOUR_SHIFT)
    out = restored.copy()
    out[region] = np.clip(np.round(out[region].astype(np.float32) + shift), 0, 255).astype(np.uint8)
    return out


def _poisson(back: np.ndarray, win: np.ndarray, sel: np.ndarray) -> np.ndarray | None:
    """``back`` cloned into ``win`` inside ``sel`` (bool) by Poisson blending (OpenCV's seamlessClone):
    the boundary takes the photo's colours, the inside keeps the restoration's gradients. None when the
    window is too large or the region touches its edge."""
    h, w = sel.shape
    if max(h, w) > SEAMLESS_MAX_SIDE or not sel.any() or sel[0].any() or sel[-1].any() \
            or sel[:, 0].any() or sel[:, -1].any():
        return None
    ys, xs = np.nonzero(sel)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    # seamlessClone puts the mask's bounding box of ``back`` at ``center - size // 2`` in ``win``:
    # this centre leaves it where it is
    center = (int(x0 + (x1 - x0) // 2), int(y0 + (y1 - y0) // 2))
    mask = sel.astype(np.uint8) * 255
    try:
        bgr = cv2.seamlessClone(np.ascontiguousarray(back[..., ::-1]), np.ascontiguousarray(win[..., ::-1]),
                                mask, center, cv2.NORMAL_CLONE)
    except cv2.error:
        return None
    return bgr[..., ::-1]


def unmask_face(photo: np.ndarray, landmarks: np.ndarray, model: Unmasker, user_mask: np.ndarray | None = None,
                dilate_px: int | None = None, feather_px: float | None = None,
                segmenter: Unmasker | None = None) -> FaceResult:
    """Restore one face of ``photo`` (H, W, 3 uint8) given its 68 ``landmarks`` (photo pixels).

    The face is aligned at ``max(model size, WORK_MIN_PX)``; the model restores it at its own size and
    its output is upsampled into that crop. The region is the user's mask (exact), else the segmenter's
    prediction cleaned at photo resolution (:func:`clean_region`), else the lower face. The restoration
    is colour-matched to the skin around the region (:func:`match_colour`) and Poisson-blended into the
    photo inside the region grown by the blend margin; every pixel farther out is the input's, bit for
    bit. Everything at photo resolution happens in the window the face's crop covers, so time and memory
    follow the face, not the photo."""
    h, w = photo.shape[:2]
    size = model.size
    work = max(size, WORK_MIN_PX)
    with np.errstate(all="ignore"):
        quad = ffhq_quad(landmarks)
    if not np.isfinite(quad).all() or np.hypot(*(quad[3] - quad[0])) < 1.0:
        raise UnmaskError("landmarks give a degenerate face crop")
    side = float(np.hypot(*(quad[3] - quad[0])))
    if side < MIN_FACE_PX:
        raise FaceTooSmall(f"face too small: its crop is {side:.0f} px a side in the photo, need {MIN_FACE_PX}")
    scale = side / size                                            # photo px per model px
    dilate = dilate_px if dilate_px is not None else max(2, int(round(2 * scale)))
    feather = feather_px if feather_px is not None else max(1.0, 1.5 * scale)
    margin = dilate + int(np.ceil(4 * feather)) + int(np.ceil((RIM_FRAC + RING_FRAC) * side)) + 4
    x0, y0 = np.maximum(np.floor(quad.min(axis=0)).astype(int) - margin, 0)
    x1, y1 = np.minimum(np.ceil(quad.max(axis=0)).astype(int) + margin + 1, (w, h))
    if x1 <= x0 or y1 <= y0:
        raise UnmaskError("the face's crop lies outside the photo")
    win_w, win_h = int(x1 - x0), int(y1 - y0)
    aligned = align_image(photo, landmarks, work)
    m = crop_to_photo(quad, work)
    m[:, 2] -= (x0, y0)                          # crop pixels -> window pixels
    warp_in = lambda a: cv2.warpAffine(a.astype(np.uint8), m, (work, work),  # noqa: E731
                                       flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                                       borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    warp_out = lambda a: cv2.warpAffine(a.astype(np.uint8), m, (win_w, win_h), flags=cv2.INTER_NEAREST,  # noqa: E731
                                        borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    win_mask = user_mask[y0:y1, x0:x1] if user_mask is not None else None
    if win_mask is not None:
        region_work = warp_in(win_mask)
    elif segmenter is not None:
        seg_crop = aligned.image if segmenter.size == work else align_image(photo, landmarks, segmenter.size).image
        region_work = segmenter.segment(seg_crop, work)
    else:
        region_work = lower_face_region(aligned.landmarks, work)
    inside = warp_out(np.ones((work, work), bool))
    if win_mask is not None:
        win_region = win_mask.astype(bool) & inside
    elif segmenter is not None:
        win_region = clean_region(warp_out(region_work), side) & inside
        region_work = warp_in(win_region) | region_work
    else:
        win_region = warp_out(region_work)
    if work != size:
        small = cv2.resize(aligned.image, (size, size), interpolation=cv2.INTER_AREA)
        region_small = cv2.resize(region_work.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) > 0.25
        restored = cv2.resize(model.restore(small, region_small), (work, work), interpolation=cv2.INTER_CUBIC)
    else:
        restored = model.restore(aligned.image, region_work)
    back = cv2.warpAffine(restored, m, (win_w, win_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out = photo.copy()
    win = out[y0:y1, x0:x1]
    back = match_colour(back, win, win_region, inside, side)
    cloned = None
    if max(win_w, win_h) <= SEAMLESS_MAX_SIDE:
        grown = grow(win_region, dilate) & inside
        cloned = _poisson(np.where(grown[..., None], back, win), win, grown)
    if cloned is not None:
        win[grown] = cloned[grown]
    else:
        wgt = blend_weights(win_region, dilate, feather)
        wgt[~inside] = 0.0          # only where the crop covers the photo
        sel = wgt > 0
        blended = wgt[sel, None] * back[sel].astype(np.float32) + (1 - wgt[sel, None]) * win[sel].astype(np.float32)
        win[sel] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    region = np.zeros((h, w), bool)
    region[y0:y1, x0:x1] = win_region
    return FaceResult(out, region)


# ----------------------------------------------------------------------------------------- files
REJECTED_CSV = "rejected.csv"


def list_photos(src: str | os.PathLike) -> tuple[list[Path], list[tuple[str, str]]]:
    """The files to try under ``src`` (a photo or a folder, walked without following links) and the
    entries set aside with their reason (hidden files, links leading out, FIFOs and other non-files)."""
    src = Path(src)
    try:
        st = src.stat()
    except FileNotFoundError:
        raise UnmaskError(f"{display_name(str(src))}: no such photo or folder") from None
    except OSError as e:
        raise UnmaskError(f"{display_name(str(src))}: cannot read ({e.strerror or e})") from None
    if stat.S_ISREG(st.st_mode):
        return [src], []
    if not stat.S_ISDIR(st.st_mode):
        raise UnmaskError(f"{display_name(str(src))}: not a photo or a folder ({_file_kind(st.st_mode)})")
    listing = list_folder(src)
    rejected = [(display_name(str(src / r.path)), r.reason) for r in listing.rejected]
    files = []
    for path, _ in listing.files:
        try:
            mode = path.stat().st_mode
        except OSError as e:
            rejected.append((display_name(str(path)), f"cannot read ({e.strerror or e})"))
            continue
        if stat.S_ISREG(mode):
            files.append(path)
        else:                                   # never opened: reading a FIFO would wait for ever
            rejected.append((display_name(str(path)), f"not a regular file ({_file_kind(mode)})"))
    return files, rejected


def _file_kind(mode: int) -> str:
    for test, word in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return word
    return "not a regular file"


def _overlaps(a: Path, b: Path) -> bool:
    return a == b or a in b.parents


def plan_outputs(photos: Sequence[Path], src: Path, out_dir: Path) -> dict[Path, Path]:
    """Each photo's output file under ``out_dir``: its path relative to ``src`` with the suffix ``.png``;
    where two photos would share one (``a.jpg``, ``a.png``; names equal but for case), each keeps its
    whole name (``a.jpg.png``, ``a.png.png``). Refuses an ``out_dir`` equal to or inside the input folder
    (earlier outputs would be read as inputs, and could be written over them) and any output that would
    land on an input."""
    src_real, out_real = src.resolve(), out_dir.resolve()
    base = src if src.is_dir() else src.parent
    if src.is_dir() and _overlaps(src_real, out_real):
        raise UnmaskError(f"--out {display_name(str(out_dir))}: inside the input folder "
                          f"{display_name(str(src))}; choose a folder outside it (outputs would mix with, "
                          f"and could overwrite, your photos)")
    plain = {p: p.relative_to(base).with_suffix(".png") for p in photos}
    count: dict[str, int] = {}
    for rel in plain.values():
        count[rel.as_posix().casefold()] = count.get(rel.as_posix().casefold(), 0) + 1
    taken: set[str] = set()
    targets: dict[Path, Path] = {}
    for p, rel in plain.items():
        if count[rel.as_posix().casefold()] > 1:
            rel = p.relative_to(base).with_name(p.name + ".png")
        name, k = rel, 2
        while name.as_posix().casefold() in taken:          # an input already called "a.jpg.png"
            name, k = rel.with_name(f"{rel.stem}-{k}.png"), k + 1
        taken.add(name.as_posix().casefold())
        targets[p] = out_dir / name
    inputs = {}
    for p in photos:
        try:
            st = p.stat()
            inputs[(st.st_dev, st.st_ino)] = p
        except OSError:
            pass
    for p, target in targets.items():
        try:
            st = target.stat()
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in inputs:
            raise UnmaskError(f"--out {display_name(str(out_dir))}: the output {display_name(str(target))} "
                              f"is the input {display_name(str(inputs[(st.st_dev, st.st_ino)]))}; choose "
                              f"another --out (an input is never written over)")
    return targets


def _make_dirs(out_dir: Path, folder: Path) -> None:
    """Create ``folder`` (``out_dir`` or below it) without following a symbolic link inside ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    here = out_dir
    for part in folder.relative_to(out_dir).parts:
        here = here / part
        if here.is_symlink():
            raise UnmaskError(f"{display_name(str(here))}: a symbolic link inside --out; not followed")
        here.mkdir(exist_ok=True)


def write_png(target: Path, image: np.ndarray) -> None:
    """Encode ``image`` (RGB uint8) as PNG and write it atomically at ``target``: a symbolic link of that
    name is replaced, never followed; a failed write (a full disk) raises and leaves any earlier file."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESS_LEVEL])
    if not ok:
        raise UnmaskError(f"{display_name(str(target))}: PNG encoding failed")
    if target.is_symlink():
        target.unlink()
    with naming(target):
        write_bytes(target, buf.tobytes())


class RejectedLog:
    """``OUT/rejected.csv`` (file, reason), rewritten atomically as rows arrive (at most once a second,
    and at the end), so a run that is stopped still lists what it rejected."""

    def __init__(self, path: Path, rows: Sequence[tuple[str, str]] = ()):
        self.path = path
        self.rows: list[tuple[str, str]] = list(rows)
        self._written_at = 0.0
        self.write()

    def add(self, name: str, reason: str) -> None:
        self.rows.append((display_name(name), display_name(reason)))
        if time.monotonic() - self._written_at >= 1.0:
            self.write()

    def write(self) -> None:
        buf = io.StringIO()
        wr = csv.writer(buf, lineterminator="\n")
        wr.writerow(["file", "reason"])
        wr.writerows(self.rows)
        if self.path.is_symlink():
            self.path.unlink()
        with naming(self.path):
            write_bytes(self.path, buf.getvalue().encode("utf-8"))
        self._written_at = time.monotonic()


def read_mask(path: str | os.PathLike, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A user's mask image: white (> 127 in any channel) = occluded; must match the photo's size."""
    try:
        arr = load_rgb(path, min_side=1)
    except UnmaskError as e:
        raise UnmaskError(f"--mask {display_name(str(e))}") from None
    if shape is not None and arr.shape[:2] != shape:
        raise UnmaskError(f"--mask {display_name(str(path))}: mask is {arr.shape[1]}x{arr.shape[0]}, "
                          f"the photo {shape[1]}x{shape[0]}")
    return arr.max(axis=2) > 127


def side_by_side(photo: np.ndarray, region: np.ndarray, output: np.ndarray) -> np.ndarray:
    mask_rgb = np.repeat((region.astype(np.uint8) * 255)[..., None], 3, axis=2)
    return np.concatenate([photo, mask_rgb, output], axis=1)


def restore_photo(path: Path, model: Unmasker, user_mask: np.ndarray | None, segmenter: Unmasker | None,
                  face_crop: bool, skipped: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(photo, restored region, output) for one photo file, every face found restored; UnmaskError with
    the reason when none can be. A face too small to restore is left as it is and its reason appended
    to ``skipped``."""
    photo = load_rgb(path)
    if user_mask is not None and user_mask.shape != photo.shape[:2]:
        raise UnmaskError(f"mask is {user_mask.shape[1]}x{user_mask.shape[0]}, "
                          f"the photo {photo.shape[1]}x{photo.shape[0]}")
    faces = find_faces(photo, face_crop)
    if not faces:
        raise UnmaskError("no face found")
    out, regions, small = photo, np.zeros(photo.shape[:2], bool), []
    for i, lm in enumerate(faces):
        try:
            res = unmask_face(out, lm, model, user_mask, segmenter=segmenter)
        except FaceTooSmall as e:
            small.append(f"face {i + 1} of {len(faces)} at ({lm[:, 0].mean():.0f}, {lm[:, 1].mean():.0f}): {e}")
            continue
        out, regions = res.output, regions | res.region
    if len(small) == len(faces):
        raise UnmaskError("; ".join(small))
    if skipped is not None:
        skipped += small
    return photo, regions, out


def infer(src: str | os.PathLike, out_dir: str | os.PathLike, model: Unmasker, mask: str | None = None,
          side: bool = False, progress: bool = True, segmenter: Unmasker | None = None,
          face_crop: bool = False) -> tuple[int, list[tuple[str, str]]]:
    """Restore every face of every photo under ``src`` into ``out_dir`` (see :func:`plan_outputs` for
    the names); returns (photos written, rejected (file, reason)), the rejected also in
    ``out_dir/rejected.csv``. A photo that fails is rejected and the run goes on; a failed write (a full
    disk) stops it with the OSError, earlier files intact."""
    src, out_dir = Path(src), Path(out_dir)
    photos, set_aside = list_photos(src)
    if mask is not None and len(photos) != 1:
        raise UnmaskError(f"--mask {mask}: a mask goes with one photo, {display_name(str(src))} holds {len(photos)}")
    user_mask = read_mask(mask) if mask is not None else None
    targets = plan_outputs(photos, src, out_dir)
    _make_dirs(out_dir, out_dir)
    log = RejectedLog(out_dir / REJECTED_CSV, set_aside)
    written = 0
    try:
        for path in tqdm(photos, desc="infer", unit="photo", disable=None if progress else True):
            name = str(path)
            small: list[str] = []
            try:
                photo, regions, out = restore_photo(path, model, user_mask, segmenter, face_crop, small)
            except UnmaskError as e:          # a bad image, no face, a mask of the wrong size
                log.add(name, str(e).removeprefix(f"{path}: "))
                continue
            except Exception as e:  # noqa: BLE001 - whatever goes wrong with one photo is that photo's row
                reason = str(e).strip().splitlines()[-1] if str(e).strip() else ""
                log.add(name, f"failed: {type(e).__name__}: {reason}"[:300])
                continue
            target = targets[path]
            try:
                _make_dirs(out_dir, target.parent)
            except UnmaskError as e:
                log.add(name, str(e))
                continue
            write_png(target, side_by_side(photo, regions, out) if side else out)
            written += 1
            for reason in small:          # restored, but with a face left as it was
                log.add(name, reason)
    except BaseException:
        try:
            log.write()     # what was rejected before the stop (Ctrl-C, a full disk) stays listed
        except OSError:
            pass            # the error that stopped the run is the one to report
        raise
    log.write()
    return written, log.rows
