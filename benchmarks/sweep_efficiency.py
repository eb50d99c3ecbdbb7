"""How far trial parallelism is from ideal, per study of the last `dvc repro` (or `unmask sweep`).

    python benchmarks/sweep_efficiency.py [--root .]

For each study in params.yaml with ``results/<study>/trials.parquet``: the sum of its trials' training
times and of their MLflow child runs' durations (training plus test evaluation and model logging),
divided by (the sweep's wall time × ``sweep.max_concurrent`` workers). The sweep's wall time is its
MLflow parent run's duration (Ray start-up to the champion's registration), so a sweep that was
interrupted and resumed counts the pause too. 1.0 would be perfect packing of trials on the workers.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd

from unmask.config import load_params
from unmask.pipeline import RESULTS_DIR
from unmask.studies import parse_study_params
from unmask.tracking import PARENT_TAG, configure


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("."), help="project root (params.yaml, results/, mlflow.db)")
    args = ap.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    root = args.root.resolve()
    sp = parse_study_params(load_params(root / "params.yaml"))
    configure(sp.tracking, root)
    client = mlflow.MlflowClient()
    workers = sp.sweep.max_concurrent
    rows = []
    for name in sp.studies:
        path = root / RESULTS_DIR / name / "trials.parquet"
        if not path.is_file():
            continue
        trials = pd.read_parquet(path)
        runs = [client.get_run(r) for r in trials["mlflow_run_id"] if r]
        if not runs:
            continue
        parent = client.get_run(runs[0].data.tags[PARENT_TAG])
        wall = (parent.info.end_time - parent.info.start_time) / 1000
        child = sum((r.info.end_time - r.info.start_time) / 1000 for r in runs if r.info.end_time)
        train = float(trials["train_time_s"].sum())
        rows.append({"study": name, "trials": len(trials), "train_s": train, "child_runs_s": child,
                     "sweep_wall_s": wall, "eff_train": train / (wall * workers),
                     "eff_child_runs": child / (wall * workers)})
    if not rows:
        raise SystemExit(f"{root / RESULTS_DIR}: no study results (run dvc repro first)")
    df = pd.DataFrame(rows)
    total = {"study": "all", "trials": df["trials"].sum(), "train_s": df["train_s"].sum(),
             "child_runs_s": df["child_runs_s"].sum(), "sweep_wall_s": df["sweep_wall_s"].sum()}
    total["eff_train"] = total["train_s"] / (total["sweep_wall_s"] * workers)
    total["eff_child_runs"] = total["child_runs_s"] / (total["sweep_wall_s"] * workers)
    df = pd.concat([df, pd.DataFrame([total])], ignore_index=True)
    print(f"workers (sweep.max_concurrent): {workers}")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
