"""load_rgb: every odd input is converted to HxWx3 uint8 or refused with one line naming the file."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from unmask.errors import BadImageError
from unmask.io.images import MAX_PIXELS, decode_png, encode_png, load_rgb


def _gradient(h: int = 48, w: int = 64) -> np.ndarray:
    y, x = np.mgrid[:h, :w]
    return np.stack([x * 4 % 256, y * 5 % 256, (x + y) * 2 % 256], axis=2).astype(np.uint8)


def _save(path: Path, im: Image.Image, **kw) -> Path:
    im.save(path, **kw)
    return path


def _bad(path, match: str, **kw) -> str:
    """Assert load_rgb refuses ``path`` with a one-line message naming it and matching ``match``."""
    with pytest.raises(BadImageError, match=match) as info:
        load_rgb(path, **kw)
    msg = str(info.value)
    assert "\n" not in msg
    assert str(kw.get("name", path)) in msg
    return msg


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width x height`` followed by a tiny IDAT: a decompression-bomb shape."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


# ----------------------------------------------------------------------------- accepted inputs
def test_rgb_png_round_trips_exactly(tmp_path):
    a = _gradient()
    out = load_rgb(_save(tmp_path / "a.png", Image.fromarray(a)))
    assert out.dtype == np.uint8 and out.shape == (48, 64, 3)
    np.testing.assert_array_equal(out, a)


def test_bytes_input_uses_the_given_name_in_errors():
    a = _gradient()
    np.testing.assert_array_equal(load_rgb(encode_png(a), name="row-7"), a)
    _bad(b"garbage bytes", "not an image", name="row-7")


@pytest.mark.parametrize("mode", ["L", "1"])
def test_grayscale_becomes_three_equal_channels(tmp_path, mode):
    g = (np.arange(32 * 32).reshape(32, 32) % 256).astype(np.uint8)
    src = Image.fromarray(g).convert(mode)
    out = load_rgb(_save(tmp_path / f"g_{mode}.png", src))
    assert out.shape == (32, 32, 3)
    expected = np.asarray(src.convert("L"))
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], expected)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 0] = 200                      # red everywhere
    rgba[:, :10, 3] = 255                   # left half opaque
    rgba[:, 10:, 3] = 0                     # right half fully transparent
    out = load_rgb(_save(tmp_path / "a.png", Image.fromarray(rgba, "RGBA")))
    np.testing.assert_array_equal(out[0, 0], [200, 0, 0])
    np.testing.assert_array_equal(out[0, 15], [255, 255, 255])


def test_la_half_transparent_is_blended_with_white(tmp_path):
    la = np.zeros((20, 20, 2), np.uint8)
    la[..., 1] = 128                        # black at 50 % alpha -> mid grey on white
    out = load_rgb(_save(tmp_path / "la.png", Image.fromarray(la, "LA")))
    assert abs(int(out[5, 5, 0]) - 127) <= 1 and out[5, 5, 0] == out[5, 5, 2]


def test_palette_with_transparency_is_composited_on_white(tmp_path):
    p = Image.new("P", (20, 20), 0)
    p.putpalette([0, 0, 255, 10, 200, 10] + [0] * 762)
    p.paste(1, (0, 0, 10, 20))              # left half: palette entry 1 (green); right: entry 0 (blue)
    out = load_rgb(_save(tmp_path / "p.png", p, transparency=0))
    np.testing.assert_array_equal(out[0, 0], [10, 200, 10])
    np.testing.assert_array_equal(out[0, 15], [255, 255, 255])


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # pure red in CMYK
    out = load_rgb(_save(tmp_path / "c.jpg", cmyk, quality=95))
    assert out.shape == (32, 32, 3)
    r, g, b = out[16, 16].astype(int)
    assert r > 230 and g < 30 and b < 30


def test_16_bit_png_is_scaled_to_8_bit(tmp_path):
    a = np.array([[0, 257 * 128, 65535, 257 * 10]] * 20, np.uint16)
    a = np.repeat(a, 5, axis=1)             # 20 x 20
    src = tmp_path / "deep.png"
    Image.fromarray(a).save(src)
    assert Image.open(src).mode.startswith("I;16")
    out = load_rgb(src)
    np.testing.assert_array_equal(out[0, ::5, 0], [0, 128, 255, 10])
    assert out.dtype == np.uint8 and (out[..., 0] == out[..., 2]).all()


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_exif_orientation_is_applied(tmp_path, fmt):
    a = np.zeros((20, 40, 3), np.uint8)     # landscape: left half white, right half black
    a[:, :20] = 255
    exif = Image.Exif()
    exif[0x0112] = 6                        # "rotate 90 CW to display"
    src = _save(tmp_path / f"phone.{fmt}", Image.fromarray(a), exif=exif.tobytes())
    out = load_rgb(src)
    assert out.shape == (40, 20, 3)         # now portrait
    assert out[:15].mean() > 240 and out[25:].mean() < 15  # the left half went to the top


# ----------------------------------------------------------------------------- refused inputs
def test_missing_file(tmp_path):
    _bad(tmp_path / "nope.png", "no such file")


def test_directory_is_not_an_image(tmp_path):
    _bad(tmp_path, "not a regular file")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    _bad(p, "empty file")


def test_text_file_named_jpg(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("this is not a photo\n" * 10)
    _bad(p, "not an image")


def test_corrupt_png_bytes(tmp_path):
    good = encode_png(_gradient())
    data = bytearray(good)
    data[60:200] = bytes(range(140))        # valid signature and IHDR, garbage where the pixels are
    p = tmp_path / "corrupt.png"
    p.write_bytes(bytes(data))
    _bad(p, "corrupt")


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_truncated_file(tmp_path, fmt):
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)  # incompressible: truncation hits pixels
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, format=fmt)
    p = tmp_path / f"cut.{fmt}"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    _bad(p, "corrupt or truncated")


def test_tiny_image(tmp_path):
    msg = _bad(_save(tmp_path / "tiny.png", Image.new("RGB", (8, 30))), "too small")
    assert "8x30" in msg
    assert load_rgb(tmp_path / "tiny.png", min_side=8).shape == (30, 8, 3)


@pytest.mark.parametrize("side", [9000, 20000])  # above our limit; above Pillow's own bomb error
def test_huge_image_refused_without_decoding(tmp_path, monkeypatch, side):
    assert side * side > MAX_PIXELS
    p = tmp_path / "bomb.png"
    p.write_bytes(_png_header_only(side, side))

    def no_decode(self):
        raise AssertionError("pixels were decoded (and allocated) before the size check")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decode)
    _bad(p, "too large")


def test_float_image_refused(tmp_path):
    p = _save(tmp_path / "f.tif", Image.fromarray(np.ones((20, 20), np.float32)))
    _bad(p, "floating-point")


# ----------------------------------------------------------------------------- PNG codec
@pytest.mark.parametrize("shape", [(12, 10), (12, 10, 3)])
def test_encode_decode_png_is_lossless(shape):
    a = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    np.testing.assert_array_equal(decode_png(encode_png(a)), a)


def test_encode_png_refuses_non_uint8():
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((4, 4), np.float32))


def test_decode_png_corrupt_bytes_is_bad_image():
    with pytest.raises(BadImageError, match="corrupt PNG"):
        decode_png(b"\x89PNG\r\n\x1a\nnonsense")
