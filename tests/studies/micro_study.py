"""A micro study run end to end (data, Ray Tune, MLflow), twice: the second run must resume.

Run as ``python micro_study.py WORKDIR`` (the test runs it inside a loopback-only network namespace);
prints one JSON line with what the test checks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # tests/ for helpers

from helpers import write_synth  # noqa: E402

from unmask.config import SplitConfig, parse_params  # noqa: E402
from unmask.data.split import split_dataset  # noqa: E402
from unmask.studies import parse_study_params  # noqa: E402

PARAMS = {
    "train": {"image_size": 16, "steps": 4, "batch_size": 2, "val_every": 2, "log_every": 1,
              "checkpoint_every": 0, "device": "cpu", "threads": 1,
              "generator": {"base_channels": 4, "n_blocks": 1}, "discriminator": {"base_channels": 4}},
    "sweep": {"storage_path": "ray", "resources": {"cpu": 1}, "max_concurrent": 2, "max_failures": 1},
    "tracking": {"uri": "sqlite:///mlflow.db", "artifact_root": "mlartifacts"},
    "studies": {"micro": {"title": "micro", "train": {"framework": "cyclegan"},
                          "grid": {"adv_loss": ["lsgan", "hinge"]}, "seeds": [0]}},
}


def listening() -> list[str]:
    """Local addresses of listening TCP sockets (``ss -ltn``)."""
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
    return [line.split()[3] for line in out.splitlines() if line.strip()]


def main(work: Path) -> None:
    import threading

    from unmask.studies.sweep import run_study

    seen: set[str] = set()
    done = threading.Event()

    def poll() -> None:   # every listening socket while the sweeps run
        while not done.wait(0.5):
            seen.update(listening())

    threading.Thread(target=poll, daemon=True).start()

    write_synth(work / "synth", n_identities=12, per_identity=2, size=16)
    split_dataset(work / "synth", work / "splits", SplitConfig(val=0.1, test=0.15), seed=0, progress=False)
    params = parse_study_params(parse_params(PARAMS))
    t0 = time.perf_counter()
    out = run_study("micro", params, work / "splits", work / "results", progress=False, root=work,
                    data_source="test")
    first = time.perf_counter() - t0
    import pandas as pd

    before = pd.read_parquet(out / "trials.parquet")
    t0 = time.perf_counter()
    run_study("micro", params, work / "splits", work / "results", progress=False, root=work, data_source="test")
    second = time.perf_counter() - t0
    after = pd.read_parquet(out / "trials.parquet")
    done.set()
    print(json.dumps({"listening": sorted(seen), "out": str(out), "first_s": first, "second_s": second,
                      "before": before.to_dict("list"), "after": after.to_dict("list")}, default=str))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
