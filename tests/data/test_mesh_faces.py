"""The face finder on real photos: MediaPipe's face mesh first, dlib's cascade as the fallback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from unmask.data import mesh_faces
from unmask.data.mesh_faces import FLIP_68, MAX_SIDE, MESH_TO_68, find_mesh_faces, inside_frame
from unmask.io.images import load_rgb
from tests.conftest import shared_dir

needs_mesh = pytest.mark.skipif(not mesh_faces.available(), reason="mediapipe is not installed "
                                "(bash scripts/setup.sh installs it)")


def _eye_distance(lm: np.ndarray) -> float:
    return float(np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0)))


def test_torch_mlflow_one_opencv_and_mediapipe_import_together():
    code = ("import torch, mlflow, cv2, dlib\n"
            "from unmask.data.mesh_faces import available\n"
            "assert available()\n"
            "import importlib.metadata as md\n"
            "cvs = sorted({d.metadata['Name'].lower() for d in md.distributions()\n"
            "              if (d.metadata['Name'] or '').lower().startswith('opencv')})\n"
            "print(cvs)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "['opencv-python-headless']"  # one OpenCV, no contrib copy beside it


def test_the_68_point_layout_maps_and_mirrors_consistently():
    assert len(MESH_TO_68) == 68 and len(set(MESH_TO_68.tolist())) == 68
    assert sorted(FLIP_68.tolist()) == list(range(68))
    np.testing.assert_array_equal(FLIP_68[FLIP_68], np.arange(68))   # mirroring twice is the identity
    assert FLIP_68[36] == 45 and FLIP_68[48] == 54 and FLIP_68[30] == 30


@needs_mesh
def test_mesh_points_sit_where_dlib_puts_eyes_and_mouth_on_unmasked_faces():
    from unmask.data.landmarks import detect_landmarks

    folder = shared_dir("faces", "unmasked-crops")
    errors = []
    for path in sorted(folder.glob("*.png"))[:20]:
        img = load_rgb(path)
        dlib_faces = detect_landmarks(img, 1)
        mesh, how = find_mesh_faces(img)
        if len(dlib_faces) == 1 and len(mesh) == 1:
            d, m = dlib_faces[0], mesh[0]
            key = lambda lm: np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[48], lm[54]])  # noqa: E731
            errors.append(np.linalg.norm(key(d) - key(m), axis=1).max() / _eye_distance(d))
    assert len(errors) >= 15
    assert np.median(errors) < 0.12


@needs_mesh
def test_mesh_finds_most_real_masked_faces_and_mirrors_back_to_the_photo():
    folder = shared_dir("faces", "masked-real")
    photos = sorted(folder.glob("*"))[:40]
    found = 0
    for path in photos:
        img = load_rgb(path)
        faces, how = find_mesh_faces(img)
        if faces:
            found += 1
            assert how.startswith("mesh") and all(inside_frame(lm, img.shape) for lm in faces)
            lm = faces[0]
            assert lm[36:42].mean(0)[0] < lm[42:48].mean(0)[0]   # image-left eye on the left
            assert lm[48][0] < lm[54][0] and lm[36:48, 1].mean() < lm[48:68, 1].mean()
    assert found >= 0.9 * len(photos)   # dlib's cascade finds about half of them


@needs_mesh
def test_a_mirrored_photo_gives_the_mirrored_landmarks():
    img = load_rgb(sorted(shared_dir("faces", "unmasked-crops").glob("*.png"))[0])
    (a,), _ = find_mesh_faces(img)
    (b,), _ = find_mesh_faces(np.ascontiguousarray(img[:, ::-1]))
    b = b.copy()
    b[:, 0] = img.shape[1] - 1 - b[:, 0]
    assert np.abs(b[FLIP_68] - a).mean() < 0.06 * _eye_distance(a)


@needs_mesh
def test_a_huge_photo_is_shrunk_before_the_mesh_sees_it(monkeypatch):
    img = load_rgb(sorted(shared_dir("faces", "unmasked-crops").glob("*.png"))[0])
    import cv2

    big = cv2.resize(img, (img.shape[1] * 40, img.shape[0] * 40), interpolation=cv2.INTER_LINEAR)
    seen = []
    real = mesh_faces._run
    monkeypatch.setattr(mesh_faces, "_run", lambda im: seen.append(im.shape) or real(im))
    faces, how = find_mesh_faces(big)
    assert seen and max(max(s[:2]) for s in seen) <= MAX_SIDE
    assert len(faces) == 1 and 20 * 30 < _eye_distance(faces[0]) < 40 * 60  # in the big photo's pixels


@needs_mesh
def test_the_align_stage_and_infer_use_the_mesh(monkeypatch):
    from unmask.data import landmarks

    img = load_rgb(sorted(shared_dir("faces", "masked-real").glob("*"))[0])
    faces, how = landmarks.find_faces(img)
    assert faces and how.startswith("mesh")
    monkeypatch.setattr(mesh_faces, "available", lambda: False)    # without mediapipe: dlib's cascade
    _, how = landmarks.find_faces(img, cnn=False, pad=0.0)
    assert not how.startswith("mesh")
