"""Decode and encode images with strict checks.

Every image that enters the pipeline goes through :func:`load_rgb`: it returns an ``HxWx3 uint8``
RGB array or raises :class:`~unmask.errors.BadImageError` with one line naming the file. Accepted
inputs are converted, not rejected, where the conversion is lossless in meaning (grayscale, palette,
RGBA on a white matte, CMYK, 16-bit); things that cannot be a face photo are rejected.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from unmask.errors import BadImageError

MIN_SIDE = 16
MAX_PIXELS = 64_000_000  # above this we refuse instead of risking a decompression bomb

PNG_COMPRESS_LEVEL = 1  # fast to write; size hardly matters beside speed at our scale


def _label(name: str | os.PathLike | None) -> str:
    return str(name) if name is not None else "<bytes>"


def load_rgb(src: str | os.PathLike | bytes, name: str | os.PathLike | None = None,
             min_side: int = MIN_SIDE) -> np.ndarray:
    """Read ``src`` (a path or encoded bytes) to an ``HxWx3 uint8`` RGB array.

    ``name`` is what error messages call the image (defaults to the path).
    """
    if isinstance(src, (bytes, bytearray, memoryview)):
        label = _label(name)
        fp = io.BytesIO(bytes(src))
    else:
        label = _label(name if name is not None else src)
        path = Path(src)
        if not path.is_file():
            raise BadImageError(f"{label}: no such file")
        fp = path.open("rb")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                im = Image.open(fp)
            except UnidentifiedImageError:
                raise BadImageError(f"{label}: not an image (format not recognised)") from None
            except Image.DecompressionBombWarning:
                raise BadImageError(f"{label}: image too large (decompression bomb guard)") from None
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise BadImageError(f"{label}: image too large ({w}x{h} > {MAX_PIXELS} pixels)")
            if min(w, h) < min_side:
                raise BadImageError(f"{label}: image too small ({w}x{h}, need at least {min_side} px a side)")
            try:
                im.load()
            except (OSError, SyntaxError, ValueError) as e:
                raise BadImageError(f"{label}: corrupt or truncated image ({e})") from None
            arr = _to_rgb(im, label)
    finally:
        fp.close()
    return arr


def _to_rgb(im: Image.Image, label: str) -> np.ndarray:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(im).astype(np.float64)
        hi = 65535.0 if a.max() > 255 else 255.0
        g = np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    if mode == "F":
        raise BadImageError(f"{label}: floating-point image mode 'F' is not a photo")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(bg, rgba).convert("RGB"))
    if mode == "RGB":
        return np.asarray(im).copy()
    try:
        return np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as e:
        raise BadImageError(f"{label}: cannot convert image mode {mode!r} to RGB ({e})") from None


def encode_png(arr: np.ndarray) -> bytes:
    """Encode a uint8 array (HxW or HxWx3) losslessly as PNG bytes."""
    if arr.dtype != np.uint8:
        raise ValueError(f"encode_png needs uint8, got {arr.dtype}")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """Decode PNG bytes written by :func:`encode_png` back to the same uint8 array."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im).copy()
