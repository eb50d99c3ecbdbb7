"""A sweep with failed or diverged trials exits non-zero and keeps the previous results (no Ray: the
Tune part is replaced by a stand-in returning the trials' rows)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from unmask.config import parse_params
from unmask.errors import UnmaskError
from unmask.studies import parse_study_params
from unmask.studies import sweep as sweep_mod
from unmask.studies.results import CURVE_COLS, failed_trials
from unmask.studies.sweep import run_study

from tests.helpers import micro_grid_study

TEST = {f"test_{m}": 0.5 for m in ("l1", "l2", "psnr", "ssim", "l1_masked", "l2_masked", "psnr_masked")}


def _row(label, status="TERMINATED", **over):
    return {"trial_id": f"t-{label}", "study": "s", "cell": "{}", "cell_label": label, "seed": 0, "status": status,
            "error": "", "mlflow_run_id": "", "model_uri": "", "checkpoint": "", "steps": 4, **TEST, **over}


def test_failed_and_diverged_trials_are_named():
    table = pd.DataFrame([_row("ok"), _row("boom", status="ERROR", error="RuntimeError: boom"),
                          _row("inf lr", test_psnr=math.nan), _row("early", status="STOPPED_EARLY", test_psnr=None)])
    assert failed_trials(table) == ["boom seed=0: RuntimeError: boom", "inf lr seed=0: non-finite test_psnr (nan)"]


def test_failed_sweep_keeps_the_previous_results(tmp_path, monkeypatch):
    params = micro_grid_study(tmp_path)
    out = tmp_path / "results" / "s"
    out.mkdir(parents=True)
    old = {name: f"old {name}" for name in ("trials.parquet", "curves.parquet", "sweep.json")}
    for name, text in old.items():
        (out / name).write_text(text)

    def fake_sweep(name, study, params, trials, *args, **kw):   # one trial failed, one diverged
        rows = [_row(trials[0]["cell_label"], status="ERROR", error="RuntimeError: boom"),
                _row(trials[1]["cell_label"], test_psnr=math.nan, test_ssim=math.nan)]
        return pd.DataFrame(rows), pd.DataFrame(columns=CURVE_COLS)

    monkeypatch.setattr(sweep_mod, "sweep_trials", fake_sweep)
    with pytest.raises(UnmaskError, match=r"^s: 2 of 2 trials failed \(adv_loss=lsgan seed=0: RuntimeError: boom; "
                                          r"adv_loss=hinge seed=0: non-finite test_psnr"):
        run_study("s", params, tmp_path / "splits", tmp_path / "results", progress=False, root=tmp_path)
    assert {name: (out / name).read_text() for name in old} == old
    import mlflow

    assert mlflow.MlflowClient().search_registered_models() == []   # no champion


def test_missing_split_is_refused_before_any_trial(tmp_path):
    (tmp_path / "splits" / "train").mkdir(parents=True)
    (tmp_path / "splits" / "test").mkdir()
    params = parse_study_params(parse_params({"studies": {"s": {}}}))
    with pytest.raises(UnmaskError, match=r"splits/val: missing split"):
        run_study("s", params, tmp_path / "splits", tmp_path / "results", progress=False, root=tmp_path)
