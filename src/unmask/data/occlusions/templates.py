"""MaskTheFace-format mask templates warped onto faces by a homography.

A template folder holds ``masks.cfg`` (INI: one ``[section]`` per template with ``template:`` -- a path
such as ``masks/templates/surgical.png``, resolved by file name inside ``<folder>/templates/`` -- and
six anchors ``mask_a`` .. ``mask_f`` as ``x, y`` template pixels), the RGBA ``templates/*.png`` and
optional ``textures/<group>/*.png|jpg``. Sections without ``template:`` (MaskTheFace's ``[empty]`` and
``[inpaint]`` modes) are skipped. ``<name>_left`` / ``<name>_right`` sections are the turned views of
``<name>``.

Anchor layout (as MaskTheFace): a top-left, b top centre (nose bridge), c top-right, d bottom-left,
e bottom centre (chin), f bottom-right; the face's points are
:func:`~unmask.data.occlusions.geometry.anchor_points`. The homography is the least-squares fit over
all six pairs (``cv2.findHomography``); the warp is done at 4x and box-filtered, so the template's
alpha is antialiased, and the mask is warped alpha >= 0.5. A face turned more than ``yaw_threshold``
degrees (:func:`~unmask.data.occlusions.geometry.estimate_yaw`) gets the ``_left`` view when its nose
points towards image left, ``_right`` towards image right (where the template has that view).
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from unmask.config import SynthesizeConfig
from unmask.data.occlusions.base import SUPERSAMPLE, Occluder, Occlusion, box_downscale, composite_premultiplied
from unmask.data.occlusions.geometry import anchor_points, estimate_yaw
from unmask.data.occlusions.patterns import random_colour
from unmask.errors import ConfigError, UnmaskError
from unmask.io.images import load_rgb

ANCHORS = ("mask_a", "mask_b", "mask_c", "mask_d", "mask_e", "mask_f")
VIEWS = ("left", "right")
TEXTURE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_TEMPLATE_SIDE = 512  # templates are kept at most this large (ample for 4x-supersampled 128 px faces)
MAX_TEXTURE_SIDE = 256


@dataclass(frozen=True)
class Template:
    section: str        # e.g. "surgical_blue_left"
    base: str           # e.g. "surgical_blue"
    view: str           # "front", "left" or "right"
    path: Path
    anchors: np.ndarray  # (6, 2) float32, a..f in the template's own pixels


class TemplateLibrary:
    """A parsed MaskTheFace folder; template pixels and textures load lazily, once each."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        cfg = self.folder / "masks.cfg"
        if not self.folder.is_dir():
            raise UnmaskError(f"{self.folder}: MaskTheFace template folder not found")
        if not cfg.is_file():
            raise UnmaskError(f"{cfg}: masks.cfg not found in the MaskTheFace template folder")
        parser = configparser.ConfigParser()
        try:
            parser.read_string(cfg.read_text(encoding="utf-8"), source=str(cfg))
        except (configparser.Error, UnicodeDecodeError) as e:
            raise UnmaskError(f"{cfg}: not a valid INI file ({str(e).splitlines()[0]})") from None
        self.templates: dict[str, Template] = {}
        for section in parser.sections():
            if "template" in parser[section]:
                self.templates[section] = self._parse(cfg, section, parser[section])
        if not self.templates:
            raise UnmaskError(f"{cfg}: no section with a 'template:' entry")
        self.groups: dict[str, dict[str, Template]] = {}
        for t in self.templates.values():
            self.groups.setdefault(t.base, {})[t.view] = t
        self.names = sorted(b for b, views in self.groups.items() if "front" in views)
        if not self.names:
            raise UnmaskError(f"{cfg}: no front-view template (a section not ending in _left/_right)")
        tex_dir = self.folder / "textures"
        self.textures = sorted(p for p in tex_dir.glob("*/*") if p.suffix.lower() in TEXTURE_SUFFIXES) \
            if tex_dir.is_dir() else []
        self._pixels: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._texture_pixels: dict[Path, np.ndarray] = {}

    def _parse(self, cfg: Path, section: str, entries: configparser.SectionProxy) -> Template:
        path = self.folder / "templates" / PurePosixPath(entries["template"].strip().replace("\\", "/")).name
        if not path.is_file():
            raise UnmaskError(f"{path}: template image named in {cfg} [{section}] not found")
        anchors = []
        for key in ANCHORS:
            raw = entries.get(key)
            if raw is None:
                raise UnmaskError(f"{cfg}: [{section}] {key}: anchor point missing")
            try:
                x, y = (float(p) for p in raw.split(","))
            except ValueError:
                raise UnmaskError(f"{cfg}: [{section}] {key}: expected 'x, y', got {raw!r}") from None
            anchors.append((x, y))
        try:
            with Image.open(path) as im:
                mode, has_trns = im.mode, "transparency" in im.info
        except (UnidentifiedImageError, OSError):
            raise UnmaskError(f"{path}: template is not a readable image") from None
        if mode not in ("RGBA", "LA", "PA") and not has_trns:
            raise UnmaskError(f"{path}: template has no alpha channel (mode {mode}); the alpha is the mask")
        base, view = section, "front"
        for v in VIEWS:
            if section.endswith(f"_{v}"):
                base, view = section[: -len(v) - 1], v
        return Template(section, base, view, path, np.array(anchors, np.float32))

    def pick(self, base: str, yaw: float, threshold: float) -> Template:
        """The view of ``base`` for a face with this yaw (front when the turned view is missing)."""
        views = self.groups[base]
        view = "left" if yaw < -threshold else "right" if yaw > threshold else "front"
        return views.get(view, views["front"])

    def pixels(self, t: Template) -> tuple[np.ndarray, np.ndarray]:
        """Premultiplied RGBA (``HxWx4 float32``: RGB 0..255, alpha 0..1) and the anchors, downscaled."""
        if t.section not in self._pixels:
            with Image.open(t.path) as im:
                rgba = np.asarray(im.convert("RGBA"), np.float32)
            pm = np.concatenate([rgba[..., :3] * (rgba[..., 3:] / 255), rgba[..., 3:] / 255], axis=2)
            f = min(1.0, MAX_TEMPLATE_SIDE / max(pm.shape[:2]))
            if f < 1:
                size = (max(1, round(pm.shape[1] * f)), max(1, round(pm.shape[0] * f)))
                pm = cv2.resize(pm, size, interpolation=cv2.INTER_AREA)
            self._pixels[t.section] = (pm, (t.anchors + 0.5) * f - 0.5)
        return self._pixels[t.section]

    def texture(self, path: Path) -> np.ndarray:
        """A texture as ``HxWx3 float32`` (0..255), at most ``MAX_TEXTURE_SIDE`` a side."""
        if path not in self._texture_pixels:
            rgb = load_rgb(path)
            f = min(1.0, MAX_TEXTURE_SIDE / max(rgb.shape[:2]))
            if f < 1:
                rgb = cv2.resize(rgb, (max(1, round(rgb.shape[1] * f)), max(1, round(rgb.shape[0] * f))),
                                 interpolation=cv2.INTER_AREA)
            self._texture_pixels[path] = rgb.astype(np.float32)
        return self._texture_pixels[path]


