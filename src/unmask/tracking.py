"""MLflow set-up: tracking URI and artifact root from params, telemetry off, one experiment per study.

Relative sqlite paths and a relative artifact root are resolved against the project root, so trial
processes that run in other working directories (Ray's trial folders, other nodes sharing the path)
write to the same store.

This module sits below the studies (``unmask ui`` imports it, and it must not load torch): it takes
the ``tracking`` section and the parsed study params by what they hold (:class:`TrackingSettings`,
:class:`StudiesSettings`; :class:`unmask.studies.config.TrackingConfig` and ``StudiesParams`` fit them),
never by importing their classes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Protocol

from unmask.errors import ConfigError, UnmaskError

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

PARENT_TAG = "mlflow.parentRunId"
LOCK_WAIT_S = 5.0   # how long check_store waits for another process's lock on a sqlite store
SQLITE = "sqlite:///"


class TrackingSettings(Protocol):
    """What this module reads of params.yaml's ``tracking`` section (``TrackingConfig``)."""

    @property
    def uri(self) -> str: ...

    @property
    def artifact_root(self) -> str: ...


class StudiesSettings(Protocol):
    """What :func:`log_reports_to_parents` reads of the parsed study params (``StudiesParams``)."""

    @property
    def tracking(self) -> TrackingSettings: ...

    @property
    def studies(self) -> Mapping[str, Any]: ...


def resolve_uri(cfg: TrackingSettings, root: Path) -> str:
    """The tracking URI with a relative sqlite path made absolute (``sqlite:////abs/mlflow.db``)."""
    uri = cfg.uri
    if uri.startswith(SQLITE) and not uri.startswith(SQLITE + "/"):
        return SQLITE + str((root / uri[len(SQLITE):]).resolve())
    if ":" not in uri and uri not in ("databricks", "databricks-uc", "uc"):
        raise ConfigError(f"tracking.uri: need a URI such as sqlite:///mlflow.db or http://host:5000, "
                          f"got {uri!r} (MLflow 3 has no plain-folder store)")
    return uri


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` tracking URI (None for other stores and in-memory ones)."""
    if not uri.startswith(SQLITE):
        return None
    path = uri[len(SQLITE):].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def check_store(uri: str) -> None:
    """Refuse a local sqlite tracking store whose file is not an SQLite database (random bytes, another
    file type, a damaged header), or that another process holds locked for more than
    :data:`LOCK_WAIT_S`, with one line naming the file, before MLflow fails on it with a traceback. A
    store that does not exist yet is fine: MLflow creates it."""
    import sqlite3

    path = sqlite_path(uri)
    if path is None or not path.exists():
        return
    if not path.is_file():
        raise UnmaskError(f"{path}: tracking.uri points at a {'folder' if path.is_dir() else 'special file'}, "
                          "not an SQLite database")
    try:
        con = sqlite3.connect(path.resolve().as_uri(), uri=True, timeout=LOCK_WAIT_S, isolation_level=None)
        try:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()   # reads and checks the header
            con.execute("BEGIN IMMEDIATE")    # the write lock every MLflow write takes; nothing is written
            con.execute("ROLLBACK")
        finally:
            con.close()
    except sqlite3.OperationalError as e:
        if "locked" in str(e):   # MLflow would wait, then fail with a traceback
            raise UnmaskError(f"{path}: database is locked by another process (waited {LOCK_WAIT_S:g} s); "
                              "end the program holding it, then run again") from None
        return   # cannot be opened for writing (read-only): MLflow says so when it writes
    except sqlite3.DatabaseError as e:   # SQLITE_NOTADB, SQLITE_CORRUPT
        raise UnmaskError(f"{path}: not an MLflow tracking database ({e}); move it away to start a new "
                          "store, or point tracking.uri elsewhere") from None


def resolve_artifact_root(cfg: TrackingSettings, root: Path) -> str:
    """The artifact root as a URI (a local folder becomes ``file:///abs/path``)."""
    return artifact_uri(root / cfg.artifact_root if not is_uri(cfg.artifact_root) else cfg.artifact_root)


def is_uri(location: str | os.PathLike) -> bool:
    """Whether ``location`` is a URI (``file:///x``, ``s3://b/x``, ``mlflow-artifacts:/x``) and not a path."""
    from urllib.parse import urlsplit

    return isinstance(location, str) and len(urlsplit(location).scheme) > 1   # not a drive letter


def artifact_uri(location: str | os.PathLike) -> str:
    """An artifact location as a URI, built once: a URI is kept as it is, a path becomes ``file:///abs``."""
    return location if is_uri(location) else Path(location).resolve().as_uri()


def configure(cfg: TrackingSettings, root: Path) -> str:
    """Point MLflow at the store of ``cfg`` (checked: :func:`check_store`); returns the absolute tracking URI."""
    import mlflow

    uri = resolve_uri(cfg, root)
    check_store(uri)
    mlflow.set_tracking_uri(uri)
    return uri


def experiment_id(name: str, cfg: TrackingSettings, root: Path) -> str:
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


def log_reports_to_parents(params: StudiesSettings, root: Path, results_dir: Path, reports_dir: Path) -> None:
    """Attach each study's comparison table (markdown and ``mlflow.log_table``) and figures to the
    study's parent run, found through the parent tag of its trials' child runs."""
    import mlflow
    import pandas as pd

    client = mlflow.MlflowClient(configure(params.tracking, root))
    for name in params.studies:
        trials = results_dir / name / "trials.parquet"
        if not trials.is_file():
            continue
        try:
            run_ids = [r for r in pd.read_parquet(trials, columns=["mlflow_run_id"])["mlflow_run_id"] if r]
        except (OSError, ValueError, KeyError) as err:   # pyarrow's ArrowInvalid is a ValueError
            raise UnmaskError(f"{trials}: not a trials table ({str(err).strip().splitlines()[0]})") from None
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
