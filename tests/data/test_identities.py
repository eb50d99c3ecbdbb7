"""Duplicate photos and face-embedding identities: pHash, dlib descriptors, clustering, the split summary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unmask.config import AlignConfig, DataConfig, SplitConfig, SynthesizeConfig
from unmask.data.align import align_dataset
from unmask.data.identities import (FROM_FILE, FROM_SUBFOLDER, METHOD_CLUSTERS, METHOD_PER_FILE,
                                    METHOD_SOURCE, METHOD_SUBFOLDERS, SAME_PERSON_DISTANCE, Face,
                                    face_embedding, hamming, perceptual_hash, resolve_identities)
from unmask.data.sources import download_source
from unmask.data.split import split_dataset
from unmask.data.synthesize import synthesize_dataset
from unmask.errors import UnmaskError
from unmask.io.images import load_rgb
from unmask.io.shards import read_table, write_rows
from unmask.data.schema import SYNTH

from tests.helpers import synth_rows


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=128)
    return v / np.linalg.norm(v)


def _near(v: np.ndarray, rng: np.random.Generator, dist: float) -> np.ndarray:
    d = rng.normal(size=128)
    d -= d @ v * v
    return v + d / np.linalg.norm(d) * dist


# --------------------------------------------------------------------------- pHash
def test_perceptual_hash_sees_a_resized_recompressed_copy_but_not_another_photo(tmp_path):
    rng = np.random.default_rng(0)
    base = np.asarray(Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).resize((120, 120)))
    other = np.asarray(Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).resize((120, 120)))
    Image.fromarray(base).resize((90, 90)).save(tmp_path / "small.jpg", quality=70)
    small = load_rgb(tmp_path / "small.jpg")
    h = perceptual_hash(base)
    assert hamming(h, np.array([perceptual_hash(small)], np.uint64))[0] <= 4
    assert hamming(h, np.array([perceptual_hash(other)], np.uint64))[0] > 16
    assert perceptual_hash(base) == h  # deterministic


# --------------------------------------------------------------------------- clustering
def test_file_faces_closer_than_the_threshold_become_one_identity_whatever_the_order():
    rng = np.random.default_rng(1)
    a, b = _unit(rng), _unit(rng)
    faces = [Face("a1", "a1", FROM_FILE, a), Face("a2", "a2", FROM_FILE, _near(a, rng, 0.4)),
             Face("a3", "a3", FROM_FILE, _near(a, rng, 0.95)),  # ~1.0 from a2 too: another person
             Face("b1", "b1", FROM_FILE, b), Face("n1", "n1", FROM_FILE, None)]
    res = resolve_identities(faces)
    assert res.identity["a1"] == res.identity["a2"] == "a1"
    assert res.identity["b1"] == "b1" and res.identity["n1"] == "n1"
    assert res.identity["a3"] == "a3"
    assert res.method == METHOD_CLUSTERS + " + " + METHOD_PER_FILE
    again = resolve_identities(list(reversed(faces)))
    assert again == res


def test_complete_linkage_does_not_chain_through_a_middle_face():
    rng = np.random.default_rng(2)
    a = _unit(rng)
    step = _near(a, rng, 0.5)
    far = step + (step - a)  # 0.5 beyond the middle face, ~1.0 from the first
    res = resolve_identities([Face("x", "x", FROM_FILE, a), Face("y", "y", FROM_FILE, step),
                              Face("z", "z", FROM_FILE, far)])
    assert np.linalg.norm(far - a) > SAME_PERSON_DISTANCE
    assert res.identity["x"] != res.identity["z"]  # the middle face joins one side at most
    assert len(set(res.identity.values())) == 2 and res.n_merged == 1 and res.largest_clustered == 2


def test_a_long_chain_of_look_alikes_is_not_one_identity():
    """200 faces, each 0.45 from the next (a random walk): single linkage made one identity of them;
    complete linkage keeps every identity's faces pairwise closer than the threshold."""
    rng = np.random.default_rng(5)
    walk = [_unit(rng)]
    for _ in range(199):
        walk.append(_near(walk[-1], rng, 0.45))
    faces = [Face(f"f{i:03d}", f"f{i:03d}", FROM_FILE, v) for i, v in enumerate(walk)]
    res = resolve_identities(faces)
    groups: dict[str, list[int]] = {}
    for i in range(200):
        groups.setdefault(res.identity[f"f{i:03d}"], []).append(i)
    assert max(len(g) for g in groups.values()) <= 10
    for g in groups.values():
        pts = np.stack([walk[i] for i in g])
        assert np.linalg.norm(pts[:, None] - pts[None], axis=-1).max() < SAME_PERSON_DISTANCE
    assert resolve_identities(list(reversed(faces))) == res


