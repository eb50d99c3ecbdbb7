"""download_source: folder / url / named-dataset sources -> RAW shards, rejected.csv and the report."""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import os
import tarfile
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unmask.config import DataConfig
from unmask.data.datasets import CELEBAMASK_TO_OURS
from unmask.data.schema import RAW
from unmask.data.sources import SOURCES, SourceReport, download_source
from unmask.errors import ConfigError, DownloadError, UnmaskError
from unmask.io.images import decode_png
from unmask.io.shards import read_table


def _photo(seed: int, size: tuple[int, int] = (24, 20)) -> np.ndarray:
    """A small RGB image, distinct per seed (w, h = size)."""
    return np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def _save(path: Path, arr: np.ndarray, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)
    return path


def _rows(out: Path) -> dict[str, dict]:
    table = read_table(out)
    assert table.schema.equals(RAW)
    return {r["image_id"]: r for r in table.to_pylist()}


def _rejected(out: Path) -> dict[str, dict]:
    with open(out / "rejected.csv", newline="") as f:
        return {r["path"]: r for r in csv.DictReader(f)}


def _cfg(**kw) -> DataConfig:
    return DataConfig.model_validate(kw)


# --------------------------------------------------------------------------- folder
def test_folder_keeps_good_photos_and_lists_bad_ones(tmp_path):
    root = tmp_path / "photos"
    good = {"alice/a.png": _photo(1), "alice/b.png": _photo(2), "bob/c.png": _photo(3), "carol.png": _photo(4)}
    for rel, arr in good.items():
        _save(root / rel, arr)
    _save(root / "bob/d.jpg", _photo(5, (64, 64)), quality=90)
    (root / "bob/corrupt.jpg").write_bytes(np.random.default_rng(0).bytes(3000))
    jpg = io.BytesIO()
    Image.fromarray(_photo(6, (96, 96))).save(jpg, format="JPEG", quality=95)
    (root / "bob/truncated.jpg").write_bytes(jpg.getvalue()[: len(jpg.getvalue()) // 2])
    (root / "bob/text.png").write_text("this is not an image")
    _save(root / "bob/tiny.png", _photo(7, (8, 8)))
    (root / "notes.txt").write_text("not a photo: rejected, not skipped")
    (root / ".hidden.png").write_text("hidden: rejected, not skipped")

    out = tmp_path / "raw"
    report = download_source(_cfg(source="folder", folder={"path": str(root)}), 0, out)

    rows = _rows(out)
    assert set(rows) == set(good) | {"bob/d.jpg"}
    for rel, arr in good.items():  # PNG in, identical pixels out
        assert np.array_equal(decode_png(rows[rel]["image"]), arr)
        assert rows[rel]["source"] == "folder" and rows[rel]["landmarks"] is None
    assert decode_png(rows["bob/d.jpg"]["image"]).shape == (64, 64, 3)
    assert {r: rows[r]["identity"] for r in rows} == {
        "alice/a.png": "alice", "alice/b.png": "alice", "bob/c.png": "bob", "bob/d.jpg": "bob",
        "carol.png": "carol"}

    rejected = _rejected(out)
    assert set(rejected) == {"bob/corrupt.jpg", "bob/truncated.jpg", "bob/text.png", "bob/tiny.png", "notes.txt",
                             ".hidden.png"}
    assert rejected["notes.txt"]["reason"] == "not an image (format not recognised)"
    assert rejected[".hidden.png"]["reason"] == "hidden file"
    assert "not an image" in rejected["bob/corrupt.jpg"]["reason"]
    assert "truncated" in rejected["bob/truncated.jpg"]["reason"]
    assert "not an image" in rejected["bob/text.png"]["reason"]
    assert "too small" in rejected["bob/tiny.png"]["reason"]
    assert rejected["bob/tiny.png"]["image_id"] == "bob/tiny.png"
    assert report.to_dict() == {
        "source": "folder", "n_images": 5, "n_identities": 3, "n_rejected": 6, "n_seen": 11, "n_beyond_limit": 0,
        "rejected_reasons": {"not an image": 3, "corrupt or truncated image": 1, "image too small": 1,
                             "hidden file": 1}}
    assert {r.path for r in report.rejected} == set(rejected)


def test_folder_identity_per_file_and_seeded_limit(tmp_path):
    root = tmp_path / "photos"
    for i in range(12):
        _save(root / f"p{i % 3}" / f"{i:02d}.png", _photo(i))
    cfg = _cfg(source="folder", limit=4, folder={"path": str(root), "identity_from_subfolders": False})
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        download_source(cfg, seed, tmp_path / name)
    a, b, c = (_rows(tmp_path / name) for name in "abc")
    assert len(a) == 4 and list(a) == list(b) and set(a) != set(c)
    assert all(r["identity"] == k.removesuffix(".png") for k, r in a.items())


def test_real_photos(real_faces_dir, tmp_path):
    report = download_source(_cfg(source="folder", limit=3, folder={"path": str(real_faces_dir)}), 0,
                             tmp_path / "raw")
    rows = _rows(tmp_path / "raw")
    assert report.n_images == 3 and report.n_identities == 3 and len(rows) == 3
    for r in rows.values():
        img = decode_png(r["image"])
        assert img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= 64


@pytest.mark.parametrize("folder, key", [
    ({}, "data.folder.path"),
    ({"path": "/definitely/not/here"}, "data.folder.path"),
])
def test_folder_bad_params(folder, key, tmp_path):
    with pytest.raises(UnmaskError) as e:
        download_source(_cfg(source="folder", folder=folder), 0, tmp_path / "raw")
    assert str(e.value).startswith(key) and "\n" not in str(e.value)
    assert not (tmp_path / "raw").exists()


def test_empty_or_all_bad_folder_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnmaskError, match=r"^data\.folder\.path: no files in "):
        download_source(_cfg(source="folder", folder={"path": str(tmp_path / "empty")}), 0, tmp_path / "raw")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_text("nope")
    with pytest.raises(UnmaskError, match=r"^data\.folder\.path: none of the 1 files in .* \(not an image: 1; first: "):
        download_source(_cfg(source="folder", folder={"path": str(tmp_path / "bad")}), 0, tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


# --------------------------------------------------------------------------- folder: nothing vanishes
def _folder(tmp_path: Path, root: Path, **folder) -> tuple[SourceReport, dict[str, dict], dict[str, dict]]:
    report = download_source(_cfg(source="folder", folder={"path": str(root), **folder}), 0, tmp_path / "raw")
    return report, _rows(tmp_path / "raw"), _rejected(tmp_path / "raw")


def _accounted(report) -> None:
    d = report.to_dict()
    assert d["n_seen"] == d["n_images"] + d["n_rejected"] + d["n_beyond_limit"]


def test_black3_jpg_1088Wx1632H_webp_without_photo_suffix_is_used(tmp_path):
    root = tmp_path / "photos"
    _save(root / "black3.jpg_1088Wx1632H", _photo(1, (40, 60)), format="WEBP", lossless=True)
    _save(root / "IMG_0001", _photo(2, (40, 60)), format="PNG")
    report, rows, rejected = _folder(tmp_path, root)
    assert set(rows) == {"black3.jpg_1088Wx1632H", "IMG_0001"} and rejected == {}
    assert np.array_equal(decode_png(rows["black3.jpg_1088Wx1632H"]["image"]), _photo(1, (40, 60)))
    assert rows["black3.jpg_1088Wx1632H"]["identity"] == "black3"
    _accounted(report)


def test_every_file_is_used_or_rejected_with_its_reason(tmp_path):
    root = tmp_path / "photos"
    _save(root / "a.png", _photo(1))
    (root / "empty.jpg").write_bytes(b"")
    (root / "readme").write_text("hello")
    png = (root / "a.png").read_bytes()
    (root / "broken.png").write_bytes(png[: len(png) // 2])  # PNG magic, then cut short
    (root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref")
    (root / "__MACOSX").mkdir()
    (root / "__MACOSX" / "._a.png").write_bytes(b"\0")
    report, rows, rejected = _folder(tmp_path, root)
    assert set(rows) == {"a.png"}
    assert {k: r["reason"].split(" (")[0] for k, r in rejected.items()} == {
        "empty.jpg": "empty file", "readme": "not an image", "broken.png": "corrupt or truncated image",
        ".DS_Store": "hidden file", ".git/": "hidden folder, not searched",
        "__MACOSX/": "hidden folder, not searched"}
    assert report.to_dict()["n_seen"] == 7
    _accounted(report)
    assert json.loads(json.dumps(report.to_dict()))["rejected_reasons"]["hidden folder"] == 2


def test_symlink_to_a_file_outside_the_folder_is_rejected(tmp_path):
    root = tmp_path / "photos"
    _save(root / "a.png", _photo(1))
    outside = _save(tmp_path / "elsewhere" / "secret.png", _photo(2)).resolve()
    (root / "link.png").symlink_to(outside)
    (root / "inside.png").symlink_to(root / "a.png")       # same bytes as a.png: a duplicate
    (root / "dangling.png").symlink_to(tmp_path / "gone.png")
    report, rows, rejected = _folder(tmp_path, root)
    assert set(rows) == {"a.png"}
    assert rejected["link.png"]["reason"] == f"symlink outside the folder (-> {outside})"
    assert rejected["inside.png"]["reason"] == "duplicate of a.png (same bytes)"
    assert rejected["dangling.png"]["reason"].startswith("broken symlink (-> ")
    _accounted(report)


def test_linked_folder_is_rejected_with_its_reason_not_skipped(tmp_path):
    root = tmp_path / "photos"
    _save(root / "ann" / "1.png", _photo(1))
    _save(root / "ann" / "2.png", _photo(2))
    _save(tmp_path / "elsewhere" / "bob" / "1.png", _photo(3))
    (root / "bob").symlink_to(tmp_path / "elsewhere" / "bob", target_is_directory=True)
    (root / "ann-again").symlink_to(root / "ann", target_is_directory=True)
    report, rows, rejected = _folder(tmp_path, root)
    assert set(rows) == {"ann/1.png", "ann/2.png"}
    assert rejected["bob/"]["reason"] == f"symlink outside the folder (-> {(tmp_path / 'elsewhere' / 'bob').resolve()})"
    assert rejected["ann-again/"]["reason"].startswith("linked folder (-> ann) not followed")
    _accounted(report)


def test_non_utf8_file_name_is_used_under_an_escaped_name(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    name = b"caf\xe9.png"  # Latin-1 bytes: not UTF-8
    try:
        with open(os.path.join(os.fsencode(root), name), "wb") as f:
            Image.fromarray(_photo(1)).save(f, format="PNG")
        with open(os.path.join(os.fsencode(root), b"bad\xff.txt"), "wb") as f:
            f.write(b"not a photo")
    except OSError as e:
        pytest.skip(f"this file system refuses non-UTF-8 names ({e})")
    report, rows, rejected = _folder(tmp_path, root)
    assert set(rows) == {"caf\\xe9.png"}
    assert rows["caf\\xe9.png"]["identity"] == "caf\\xe9"
    assert rejected["bad\\xff.txt"]["reason"].startswith("not an image")
    _accounted(report)


def test_x_and_x_copy_and_x_another_copy_keep_one_photo(tmp_path):
    root = tmp_path / "flat"
    for name in ("x.png", "x (copy).png", "x (another copy).png"):
        _save(root / name, _photo(1, (64, 64)))
    _save(root / "y.png", _photo(2, (64, 64)))
    report, rows, rejected = _folder(tmp_path, root, identity_from_subfolders=False)
    assert set(rows) == {"x.png", "y.png"}
    assert {k: r["reason"] for k, r in rejected.items()} == {
        "x (copy).png": "duplicate of x.png (same bytes)", "x (another copy).png": "duplicate of x.png (same bytes)"}
    assert report.to_dict()["rejected_reasons"] == {"duplicate": 2}
    _accounted(report)


def test_resized_jpeg_copy_is_a_near_duplicate(tmp_path):
    root = tmp_path / "flat"
    smooth = np.asarray(Image.fromarray(_photo(1, (8, 8))).resize((96, 96), Image.Resampling.BICUBIC))
    _save(root / "orig.png", smooth)
    _save(root / "small.jpg", np.asarray(Image.fromarray(smooth).resize((70, 70))), quality=75)
    _save(root / "other.png", np.asarray(Image.fromarray(_photo(2, (8, 8))).resize((96, 96))))
    report, rows, rejected = _folder(tmp_path, root)
    assert set(rows) == {"orig.png", "other.png"}
    assert rejected["small.jpg"]["reason"].startswith("duplicate of orig.png (near: perceptual hashes ")
    _accounted(report)


def test_limit_counts_what_it_left_unread(tmp_path):
    root = tmp_path / "flat"
    for i in range(6):
        _save(root / f"{i}.png", _photo(i))
    report = download_source(_cfg(source="folder", limit=2, folder={"path": str(root)}), 0, tmp_path / "raw")
    assert report.to_dict()["n_beyond_limit"] == 4 and report.n_images == 2
    _accounted(report)


def test_real_photos_are_not_near_duplicates_of_each_other(real_faces_dir):
    from unmask.data.identities import NEAR_DUPLICATE_BITS, hamming, perceptual_hash
    from unmask.io.images import load_rgb

    files = sorted(real_faces_dir.glob("*.png"))[:200]
    hashes = np.array([perceptual_hash(load_rgb(p)) for p in files], np.uint64)
    closest = min(int(np.delete(hamming(int(h), hashes), i).min()) for i, h in enumerate(hashes))
    assert closest > NEAR_DUPLICATE_BITS, f"two different real photos within {closest} bits"


# --------------------------------------------------------------------------- url
@pytest.fixture
def http_dir(tmp_path):
    """Serve ``tmp_path/www`` over HTTP on 127.0.0.1."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a: None
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield www, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_url_source_end_to_end(http_dir, tmp_path):
    www, base = http_dir
    photos = {"faces/ann/1.png": _photo(10), "faces/ann/2.png": _photo(11), "faces/ben/1.png": _photo(12)}
    with zipfile.ZipFile(www / "faces.zip", "w") as zf:
        for rel, arr in photos.items():
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format="PNG")
            zf.writestr(rel, buf.getvalue())
    sha = hashlib.sha256((www / "faces.zip").read_bytes()).hexdigest()
    cfg = _cfg(source="url", cache_dir=str(tmp_path / "cache"), url={"url": f"{base}/faces.zip", "sha256": sha})

    report = download_source(cfg, 0, tmp_path / "raw")
    rows = _rows(tmp_path / "raw")
    assert {k: r["identity"] for k, r in rows.items()} == {"ann/1.png": "ann", "ann/2.png": "ann", "ben/1.png": "ben"}
    for rel, arr in photos.items():
        assert np.array_equal(decode_png(rows[rel.removeprefix("faces/")]["image"]), arr)
    assert report.to_dict() == {"source": "url", "n_images": 3, "n_identities": 2, "n_rejected": 0, "n_seen": 3,
                                "n_beyond_limit": 0}
    assert (tmp_path / "cache" / "downloads" / "faces.zip").is_file()

    (www / "faces.zip").unlink()  # a re-run uses the verified cache, not the network
    assert download_source(cfg, 0, tmp_path / "raw2").n_images == 3

    sub = cfg.model_copy(update={"url": cfg.url.model_copy(update={"subdir": "faces/ben"})})
    assert download_source(sub, 0, tmp_path / "raw3").n_images == 1


def _targz(path: Path, photos: dict[str, np.ndarray]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for rel, arr in photos.items():
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format="PNG")
            info = tarfile.TarInfo(rel)
            info.size = len(buf.getvalue())
            tf.addfile(info, io.BytesIO(buf.getvalue()))
    return path


def test_file_url_source_is_extracted_in_place_and_rechecked(tmp_path):
    archive = _targz(tmp_path / "set.tgz", {"dan/1.png": _photo(1), "eve/1.png": _photo(2)})
    cfg = _cfg(source="url", cache_dir=str(tmp_path / "cache"), url={"url": archive.as_uri()})
    assert download_source(cfg, 0, tmp_path / "raw").to_dict()["n_identities"] == 2
    assert not (tmp_path / "cache" / "downloads").exists()  # no copy of a local archive
    _targz(archive, {"dan/1.png": _photo(1), "eve/1.png": _photo(2), "fay/1.png": _photo(3)})
    assert download_source(cfg, 0, tmp_path / "raw").n_images == 3  # changed archive: extracted again
    wrong = cfg.model_copy(update={"url": cfg.url.model_copy(update={"sha256": "f" * 64})})
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        download_source(wrong, 0, tmp_path / "raw")


@pytest.mark.parametrize("url, key", [
    ({"url": "http://127.0.0.1:9/faces.zip"}, "data.url.sha256"),
    ({"url": "https://example.org/faces.zip", "sha256": "abc"}, "data.url.sha256"),
    ({}, "data.url.url"),
    ({"url": "ftp://example.org/faces.zip", "sha256": "0" * 64}, "data.url.url"),
])
def test_url_bad_params(url, key, tmp_path):
    with pytest.raises(ConfigError) as e:
        download_source(_cfg(source="url", cache_dir=str(tmp_path / "c"), url=url), 0, tmp_path / "raw")
    assert str(e.value).startswith(key + ":") and "\n" not in str(e.value)


# --------------------------------------------------------------------------- named datasets
def test_named_dataset_without_root_names_the_key(tmp_path):
    for name in ("ffhq", "celeba", "celebamask_hq", "cmfd"):
        with pytest.raises(ConfigError, match=r"^data\.dataset_root: required"):
            download_source(_cfg(source=name), 0, tmp_path / "raw")
    with pytest.raises(UnmaskError, match=r"^data\.dataset_root: .* is not a directory"):
        download_source(_cfg(source="ffhq", dataset_root=str(tmp_path / "nope")), 0, tmp_path / "raw")


def _ffhq_landmarks(n: int) -> list[list[float]]:
    return [[100.0 + 8 * i + n, 200.0 + 4 * i] for i in range(68)]


def _ffhq_json(path: Path, numbers: list[int]) -> None:
    entries = {str(n): {
        "category": "training" if n % 2 == 0 else "validation",
        "metadata": {"photo_url": "https://www.flickr.com/x", "license": "CC BY 2.0"},
        "image": {"file_url": "https://drive.google.com/uc?id=x", "file_path": f"images1024x1024/00000/{n:05d}.png",
                  "file_size": 1, "file_md5": "0" * 32, "pixel_size": [1024, 1024], "pixel_md5": "0" * 32,
                  "face_landmarks": _ffhq_landmarks(n)},
        "thumbnail": {"file_url": "x", "file_path": f"thumbnails128x128/00000/{n:05d}.png", "file_size": 1,
                      "file_md5": "0" * 32, "pixel_size": [128, 128], "pixel_md5": "0" * 32},
        "in_the_wild": {"file_url": "x", "file_path": f"in-the-wild-images/00000/{n:05d}.png",
                        "pixel_size": [2000, 1500], "face_rect": [1, 2, 3, 4],
                        "face_landmarks": [[0.0, 0.0]] * 68, "face_quad": [[0, 0]] * 4},
    } for n in numbers}
    path.write_text(json.dumps(entries))


def test_ffhq_reads_landmarks_scaled_to_the_image_read(tmp_path):
    root = tmp_path / "ffhq"
    for n in (0, 1, 2):
        _save(root / "thumbnails128x128" / "00000" / f"{n:05d}.png", _photo(n, (32, 32)))
    _ffhq_json(root / "ffhq-dataset-v2.json", [0, 1, 2])
    download_source(_cfg(source="ffhq", dataset_root=str(root)), 0, tmp_path / "raw")
    rows = _rows(tmp_path / "raw")
    assert list(rows) == ["00000", "00001", "00002"]
    r = rows["00001"]
    assert r["identity"] == "00001" and r["source"] == "ffhq"
    assert json.loads(r["attrs"]) == {"category": "validation"}
    lm = np.asarray(r["landmarks"]).reshape(68, 2)
    np.testing.assert_allclose(lm, np.asarray(_ffhq_landmarks(1)) * 32 / 1024, rtol=1e-6)
    assert np.array_equal(decode_png(r["image"]), _photo(1, (32, 32)))


def test_celeba_identities_partition_and_5_point_landmarks(tmp_path):
    root = tmp_path / "celeba"
    for i in (1, 2, 3):
        _save(root / "img_align_celeba" / f"{i:06d}.jpg", _photo(i, (178, 218)), quality=90)
    anno = root / "Anno"
    anno.mkdir()
    (anno / "identity_CelebA.txt").write_text("000001.jpg 2880\n000002.jpg 2937\n")  # 000003 missing
    (anno / "list_landmarks_align_celeba.txt").write_text(
        "3\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y "
        "rightmouth_x rightmouth_y\n"
        "000001.jpg  69  109  106  113   77  142   73  152  108  154\n"
        "000002.jpg  69  110  107  112   81  135   70  151  108  153\n"
        "000003.jpg  76  112  104  106  108  128   74  156   98  158\n")
    (root / "Eval").mkdir()
    (root / "Eval" / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 2\n000003.jpg 1\n")

    report = download_source(_cfg(source="celeba", dataset_root=str(root)), 0, tmp_path / "raw")
    rows = _rows(tmp_path / "raw")
    assert {k: r["identity"] for k, r in rows.items()} == {"000001": "2880", "000002": "2937"}
    a1 = json.loads(rows["000001"]["attrs"])
    assert a1 == {"landmarks5": [69, 109, 106, 113, 77, 142, 73, 152, 108, 154], "partition": "train"}
    assert json.loads(rows["000002"]["attrs"])["partition"] == "test"
    assert rows["000001"]["landmarks"] is None  # 5 points are not the 68-point column
    assert report.n_rejected == 1 and "identity_CelebA.txt" in _rejected(tmp_path / "raw")[
        "img_align_celeba/000003.jpg"]["reason"]


def _mask(path: Path, rows: slice, cols: slice, rgb: bool = False) -> None:
    m = np.zeros((32, 32), np.uint8)
    m[rows, cols] = 255
    _save(path, np.stack([m] * 3, axis=2) if rgb else m)


def test_celebamask_hq_combines_19_labels_into_our_11(tmp_path):
    root = tmp_path / "CelebAMask-HQ"
    _save(root / "CelebA-HQ-img" / "0.jpg", _photo(0, (64, 64)), quality=90)
    _save(root / "CelebA-HQ-img" / "1.jpg", _photo(1, (64, 64)), quality=90)
    anno = root / "CelebAMask-HQ-mask-anno" / "0"
    _mask(anno / "00000_skin.png", slice(4, 28), slice(4, 28), rgb=True)
    _mask(anno / "00000_eye_g.png", slice(8, 14), slice(6, 26))
    _mask(anno / "00000_l_eye.png", slice(10, 12), slice(8, 12))
    _mask(anno / "00000_l_ear.png", slice(14, 18), slice(0, 4))
    _mask(anno / "00000_u_lip.png", slice(20, 22), slice(12, 20))
    _mask(anno / "00000_hair.png", slice(0, 6), slice(0, 32))
    _mask(anno / "00000_hat.png", slice(0, 2), slice(0, 32))
    _mask(anno / "00000_cloth.png", slice(28, 32), slice(0, 32))
    (root / "CelebA-HQ-to-CelebA-mapping.txt").write_text(
        "idx         orig_idx    orig_file\n0           119613      119614.jpg\n1           99094       099095.jpg\n")
    (root / "identity_CelebA.txt").write_text("119614.jpg 42\n")

    download_source(_cfg(source="celebamask_hq", dataset_root=str(root)), 0, tmp_path / "raw")
    rows = _rows(tmp_path / "raw")
    assert set(rows) == {"00000", "00001"}
    parsing = decode_png(rows["00000"]["parsing"])
    assert parsing.shape == (64, 64)  # masks (32 px) resized to the image read
    at = lambda r, c: parsing[2 * r, 2 * c]  # noqa: E731 -- in 32 px mask coordinates
    assert at(25, 15) == 1    # skin
    assert at(11, 9) == 4     # left eye, painted over the glasses
    assert at(9, 20) == 1     # glasses keep the label beneath (skin)
    assert at(16, 2) == 0     # ear -> background, as in the synthetic source
    assert at(21, 15) == 7    # upper lip
    assert at(4, 15) == 10    # hair, painted over skin
    assert at(1, 15) == 0     # hat over hair -> background
    assert at(30, 15) == 0    # cloth
    assert set(np.unique(parsing)) == {0, 1, 4, 7, 10}  # (glasses painted nothing)
    assert rows["00000"]["identity"] == "celeba:42"
    assert json.loads(rows["00000"]["attrs"]) == {"celeba_file": "119614.jpg"}
    assert rows["00001"]["parsing"] is None and rows["00001"]["identity"] == "00001"


def test_celebamask_mapping_table_covers_all_18_parts():
    assert len(CELEBAMASK_TO_OURS) == 18 and set(CELEBAMASK_TO_OURS.values()) - {None} == set(range(11))


def test_cmfd_pairs_each_masked_image_with_its_ffhq_original(tmp_path):
    root = tmp_path / "maskedface"
    for n in (0, 1):
        _save(root / "images1024x1024" / "00000" / f"{n:05d}.png", _photo(n, (48, 48)))
    _ffhq_json(root / "ffhq-dataset-v2.json", [0, 1])
    flat = lambda v: np.full((96, 96, 3), v, np.uint8)  # noqa: E731
    _save(root / "CMFD" / "00000" / "00000_Mask.jpg", flat(60), quality=95)
    _save(root / "CMFD" / "00000" / "00001_Mask.jpg", flat(200), quality=95)
    _save(root / "CMFD" / "00000" / "00002_Mask.jpg", flat(100), quality=95)  # no FFHQ original
    _save(root / "IMFD" / "00000" / "00001_Mask_Mouth_Chin.jpg", flat(0), quality=95)  # not CMFD

    report = download_source(_cfg(source="cmfd", dataset_root=str(root)), 0, tmp_path / "raw")
    rows = _rows(tmp_path / "raw")
    assert set(rows) == {"00000", "00001"}
    for n, v in ((0, 60), (1, 200)):
        r = rows[f"{n:05d}"]
        assert np.array_equal(decode_png(r["image"]), _photo(n, (48, 48)))
        occ = decode_png(r["occluded"])
        assert occ.shape == (48, 48, 3) and abs(float(occ.mean()) - v) < 3
        np.testing.assert_allclose(np.asarray(r["landmarks"]).reshape(68, 2),
                                   np.asarray(_ffhq_landmarks(n)) * 48 / 1024, rtol=1e-6)
    assert report.n_rejected == 1
    assert "no FFHQ original 00002.png" in _rejected(tmp_path / "raw")["CMFD/00000/00002_Mask.jpg"]["reason"]


def test_every_configurable_source_is_registered():
    from typing import get_args

    from unmask.config import DataSourceName
    assert set(SOURCES) == set(get_args(DataSourceName))


def test_synthetic_source_dispatches_to_the_generator(tmp_path):
    cfg = _cfg(source="synthetic", limit=3, synthetic={"n_identities": 2, "images_per_identity": 2, "size": 32})
    report = download_source(cfg, 0, tmp_path / "raw")
    assert report.n_images == 3 and len(read_table(tmp_path / "raw")) == 3
    assert report.n_rejected == 0 and (tmp_path / "raw" / "rejected.csv").is_file()
