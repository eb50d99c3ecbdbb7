"""A micro study end to end through real Ray Tune and MLflow, then run again: it must resume.

Part of the default (CI) run: the study trains two 4-step trials at 16 px, about 40 s with Ray's start-up.

Ray runs inside a loopback-only network namespace (``unshare -rn``), so nothing it opens can be reached
from outside; the test is skipped with the reason where such namespaces are not permitted.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

SCRIPT = Path(__file__).with_name("micro_study.py")
SRC = Path(__file__).resolve().parents[2] / "src"
LOOPBACK = ("127.", "[::1]", "[::ffff:127.")


def _namespace_or_skip() -> None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs unshare and ip (util-linux, iproute2) for a loopback-only network namespace")
    probe = subprocess.run(["unshare", "-rn", "sh", "-c", "ip link set lo up"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -rn not permitted here ({probe.stderr.strip() or probe.returncode})")


@pytest.fixture(scope="module")
def micro(tmp_path_factory) -> dict:
    _namespace_or_skip()
    work = tmp_path_factory.mktemp("micro")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    cmd = f"ip link set lo up && exec {sys.executable} {SCRIPT} {work}"
    proc = subprocess.run(["unshare", "-rn", "sh", "-c", cmd], capture_output=True, text=True, env=env,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["work"] = work
    return out


def test_trials_table(micro):
    table = pd.read_parquet(Path(micro["out"]) / "trials.parquet")
    assert len(table) == 2
    assert table["cell_label"].tolist() == ["adv_loss=lsgan", "adv_loss=hinge"]
    assert (table["status"] == "TERMINATED").all(), table["error"].tolist()
    for col in ("study", "trial_id", "cell", "seed", "mlflow_run_id", "checkpoint", "train_time_s", "steps",
                "image_size", "data_source", "note_lpips"):
        assert col in table
    for split in ("val", "test"):
        for m in ("l1", "l2", "psnr", "ssim", "l1_masked", "psnr_masked"):
            assert table[f"{split}_{m}"].notna().all(), f"{split}_{m}"
        # LPIPS: a number, or NaN with the reason beside it
        assert all(not math.isnan(v) or note.startswith("n/a") for v, note in
                   zip(table[f"{split}_lpips"], table["note_lpips"]))
    assert json.loads(table["cell"][1]) == {"adv_loss": "hinge"}
    assert (table["steps"] == 4).all() and (table["image_size"] == 16).all()
    for ckpt, key in zip(table["checkpoint"], table["trial_key"]):   # the study's copy: a DVC output
        assert ckpt == f"results/micro/checkpoints/{key}.pt" and (micro["work"] / ckpt).is_file()


def test_curves_and_metrics(micro):
    out = Path(micro["out"])
    curves = pd.read_parquet(out / "curves.parquet")
    assert list(curves.columns) == ["study", "trial_id", "step", "metric", "value"]
    val = curves[curves["metric"] == "val_psnr"]
    assert sorted(val.groupby("trial_id")["step"].apply(list).tolist()) == [[2, 4], [2, 4]]
    metrics = json.loads((out / "sweep.json").read_text())
    assert metrics["trials"] == 2 and metrics["failed"] == 0
    assert metrics["best"]["test_psnr"]["cell"] in {"adv_loss=lsgan", "adv_loss=hinge"}
    cells = metrics["cells"]
    best = max(cells, key=lambda c: cells[c]["test_psnr"])
    assert metrics["best"]["test_psnr"]["cell"] == best


def test_mlflow_runs_finished_and_nested(micro):
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{micro['work'] / 'mlflow.db'}")
    exp = client.get_experiment_by_name("micro")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 2      # the resume reopened the same runs
    assert all(r.info.status == "FINISHED" for r in runs)
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    table = pd.read_parquet(Path(micro["out"]) / "trials.parquet")
    assert {r.info.run_id for r in children} == set(table["mlflow_run_id"])
    child = children[0]
    assert {"test_psnr", "val_psnr"} <= set(child.data.metrics)
    assert len(client.get_metric_history(child.info.run_id, "val_psnr")) == 2   # per-step metrics
    assert child.data.params["generator.base_channels"] == "4"
    assert "samples.png" in {a.path for a in client.list_artifacts(child.info.run_id)}
    champion = client.get_model_version_by_alias("unmask-micro", "champion")
    assert champion.run_id in set(table["mlflow_run_id"])


def test_mlflow_champion_is_study_champion_and_infer_default(micro):
    """One champion rule for a grid study: the trainer's val_psnr, highest. The trial MLflow's alias names
    is the best on it, the one ``micro:champion`` loads, and ``unmask infer``'s default."""
    import mlflow

    from unmask.infer import default_model, load_unmasker

    client = mlflow.MlflowClient(f"sqlite:///{micro['work'] / 'mlflow.db'}")
    run_id = client.get_model_version_by_alias("unmask-micro", "champion").run_id
    table = pd.read_parquet(Path(micro["out"]) / "trials.parquet")
    alias = table[table["mlflow_run_id"] == run_id].iloc[0]
    assert alias["val_psnr"] == table["val_psnr"].max()
    assert json.loads((Path(micro["out"]) / "sweep.json").read_text())["champion"] == {"metric": "val_psnr",
                                                                                       "mode": "max"}
    assert load_unmasker("micro:champion", root=micro["work"]).name == f"micro: {alias['cell_label']} seed {alias['seed']}"
    assert default_model(micro["work"], ["micro"], need_mask_free=False) == "micro:champion"


def test_second_run_resumes_without_retraining(micro):
    before, after = pd.DataFrame(micro["before"]), pd.DataFrame(micro["after"])
    for col in ("trial_id", "train_time_s", "mlflow_run_id", "checkpoint", "test_psnr"):
        assert before[col].tolist() == after[col].tolist(), col


def test_ray_listens_on_loopback_only(micro):
    assert micro["listening"], "no listening sockets seen while Ray ran"
    wide = [addr for addr in micro["listening"] if not addr.startswith(LOOPBACK)]
    assert not wide, f"Ray listened beyond loopback: {wide}"