def test_a_group_linked_beyond_the_memory_bound_is_refused(monkeypatch):
    import unmask.data.identities as identities

    rng = np.random.default_rng(6)
    a = _unit(rng)
    monkeypatch.setattr(identities, "MAX_LINKED_FACES", 5)
    faces = [Face(f"f{i}", f"f{i}", FROM_FILE, _near(a, rng, 0.1)) for i in range(6)]
    with pytest.raises(UnmaskError, match="6 face descriptors are linked by close pairs into one group"):
        resolve_identities(faces)


def test_labelled_identities_are_kept_and_a_file_face_joins_its_label():
    rng = np.random.default_rng(3)
    a, b = _unit(rng), _unit(rng)
    faces = [Face("alice/1", "alice", FROM_SUBFOLDER, a), Face("bob/1", "bob", FROM_SUBFOLDER, _near(a, rng, 0.3)),
             Face("loose", "loose", FROM_FILE, _near(b, rng, 0.1)), Face("carol/1", "carol", FROM_SUBFOLDER, b)]
    res = resolve_identities(faces)
    assert res.identity["alice/1"] == "alice" and res.identity["bob/1"] == "bob"  # labels are not merged
    assert res.identity["loose"] == "carol"
    assert res.method == METHOD_SUBFOLDERS + " + " + METHOD_CLUSTERS
    src = resolve_identities([Face("s1", "p1", None, None), Face("s2", "p1", None, None)])
    assert src.method == METHOD_SOURCE and src.identity == {"s1": "p1", "s2": "p1"} and src.n_merged == 0


# --------------------------------------------------------------------------- split from descriptors
def _synth_with_embeddings(directory: Path, groups: list[int], identity_from: str, seed: int = 0) -> Path:
    """SYNTH rows for folder photos: photo i belongs to person groups[i] (its descriptor is near the
    person's); the identity the earlier stages gave is the file's own (or ``g<person>`` for subfolders)."""
    rng = np.random.default_rng(seed)
    people = {g: _unit(rng) for g in sorted(set(groups))}
    rows = synth_rows(len(groups), 1, size=16, seed=seed)
    for i, (row, g) in enumerate(zip(rows, groups)):
        emb = _near(people[g], rng, 0.2)
        row["identity"] = f"p{i:03d}" if identity_from == FROM_FILE else f"g{g:03d}"
        row["attrs"] = json.dumps({"occluder": "surgical", "source": {
            "identity_from": identity_from, "face_embedding": [round(float(v), 6) for v in emb]}})
    write_rows(directory, SYNTH, rows)
    return directory