class TemplateMask(Occluder):
    """A random template of the library, warped onto the face; sometimes recoloured or textured."""

    name = "template"

    def __init__(self, library: TemplateLibrary, p_texture: float = 0.25, p_recolour: float = 0.2,
                 yaw_threshold: float = 13.0):
        self.library = library
        self.p_texture, self.p_recolour, self.yaw_threshold = p_texture, p_recolour, yaw_threshold

    @classmethod
    def from_config(cls, cfg: SynthesizeConfig) -> "TemplateMask":
        if not cfg.templates:
            raise ConfigError("synthesize.templates: the 'template' kind needs a MaskTheFace folder")
        return cls(TemplateLibrary(cfg.templates))

    def __call__(self, image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> Occlusion:
        lib = self.library
        base = lib.names[rng.integers(len(lib.names))]
        yaw = estimate_yaw(landmarks)
        template = lib.pick(base, yaw, self.yaw_threshold)
        pm, src = lib.pixels(template)
        attrs: dict = {"template": template.section, "yaw": round(yaw, 2)}
        r = rng.uniform()
        if r < self.p_texture and lib.textures:
            path = lib.textures[rng.integers(len(lib.textures))]
            pm = _textured(pm, lib.texture(path), rng)
            attrs["texture"] = f"{path.parent.name}/{path.name}"
        elif r < self.p_texture + self.p_recolour:
            colour = random_colour(rng)
            pm = _recoloured(pm, colour, rng.uniform(0.4, 0.7))
            attrs["recolour"] = [int(round(c)) for c in colour]
        out, mask = warp_template(image, pm, src, anchor_points(landmarks))
        return Occlusion(out, mask, f"{self.name}:{base}", attrs)


def warp_template(image: np.ndarray, premult: np.ndarray, src: np.ndarray,
                  dst: np.ndarray, ss: int = SUPERSAMPLE) -> tuple[np.ndarray, np.ndarray]:
    """Warp premultiplied RGBA so ``src`` anchors land on ``dst`` (image px); composite over ``image``."""
    h, w = image.shape[:2]
    hom, _ = cv2.findHomography(src.astype(np.float32), ((dst + 0.5) * ss - 0.5).astype(np.float32), 0)
    if hom is None or not np.isfinite(hom).all():
        raise UnmaskError("template: landmarks too degenerate to fit a homography")
    big = cv2.warpPerspective(premult, hom, (w * ss, h * ss), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    small = box_downscale(big, ss)
    return composite_premultiplied(image, small[..., :3], np.clip(small[..., 3], 0, 1))


def _luminance(premult: np.ndarray) -> np.ndarray:
    """Premultiplied grey level, normalised so the template's mean opaque grey is 1."""
    grey = premult[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    a = premult[..., 3]
    mean = grey.sum() / max(a.sum(), 1e-6)
    return grey / max(mean, 1e-6)


def _recoloured(premult: np.ndarray, colour: np.ndarray, weight: float) -> np.ndarray:
    """Blend towards ``colour`` keeping the template's shading."""
    tinted = _luminance(premult)[..., None] * np.asarray(colour, np.float32)
    out = premult.copy()
    out[..., :3] = np.clip((1 - weight) * premult[..., :3] + weight * tinted, 0, 255 * premult[..., 3:])
    return out


def _textured(premult: np.ndarray, texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Tile ``texture`` over the template and blend it in, keeping the template's shading."""
    h, w = premult.shape[:2]
    f = w / texture.shape[1] / rng.uniform(1.0, 2.5)  # one to 2.5 repeats across the mask
    tex = cv2.resize(texture, (max(1, round(texture.shape[1] * f)), max(1, round(texture.shape[0] * f))),
                     interpolation=cv2.INTER_AREA)
    reps = (h // tex.shape[0] + 1, w // tex.shape[1] + 1, 1)
    tiled = np.tile(tex, reps)[:h, :w]
    weight = rng.uniform(0.6, 0.85)
    out = premult.copy()
    shaded = _luminance(premult)[..., None] * tiled
    out[..., :3] = np.clip((1 - weight) * premult[..., :3] + weight * shaded, 0, 255 * premult[..., 3:])
    return out
