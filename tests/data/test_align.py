"""FFHQ alignment: the crop geometry, landmark mapping, and the align stage over RAW shards."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from unmask.config import AlignConfig
from unmask.data import align as align_mod
from unmask.data.align import align_dataset, align_image, eye_distance, ffhq_quad
from unmask.data.schema import ALIGNED, RAW
from unmask.errors import UnmaskError
from unmask.io.images import decode_png, encode_png, load_rgb
from unmask.io.shards import read_table, write_rows

# A canonical face (pixel units, origin between the eyes): eye centres at (+-A, 0), mouth corners at
# (+-M, H). Only the eyes and the mouth corners enter the FFHQ quad; the rest makes a full 68 points.
A, H, M = 20.0, 50.0, 18.0
FAST_SUBSET = 60             # real crops in the fast test (sorted by name)
MIN_SHARE_SUBSET = 0.85      # measured 0.95 on the 60-file subset (dlib upsample 0)
MIN_SHARE_ALL = 0.90         # measured 0.9525 (381 / 400) with upsample 0, 0.95 with upsample 1


def _template(a: float = A, h: float = H, m: float = M) -> np.ndarray:
    t = np.linspace(0, np.pi, 17)
    jaw = np.stack([-2.2 * a * np.cos(t), -0.2 * h + 1.4 * h * np.sin(t)], 1)
    brows = np.stack([np.linspace(-1.8 * a, -0.3 * a, 5), np.full(5, -0.5 * a)], 1)
    brows = np.concatenate([brows, brows[::-1] * [-1, 1]])
    nose = np.concatenate([np.stack([np.zeros(4), np.linspace(0.1, 0.5, 4) * h], 1),
                           np.stack([np.linspace(-0.4, 0.4, 5) * a, np.full(5, 0.6 * h)], 1)])
    ang = np.linspace(0, 2 * np.pi, 7)[:-1]
    eye = np.stack([-0.4 * a * np.cos(ang), 0.15 * a * np.sin(ang)], 1)  # 6 points, centred at 0
    eyes = np.concatenate([eye + [-a, 0], eye + [a, 0]])
    ang = np.linspace(0, 2 * np.pi, 13)[:-1]
    outer = np.stack([-m * np.cos(ang), h - 0.25 * m * np.sin(ang)], 1)  # 48 at (-m, h), 54 at (m, h)
    ang = np.linspace(0, 2 * np.pi, 9)[:-1]
    inner = np.stack([-0.7 * m * np.cos(ang), h - 0.1 * m * np.sin(ang)], 1)
    lm = np.concatenate([jaw, brows, nose, eyes, outer, inner])
    assert lm.shape == (68, 2)
    return lm


def _place(lm: np.ndarray, angle_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    th = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    return lm @ rot.T * scale + shift


def _canonical_aligned(size: int, a: float = A, h: float = H, m: float = M) -> np.ndarray:
    """Where the template's points must land: its quad's top-left corner is (-L, 0.1 H - L), side 2 L."""
    half = max(4 * a, 1.8 * h)
    return (_template(a, h, m) - [-half, 0.1 * h - half]) / (2 * half) * size - 0.5


POSES = [(0.0, 1.0, (256.0, 256.0)), (25.0, 2.5, (300.0, 280.0)), (-40.0, 0.6, (90.0, 400.0)),
         (170.0, 3.0, (200.0, 220.0))]


# --------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("a, h, m, half", [(20.0, 50.0, 18.0, 90.0), (30.0, 40.0, 15.0, 120.0)])
def test_ffhq_quad_matches_the_hand_computed_square(a, h, m, half):
    # e2e = (2a, 0), e2m = (0, h): x = (2a + h, 0) normalised * max(4a, 1.8h); y = (0, |x|); c = (0, 0.1h)
    expected = np.array([[-half, 0.1 * h - half], [-half, 0.1 * h + half],
                         [half, 0.1 * h + half], [half, 0.1 * h - half]])
    np.testing.assert_allclose(ffhq_quad(_template(a, h, m)), expected, atol=1e-9)
    for angle, scale, shift in POSES:  # the quad moves with the face (a similarity transform)
        np.testing.assert_allclose(ffhq_quad(_place(_template(a, h, m), angle, scale, shift)),
                                   _place(expected, angle, scale, shift), atol=1e-9)
    assert ffhq_quad(_template(a, h, m)).dtype == np.float64


@pytest.mark.parametrize("angle, scale, shift", POSES)
def test_aligned_landmarks_are_pose_independent(angle, scale, shift):
    lm = _place(_template(), angle, scale, shift)
    out = align_image(np.zeros((512, 512, 3), np.uint8), lm, 256)
    assert out.image.shape == (256, 256, 3) and out.landmarks.shape == (68, 2)
    assert out.landmarks.dtype == np.float32
    np.testing.assert_allclose(out.landmarks, _canonical_aligned(256), atol=0.01)
    eyes = out.landmarks[36:48].reshape(2, 6, 2).mean(axis=1)
    assert abs(eyes[0, 1] - eyes[1, 1]) < 0.01          # the eye line is horizontal
    assert abs(eyes.mean(axis=0)[0] - 127.5) < 0.01     # and centred


def _blob_image(shape: tuple[int, int], points: np.ndarray, sigma: float) -> np.ndarray:
    """Black image with a Gaussian blob centred (sub-pixel) on each point, one colour channel each."""
    ys, xs = np.mgrid[:shape[0], :shape[1]].astype(np.float64)
    img = np.zeros((*shape, 3))
    for c, (px, py) in enumerate(points):
        img[..., c] = 255 * np.exp(-((xs - px) ** 2 + (ys - py) ** 2) / (2 * sigma ** 2))
    return np.rint(img).astype(np.uint8)


def _centroid(channel: np.ndarray, near: np.ndarray, radius: int = 8) -> np.ndarray:
    x0, y0 = (np.rint(near) - radius).astype(int)
    win = channel[max(y0, 0):y0 + 2 * radius + 1, max(x0, 0):x0 + 2 * radius + 1].astype(np.float64)
    win = np.clip(win - 8, 0, None)  # ignore the faint tails
    ys, xs = np.mgrid[:win.shape[0], :win.shape[1]]
    return np.array([(xs * win).sum(), (ys * win).sum()]) / win.sum() + [max(x0, 0), max(y0, 0)]


@pytest.mark.parametrize("angle, scale, shift, shape, size", [
    (0.0, 1.0, (160.0, 130.0), (300, 320), 128),       # plain: quad inside the image
    (33.0, 4.0, (500.0, 420.0), (900, 1000), 48),      # big face, small output: FFHQ's shrink step
    (-20.0, 1.5, (70.0, 60.0), (400, 300), 128),       # face at the corner: reflect padding
    (0.0, 0.4, (160.0, 130.0), (300, 320), 128),       # small face, upscaled: no LANCZOS step
])
def test_a_dot_at_a_landmark_lands_on_the_mapped_landmark(angle, scale, shift, shape, size):
    lm = _place(_template(), angle, scale, shift)
    picks = [36, 54, 30]                                # outer eye corner, mouth corner, nose tip
    img = _blob_image(shape, lm[picks], sigma=3.0 * scale)
    out = align_image(img, lm, size)
    for c, k in enumerate(picks):
        found = _centroid(out.image[..., c], out.landmarks[k])
        assert np.hypot(*(found - out.landmarks[k])) < 0.2, (k, found, out.landmarks[k])  # measured <= 0.1


def test_parsing_follows_the_face_with_background_outside():
    lm = _place(_template(), 15.0, 1.2, (70.0, 70.0))   # near the corner: part of the crop is off-image
    img = np.full((200, 240, 3), 90, np.uint8)
    parsing = np.ones((200, 240), np.uint8)             # "skin" everywhere in the photo
    for label, k in ((4, 36), (5, 45)):                 # eye labels around the outer eye corners
        x, y = np.rint(lm[k]).astype(int)
        parsing[y - 3:y + 4, x - 3:x + 4] = label
    out = align_image(img, lm, 64, parsing=parsing)
    assert out.parsing.shape == (64, 64) and out.parsing.dtype == np.uint8
    assert set(np.unique(out.parsing)) <= {0, 1, 4, 5}  # NEAREST: no blended labels
    for label, k in ((4, 36), (5, 45)):
        x, y = np.rint(out.landmarks[k]).astype(int)
        assert out.parsing[y, x] == label
    assert out.parsing[0, 0] == 0                       # outside the photo: background, not reflected skin
    assert (out.image[0, 0] > 0).all()                  # while the photo there is reflect-padded
    half = align_image(img, lm, 64, parsing=parsing[::2, ::2]).parsing  # parsing at half resolution
    assert (half == out.parsing).mean() > 0.95


def test_extra_image_gets_the_image_transform():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (180, 200, 3), dtype=np.uint8)
    lm = _place(_template(), 10.0, 1.3, (100.0, 80.0))
    out = align_image(img, lm, 64, extra=img.copy())
    np.testing.assert_array_equal(out.extra, out.image)
    with pytest.raises(ValueError, match="differs"):
        align_image(img, lm, 64, extra=img[:100])


# --------------------------------------------------------------------------- dataset helpers
def _row(image_id: str, image: bytes | None, landmarks=None, parsing=None, occluded=None) -> dict:
    return {"image_id": image_id, "identity": image_id.split("-")[0], "source": "test", "image": image,
            "occluded": occluded, "landmarks": None if landmarks is None else np.ravel(landmarks).tolist(),
            "parsing": parsing, "attrs": json.dumps({"k": image_id})}


def _raw(tmp_path: Path, rows: list[dict]) -> Path:
    raw = tmp_path / "raw"
    write_rows(raw, RAW, rows)
    return raw


def _rejected(out: Path) -> dict[str, str]:
    with (out / "rejected.csv").open() as f:
        rows = list(csv.DictReader(f))
    return {r["image_id"]: r["reason"] for r in rows}


def _real_rows(folder: Path, files: list[Path]) -> list[dict]:
    return [_row(f"{p.stem}-0", p.read_bytes()) for p in files]


def _grey(side: int = 96) -> bytes:
    return encode_png(np.full((side, side, 3), 128, np.uint8))


# --------------------------------------------------------------------------- dataset
def test_source_landmarks_dataset_round_trip(tmp_path):
    lm = _place(_template(), 5.0, 0.5, (60.0, 55.0))
    img = np.random.default_rng(1).integers(0, 256, (120, 120, 3), dtype=np.uint8)
    parsing = np.zeros((120, 120), np.uint8)
    parsing[40:80, 30:90] = 1
    raw = _raw(tmp_path, [_row("p1-0", encode_png(img), lm, encode_png(parsing), encode_png(img)),
                          _row("p2-0", encode_png(img), lm)])
    report = align_dataset(raw, tmp_path / "aligned", AlignConfig(size=32), progress=False)
    assert (report.n_in, report.n_aligned, report.n_rejected) == (2, 2, 0)
    assert report.landmarks_from == {"source": 2} and report.images_per_second > 0
    table = read_table(tmp_path / "aligned")
    assert table.schema.equals(ALIGNED)
    first, second = table.to_pylist()
    assert decode_png(first["image"]).shape == (32, 32, 3)
    assert decode_png(first["parsing"]).shape == (32, 32)
    np.testing.assert_array_equal(decode_png(first["occluded"]), decode_png(first["image"]))
    assert second["occluded"] is None and second["parsing"] is None
    np.testing.assert_allclose(np.reshape(first["landmarks"], (68, 2)), _canonical_aligned(32), atol=0.01)
    assert first["attrs"] == json.dumps({"k": "p1-0"}) and first["identity"] == "p1"
    assert _rejected(tmp_path / "aligned") == {}
    assert json.dumps(report.to_dict())  # the stage writes it as summary.json


def test_source_landmarks_are_used_only_when_asked(tmp_path):
    lm = _place(_template(), 0.0, 0.5, (48.0, 40.0))
    raw = _raw(tmp_path, [_row("g-0", _grey(), lm)])  # flat grey: nothing for dlib to find
    assert align_dataset(raw, tmp_path / "a", AlignConfig(), progress=False).n_aligned == 1
    with pytest.raises(UnmaskError) as e:
        align_dataset(raw, tmp_path / "b", AlignConfig(use_source_landmarks=False, detector_upsample=0),
                      progress=False)
    assert str(e.value) == (f"{tmp_path / 'b'}: no face aligned in 1 images (no face: 1); "
                            f"see {tmp_path / 'b' / 'rejected.csv'}")
    assert _rejected(tmp_path / "b")["g-0"].startswith("no_face: g-0: no face found (face mesh, dlib HOG")


def test_bad_rows_are_rejected_with_reasons(tmp_path):
    lm = _place(_template(), 0.0, 0.5, (48.0, 40.0))
    tiny = _place(_template(), 0.0, 0.08, (48.0, 40.0))  # eye distance 3.2 px
    corrupt = bytearray(_grey())
    corrupt[60:] = b"\0" * (len(corrupt) - 60)
    rows = [
        _row("corrupt-0", bytes(corrupt)),
        _row("empty-0", None),
        _row("grey-0", _grey()),                                   # dlib: no face
        _row("tiny-0", _grey(), tiny),
        _row("short-0", _grey(), np.zeros(10)),
        _row("nan-0", _grey(), np.where(np.arange(136) == 5, np.nan, lm.ravel())),
        _row("off-0", _grey(), lm + 500),
        _row("parse-0", _grey(), lm, parsing=encode_png(np.zeros((96, 30), np.uint8))),
        _row("occl-0", _grey(), lm, occluded=_grey(64)),
        _row("good-0", _grey(), lm),
    ]
    out = tmp_path / "aligned"
    report = align_dataset(_raw(tmp_path, rows), out, AlignConfig(detector_upsample=0), progress=False)
    assert (report.n_in, report.n_aligned, report.n_rejected) == (10, 1, 9)
    assert report.reasons == {"bad_image": 2, "no_face": 1, "face_too_small": 1, "bad_landmarks": 3,
                              "bad_parsing": 1, "bad_occluded": 1}
    reasons = _rejected(out)
    assert set(reasons) == {r["image_id"] for r in rows} - {"good-0"}
    assert reasons["corrupt-0"].startswith("bad_image: corrupt-0:")
    assert reasons["empty-0"] == "bad_image: empty-0: empty file"
    assert reasons["grey-0"].startswith("no_face:")
    assert "3.2 px < 8 px" in reasons["tiny-0"]
    assert "10 landmark values" in reasons["short-0"] and "NaN" in reasons["nan-0"]
    assert "outside" in reasons["off-0"]
    assert all("\n" not in r for r in reasons.values())
    assert [r["image_id"] for r in read_table(out).to_pylist()] == ["good-0"]


def test_failure_midway_leaves_the_previous_output(tmp_path, monkeypatch):
    lm = _place(_template(), 0.0, 0.5, (48.0, 40.0))
    raw = _raw(tmp_path, [_row(f"f{i}-0", _grey(), lm) for i in range(4)])
    out = tmp_path / "aligned"
    align_dataset(raw, out, AlignConfig(size=32), progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    calls = {"n": 0}
    real = align_mod._align_row

    def flaky(row, cfg):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk on fire")
        return real(row, cfg)

    monkeypatch.setattr(align_mod, "_align_row", flaky)
    with pytest.raises(RuntimeError, match="disk on fire"):
        align_dataset(raw, out, AlignConfig(size=48), progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aligned", "raw"]  # no temp dirs left


# --------------------------------------------------------------------------- real photos (dlib)
def _check_real_run(real_faces_dir: Path, files: list[Path], tmp_path: Path, min_share: float) -> None:
    out = tmp_path / "aligned"
    cfg = AlignConfig(size=64, detector_upsample=0)
    report = align_dataset(_raw(tmp_path, _real_rows(real_faces_dir, files)), out, cfg, progress=False)
    share = report.n_aligned / report.n_in
    print(f"\nreal crops: aligned {report.n_aligned}/{report.n_in} = {share:.1%}, rejected {report.reasons}, "
          f"{report.images_per_second:.1f} images/s")
    assert report.n_in == len(files) == report.n_aligned + report.n_rejected
    assert share > min_share
    aligned = read_table(out).to_pylist()
    assert len(aligned) == report.n_aligned and report.landmarks_from == {"dlib": report.n_aligned}
    rejected = _rejected(out)
    assert set(rejected) | {r["image_id"] for r in aligned} == {f"{p.stem}-0" for p in files}
    assert all(reason for reason in rejected.values())
    for r in aligned:  # FFHQ crops: upright faces, eyes on a level line in the upper middle
        lm = np.reshape(r["landmarks"], (68, 2))
        eyes = lm[36:48].reshape(2, 6, 2).mean(axis=1)
        tilt = np.degrees(np.arctan2(*(eyes[1] - eyes[0])[::-1]))
        assert abs(tilt) < 10 and 0.4 * 64 < eyes[:, 0].mean() < 0.6 * 64 and 0.25 * 64 < eyes[:, 1].mean() < 0.5 * 64
        assert 0.1 * 64 < eye_distance(lm) <= 0.25 * 64 + 1e-3  # the crop side is at least 4 eye distances


def test_real_photos_subset(real_faces_dir, tmp_path):
    files = sorted(real_faces_dir.glob("*.png"))[:FAST_SUBSET]
    _check_real_run(real_faces_dir, files, tmp_path, MIN_SHARE_SUBSET)


@pytest.mark.slow
def test_real_photos_all(real_faces_dir, tmp_path):
    files = sorted(real_faces_dir.glob("*.png"))
    _check_real_run(real_faces_dir, files, tmp_path, MIN_SHARE_ALL)


def test_two_faces_side_by_side_are_rejected(real_faces_dir, tmp_path):
    from unmask.data.landmarks import detect_landmarks

    singles = [im for im in (load_rgb(p) for p in sorted(real_faces_dir.glob("*.png"))[:10])
               if len(detect_landmarks(im, 0)) == 1][:2]
    side = min(min(im.shape[:2]) for im in singles)
    pair = np.concatenate([im[:side, :side] for im in singles], axis=1)
    raw = _raw(tmp_path, [_row("two-0", encode_png(pair))])
    with pytest.raises(UnmaskError, match=r"no face aligned in 1 images \(several faces: 1\)"):
        align_dataset(raw, tmp_path / "aligned", AlignConfig(detector_upsample=0), progress=False)
    assert "2 faces" in _rejected(tmp_path / "aligned")["two-0"]


def test_small_real_face_is_rejected_as_too_small(real_faces_dir, tmp_path):
    path = sorted(real_faces_dir.glob("*.png"))[0]
    raw = _raw(tmp_path, [_row("small-0", path.read_bytes())])
    with pytest.raises(UnmaskError, match=r"no face aligned in 1 images \(too small: 1\)"):
        align_dataset(raw, tmp_path / "aligned", AlignConfig(detector_upsample=0, min_eye_distance=200),
                      progress=False)
    assert "eye distance" in _rejected(tmp_path / "aligned")["small-0"]


# --------------------------------------------------------------------------- nothing aligned / descriptors
def test_folder_of_23_photos_without_a_usable_face_fails_at_align_with_counts(tmp_path):
    tiny = _place(_template(), 0.0, 0.08, (48.0, 40.0))  # eye distance 3.2 px
    rows = [_row(f"grey{i:02d}-0", _grey()) for i in range(20)] + [_row(f"tiny{i}-0", _grey(), tiny)
                                                                  for i in range(3)]
    out = tmp_path / "aligned"
    with pytest.raises(UnmaskError) as e:
        align_dataset(_raw(tmp_path, rows), out, AlignConfig(detector_upsample=0), progress=False)
    assert str(e.value) == (f"{out}: no face aligned in 23 images (no face: 20, too small: 3); "
                            f"see {out / 'rejected.csv'}")
    assert len(_rejected(out)) == 23  # written before failing: the reasons are there to read
    assert read_table(out).num_rows == 0


def test_folder_photo_gets_a_face_descriptor_and_other_rows_do_not(real_faces_dir, tmp_path):
    from unmask.data.identities import EMBEDDING_KEY

    files = sorted(real_faces_dir.glob("*.png"))[:3]
    rows = [_row(f"{p.stem}-0", p.read_bytes()) for p in files]
    for r in rows[:2]:
        r["attrs"] = json.dumps({"identity_from": "file"})
    lm = _place(_template(), 0.0, 0.5, (48.0, 40.0))
    rows.append(_row("syn-0", _grey(), lm))  # a source with landmarks and its own identities
    out = tmp_path / "aligned"
    report = align_dataset(_raw(tmp_path, rows), out, AlignConfig(size=32, detector_upsample=0), progress=False)
    attrs = {r["image_id"]: json.loads(r["attrs"]) for r in read_table(out).to_pylist()}
    assert attrs["syn-0"] == {"k": "syn-0"}
    embedded = [k for k, a in attrs.items() if EMBEDDING_KEY in a]
    assert report.n_embedded == len(embedded) >= 1
    assert all(len(attrs[k][EMBEDDING_KEY]) == 128 and attrs[k]["identity_from"] == "file" for k in embedded)
    assert set(embedded) <= {f"{p.stem}-0" for p in files[:2]}
