"""The trial store's keys and entries, without Ray (see test_shared_trials.py for the sweeps)."""

from __future__ import annotations

import json
import math
import os
import shutil

import pandas as pd
import pytest

from unmask.studies.store import TrialStore, data_version, storable, trial_key
from unmask.training import CheckpointError


def _splits(root, payload: bytes = b"shard"):
    for split in ("train", "val", "test"):
        (root / split).mkdir(parents=True)
        (root / split / "part-0.parquet").write_bytes(payload + split.encode())
    (root / "summary.json").write_text("{}")
    return root


def _trial(study="a", label="adv_loss=lsgan", seed=0, **train):
    return {"study": study, "cell": {}, "cell_label": label, "seed": seed, "image_size": 16, "kinds": None,
            "train": {"adv_loss": "lsgan", "seed": seed, **train}}


def test_data_version_hashes_bytes_not_mtimes(tmp_path):
    a = _splits(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    for p in b.rglob("*"):
        os.utime(p, (1, 1))
    (b / "summary.json").write_text('{"other": 1}')      # not a split file
    assert data_version(a) == data_version(b)
    (b / "val" / "part-0.parquet").write_bytes(b"changed")
    assert data_version(a) != data_version(b)


def test_data_version_memo_is_only_a_cache(tmp_path):
    a = _splits(tmp_path / "a")
    memo = tmp_path / "memo.json"
    first = data_version(a, memo)
    assert memo.is_file() and data_version(a, memo) == first == data_version(a)
    (a / "train" / "part-0.parquet").write_bytes(b"new bytes")    # new size and mtime: re-hashed
    assert data_version(a, memo) == data_version(a) != first


def test_trial_key_ignores_study_and_label_but_not_config_or_data():
    base = trial_key(_trial(), "d1")
    assert trial_key(_trial(study="b", label="lambda=1 adv_loss=lsgan"), "d1") == base
    assert trial_key(_trial(seed=1), "d1") != base
    assert trial_key(_trial(lr_g=0.1), "d1") != base
    assert trial_key(_trial(), "d2") != base
    assert trial_key({**_trial(), "kinds": ["surgical"]}, "d1") != base


def _row(ckpt, **over):
    row = {"study": "a", "trial_id": "t1", "cell_label": "adv_loss=lsgan", "seed": 0, "status": "TERMINATED",
           "checkpoint": str(ckpt), "mlflow_run_id": "r1", "note_lpips": "n/a: weights missing",
           **{f"test_{m}": 1.0 for m in ("l1", "l2", "psnr", "ssim", "l1_masked", "l2_masked", "psnr_masked")},
           "test_lpips": math.nan}
    return {**row, **over}


def test_storable_needs_finished_with_finite_test_metrics(tmp_path):
    assert storable(_row("x"))
    assert not storable(_row("x", status="ERROR"))
    assert not storable(_row("x", test_psnr=math.nan))
    assert not storable(_row("x", note_lpips=""))          # LPIPS missing without a reason
    assert storable(_row("x", note_lpips="", test_lpips=0.3))
    assert not storable(_row(""))


def test_put_and_load(tmp_path):
    ckpt = tmp_path / "last.pt"
    ckpt.write_bytes(b"weights")
    store = TrialStore(tmp_path / "store")
    assert store.load("k") is None
    curves = pd.DataFrame({"study": ["a"], "trial_id": ["t1"], "step": [2], "metric": ["val_psnr"], "value": [9.0]})
    store.put("k", _row(ckpt), curves, trained_by="a", parent_run_id="p", experiment_id="1")
    record = store.load("k")
    assert record["trained_by"] == "a" and record["trial_key"] == "k" and math.isnan(record["test_lpips"])
    assert store.checkpoint("k").read_bytes() == b"weights"
    assert store.curves("k").equals(curves)
    assert json.loads((store.entry("k") / "record.json").read_text())["mlflow_run_id"] == "r1"


def test_put_that_fails_leaves_no_entry(tmp_path):
    store = TrialStore(tmp_path / "store")
    with pytest.raises(CheckpointError):
        store.put("k", _row("file:///nonexistent/last.pt"), pd.DataFrame(), trained_by="a")
    with pytest.raises(FileNotFoundError):
        store.put("k", _row(tmp_path / "missing.pt"), pd.DataFrame(), trained_by="a")
    assert store.load("k") is None and not store.entry("k").exists()


def test_a_study_testing_on_other_kinds_gets_its_own_trials():
    from unmask.config import parse_params
    from unmask.studies import parse_study_params
    from unmask.studies.grid import expand_study

    seg = {"framework": "segmenter", "generator": {"name": "unet", "depth": 3, "base_channels": 8,
                                                   "out_channels": 1}, "weights": {"dice": 1.0}}
    raw = {"studies": {"seen": {"kinds": ["surgical", "n95"], "train": seg, "grid": {"lr_g": [1e-3]}},
                       "unseen": {"kinds": ["surgical", "n95"], "test_kinds": ["cloth"], "train": seg,
                                  "grid": {"lr_g": [1e-3]}}}}
    sp = parse_study_params(parse_params(raw))
    seen, unseen = expand_study(sp, "seen")[0], expand_study(sp, "unseen")[0]
    assert "test_kinds" not in seen and unseen["test_kinds"] == ["cloth"]
    assert trial_key(seen, "d") != trial_key(unseen, "d")      # measured differently: not shared
    assert trial_key(seen, "d") == trial_key({**seen}, "d")
