"""The procedural face generator: deterministic, framed like a face crop, and its landmarks and
parsing map agree with the pixels it draws."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from unmask.config import SyntheticSource
from unmask.data.schema import N_LANDMARKS, PARSING_LABELS, RAW
from unmask.data.synthetic import FaceSample, generate_rows, render_face, sample_identity
from unmask.io.images import decode_png

SIZE = 128
LABEL = {name: i for i, name in enumerate(PARSING_LABELS)}


@pytest.fixture(scope="module")
def faces() -> list[tuple[object, FaceSample]]:
    out = []
    for seed in range(8):
        ident = sample_identity(seed)
        out.append((ident, render_face(ident, seed, SIZE, glasses_prob=0.5)))
    return out


def _near(parsing: np.ndarray, p: np.ndarray, r: int) -> np.ndarray:
    x, y = int(round(float(p[0]))), int(round(float(p[1])))
    return parsing[max(y - r, 0):y + r + 1, max(x - r, 0):x + r + 1]


def test_same_seeds_give_identical_faces():
    a = render_face(sample_identity(3), 7, SIZE)
    b = render_face(sample_identity(3), 7, SIZE)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.landmarks, b.landmarks)
    assert np.array_equal(a.parsing, b.parsing)
    c = render_face(sample_identity(3), 8, SIZE)
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize("size", [64, 128, 200])
def test_shapes_and_dtypes(size):
    s = render_face(sample_identity(1), 1, size)
    assert s.image.shape == (size, size, 3) and s.image.dtype == np.uint8
    assert s.landmarks.shape == (N_LANDMARKS, 2) and s.landmarks.dtype == np.float32
    assert s.parsing.shape == (size, size) and s.parsing.dtype == np.uint8
    assert s.parsing.max() < len(PARSING_LABELS)
    assert np.all((s.landmarks >= 0) & (s.landmarks < size))


def test_portrait_framing(faces):
    for _, s in faces:
        width = s.landmarks[16, 0] - s.landmarks[0, 0]
        assert 0.38 * SIZE < width < 0.66 * SIZE
        assert np.all(np.abs(s.landmarks.mean(0) - SIZE / 2) < 0.15 * SIZE)


def test_eye_and_nose_landmarks_lie_on_their_labels(faces):
    for _, s in faces:
        # iBUG 36-41 is the image-left eye = the person's right eye
        for idx, name in ((slice(36, 42), "right_eye"), (slice(42, 48), "left_eye")):
            c = s.landmarks[idx].mean(0)
            assert s.parsing[int(round(c[1])), int(round(c[0]))] == LABEL[name]
            # every contour point touches the eye region
            for p in s.landmarks[idx]:
                assert (_near(s.parsing, p, 1) == LABEL[name]).any()
        assert (_near(s.parsing, s.landmarks[30], 1) == LABEL["nose"]).any()


def test_brow_and_mouth_landmarks_lie_on_their_labels(faces):
    lips = {LABEL["upper_lip"], LABEL["lower_lip"]}
    for ident, s in faces:
        for i in (48, 54, 51, 57):
            assert lips & set(_near(s.parsing, s.landmarks[i], 1).ravel().tolist())
        for idx, name in ((slice(17, 22), "right_brow"), (slice(22, 27), "left_brow")):
            hits = [(_near(s.parsing, p, 1) == LABEL[name]).any() for p in s.landmarks[idx]]
            assert sum(hits) >= (2 if ident.bangs else 4)


def test_jaw_points_lie_on_the_face_outline(faces):
    for _, s in faces:
        for p in s.landmarks[:17]:
            patch = _near(s.parsing, p, 2)
            assert (patch == LABEL["skin"]).any() and (patch != LABEL["skin"]).any(), p


def test_labels_present_and_eyes_look_different_from_skin(faces):
    for ident, s in faces:
        present = set(np.unique(s.parsing).tolist())
        must = {"background", "skin", "left_eye", "right_eye", "nose", "upper_lip", "lower_lip"}
        assert {LABEL[n] for n in must} <= present
        assert (LABEL["hair"] in present) == (ident.hair_style != "bald")
        img = s.image.astype(np.float64)
        eye = img[np.isin(s.parsing, [LABEL["left_eye"], LABEL["right_eye"]])].mean(0)
        skin = img[s.parsing == LABEL["skin"]].mean(0)
        assert np.abs(eye - skin).sum() > 30


def test_identities_differ():
    a, b = sample_identity(10), sample_identity(11)
    assert not np.allclose(a.shape, b.shape)
    ia, ib = render_face(a, 0, SIZE), render_face(b, 0, SIZE)
    assert np.abs(ia.image.astype(int) - ib.image.astype(int)).mean() > 10


def test_generate_rows_match_raw_schema_and_are_deterministic():
    cfg = SyntheticSource(n_identities=3, images_per_identity=2, size=64, glasses_prob=0.5)
    rows = list(generate_rows(cfg, seed=5))
    assert len(rows) == 6
    table = pa.Table.from_pylist(rows, schema=RAW)
    assert table.schema.equals(RAW)
    assert [r["image_id"] for r in rows] == [f"syn-{i:04d}-{k:02d}" for i in range(3) for k in range(2)]
    assert {r["identity"] for r in rows} == {"syn-0000", "syn-0001", "syn-0002"}
    for r in rows:
        assert r["source"] == "synthetic" and r["occluded"] is None
        assert decode_png(r["image"]).shape == (64, 64, 3)
        assert decode_png(r["parsing"]).shape == (64, 64)
        assert len(r["landmarks"]) == 2 * N_LANDMARKS
        attrs = json.loads(r["attrs"])
        assert {"yaw", "pitch", "roll", "glasses"} <= set(attrs)
    assert list(generate_rows(cfg, seed=5, limit=3)) == rows[:3]
    assert list(generate_rows(cfg, seed=6, limit=1))[0]["image"] != rows[0]["image"]
