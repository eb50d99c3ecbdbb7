"""`unmask infer` never writes over a photo, never follows a link out of --out, never leaves a
half-written file, and a failure on one photo is that photo's row in rejected.csv (issue 16)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.helpers import can_mount_tmpfs
from tests.test_infer import CANVAS, SIZE, _photo
from unmask.cli import main
from unmask.errors import UnmaskError
from unmask.training import TrainConfig, build_trainer

ROOT = Path(__file__).resolve().parents[1]


def _png(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


def _jpg(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


def _save(cfg: dict, path: Path) -> Path:
    torch.manual_seed(0)
    build_trainer(TrainConfig.from_dict(dict(device="cpu", threads=1, steps=1, image_size=SIZE, **cfg))
                  ).save_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """An untrained 32 px paired U-Net: what it paints does not matter here, only where it writes."""
    return _save(dict(framework="paired", weights={"adv": 0.0, "l1": 1.0},
                      generator={"name": "unet", "depth": 3, "base_channels": 8}),
                 tmp_path_factory.mktemp("m") / "unet.pt")


@pytest.fixture(scope="module")
def segmenter_ckpt(tmp_path_factory) -> Path:
    return _save(dict(framework="segmenter", weights={"dice": 1.0},
                      generator={"name": "unet", "depth": 3, "base_channels": 8, "out_channels": 1}),
                 tmp_path_factory.mktemp("s") / "seg.pt")


@pytest.fixture(scope="module")
def cyclegan_ckpt(tmp_path_factory) -> Path:
    return _save(dict(framework="cyclegan", generator={"base_channels": 4, "n_blocks": 1},
                      discriminator={"base_channels": 4}),
                 tmp_path_factory.mktemp("c") / "cyc.pt")


def _infer(capsys, *args) -> tuple[int, str]:
    rc = main(["-q", "infer", *map(str, args), "--segmenter", "none"])
    return rc, capsys.readouterr().err


def _face_folder(tmp_path: Path, *names: str) -> Path:
    src = tmp_path / "photos"
    src.mkdir()
    photo = _photo()[0]
    for name in names:
        (src / name).write_bytes(_jpg(photo) if name.endswith(".jpg") else _png(photo))
    return src


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------------- item 1: --out
def test_out_equal_to_the_input_folder_is_refused_and_the_photo_is_untouched(model, tmp_path, capsys):
    src = _face_folder(tmp_path, "face.png")
    before = _snapshot(src)
    rc, err = _infer(capsys, src, "--out", src, "--model", model)
    assert rc == 2 and "inside the input folder" in err and err.count("error:") == 1, err
    rc, err = _infer(capsys, src, "--out", src / "restored", "--model", model)
    assert rc == 2 and "inside the input folder" in err, err
    assert _snapshot(src) == before


def test_out_beside_a_single_photo_never_replaces_it(model, tmp_path, capsys):
    src = _face_folder(tmp_path, "face.png", "other.jpg")
    before = _snapshot(src)
    rc, err = _infer(capsys, src / "face.png", "--out", src, "--model", model)
    assert rc == 2 and "is the input" in err, err
    assert _snapshot(src) == before
    rc, err = _infer(capsys, src / "other.jpg", "--out", src, "--model", model)   # other.png cannot collide
    assert rc == 0, err
    assert (src / "other.jpg").read_bytes() == before["other.jpg"] and (src / "other.png").is_file()


# ----------------------------------------------------------------------------------- item 2: names
def test_a_jpg_and_a_png_of_the_same_name_are_both_written(model, tmp_path, capsys):
    src = _face_folder(tmp_path, "a.jpg", "a.png", "b.jpg")
    rc, err = _infer(capsys, src, "--out", tmp_path / "out", "--model", model)
    assert rc == 0 and "3 photo(s) written" in err, err
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["a.jpg.png", "a.png.png", "b.png"]


# ----------------------------------------------------------------------------------- item 3: links
def test_symlinks_already_inside_out_are_replaced_not_followed(model, tmp_path, capsys):
    src = _face_folder(tmp_path, "P.png")
    (src / "sub").mkdir()
    (src / "sub" / "Q.png").write_bytes((src / "P.png").read_bytes())
    victim, victim_csv, elsewhere = tmp_path / "victim.png", tmp_path / "victim.csv", tmp_path / "elsewhere"
    victim.write_bytes(b"precious")
    victim_csv.write_bytes(b"precious csv")
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "P.png").symlink_to(victim)
    (out / "rejected.csv").symlink_to(victim_csv)
    (out / "sub").symlink_to(elsewhere, target_is_directory=True)
    rc, err = _infer(capsys, src, "--out", out, "--model", model)
    assert rc == 0, err
    assert victim.read_bytes() == b"precious" and victim_csv.read_bytes() == b"precious csv"
    assert list(elsewhere.iterdir()) == []
    assert not (out / "P.png").is_symlink() and cv2.imread(str(out / "P.png")).shape == (*CANVAS, 3)
    assert "a symbolic link inside --out" in (out / "rejected.csv").read_text()


# ----------------------------------------------------------------------------------- item 4: full disk
def test_a_full_disk_stops_the_run_in_one_line_and_keeps_the_earlier_output(model, tmp_path):
    """A real tmpfs as --out with 16 KiB left: rejected.csv fits, the restored photo (~30 KB) does not. The earlier good output of the
    same name and the original are byte-identical afterwards, and the exit status says it failed."""
    if not can_mount_tmpfs():
        pytest.skip("cannot mount a tmpfs in a user namespace here (unshare -rm)")
    src = _face_folder(tmp_path, "face.png")
    before = _snapshot(src)
    disk = tmp_path / "disk"
    disk.mkdir()
    script = (f"mount -t tmpfs -o size=256k tmpfs {disk} && mkdir {disk}/out && "
              f"printf EARLIER > {disk}/out/face.png && "
              f"head -c {256 - 16 - 8}k /dev/zero > {disk}/filler && "
              f"{sys.executable} -m unmask.cli -q infer {src} --out {disk}/out --model {model} --segmenter none; "
              f"echo rc=$?; cat {disk}/out/face.png; echo; ls -a {disk}/out")
    res = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=300,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "rc=2" in res.stdout, (res.stdout, res.stderr)
    assert "No space left on device" in res.stderr and "face.png" in res.stderr, res.stderr
    assert "written" not in res.stderr
    lines = res.stdout.splitlines()
    assert lines[lines.index("rc=2") + 1] == "EARLIER"              # the earlier output is intact
    assert not any(n.endswith(".tmp") for n in lines)                # no temporary left behind
    assert _snapshot(src) == before


# ----------------------------------------------------------------------------------- item 5: names
def test_a_photo_named_caf_xe9_png_is_restored_and_junk_so_named_is_listed(model, tmp_path, capsys):
    src = tmp_path / "photos"
    src.mkdir()
    bsrc = os.fsencode(src)
    with open(bsrc + b"/caf\xe9.png", "wb") as f:
        f.write(_png(_photo()[0]))
    with open(bsrc + b"/junk\xe9.png", "wb") as f:
        f.write(b"not an image")
    out = tmp_path / "out"
    rc, err = _infer(capsys, src, "--out", out, "--model", model)
    assert rc == 0 and "1 photo(s) written" in err, err
    assert b"caf\xe9.png" in os.listdir(os.fsencode(out))
    table = (out / "rejected.csv").read_text(encoding="utf-8")
    assert "junk\\xe9.png" in table and "not an image" in table


# ----------------------------------------------------------------------------------- item 6: size
def test_a_12_megapixel_photo_is_searched_on_a_bounded_copy(monkeypatch):
    """Each detector sees at most HOG_MAX_SIDE / CNN_MAX_SIDE px a side after its upsampling, and the
    landmarks come back in the photo's own pixels."""
    from unmask.data import landmarks as L

    seen = []
    face = _photo()[3]              # landmarks of the test face, to be returned by the stand-in detector

    def detector(cap):
        def detect(img, upsample):
            seen.append((cap, img.shape[:2], upsample))
            s = img.shape[1] / 4000.0
            return [(face + 0.5) * s - 0.5] if cap == L.CNN_MAX_SIDE else []
        return detect

    monkeypatch.setattr(L, "detect_landmarks", detector(L.HOG_MAX_SIDE))
    monkeypatch.setattr(L, "detect_landmarks_cnn", detector(L.CNN_MAX_SIDE))
    photo = np.zeros((3000, 4000, 3), np.uint8)
    faces, how = L.find_faces(photo, upsample=1)
    assert how == "cnn" and [c for c, _, _ in seen] == [L.HOG_MAX_SIDE, L.CNN_MAX_SIDE]
    for cap, shape, up in seen:
        assert max(shape) * 2 ** up <= cap
    assert np.abs(faces[0] - face).max() < 1.0


