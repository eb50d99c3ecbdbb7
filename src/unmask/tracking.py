"""MLflow set-up: tracking URI and artifact root from params, telemetry off, one experiment per study.

Relative sqlite paths and a relative artifact root are resolved against the project root, so trial
processes that run in other working directories (Ray's trial folders, other nodes sharing the path)
write to the same store.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from unmask.errors import ConfigError
from unmask.studies.config import StudiesParams, TrackingConfig

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

PARENT_TAG = "mlflow.parentRunId"
SQLITE = "sqlite:///"


def resolve_uri(cfg: TrackingConfig, root: Path) -> str:
    """The tracking URI with a relative sqlite path made absolute (``sqlite:////abs/mlflow.db``)."""
    uri = cfg.uri
    if uri.startswith(SQLITE) and not uri.startswith(SQLITE + "/"):
        return SQLITE + str((root / uri[len(SQLITE):]).resolve())
    if "://" not in uri:
        raise ConfigError(f"tracking.uri: need a URI such as sqlite:///mlflow.db or http://host:5000, "
                          f"got {uri!r} (MLflow 3 has no plain-folder store)")
    return uri


def resolve_artifact_root(cfg: TrackingConfig, root: Path) -> str:
    """The artifact root as a URI (a local folder becomes ``file:///abs/path``)."""
    if "://" in cfg.artifact_root:
        return cfg.artifact_root
    return (root / cfg.artifact_root).resolve().as_uri()


def configure(cfg: TrackingConfig, root: Path) -> str:
    """Point MLflow at the store of ``cfg``; returns the absolute tracking URI."""
    import mlflow

    uri = resolve_uri(cfg, root)
    mlflow.set_tracking_uri(uri)
    return uri


def experiment_id(name: str, cfg: TrackingConfig, root: Path) -> str:
    """The id of experiment ``name``, created with the configured artifact root when missing."""
    import mlflow

    client = mlflow.MlflowClient(configure(cfg, root))
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = resolve_artifact_root(cfg, root).rstrip("/") + f"/{name}"
    return client.create_experiment(name, artifact_location=location)


def flat_params(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> ``{"generator.approach": "mask", ...}`` (MLflow params are flat)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat_params(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def log_reports_to_parents(params: StudiesParams, root: Path, results_dir: Path, reports_dir: Path) -> None:
    """Attach each study's comparison table (markdown and ``mlflow.log_table``) and figures to the
    study's parent run, found through the parent tag of its trials' child runs."""
    import mlflow
    import pandas as pd

    client = mlflow.MlflowClient(configure(params.tracking, root))
    for name in params.studies:
        trials = results_dir / name / "trials.parquet"
        if not trials.is_file():
            continue
        run_ids = [r for r in pd.read_parquet(trials, columns=["mlflow_run_id"])["mlflow_run_id"] if r]
        if not run_ids:
            continue
        parent = client.get_run(run_ids[0]).data.tags.get(PARENT_TAG)
        if not parent:
            continue
        for f in (f"{name}.md", f"{name}.png", f"{name}_curves.png", f"{name}_search.png"):
            if (reports_dir / f).is_file():
                client.log_artifact(parent, str(reports_dir / f), artifact_path="report")
        evaluated = results_dir / name / "eval.parquet"
        if evaluated.is_file():
            table = pd.read_parquet(evaluated).drop(columns=["cell"], errors="ignore")
            client.log_table(parent, data=table, artifact_file="report/eval_table.json")
