"""Sweeps survive faults: a trial whose Ray worker is SIGKILLed is retried from its checkpoint
(``tune.FailureConfig``), and a sweep stopped by SIGINT resumes on the next run without retraining
finished trials and without leaving MLflow runs RUNNING.

Everything runs in a loopback-only network and PID namespace (:mod:`tests.studies.isolated`), so the
worker to kill is found among this test's processes only; skipped where namespaces are not permitted.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.studies.fault_study import LONG, STUDY
from tests.studies.isolated import namespace_or_skip, run_isolated

SCRIPT = Path(__file__).with_name("fault_study.py")
VAL_STEPS = list(range(LONG["val_every"], LONG["steps"] + 1, LONG["val_every"]))


def _runs(work: Path) -> list:
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    return client.search_runs([client.get_experiment_by_name(STUDY).experiment_id])


def _children(runs: list) -> list:
    return [r for r in runs if "mlflow.parentRunId" in r.data.tags]


@pytest.mark.slow
def test_killed_worker_is_retried_from_its_checkpoint(tmp_path):
    namespace_or_skip()
    out = run_isolated(SCRIPT, "kill-worker", str(tmp_path), timeout=240)
    killed = out["killed"]
    assert killed, "no trial worker was killed (trials finished before the first checkpoint was seen?)"
    table = pd.read_parquet(Path(out["out"]) / "trials.parquet")
    assert (table["status"] == "TERMINATED").all(), table["error"].tolist()
    trial_id = killed["trial"].removeprefix("trial_")
    assert trial_id in set(table["trial_id"])
    curves = pd.read_parquet(Path(out["out"]) / "curves.parquet")
    val = curves[(curves["trial_id"] == trial_id) & (curves["metric"] == "val_psnr")]
    # resumed from the checkpoint: every validation step once, up to the budget (a restart from
    # scratch would repeat the steps before the kill)
    assert val["step"].tolist() == VAL_STEPS
    history = out["history"]       # another worker took over, restored from the checkpoint
    assert [h["step"] for h in history] == VAL_STEPS
    after = [h for h in history if h["pid"] != killed["pid"]]
    assert after and after[0]["step"] > LONG["val_every"] and after[0]["iterations_since_restore"] == 1
    row = table[table["trial_id"] == trial_id].iloc[0]
    assert row["steps"] == LONG["steps"] and (tmp_path / row["checkpoint"]).is_file()
    runs = _runs(tmp_path)
    assert len(_children(runs)) == len(table)          # the retry reopened the trial's MLflow run
    assert all(r.info.status == "FINISHED" for r in runs)
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    for key in ("val_psnr", "g_total"):   # steps the killed attempt logged are not logged again
        steps = [m.step for m in client.get_metric_history(row["mlflow_run_id"], key)]
        assert steps and len(steps) == len(set(steps)), (key, steps)


@pytest.mark.slow
def test_interrupted_sweep_resumes_without_retraining(tmp_path):
    namespace_or_skip()
    out = run_isolated(SCRIPT, "interrupt", str(tmp_path), timeout=330)
    first = out["first"]
    assert first["finished"], "the sweep ended before it could be interrupted mid-way"
    assert first["rc"] == 3 and "interrupted" in first["stderr"], first["stderr"]
    assert not first["tables"], "an interrupted sweep wrote its tables"
    assert "RUNNING" not in first["statuses"].values()   # parent and stopped trials closed FAILED
    assert out["rerun_rc"] == 0, out["rerun_stderr"]

    table = pd.read_parquet(Path(out["out"]) / "trials.parquet")
    assert len(table) == 3 and (table["status"] == "TERMINATED").all(), table["error"].tolist()
    for trial, before in first["finished"].items():      # finished before SIGINT: not retrained
        row = table[table["trial_id"] == trial.removeprefix("trial_")].iloc[0]
        # Tune's checkpoint was not rewritten; the table points at the study's copy of the store's
        assert Path(before["checkpoint"]).stat().st_mtime_ns == before["mtime_ns"]
        ckpt = tmp_path / row["checkpoint"]
        assert ckpt.read_bytes() == Path(before["checkpoint"]).read_bytes()
        assert ckpt == tmp_path / "results" / STUDY / "checkpoints" / f"{row['trial_key']}.pt"
        assert (tmp_path / "results" / "trial_store" / row["trial_key"] / "last.pt").read_bytes() == ckpt.read_bytes()
        assert row["mlflow_run_id"] == before["state"]["mlflow_run_id"]
        assert row["train_time_s"] == pytest.approx(before["state"]["train_time_s"])
    runs = _runs(tmp_path)
    assert {r.info.status for r in runs} <= {"FINISHED", "FAILED"}
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"   # the same parent, resumed
    by_id = {r.info.run_id: r.info.status for r in runs}
    assert all(by_id[i] == "FINISHED" for i in table["mlflow_run_id"])