def test_flat_folder_split_groups_the_same_person_and_names_the_method(tmp_path):
    groups = [i // 3 for i in range(60)]  # 20 people, 3 photos each, each photo its own file identity
    synth = _synth_with_embeddings(tmp_path / "synth", groups, FROM_FILE)
    report = split_dataset(synth, tmp_path / "splits", SplitConfig(val=0.1, test=0.2), seed=0, progress=False)
    summary = json.loads((tmp_path / "splits" / "summary.json").read_text())
    assert summary["identity_method"] == METHOD_CLUSTERS == "face-embedding clusters (dlib resnet, complete linkage at 0.6)"
    assert summary["identities"] == {"train": 14, "val": 2, "test": 4}  # 20 people, not 60 files
    assert summary["test_faces_near_a_train_face"] == 0.0
    assert summary["faces_with_embedding"] == 60 and summary["photos_regrouped_by_face"] == 40
    tables = {s: read_table(tmp_path / "splits" / s).to_pydict() for s in ("train", "val", "test")}
    person = {f"id{i:03d}-0": g for i, g in enumerate(groups)}
    sides = {s: {person[sid] for sid in t["source_id"]} for s, t in tables.items()}
    assert not sides["train"] & sides["test"] and not sides["train"] & sides["val"]
    assert report.identity_method == summary["identity_method"]
    assert summary["largest_identity_photos"] == 3 and summary["largest_identity_share"] == 0.05


def test_one_clustered_identity_over_the_share_is_refused_and_nothing_written(tmp_path):
    groups = [0] * 24 + list(range(1, 97))  # one person in 24 of 120 photos (20 %)
    synth = _synth_with_embeddings(tmp_path / "synth", groups, FROM_FILE)
    with pytest.raises(UnmaskError, match=r"^my-params\.yaml: split\.max_identity_share: face-embedding "
                                          r"clustering put 24 of 120 photos \(20\.0%\) into one identity"):
        split_dataset(synth, tmp_path / "splits", SplitConfig(), seed=0, progress=False, source="my-params.yaml")
    assert not (tmp_path / "splits").exists()
    report = split_dataset(synth, tmp_path / "splits", SplitConfig(max_identity_share=0.25), seed=0,
                           progress=False)
    assert report.largest_identity_photos == 24 and report.largest_identity_share == 0.2


def test_a_small_folder_of_few_people_only_warns(tmp_path, caplog):
    groups = [i // 4 for i in range(40)]  # 10 people, 4 photos each: 10 % each, but only 4 photos
    synth = _synth_with_embeddings(tmp_path / "synth", groups, FROM_FILE)
    report = split_dataset(synth, tmp_path / "splits", SplitConfig(), seed=0, progress=False)
    assert report.largest_identity_share == 0.1
    assert "split.max_identity_share" in caplog.text


def test_subfolder_labels_are_used_and_a_person_on_both_sides_is_reported(tmp_path):
    groups = [i // 2 for i in range(40)]
    synth = _synth_with_embeddings(tmp_path / "synth", groups, FROM_SUBFOLDER)
    # mislabel: person 0's second photo filed under a new sub-folder name -> may land in another split
    table = read_table(synth).to_pylist()
    for i, row in enumerate(table):
        if i % 2 == 1:
            row["identity"] = f"z{i:03d}"
    shutil.rmtree(synth)
    write_rows(synth, SYNTH, table)
    report = split_dataset(synth, tmp_path / "splits", SplitConfig(val=0.1, test=0.2), seed=0, progress=False)
    assert report.identity_method == METHOD_SUBFOLDERS
    assert report.photos_regrouped_by_face == 0  # labels are trusted ...
    assert report.test_faces_near_a_train_face > 0  # ... and the leak they leave is measured


def test_synthetic_split_says_source_and_has_no_near_share(tmp_path):
    write_rows(tmp_path / "synth", SYNTH, synth_rows(10, 2))
    report = split_dataset(tmp_path / "synth", tmp_path / "splits", SplitConfig(), seed=0, progress=False)
    assert report.identity_method == METHOD_SOURCE
    assert report.test_faces_near_a_train_face is None and report.faces_with_embedding == 0


# --------------------------------------------------------------------------- real photos (dlib)
# two crops of one person in ../shared/data/faces/unmasked-crops (descriptors 0.37 apart; checked by eye)
REAL_SAME_PERSON = ("196.png", "3413.png")


def _real_files(real_faces_dir: Path, n: int) -> list[Path]:
    return sorted(real_faces_dir.glob("*.png"))[:n]


def _mirror_crop(src: Path, dst: Path) -> None:
    """Another picture of the same face: mirrored, cropped off-centre, rescaled, darker, saved as JPEG."""
    im = Image.open(src).convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    w, h = im.size
    im = im.crop((0, 0, int(w * 0.92), int(h * 0.95))).resize((int(w * 1.3), int(h * 1.3)))
    arr = (np.asarray(im, np.float32) * 0.8).astype(np.uint8)
    Image.fromarray(arr).save(dst, quality=85)


def test_real_same_photo_three_times_in_a_flat_folder_keeps_one(real_faces_dir, tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    src = _real_files(real_faces_dir, 1)[0]
    for name in ("x.png", "x (copy).png", "x (another copy).png"):
        shutil.copy(src, folder / name)
    report = download_source(DataConfig.model_validate({"source": "folder", "folder": {"path": str(folder)}}),
                             0, tmp_path / "raw")
    assert report.n_images == 1
    assert sorted(r.reason for r in report.rejected) == ["duplicate of x.png (same bytes)"] * 2
    assert report.to_dict()["rejected_reasons"] == {"duplicate": 2}


def test_real_two_photos_of_one_person_become_one_identity(real_faces_dir, tmp_path):
    """End to end over a flat folder: download, align (descriptors), synthesize, split."""
    folder = tmp_path / "flat"
    folder.mkdir()
    files = _real_files(real_faces_dir, 12)
    pair = [real_faces_dir / n for n in REAL_SAME_PERSON]  # two different photos of one person (viewed)
    for p in files + [p for p in pair if p.is_file()]:
        shutil.copy(p, folder / p.name)
    _mirror_crop(files[0], folder / "same-person.jpg")
    download_source(DataConfig.model_validate({"source": "folder", "folder": {"path": str(folder)}}),
                    0, tmp_path / "raw")
    raw = {r["image_id"]: r for r in read_table(tmp_path / "raw").to_pylist()}
    assert "same-person.jpg" in raw  # not a (near) duplicate: a different picture
    areport = align_dataset(tmp_path / "raw", tmp_path / "aligned", AlignConfig(size=48, detector_upsample=0),
                            progress=False)
    assert areport.n_embedded == areport.n_aligned > 10
    aligned = {r["image_id"]: json.loads(r["attrs"]) for r in read_table(tmp_path / "aligned").to_pylist()}
    if files[0].name not in aligned or "same-person.jpg" not in aligned:
        pytest.skip(f"dlib found no single face in {files[0].name} or its mirrored copy")
    a = np.asarray(aligned[files[0].name]["face_embedding"])
    b = np.asarray(aligned["same-person.jpg"]["face_embedding"])
    assert np.linalg.norm(a - b) < SAME_PERSON_DISTANCE
    synthesize_dataset(tmp_path / "aligned", tmp_path / "synth", SynthesizeConfig(), seed=0, progress=False)
    report = split_dataset(tmp_path / "synth", tmp_path / "splits", SplitConfig(val=0.1, test=0.2), seed=0,
                           progress=False)
    summary = json.loads((tmp_path / "splits" / "summary.json").read_text())
    assert summary["identity_method"] == METHOD_CLUSTERS
    assert summary["test_faces_near_a_train_face"] == 0.0
    rows = [r for s in ("train", "val", "test") for r in read_table(tmp_path / "splits" / s).to_pylist()]
    ident = {r["source_id"]: (r["identity"], r["split"]) for r in rows}
    assert ident[files[0].name] == ident["same-person.jpg"]
    if all(p.name in ident for p in pair):
        assert ident[pair[0].name] == ident[pair[1].name]
    assert report.photos_regrouped_by_face >= 1


def test_real_descriptor_is_deterministic_and_separates_two_people(real_faces_dir):
    from unmask.data.landmarks import detect_landmarks

    faces = []
    for p in _real_files(real_faces_dir, 12):
        im = load_rgb(p)
        lms = detect_landmarks(im, 0)
        if len(lms) == 1:
            faces.append((im, lms[0]))
        if len(faces) == 2:
            break
    if len(faces) < 2:
        pytest.skip("dlib found fewer than two single faces in the first real crops")
    (im1, lm1), (im2, lm2) = faces
    e1 = face_embedding(im1, lm1)
    assert e1.shape == (128,) and e1.dtype == np.float32
    np.testing.assert_array_equal(e1, face_embedding(im1, lm1))
    assert np.linalg.norm(e1 - face_embedding(im2, lm2)) > 0.3  # crops of different files


def test_real_crops_as_one_flat_folder_have_no_identity_over_five_percent(real_faces_dir, tmp_path):
    """The 400 shared crops (many people, no identity sub-folders, as FFHQ): the split's identities
    are face clusters, and none holds more than 5 % of the photos (single linkage chained them)."""
    folder = tmp_path / "flat"
    folder.mkdir()
    files = sorted(real_faces_dir.glob("*.png"))
    for p in files:
        shutil.copy(p, folder / p.name)
    download_source(DataConfig.model_validate({"source": "folder", "folder": {"path": str(folder)}}),
                    0, tmp_path / "raw")
    align_dataset(tmp_path / "raw", tmp_path / "aligned", AlignConfig(size=32), progress=False)
    synthesize_dataset(tmp_path / "aligned", tmp_path / "synth", SynthesizeConfig(), seed=0, progress=False)
    split_dataset(tmp_path / "synth", tmp_path / "splits", SplitConfig(), seed=0, progress=False)
    summary = json.loads((tmp_path / "splits" / "summary.json").read_text())
    assert summary["identity_method"].startswith(METHOD_CLUSTERS)
    assert summary["faces_with_embedding"] >= 0.9 * len(files)
    assert summary["largest_identity_share"] <= 0.05
    assert sum(summary["identities"].values()) >= 100
