"""The synthesize stage: ALIGNED shards in, SYNTH shards with exact masks out, reproducibly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.data.test_occlusions import synthetic_face
from unmask.config import SynthesizeConfig
from unmask.data.schema import ALIGNED, SYNTH
from unmask.data.synthesize import estimate_source_mask, synthesize_dataset
from unmask.errors import UnmaskError
from unmask.io.images import decode_png, encode_png
from unmask.io.shards import read_table, shard_files, write_rows

SIZE = 48
KINDS = {"surgical": 0.6, "centre_hole": 0.3, "freeform": 0.1}


def aligned_rows(n: int, source_occluded: int = 0) -> list[dict]:
    """``n`` drawn faces (varied turn and tint); the last ``source_occluded`` carry their own occluded photo."""
    rows = []
    for i in range(n):
        img, lm = synthetic_face(SIZE, turn=0.1 * np.sin(i))
        img = np.clip(img.astype(int) + (i * 7) % 30, 0, 255).astype(np.uint8)
        occluded = None
        if i >= n - source_occluded:
            occ = img.copy()
            occ[30:44, 10:38] = (40, 90, 200)
            occluded = encode_png(occ)
        rows.append({"image_id": f"img{i:03d}", "identity": f"id{i // 3}", "source": "test",
                     "image": encode_png(img), "occluded": occluded, "landmarks": lm.reshape(-1).tolist(),
                     "parsing": None, "attrs": json.dumps({"n": i})})
    return rows


def make_aligned(directory: Path, rows: list[dict]) -> Path:
    write_rows(directory, ALIGNED, rows, rows_per_shard=16)
    return directory


def cfg(**kw) -> SynthesizeConfig:
    return SynthesizeConfig(**{"kinds": KINDS, "variants_per_image": 3, **kw})


def test_writes_synth_rows_with_exact_masks(tmp_path):
    src = make_aligned(tmp_path / "aligned", aligned_rows(6, source_occluded=1))
    report = synthesize_dataset(src, tmp_path / "synth", cfg(), seed=3, progress=False)
    table = read_table(tmp_path / "synth")
    assert table.schema.equals(SYNTH)
    assert report.n_images == 6 and report.n_rows == table.num_rows == 5 * 3 + 1
    assert report.counts["source"] == 1 and sum(report.counts.values()) == report.n_rows
    rows = table.to_pylist()
    assert {r["image_id"] for r in rows} == {f"img{i:03d}#{k}" for i in range(5) for k in range(3)} | {"img005#0"}
    for r in rows:
        occ, clean, mask = decode_png(r["occluded"]), decode_png(r["clean"]), decode_png(r["mask"])
        assert occ.shape == clean.shape == (SIZE, SIZE, 3) and mask.shape == (SIZE, SIZE)
        assert set(np.unique(mask)) <= {0, 255} and (mask > 0).any()
        attrs = json.loads(r["attrs"])
        assert attrs["source"] == {"n": int(r["source_id"][3:])}
        assert r["image_id"].startswith(r["source_id"] + "#") and len(r["landmarks"]) == 136
        if r["kind"] == "source":
            assert (mask[30:44, 10:38] == 255).all() and mask.sum() / 255 < 1.3 * 14 * 28
            continue
        assert r["kind"] in {"surgical", "centre_hole"} or r["kind"].startswith("freeform:")
        assert attrs["occluder"] == r["kind"].split(":")[0]
        np.testing.assert_array_equal(occ[mask == 0], clean[mask == 0])


def test_kind_counts_follow_the_weights(tmp_path):
    src = make_aligned(tmp_path / "aligned", aligned_rows(30))
    report = synthesize_dataset(src, tmp_path / "synth", cfg(variants_per_image=4), seed=0, progress=False)
    assert report.n_rows == 120
    for kind, weight in KINDS.items():
        assert abs(report.counts[kind] / 120 - weight) < 0.12, report.counts


def test_same_seed_is_byte_identical_and_independent_of_row_order(tmp_path):
    rows = aligned_rows(8)
    a = make_aligned(tmp_path / "a", rows)
    b = make_aligned(tmp_path / "b", rows[::-1])
    synthesize_dataset(a, tmp_path / "out1", cfg(), seed=5, progress=False)
    synthesize_dataset(a, tmp_path / "out2", cfg(), seed=5, progress=False)
    assert [f.read_bytes() for f in shard_files(tmp_path / "out1")] == \
           [f.read_bytes() for f in shard_files(tmp_path / "out2")]
    synthesize_dataset(b, tmp_path / "out3", cfg(), seed=5, progress=False)
    by_id = lambda d: {r["image_id"]: r for r in read_table(d).to_pylist()}  # noqa: E731
    assert by_id(tmp_path / "out1") == by_id(tmp_path / "out3")
    synthesize_dataset(a, tmp_path / "out4", cfg(), seed=6, progress=False)
    assert by_id(tmp_path / "out1") != by_id(tmp_path / "out4")


def test_bad_row_fails_with_its_id_and_leaves_no_output(tmp_path):
    rows = aligned_rows(3)
    rows[1]["landmarks"] = None
    src = make_aligned(tmp_path / "aligned", rows)
    with pytest.raises(UnmaskError, match="img001.*landmarks"):
        synthesize_dataset(src, tmp_path / "synth", cfg(), seed=0, progress=False)
    assert not (tmp_path / "synth").exists()
    assert not list(tmp_path.glob(".synth*"))


def test_source_mask_estimate_ignores_noise_and_fills_the_occluder():
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    occ = np.clip(clean.astype(int) + rng.integers(-10, 11, clean.shape), 0, 255).astype(np.uint8)
    occ[20:50, 8:56] = (200, 200, 200)  # a flat occluder: some pixels happen to match the clean image
    mask = estimate_source_mask(occ, clean)
    expected = np.zeros((64, 64), bool)
    expected[20:50, 8:56] = True
    assert (mask == expected).mean() > 0.99 and mask[22:48, 10:54].all()
