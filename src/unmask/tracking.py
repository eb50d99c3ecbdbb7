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
from unmask.studies.config import TrackingConfig

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