@pytest.mark.slow
def test_a_50_megapixel_photo_is_restored_in_under_2_gb(model, tmp_path):
    """Peak memory of the whole command (ru_maxrss of the child) on an 8660x5773 photo with one face."""
    photo, _, _, _ = _photo()
    big = cv2.resize(photo, (8660, 5773), interpolation=cv2.INTER_LINEAR)
    src = tmp_path / "big.jpg"
    src.write_bytes(_jpg(big))
    del big
    code = ("import resource, sys; from unmask.cli import main; rc = main(sys.argv[1:]); "
            "print('maxrss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code, "-q", "infer", str(src), "--out", str(tmp_path / "out"),
                          "--model", str(model), "--segmenter", "none"], capture_output=True, text=True,
                         timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    kb = int(res.stdout.split("maxrss_kb")[1])
    assert kb < 2 * 1024 * 1024, kb


# ----------------------------------------------------------------------------------- item 7: one photo fails
def test_a_face_found_only_in_the_padding_is_dropped(monkeypatch):
    """A face cut by the top edge is found again, mirrored, in the reflected padding: that copy lies
    outside the photo and is not a face of it (it crashed align's padding with an empty crop)."""
    from unmask.data import landmarks as L

    face = _photo()[3]
    mirror = face.copy()
    mirror[:, 1] = -mirror[:, 1] - 40            # above the top edge, in the padding

    def padded_only(img, upsample):
        return [mirror + (img.shape[0] - CANVAS[0]) // 2] if img.shape[0] > CANVAS[0] else []

    monkeypatch.setattr(L, "detect_landmarks", padded_only)
    monkeypatch.setattr(L, "detect_landmarks_cnn", padded_only)
    assert L.find_faces(np.zeros((*CANVAS, 3), np.uint8), upsample=0) == ([], "")


def test_a_face_cut_by_the_top_of_the_frame_is_padded_and_restored(model):
    from unmask.infer import load_unmasker, unmask_face

    photo, _, _, lm = _photo()
    top = int(lm[:, 1].min()) + 10           # the forehead and brows above the frame
    cut, lm_cut = photo[top:], lm - [0, top]
    res = unmask_face(cut, lm_cut, load_unmasker(str(model)))
    assert res.output.shape == cut.shape and (res.output != cut).any()
    with pytest.raises(UnmaskError, match="outside the photo"):
        unmask_face(cut, lm_cut - [0, 2000], load_unmasker(str(model)))


def test_one_photo_that_crashes_is_its_row_and_the_run_goes_on(model, tmp_path, capsys, monkeypatch):
    import unmask.infer as inf

    src = _face_folder(tmp_path, "a.png", "b.png", "c.png")
    real = inf.unmask_face
    calls = []

    def flaky(photo, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise cv2.error("OpenCV(5.0) copyMakeBorder: error: (-215:Assertion failed) !_src.empty()")
        return real(photo, *a, **k)

    monkeypatch.setattr(inf, "unmask_face", flaky)
    rc, err = _infer(capsys, src, "--out", tmp_path / "out", "--model", model)
    assert rc == 0 and "2 photo(s) written" in err and "; 1 rejected" in err, err
    table = (tmp_path / "out" / "rejected.csv").read_text()
    assert "b.png" in table and "failed: error:" in table


def test_rejected_csv_lists_the_photos_rejected_before_a_stop(model, tmp_path, capsys, monkeypatch):
    import unmask.infer as inf

    src = _face_folder(tmp_path, "c.png")
    (src / "a.png").write_bytes(b"junk")
    (src / "b.png").write_bytes(_png(np.full((64, 64, 3), 200, np.uint8)))
    monkeypatch.setattr(inf, "unmask_face", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    rc, err = _infer(capsys, src, "--out", tmp_path / "out", "--model", model)
    assert rc == 130
    table = (tmp_path / "out" / "rejected.csv").read_text()
    assert "a.png" in table and "b.png" in table and "no face found" in table


# ----------------------------------------------------------------------------------- item 8: roles
def test_a_segmenter_given_as_model_is_refused(segmenter_ckpt, tmp_path, capsys):
    src = _face_folder(tmp_path, "face.png")
    rc, err = _infer(capsys, src, "--out", tmp_path / "out", "--model", segmenter_ckpt)
    assert rc == 2 and "outputs a mask; --model needs one that outputs an image" in err, err
    assert not (tmp_path / "out").exists()


def test_a_cyclegan_given_as_segmenter_is_refused(model, cyclegan_ckpt, tmp_path, capsys):
    src = _face_folder(tmp_path, "face.png")
    rc = main(["-q", "infer", str(src), "--out", str(tmp_path / "out"), "--model", str(model),
               "--segmenter", str(cyclegan_ckpt)])
    err = capsys.readouterr().err
    assert rc == 2 and "--segmenter needs one that outputs a mask" in err, err


# ----------------------------------------------------------------------------------- weak lines
def test_a_fifo_in_the_folder_is_listed_and_a_fifo_argument_is_named(model, tmp_path, capsys):
    src = _face_folder(tmp_path, "face.png")
    os.mkfifo(src / "pipe.png")
    rc, err = _infer(capsys, src, "--out", tmp_path / "out", "--model", model)
    assert rc == 0, err
    assert "pipe.png,not a regular file (a FIFO)" in (tmp_path / "out" / "rejected.csv").read_text()
    rc, err = _infer(capsys, src / "pipe.png", "--out", tmp_path / "out2", "--model", model)
    assert rc == 2 and "not a photo or a folder (a FIFO)" in err, err


def test_a_single_non_image_file_exits_non_zero(model, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    rc, err = _infer(capsys, tmp_path / "notes.txt", "--out", tmp_path / "out", "--model", model)
    assert rc == 2 and "notes.txt: not an image" in err and err.count("error") == 1, err


def test_a_missing_or_non_image_mask_is_one_line(model, tmp_path, capsys):
    src = _face_folder(tmp_path, "face.png")
    rc = main(["-q", "infer", str(src / "face.png"), "--out", str(tmp_path / "out"), "--model", str(model),
               "--mask", str(tmp_path / "nope.png")])
    err = capsys.readouterr().err
    assert rc == 2 and "--mask" in err and "nope.png: no such file" in err, err
    (tmp_path / "m.png").write_bytes(b"junk")
    rc = main(["-q", "infer", str(src / "face.png"), "--out", str(tmp_path / "out"), "--model", str(model),
               "--mask", str(tmp_path / "m.png")])
    err = capsys.readouterr().err
    assert rc == 2 and "m.png: not an image" in err, err


def test_a_random_bytes_checkpoint_never_suggests_the_unsafe_loader(tmp_path, capsys):
    src = _face_folder(tmp_path, "face.png")
    ckpt = tmp_path / "random.pt"
    ckpt.write_bytes(np.random.default_rng(0).bytes(4096))
    rc, err = _infer(capsys, src, "--out", tmp_path / "out", "--model", ckpt)
    assert rc == 2 and "random.pt: not a readable checkpoint" in err, err
    assert "weights_only" not in err and "will likely succeed" not in err


def test_a_checkpoint_whose_config_is_another_framework_names_the_file(model, tmp_path, capsys):
    state = torch.load(model, weights_only=True)
    state["config"]["framework"] = "cyclegan"
    bad = tmp_path / "other.pt"
    torch.save(state, bad)
    src = _face_folder(tmp_path, "face.png")
    rc, err = _infer(capsys, src, "--out", tmp_path / "out", "--model", bad)
    assert rc == 2 and "other.pt:" in err, err
