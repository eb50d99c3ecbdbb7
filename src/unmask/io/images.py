"""Decode and encode images with strict checks.

Every image that enters the pipeline goes through :func:`load_rgb`: it returns an ``HxWx3 uint8``
RGB array or raises :class:`~unmask.errors.BadImageError` with one line naming the file. Accepted
inputs are converted, not rejected, where the conversion is lossless in meaning (grayscale, palette,
RGBA on a white matte, CMYK, 16-bit, EXIF-rotated); things that cannot be a face photo are rejected:
empty, missing, not an image, corrupt, truncated, too small, or too large to decode safely.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from unmask.errors import BadImageError

MIN_SIDE = 16
MAX_PIXELS = 64_000_000  # above this we refuse instead of risking a decompression bomb

PNG_COMPRESS_LEVEL = 1  # fast to write; size hardly matters beside speed at our scale

_EXIF_ORIENTATION = 0x0112
# what Pillow raises on malformed data, depending on the format plugin and where the damage is
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)


def _label(name: str | os.PathLike | None) -> str:
    return str(name) if name is not None else "<bytes>"


def _read_source(src: str | os.PathLike | bytes, name: str | os.PathLike | None) -> tuple[bytes, str]:
    """The encoded bytes of ``src`` and the label errors use for it."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        return bytes(src), _label(name)
    label = _label(name if name is not None else src)
    path = Path(src)
    if not path.is_file():
        raise BadImageError(f"{label}: no such file" if not path.exists() else f"{label}: not a regular file")
    try:
        return path.read_bytes(), label
    except OSError as e:
        raise BadImageError(f"{label}: cannot read file ({e.strerror or e})") from None


def load_rgb(src: str | os.PathLike | bytes, name: str | os.PathLike | None = None,
             min_side: int = MIN_SIDE) -> np.ndarray:
    """Read ``src`` (a path or encoded bytes) to an ``HxWx3 uint8`` RGB array.

    ``name`` is what error messages call the image (defaults to the path). EXIF orientation is
    applied, so phone photos come out upright.
    """
    data, label = _read_source(src, name)
    if not data:
        raise BadImageError(f"{label}: empty file")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
        except Image.UnidentifiedImageError:
            raise BadImageError(f"{label}: not an image (format not recognised)") from None
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise BadImageError(f"{label}: image too large (decompression bomb guard)") from None
        except _DECODE_ERRORS as e:
            raise BadImageError(f"{label}: corrupt image header ({_reason(e)})") from None
        with im:
            w, h = im.size  # known from the header: both checks run before any pixel is allocated
            if w * h > MAX_PIXELS:
                raise BadImageError(f"{label}: image too large ({w}x{h} > {MAX_PIXELS} pixels)")
            if min(w, h) < min_side:
                raise BadImageError(f"{label}: image too small ({w}x{h}, need at least {min_side} px a side)")
            try:
                im.load()
            except _DECODE_ERRORS as e:
                raise BadImageError(f"{label}: corrupt or truncated image ({_reason(e)})") from None
            im = _upright(im)
            return _to_rgb(im, label)


def _reason(e: BaseException) -> str:
    return str(e) or type(e).__name__


def _upright(im: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag; an unreadable EXIF block is ignored, not fatal."""
    try:
        if im.getexif().get(_EXIF_ORIENTATION, 1) in (2, 3, 4, 5, 6, 7, 8):
            return ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001 - malformed EXIF is common in the wild and says nothing of pixels
        pass
    return im


def _to_rgb(im: Image.Image, label: str) -> np.ndarray:
    mode = im.mode
    if mode.startswith("I;16"):
        return _gray16_to_rgb(np.asarray(im).astype(np.float32), 65535.0)
    if mode == "I":  # 32-bit integer: 8-bit or 16-bit data stored wide (older 16-bit PNG, TIFF)
        a = np.asarray(im).astype(np.float32)
        if a.min() < 0 or a.max() > 65535:
            raise BadImageError(f"{label}: 32-bit integer image with values outside 0..65535 is not a photo")
        return _gray16_to_rgb(a, 255.0 if a.max() <= 255 else 65535.0)
    if mode == "F":
        raise BadImageError(f"{label}: floating-point image mode 'F' is not a photo")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA") if mode != "La" else im.convert("LA").convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(bg, rgba).convert("RGB"))
    if mode == "RGB":
        return np.asarray(im).copy()
    try:
        return np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as e:
        raise BadImageError(f"{label}: cannot convert image mode {mode!r} to RGB ({e})") from None


def _gray16_to_rgb(a: np.ndarray, full_scale: float) -> np.ndarray:
    g = np.clip(np.rint(a * (255.0 / full_scale)), 0, 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def encode_png(arr: np.ndarray) -> bytes:
    """Encode a uint8 array (HxW or HxWx3) losslessly as PNG bytes."""
    if arr.dtype != np.uint8:
        raise ValueError(f"encode_png needs uint8, got {arr.dtype}")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """Decode PNG bytes written by :func:`encode_png` back to the same uint8 array."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im).copy()
    except _DECODE_ERRORS as e:
        raise BadImageError(f"<bytes>: corrupt PNG ({_reason(e)})") from None
