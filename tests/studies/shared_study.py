"""Two micro grid studies that share a cell, through real Ray Tune and MLflow: the shared trial is
trained once (the trial store), then B's grid changes and B runs again.

Run as ``python shared_study.py WORKDIR`` (the test runs it in :mod:`isolated`'s loopback-only
namespace); prints one JSON line with what the test checks. One Ray cluster serves the three sweeps.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
from pathlib import Path

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # tests/ for helpers

from helpers import write_synth  # noqa: E402

from unmask.config import SplitConfig, parse_params  # noqa: E402
from unmask.data.split import split_dataset  # noqa: E402
from unmask.studies import parse_study_params  # noqa: E402
from studies.micro_study import PARAMS  # noqa: E402  (tests/ is on sys.path)

A, B = "share_a", "share_b"
A_GRID, B_GRID, B_GRID_2 = ["lsgan", "hinge"], ["lsgan", "minimax"], ["lsgan", "rahinge"]


def params(b_grid: list[str]):
    p = copy.deepcopy(PARAMS)
    p["studies"] = {A: {"title": "A", "train": {"framework": "cyclegan"}, "grid": {"adv_loss": A_GRID}, "seeds": [0]},
                    B: {"title": "B", "train": {"framework": "cyclegan"}, "grid": {"adv_loss": b_grid}, "seeds": [0]}}
    return parse_study_params(parse_params(p))


def trainings(work: Path) -> dict[str, int]:
    """MLflow child runs (one per trained trial) per study."""
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    out = {}
    for name in (A, B):
        exp = client.get_experiment_by_name(name)
        runs = client.search_runs([exp.experiment_id]) if exp else []
        out[name] = sum("mlflow.parentRunId" in r.data.tags for r in runs)
    return out


def files(out: Path) -> dict[str, list]:
    """(mtime_ns, sha256) of a study's results files."""
    return {p.name: [p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest()]
            for p in sorted(out.iterdir()) if p.is_file()}


def store(work: Path) -> dict[str, dict]:
    out = {}
    for entry in sorted((work / "results" / "trial_store").iterdir()):
        if (entry / "record.json").is_file():
            record = json.loads((entry / "record.json").read_text())
            out[entry.name] = {"record_mtime_ns": (entry / "record.json").stat().st_mtime_ns,
                               "ckpt_mtime_ns": (entry / "last.pt").stat().st_mtime_ns,
                               "mlflow_run_id": record["mlflow_run_id"], "trained_by": record["trained_by"]}
    return out


def parent_artifact(work: Path, study: str) -> dict:
    """The latest parent run of ``study``: its reused-trials tag and ``reused_trials.json``."""
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    exp = client.get_experiment_by_name(study)
    parents = [r for r in client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])
               if "mlflow.parentRunId" not in r.data.tags]
    run = parents[0]
    dst = work / "downloads" / run.info.run_id
    dst.mkdir(parents=True, exist_ok=True)
    links = json.loads(Path(client.download_artifacts(run.info.run_id, "reused_trials.json", str(dst))).read_text())
    return {"tags": {k: v for k, v in run.data.tags.items() if k.startswith("unmask.")}, "links": links,
            "n_parents": len(parents)}


def main(work: Path) -> None:
    import pandas as pd

    from unmask.studies.cluster import ray_session
    from unmask.studies.sweep import run_study

    write_synth(work / "synth", n_identities=12, per_identity=2, size=16)
    split_dataset(work / "synth", work / "splits", SplitConfig(val=0.1, test=0.15), seed=0, progress=False)
    first, second = params(B_GRID), params(B_GRID_2)

    def run(name: str, p) -> Path:
        return run_study(name, p, work / "splits", work / "results", progress=False, root=work, data_source="test")

    result: dict = {}
    with ray_session(first.sweep):      # one cluster for the three sweeps
        out_a = run(A, first)
        result["after_a"] = trainings(work)
        out_b = run(B, first)
        result["after_b"] = trainings(work)
        result["a"] = pd.read_parquet(out_a / "trials.parquet").to_dict("list")
        result["b"] = pd.read_parquet(out_b / "trials.parquet").to_dict("list")
        result["b_curves"] = pd.read_parquet(out_b / "curves.parquet").to_dict("list")
        result["b_parent"] = parent_artifact(work, B)
        result["a_files"], result["store"] = files(out_a), store(work)
        run(B, second)
        result["after_b2"] = trainings(work)
        result["b2"] = pd.read_parquet(out_b / "trials.parquet").to_dict("list")
        result["b2_parent"] = parent_artifact(work, B)
        result["a_files_2"], result["store_2"] = files(out_a), store(work)
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
