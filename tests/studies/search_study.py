"""A micro search study (random search or Optuna TPE under ASHA) run end to end, then run again.

Run as ``python search_study.py WORKDIR ALGORITHM`` inside a loopback-only network namespace; prints one
JSON line with the trials table (both runs) and every MLflow run's status and tags. With ``optuna`` the
sweep stores its experiment through a ``file://`` URI (the code path of ``s3://`` storage).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # tests/ for helpers

from helpers import write_synth  # noqa: E402
from studies.micro_study import PARAMS  # noqa: E402  (tests/ is on sys.path)

from unmask.config import SplitConfig, parse_params  # noqa: E402
from unmask.data.split import split_dataset  # noqa: E402
from unmask.studies import parse_study_params  # noqa: E402

N_SAMPLES = 6
STEPS = 8
# what the search tunes and its champion is chosen on: the default run minimises validation L1, so the
# champion rule must follow the search (not the trainer's val_psnr); the slow run maximises PSNR
SELECT = {"random": {"metric": "val_l1", "mode": "min"}, "optuna": {"metric": "val_psnr", "mode": "max"}}


def params(algorithm: str, storage: str = "ray") -> dict:
    return {**PARAMS,
            "train": {**PARAMS["train"], "steps": STEPS, "val_every": 2},
            # one trial at a time: ASHA then judges each trial against all earlier ones, so with
            # reduction factor 2 some trials must fall below the rung's median and be stopped
            "sweep": {**PARAMS["sweep"], "max_concurrent": 1, "storage_path": storage},
            "studies": {"tune": {
                "title": "micro search", "train": {"framework": "cyclegan"}, "seeds": [3],
                "search": {"space": {"lr_g": {"loguniform": [1e-5, 1e-1]},
                                     "adv_loss": {"choice": ["lsgan", "hinge"]}},
                           "num_samples": N_SAMPLES, "algorithm": algorithm, "scheduler": "asha",
                           **SELECT[algorithm], "grace_period": 2, "reduction_factor": 2}}}}


def main(work: Path, algorithm: str) -> None:
    import mlflow
    import pandas as pd

    from unmask.studies.sweep import run_study

    write_synth(work / "synth", n_identities=12, per_identity=2, size=16)
    split_dataset(work / "synth", work / "splits", SplitConfig(val=0.1, test=0.15), seed=0, progress=False)
    # the Optuna run stores through a pyarrow filesystem URI, as a sweep on shared storage (s3://) would
    storage = f"file://{work.resolve()}/ray-uri" if algorithm == "optuna" else "ray"
    p = parse_study_params(parse_params(params(algorithm, storage)))
    out = run_study("tune", p, work / "splits", work / "results", progress=False, root=work, data_source="test")
    before = pd.read_parquet(out / "trials.parquet")
    run_study("tune", p, work / "splits", work / "results", progress=False, root=work, data_source="test")
    after = pd.read_parquet(out / "trials.parquet")
    client = mlflow.MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    exp = client.get_experiment_by_name("tune")
    runs = [{"run_id": r.info.run_id, "status": r.info.status, "tags": r.data.tags, "params": r.data.params}
            for r in client.search_runs([exp.experiment_id])]
    champion = client.get_model_version_by_alias("unmask-tune", "champion").run_id
    print(json.dumps({"out": str(out), "before": before.to_dict("list"), "after": after.to_dict("list"),
                      "runs": runs, "champion": champion,
                      "metrics": json.loads((out / "sweep.json").read_text())}, default=str))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
