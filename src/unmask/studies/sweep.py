"""Run a study as one Ray Tune sweep tracked in MLflow, and write its results tables.

``run_study`` expands the study into trials (:mod:`unmask.studies.grid`), looks each grid trial up in
the trial store, opens the study's MLflow parent run, starts or attaches to Ray and runs one
``tune.Tuner`` over the trials the store does not hold, and writes
``<results_dir>/<study>/trials.parquet``, ``curves.parquet`` and ``sweep.json`` (validation summary; the test summary is the evaluate stage's metrics.json).
It also copies each trial's final checkpoint to ``<results_dir>/<study>/checkpoints/<trial_key or
trial_id>.pt`` (a DVC output of the sweep stage, so that ``dvc pull`` brings what evaluate reads;
replaced whole, only when the sweep succeeded) and points the table's ``checkpoint`` column at those
copies, relative to the project root (``root``), e.g. ``results/<study>/checkpoints/<key>.pt``.

Trial store (:mod:`unmask.studies.store`; ``<results_dir>/trial_store`` unless ``trial_store`` is
given; a cache shared by the studies, not a DVC output): a grid trial's key is the hash of its resolved
TrainConfig (seed included), image size, occlusion kinds and the split files' contents, so the same
trial in several studies (the reference cell of most tables) is trained once. After the sweep each
newly finished trial with finite test metrics is stored (its row, a copy of its ``last.pt``, its
curves), then the study's tables are built from the store for all its trials, in the study's order,
with this study's ``study``/``cell``/``cell_label``, ``checkpoint`` at the study's copy of the
store's ``last.pt`` (see above), and
``trial_key``, ``trained_by`` (the study that trained it) and ``reused`` (its MLflow run is a child of
another parent run). Ray is not started when the store holds every trial. The parent run links the
reused runs: tag ``unmask.reused_trials`` (count), a tag ``unmask.reused.<run id>`` per run, and
``reused_trials.json`` (cell, seed, study, run and experiment ids, UI path). Trials that failed are
tabulated from the sweep and not stored: the next run trains them again. Search studies sample their
trials and do not use the store.

Resume: the Tune experiment lives at ``<sweep.storage_path>/<study>`` next to ``<study>.unmask-sweep.json``
(fingerprints of the trials to train and of the data files' sizes and mtimes, the keys of all the
study's trials, and the parent run id). Running the study again with the same trials to train
restores the experiment (``Tuner.restore(..., resume_errored=True)``): finished trials are not
retrained, interrupted ones continue from their last checkpoint, and the same parent run is reopened
(as it is when the study's trials are unchanged, e.g. all stored by now). A changed set of trials to
train (grid, search, seeds, budget, or trials another study stored meanwhile) or changed data starts
the experiment afresh; a changed study also gets a new parent run.

Search studies (``studies.<name>.search``) run ``num_samples`` trials drawn by a search algorithm
(Tune's seeded random search or Optuna's TPE) under a scheduler: with ASHA a trial whose validation
metric is poor at a rung is stopped early. Such a trial is tabulated with status ``STOPPED_EARLY``
and its MLflow run ends FINISHED with the tag ``unmask.stopped_early``; Tune marks its last result
``done``, which tells it from a trial an interruption stopped.

Interruption: a sweep stopped by SIGINT (Tune saves its state and returns early) raises instead of
writing tables with unfinished trials; the parent run is ended FAILED, and child runs of trials that
were stopped are closed FAILED too (a resumed trial reopens its run and ends it FINISHED). A driver
that was killed outright leaves runs RUNNING: the next run of the study closes them. Trials are put
in the store only once the whole sweep has finished, so a resumed sweep has the same trials to train.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

import unmask
from unmask.errors import UnmaskError
from unmask.catalog.metrics import HIGHER_IS_BETTER, METRICS
from unmask.catalog.status import TrialStatus
from unmask.io.atomic import atomic_dir, atomic_path, write_text
from unmask.io.named import naming
from unmask.io.remote import local_copy
from unmask.studies.config import (ResourcesConfig, SearchConfig, StudiesParams,
                                   SweepConfig, storage_conflict)
from unmask.studies.champion import RECORD_FILE, ChampionRule, champion_rule, find_champion
from unmask.studies.grid import Trial, expand_study, fingerprint, resolve_trial
from unmask.studies.resume import plan_resume
from unmask.studies.store import HASH_MEMO, TrialStore, data_version, required_test, select_by, storable, trial_key
from unmask.studies.trial import train_trial
from unmask.tracking import PARENT_TAG, configure, experiment_id, flat_params
from unmask.training import TrainConfig, trainer_class
from unmask.training.base import CHECKPOINT_NAME

log = logging.getLogger("unmask")

FINISHED, FAILED, STOPPED_EARLY, NOT_RUN = TrialStatus   # trials.parquet status (unmask.catalog.status)
CHAMPION_ALIAS = "champion"
SWEEP_FILE = RECORD_FILE          # <results_dir>/<study>/sweep.json: the sweep's own summary
CHECKPOINTS_DIR = "checkpoints"   # <results_dir>/<study>/checkpoints/<trial_key or trial_id>.pt (a DVC output)
STATE_FILE = "unmask-sweep.json"   # <storage>/<study>.unmask-sweep.json
LOCK_FILE = ".sweep.lock"          # <results_dir>/<study>/.sweep.lock: held by the study's running sweep
RAY_KEYS = {"timestamp", "checkpoint_dir_name", "done", "training_iteration", "trial_id", "date",
            "time_this_iter_s", "time_total_s", "pid", "hostname", "node_ip", "node_id",
            "time_since_restore", "iterations_since_restore", "step", "train_time_s"}


# --------------------------------------------------------------------------- Ray
def _worker_env() -> dict[str, str]:
    return {"MLFLOW_DISABLE_TELEMETRY": "true", "RAY_USAGE_STATS_ENABLED": "0"}


@contextlib.contextmanager
def ray_session(cfg: SweepConfig) -> Iterator[None]:
    """Attach to ``sweep.address`` / ``RAY_ADDRESS`` (shipping ``src/unmask``), or start a local
    cluster bound to 127.0.0.1 without dashboard; a cluster started here is shut down after."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # checkpoints at every validation of short CPU trials are expected, not a bottleneck to warn about
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Tune's legacy table reporter: the only one that takes our columns (cell, seed, val PSNR)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # it notes, per trial, that TensorBoard cannot take the betas tuple: noise beside the table
    logging.getLogger("ray.tune.logger.tensorboardx").setLevel(logging.WARNING)
    if ray.is_initialized():
        yield
        return
    key = "sweep.address" if cfg.address else "RAY_ADDRESS"
    address = cfg.address or os.environ.get("RAY_ADDRESS")
    package = str(Path(unmask.__file__).parent)
    if address:
        address = reachable_address(address, key, cfg.connect_timeout_s)
        log.info("joining the Ray cluster at %s (%s)", address, key)
        ray.init(address=address, runtime_env={"py_modules": [package], "env_vars": _worker_env()})
    else:
        src = str(Path(package).parent)
        env = {**_worker_env(), "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
        # address="local": always a new cluster, never one a `ray start` left on this machine
        ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1",
                 runtime_env={"env_vars": env})
    try:
        yield
    finally:
        ray.shutdown()


def reachable_address(address: str, key: str, timeout_s: float) -> str:
    """The cluster address to hand ``ray.init``, after checking within ``timeout_s`` that something answers
    there (``ray.init`` itself retries an unreachable address for minutes): UnmaskError naming ``key``
    otherwise. ``auto`` is the cluster ``ray start`` started on this machine, never other Ray processes
    that happen to run here (another program's own cluster)."""
    from ray._private.services import find_bootstrap_address

    if address == "auto":
        found = find_bootstrap_address(None)
        if found is None:
            raise UnmaskError(f"{key}: auto: no cluster started with `ray start` on this machine (Ray processes "
                              "another program started are not joined); start one, or give its address")
        address = found
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise UnmaskError(f"{key}: {address!r} is not host:port (or ray://host:port, or auto)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as err:
        why = f"no answer within {timeout_s:g} s" if isinstance(err, TimeoutError) else (err.strerror or str(err))
        raise UnmaskError(f"{key}: cannot reach a Ray cluster at {address} ({why})") from None
    return address


def check_resources(res: ResourcesConfig, nodes: list[dict[str, Any]], source: str = "params.yaml") -> None:
    """UnmaskError naming the ``sweep.resources`` key no alive node of the cluster (``ray.nodes()``) can
    meet: Tune would wait for ever for a node with the GPU (or the CPUs) one trial asks for."""
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]
    for key, name, need in (("gpu", "GPU", res.gpu), ("cpu", "CPU", res.cpu)):
        most = max((r.get(name, 0) for r in alive), default=0)
        if need > most:
            raise UnmaskError(f"{source}: sweep.resources.{key}: a trial asks for {need:g} {name}, but no node of "
                              f"the Ray cluster has that many (the most on one node: {most:g}); lower it")
    if not any(r.get("GPU", 0) >= res.gpu and r.get("CPU", 0) >= res.cpu for r in alive):
        raise UnmaskError(f"{source}: sweep.resources: no node of the Ray cluster has {res.cpu:g} CPU and "
                          f"{res.gpu:g} GPU together")


@contextlib.contextmanager
def study_lock(path: Path, name: str) -> Iterator[None]:
    """Hold ``path`` (flock, released when the process ends, however it ends) while study ``name`` is
    swept; UnmaskError saying who holds it when another sweep of the study runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "another process"
            raise UnmaskError(f"{path}: study {name} is being swept already, by {holder}; wait for it to end "
                              "(it keeps what it trains)") from None
        os.ftruncate(fd, 0)
        # in the sweep's PID namespace it is PID 1: name the `unmask sweep` outside (netns.OUTER_PID; not
        # imported: the evaluate stage, which imports this module, does not depend on netns)
        pid = os.environ.get("UNMASK_SWEEP_PID") or os.getpid()
        os.pwrite(fd, f"pid {pid} on {socket.gethostname()} since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- storage
def _storage(cfg: SweepConfig, root: Path) -> str:
    """The storage path Tune wants: a URI as given, a local path made absolute."""
    if "://" in cfg.storage_path:
        return cfg.storage_path.rstrip("/")
    return str((root / cfg.storage_path).resolve())


def _read_state(fs: pafs.FileSystem, path: str) -> dict[str, Any] | None:
    try:
        with fs.open_input_stream(path) as f:
            return json.loads(f.read().decode())
    except (FileNotFoundError, OSError, json.JSONDecodeError):
        return None


def _write_state(fs: pafs.FileSystem, path: str, state: dict[str, Any]) -> None:
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as f:
        f.write(json.dumps(state).encode())


def _data_fingerprint(data_root: Path) -> list[tuple[str, int, int]]:
    """(file, size, mtime) of every split file: new data starts the sweep afresh instead of resuming."""
    return [(str(p.relative_to(data_root)), p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(data_root.rglob("*")) if p.is_file()]


# --------------------------------------------------------------------------- results
def _clean(v: Any) -> Any:
    return None if isinstance(v, float) and math.isnan(v) else v


def _last_line(error: BaseException | None) -> str:
    lines = [] if error is None else [ln for ln in str(error).splitlines() if ln.strip()]
    return lines[-1].strip() if lines else ""


def _checkpoint_location(checkpoint) -> str:
    """The trial's last.pt: a local path, or a URI (``s3://...``) when the sweep stores on a remote
    filesystem, so the evaluate stage can fetch it; "" when the trial left no checkpoint."""
    if checkpoint is None:
        return ""
    path = f"{checkpoint.path}/{CHECKPOINT_NAME}"
    fs = checkpoint.filesystem
    if fs is None or isinstance(fs, pafs.LocalFileSystem) or "::" in fs.type_name:
        return path
    return f"{fs.type_name}://{path}"


def trial_rows(results, trials: list[Trial], data_source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(trials table, learning curves) from a Tune ResultGrid, in the study's trial order."""
    order = {(t["cell_label"], t["seed"]): i for i, t in enumerate(trials)}
    rows, curves = [], []
    for r in results:
        trial: Trial = resolve_trial(r.config)
        m = r.metrics or {}
        trial_id = m.get("trial_id") or Path(r.path).name
        steps_done = int(m.get("step", 0))
        status = FAILED if r.error is not None else FINISHED if steps_done >= trial["train"]["steps"] else STOPPED_EARLY
        row: dict[str, Any] = {
            "study": trial["study"], "trial_id": trial_id, "cell": json.dumps(trial["cell"]),
            "cell_label": trial["cell_label"], "seed": trial["seed"], "status": status,
            "steps_done": steps_done, "framework": trial["train"]["framework"]}
        for split in ("val", "test"):
            for k in METRICS:
                row[f"{split}_{k}"] = float(m.get(f"{split}_{k}", math.nan))
        row.update({k: float(v) for k, v in m.items()
                    if k.startswith(("val_", "test_")) and isinstance(v, (int, float)) and k not in row})
        row.update({
            "lpips_note": m.get("lpips_note", ""), "cpu": m.get("cpu", ""), "mlflow_run_id": m.get("mlflow_run_id", ""),
            "model_uri": m.get("model_uri", ""),
            "checkpoint": _checkpoint_location(r.checkpoint),
            "train_time_s": float(m.get("train_time_s", math.nan)), "steps": int(trial["train"]["steps"]),
            "image_size": int(trial["image_size"]), "data_source": data_source,
            "node_ip": m.get("node_ip", ""), "node_id": m.get("node_id", ""), "error": _last_line(r.error),
            "_order": order.get((trial["cell_label"], trial["seed"]), len(order))})
        rows.append(row)
        df = r.metrics_dataframe
        if df is not None and "step" in df:
            for col in df.columns:
                if col in RAY_KEYS or col.startswith("config/") or not pd.api.types.is_numeric_dtype(df[col]):
                    continue
                for step, value in zip(df["step"], df[col]):
                    if not pd.isna(value):
                        curves.append({"study": trial["study"], "trial_id": trial_id, "step": int(step),
                                       "metric": col, "value": float(value)})
    # grid trials in the study's order; sampled trials in the order Tune created them
    table = pd.DataFrame(rows).sort_values(["_order", "trial_id"]).drop(columns="_order").reset_index(drop=True)
    curve_cols = ["study", "trial_id", "step", "metric", "value"]
    return table, pd.DataFrame(curves, columns=curve_cols)


def unfinished_trials(results) -> int:
    """How many trials neither failed, nor reported their last step, nor were stopped by the scheduler.
    After SIGINT Tune returns early and marks the trials it stopped TERMINATED, so the reported step
    tells; a scheduler's stop marks the last result ``done``, an interruption does not."""
    return sum(r.config is None   # a trial that never started (interrupted while waiting for resources)
               or (r.error is None and not (r.metrics or {}).get("done")
                   and (r.metrics or {}).get("step", 0) < resolve_trial(r.config)["train"]["steps"])
               for r in results)


def cell_means(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of every val/test metric, one row per cell (finished trials only)."""
    done = table[table["status"] == FINISHED]
    cols = [c for c in table.columns if c.startswith(("val_", "test_"))]
    g = done.groupby("cell_label", sort=False)[cols]
    out = g.mean().add_suffix("_mean").join(g.std().add_suffix("_std")).join(g.size().rename("n_seeds"))
    return out.reset_index()


def failed_trials(table: pd.DataFrame) -> list[str]:
    """One line per trial that failed, or finished with a non-finite test metric (a diverged run):
    ``"<cell> seed=<s>: <why>"``. Trials a scheduler stopped early are not failures."""
    out = []
    for r in table.to_dict("records"):
        where = f"{r.get('cell_label', '?')} seed={r.get('seed', '?')}"
        if r.get("status") == FAILED:
            out.append(f"{where}: {r.get('error') or 'failed'}")
        elif r.get("status") == FINISHED:
            bad = [c for c in required_test(r) if not isinstance(r.get(c), (int, float)) or not math.isfinite(r[c])]
            if bad:
                out.append(f"{where}: non-finite {bad[0]} ({r.get(bad[0])})")
    return out


def study_metrics(name: str, table: pd.DataFrame) -> dict[str, Any]:
    """sweep.json: the best cell per validation metric (mean over seeds) and every cell's means."""
    means = cell_means(table)
    best: dict[str, Any] = {}
    for col in [c for c in table.columns if c.startswith(("val_", "test_"))]:
        series = means[f"{col}_mean"].dropna()
        if series.empty:
            continue
        higher = col.split("_", 1)[1] in HIGHER_IS_BETTER
        i = series.idxmax() if higher else series.idxmin()
        best[col] = {"cell": means.at[i, "cell_label"], "mean": _clean(float(means.at[i, f"{col}_mean"])),
                     "std": _clean(float(means.at[i, f"{col}_std"]))}
    cells = {r["cell_label"]: {c[:-5]: _clean(float(r[c])) for c in means.columns if c.endswith("_mean")}
             for _, r in means.iterrows()}
    return {"study": name, "trials": int(len(table)), "failed": int((table["status"] == FAILED).sum()),
            "not_run": int((table["status"] == NOT_RUN).sum()),
            "stopped_early": int((table["status"] == STOPPED_EARLY).sum()), "best": best, "cells": cells}


def _project_path(path: Path, root: Path) -> str:
    """``path`` relative to the project root ``root`` (POSIX), valid on any machine the project is
    cloned to; absolute when it lies outside the project. Symbolic links are resolved only when
    needed (a ``results`` folder linked to another disk is still inside the project)."""
    for p, r in ((Path(os.path.abspath(path)), Path(os.path.abspath(root))), (path.resolve(), root.resolve())):
        with contextlib.suppress(ValueError):
            return p.relative_to(r).as_posix()
    return os.path.abspath(path)


def copy_checkpoints(table: pd.DataFrame, out_dir: str | os.PathLike, root: str | os.PathLike) -> pd.DataFrame:
    """Copy each trial's final checkpoint (a store's ``last.pt``, a Tune checkpoint, or a URI) to
    ``<out_dir>/checkpoints/<trial_key or trial_id>.pt`` and return the table with ``checkpoint``
    pointing at the copies, relative to the project root ``root``.

    The folder is replaced whole (:func:`unmask.io.atomic.atomic_dir`): it holds exactly this table's
    checkpoints, or -- when a copy fails -- is left as it was. Rows without a checkpoint keep ""; a
    trial key repeated in the grid is one file."""
    dest = Path(out_dir) / CHECKPOINTS_DIR
    root = Path(root)
    names: list[str] = []
    with atomic_dir(dest) as tmp:
        for r in table.to_dict("records"):
            location = r.get("checkpoint")
            if not isinstance(location, str) or not location:
                names.append("")
                continue
            key = r.get("trial_key")
            name = f"{key if isinstance(key, str) and key else r['trial_id']}.pt"
            if not (tmp / name).exists():
                with local_copy(location) as local:
                    shutil.copyfile(local, tmp / name)
            names.append(name)
    out = table.copy()
    if len(out):
        out["checkpoint"] = [_project_path(dest / n, root) if n else "" for n in names]
    return out


def _write_parquet(path: Path, df: pd.DataFrame) -> None:
    with atomic_path(path) as tmp, naming(path):
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp)



def _register_champion(name: str, table: pd.DataFrame, rule: ChampionRule) -> str | None:
    """Register the study's champion under ``rule`` (:mod:`unmask.studies.champion`) as
    ``unmask-<study>@champion``; None when there is none or it logged no MLflow model."""
    import mlflow
    from mlflow.exceptions import MlflowException

    best = find_champion(table, rule)
    if best is None or not best.get("model_uri"):
        return None
    model_name = f"unmask-{name}"
    client = mlflow.MlflowClient()
    with contextlib.suppress(MlflowException):    # a resumed sweep with the same champion: no new version
        if client.get_model_version_by_alias(model_name, CHAMPION_ALIAS).run_id == best["mlflow_run_id"]:
            return f"models:/{model_name}@{CHAMPION_ALIAS}"
    version = mlflow.register_model(best["model_uri"], model_name)
    client.set_registered_model_alias(model_name, CHAMPION_ALIAS, version.version)
    return f"models:/{model_name}@{CHAMPION_ALIAS}"


def close_stale_runs(experiment: str, parent_run_id: str) -> None:
    """End FAILED the parent run ``parent_run_id`` and its child runs when still RUNNING (left so by
    a killed driver) or KILLED (trials Tune stopped when the sweep was interrupted); called when no
    trial of the sweep can be running. Early-stopped trials' runs are settled after the sweep."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    children = client.search_runs([experiment], f"tags.`{PARENT_TAG}` = '{parent_run_id}'")
    for run in (r for r in children if r.info.status in ("RUNNING", "KILLED")):   # KILLED: stopped by Tune
        client.set_terminated(run.info.run_id, "FAILED")
    with contextlib.suppress(MlflowException):
        if client.get_run(parent_run_id).info.status == "RUNNING":
            client.set_terminated(parent_run_id, "FAILED")


def mark_stopped_early(table: pd.DataFrame, scheduler: str) -> None:
    """End the MLflow runs of the trials the scheduler stopped FINISHED, tagged with where it stopped them."""
    import mlflow

    client = mlflow.MlflowClient()
    for row in table[(table["status"] == STOPPED_EARLY) & (table["mlflow_run_id"] != "")].itertuples():
        client.set_tag(row.mlflow_run_id, "unmask.stopped_early", f"{scheduler} at step {row.steps_done}")
        ended = client.get_run(row.mlflow_run_id).info.end_time    # when the trial stopped, not now
        client.set_terminated(row.mlflow_run_id, "FINISHED", end_time=ended)


def progress_reporter(search: SearchConfig | None):
    """Tune's table while trials run: each trial's cell and seed (or its sampled values), its step and
    validation PSNR / SSIM, at most every 30 s."""
    from ray.tune import CLIReporter

    params = ({"trial/cell_label": "cell", "trial/seed": "seed"} if search is None
              else {f"sample/{key}": key for key in search.space})
    metrics = {"step": "step", "val_psnr": "val PSNR", "val_ssim": "val SSIM", "train_time_s": "train s"}
    return CLIReporter(parameter_columns=params, metric_columns=metrics, max_column_length=48,
                       max_report_frequency=30)


def search_setup(search: SearchConfig, base: Trial, max_concurrent: int) -> dict[str, Any]:
    """The Tuner pieces of a search study: the sampled ``param_space`` entry and the TuneConfig
    arguments (samples, metric, mode, search algorithm, scheduler, concurrency)."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    steps = base["train"]["steps"]
    if search.algorithm == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        algorithm, limit = OptunaSearch(seed=base["seed"]), {"max_concurrent_trials": max_concurrent}
    else:   # limits its own concurrency (Tune ignores max_concurrent_trials for it)
        algorithm, limit = BasicVariantGenerator(random_state=base["seed"], max_concurrent=max_concurrent), {}
    if search.scheduler == "asha":
        grace = search.grace_period or base["train"]["val_every"] or steps
        scheduler = ASHAScheduler(time_attr="step", max_t=max(steps, 1), grace_period=min(grace, max(steps, 1)),
                                  reduction_factor=search.reduction_factor)
    else:
        scheduler = FIFOScheduler()
    return {"sample": {key: dist.to_tune() for key, dist in search.space.items()},
            "tune_config": {"num_samples": search.num_samples, "metric": search.metric,
                            "mode": search.resolved_mode, "search_alg": algorithm, "scheduler": scheduler,
                            **limit}}


# --------------------------------------------------------------------------- the trial store
RECORD_ONLY = {"parent_run_id", "experiment_id", "trial_key", "trained_by"}   # in record.json, not the table
CURVE_COLS = ["study", "trial_id", "step", "metric", "value"]


def not_run_reasons(trials: list[Trial]) -> dict[tuple[str, int], str]:
    """``(cell label, seed) -> "not run: <why>"`` for the trials whose trainer cannot run them here
    (``Trainer.requirements``: e.g. VGG-19 weights missing). They are never started."""
    out = {}
    for t in trials:
        cfg = TrainConfig.from_dict(t["train"])
        reasons = trainer_class(cfg).requirements(cfg)
        if reasons:
            out[(t["cell_label"], t["seed"])] = "not run: " + "; ".join(reasons)
    return out


def not_run_rows(name: str, trials: list[Trial], reasons: dict[tuple[str, int], str],
                 data_source: str) -> pd.DataFrame:
    """A trials-table row per trial that was not run: status NOT_RUN, the reason in ``error``, no metrics."""
    rows = []
    for t in trials:
        why = reasons.get((t["cell_label"], t["seed"]))
        if why is None:
            continue
        row: dict[str, Any] = {"study": name, "trial_id": "", "cell": json.dumps(t["cell"]),
                               "cell_label": t["cell_label"], "seed": t["seed"], "status": NOT_RUN,
                               "framework": t["train"]["framework"],
                               "steps_done": 0, "checkpoint": "", "steps": int(t["train"]["steps"]),
                               "image_size": int(t["image_size"]), "data_source": data_source, "error": why,
                               "model_uri": "", "mlflow_run_id": "", "cpu": "", "lpips_note": "",
                               "trained_by": "", "reused": False}
        row.update({f"{split}_{k}": math.nan for split in ("val", "test") for k in METRICS})
        rows.append(row)
    return pd.DataFrame(rows)


def to_train(store: TrialStore, trials: list[Trial], keys: list[str]) -> list[Trial]:
    """The trials of a grid study whose key the store does not hold (each key once)."""
    seen: set[str] = set()
    out = []
    for trial, key in zip(trials, keys):
        if key not in seen and store.load(key) is None:
            out.append(trial)
        seen.add(key)
    return out


def store_and_tabulate(name: str, trials: list[Trial], keys: list[str], store: TrialStore, fresh: pd.DataFrame,
                       fresh_curves: pd.DataFrame, parent_run_id: str,
                       experiment: str) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    """Store the trials this sweep finished, then (trials table, learning curves, reused runs) of every
    trial of the study, in its order, from the store; trials the store does not take (failed, or
    without finite test metrics) from this sweep's rows.

    A stored trial gets this study's ``study``, ``cell``, ``cell_label``, the store's ``last.pt`` as
    ``checkpoint``, ``trained_by`` and ``reused`` (its MLflow run is not a child of ``parent_run_id``)."""
    by_cell = {(r["cell_label"], int(r["seed"])): r for r in fresh.to_dict("records")}
    for trial, key in zip(trials, keys):
        row = by_cell.get((trial["cell_label"], trial["seed"]))
        if row is not None and storable(row) and store.load(key) is None:
            curves = fresh_curves[fresh_curves["trial_id"] == row["trial_id"]]
            store.put(key, row, curves, trained_by=name, parent_run_id=parent_run_id, experiment_id=experiment)
    rows, curve_parts, links, seen = [], [], [], set()
    for trial, key in zip(trials, keys):
        record = store.load(key)
        if record is not None:
            row = {k: v for k, v in record.items() if k not in RECORD_ONLY}
            row.update(study=name, cell=json.dumps(trial["cell"]), cell_label=trial["cell_label"], seed=trial["seed"],
                       checkpoint=str(store.checkpoint(key)), trial_key=key, trained_by=record["trained_by"],
                       reused=record.get("parent_run_id") != parent_run_id)
            curves = store.curves(key).assign(study=name)
            if row["reused"]:
                exp, run = record.get("experiment_id", ""), row["mlflow_run_id"]
                links.append({"cell_label": trial["cell_label"], "seed": trial["seed"],
                              "trained_by": record["trained_by"], "mlflow_run_id": run, "experiment_id": exp,
                              "ui_path": f"#/experiments/{exp}/runs/{run}"})
        else:
            row = by_cell.get((trial["cell_label"], trial["seed"]))
            if row is None:   # a key repeated in the grid whose first trial was not stored
                continue
            row = {**row, "trial_key": key, "trained_by": name, "reused": False}
            curves = fresh_curves[fresh_curves["trial_id"] == row["trial_id"]]
        rows.append(row)
        if key not in seen:
            curve_parts.append(curves[CURVE_COLS])
        seen.add(key)
    table = pd.DataFrame(rows)
    curves = pd.concat(curve_parts, ignore_index=True) if curve_parts else pd.DataFrame(columns=CURVE_COLS)
    return table, curves, links


def link_reused(links: list[dict[str, Any]]) -> None:
    """On the active (parent) run: the tag ``unmask.reused_trials`` (count), ``reused_trials.json`` and a
    tag ``unmask.reused.<run id>`` per reused run naming its study, cell and seed."""
    import mlflow

    mlflow.set_tags({"unmask.reused_trials": str(len(links)),
                     **{f"unmask.reused.{r['mlflow_run_id']}": f"{r['trained_by']}: {r['cell_label']} seed={r['seed']}"
                        for r in links if r["mlflow_run_id"]}})
    mlflow.log_dict(links, "reused_trials.json")


def _can_restore(exp_path: str) -> bool:
    from ray import tune

    return tune.Tuner.can_restore(exp_path)


# --------------------------------------------------------------------------- the study
def run_study(name: str, params: StudiesParams, data_root: str | os.PathLike, results_dir: str | os.PathLike,
              progress: bool = True, root: str | os.PathLike = ".", data_source: str = "unknown",
              trial_store: str | os.PathLike | None = None) -> Path:
    """Run (or resume) study ``name``; returns ``<results_dir>/<name>`` holding its tables.

    ``data_root`` holds the ``train``/``val``/``test`` splits; relative storage and tracking paths are
    taken from ``root`` (the project root); ``data_source`` is recorded in every row. A grid study
    trains only the trials ``trial_store`` (default ``<results_dir>/trial_store``) does not hold.
    """
    root = Path(root).resolve()
    params.study(name)
    if "://" not in params.sweep.storage_path:   # an absolute path too (parsing checked relative ones)
        why = storage_conflict(Path(_storage(params.sweep, root)), root, params.studies,
                               Path(results_dir).resolve())
        if why:
            raise UnmaskError(f"{params.source}: sweep.storage_path: {params.sweep.storage_path!r}: {why}; "
                              "use a folder of its own such as results/ray")
    with study_lock(Path(results_dir) / name / LOCK_FILE, name):
        return _run_study(name, params, data_root, results_dir, progress, root, data_source, trial_store)


def _run_study(name: str, params: StudiesParams, data_root: str | os.PathLike, results_dir: str | os.PathLike,
               progress: bool, root: Path, data_source: str, trial_store: str | os.PathLike | None) -> Path:
    import mlflow

    study = params.study(name)
    trials = expand_study(params, name)
    data_root = Path(data_root).resolve()
    for split in ("train", "val", "test"):   # before any trial starts
        if not (data_root / split).is_dir():
            raise UnmaskError(f"{data_root / split}: missing split (run the data stages first: dvc repro split)")
    out_dir = Path(results_dir) / name
    skipped = not_run_reasons(trials)
    for why in sorted(set(skipped.values())):
        log.warning("%s: %d trial(s) %s", name, sum(v == why for v in skipped.values()), why)
    all_trials = trials
    trials = [t for t in trials if (t["cell_label"], t["seed"]) not in skipped]

    store: TrialStore | None = None
    keys: list[str] = []
    pending = trials
    if study.search is None:     # search studies sample their trials: no store
        store = TrialStore(trial_store if trial_store is not None else Path(results_dir) / "trial_store")
        version = data_version(data_root, memo=store.root / HASH_MEMO)
        keys = [trial_key(t, version) for t in trials]
        pending = to_train(store, trials, keys)
    train = bool(pending)

    storage = _storage(params.sweep, root)
    fs, base = pafs.FileSystem.from_uri(storage)
    exp_path, state_path = f"{storage}/{name}", f"{base}/{name}.{STATE_FILE}"
    tracking_uri = configure(params.tracking, root)
    exp_id = experiment_id(name, params.tracking, root)
    # resume: the trials to train (not those stored) and the data; the study: every trial's key
    data_fp = _data_fingerprint(data_root)
    search_fp = [study.search.model_dump(exclude_none=True)] if study.search is not None else []

    def sweep_fp(ts: list[Trial]) -> str:
        return json.dumps([fingerprint(ts), data_fp, *search_fp])

    fp = sweep_fp(pending)
    study_fp = json.dumps(keys) if store is not None else None
    state = _read_state(fs, state_path)
    plan = plan_resume(state, fp, sweep_fp(trials) if store is not None else None, study_fp, train,
                       can_restore=train and state is not None and _can_restore(exp_path),   # Ray only then
                       experiment_exists=train and fs.get_file_info(f"{base}/{name}").type != pafs.FileType.NotFound)
    resume, exp_trials, reopen = plan.resume, trials if plan.all_trials else pending, plan.reopen_parent
    if plan.start_over:
        fs.delete_dir(f"{base}/{name}")          # another trial set: start over

    if state is not None and state.get("parent_run_id"):
        close_stale_runs(exp_id, state["parent_run_id"])     # runs a killed driver left RUNNING
    if reopen:
        parent = mlflow.start_run(run_id=state["parent_run_id"])
    else:
        parent = mlflow.start_run(experiment_id=exp_id, run_name=f"{name} sweep")
        mlflow.log_params({"study": name, "title": study.title, "grid": json.dumps(study.grid),
                           "extra_cells": json.dumps(study.extra_cells),
                           "seeds": json.dumps(study.seeds), "kinds": json.dumps(study.kinds),
                           "n_trials": study.search.num_samples if study.search else len(trials),
                           "data_source": data_source,
                           **({"search": json.dumps(study.search.model_dump(exclude_none=True))}
                              if study.search else {}),
                           **{f"train.{k}": v for k, v in flat_params(params.train).items()}})
    new_state = {"fingerprint": plan.fingerprint, "study": study_fp,
                 "parent_run_id": parent.info.run_id}
    if new_state != state:
        _write_state(fs, state_path, new_state)
    res = params.sweep.resources
    context = {"data_root": str(data_root), "tracking_uri": tracking_uri, "experiment_id": exp_id,
               "parent_run_id": parent.info.run_id, "cpus": res.cpu, "root": str(root),
               "lpips_weights": (str(root / params.reports.lpips_weights_dir)     # relative: from the project root
                                 if params.reports.lpips_weights_dir else None)}
    try:
        if train:
            table, curves = _sweep(name, study, params, exp_trials, context, storage, exp_path, resume, progress,
                                   data_source)
        else:
            log.info("%s: all %d trials are in the trial store %s; nothing to train", name, len(trials), store.root)
            table, curves = pd.DataFrame(columns=["cell_label", "seed"]), pd.DataFrame(columns=CURVE_COLS)
        links: list[dict[str, Any]] = []
        if store is not None:
            table, curves, links = store_and_tabulate(name, trials, keys, store, table, curves,
                                                      parent.info.run_id, exp_id)
        if skipped:   # in the study's order: runnable trials as tabulated, then those not run
            table = pd.concat([table, not_run_rows(name, all_trials, skipped, data_source)], ignore_index=True)
            order = {(t["cell_label"], t["seed"]): i for i, t in enumerate(all_trials)}
            table = table.iloc[sorted(range(len(table)), key=lambda i: order.get(
                (table["cell_label"].iloc[i], int(table["seed"].iloc[i])), len(order)))].reset_index(drop=True)
        problems = failed_trials(table)
        if problems:   # nothing is written or registered: the last good results stay
            raise UnmaskError(f"{name}: {len(problems)} of {len(table)} trials failed ({'; '.join(problems[:2])}"
                              f"{'; ...' if len(problems) > 2 else ''}); the previous results in {out_dir} are "
                              "kept and no champion is registered. Finished trials are kept"
                              + (" in the trial store" if store is not None else "")
                              + "; fix the cause and run the study again")
        # the checkpoints evaluate reads, as a DVC output beside the table (the store and Tune's
        # storage are not): replaced whole, before the table that points at them
        table = copy_checkpoints(table, out_dir, root)
        _write_parquet(out_dir / "trials.parquet", table)
        _write_parquet(out_dir / "curves.parquet", curves)
        rule = champion_rule(table, study)
        metrics = {**study_metrics(name, table), "champion": rule.to_dict()}   # the rule, for readers without params
        write_text(out_dir / SWEEP_FILE, json.dumps(metrics, indent=2) + "\n")
        mlflow.log_table(cell_means(table), artifact_file="comparison.json")
        mlflow.log_artifact(str(out_dir / "trials.parquet"))
        mlflow.log_metrics({"trials_failed": metrics["failed"], "trials": metrics["trials"],
                            "trials_not_run": metrics["not_run"],
                            "trials_stopped_early": metrics["stopped_early"]})
        if store is not None:
            link_reused(links)
        if study.search is not None:
            mark_stopped_early(table, study.search.scheduler)
        champion = _register_champion(name, table, rule)
        if champion:
            mlflow.set_tag("unmask.champion", champion)
    except BaseException:
        mlflow.end_run("FAILED")
        with contextlib.suppress(Exception):
            close_stale_runs(exp_id, parent.info.run_id)
        raise
    mlflow.end_run("FINISHED")
    log.info("%s: %d trials (%d trained now, %d reused, %d failed, %d stopped early) -> %s", name,
             metrics["trials"], len(pending) if train else 0, len(links), metrics["failed"],
             metrics["stopped_early"], out_dir)
    return out_dir


def _sweep(name: str, study, params: StudiesParams, trials: list[Trial], context: dict[str, Any], storage: str,
           exp_path: str, resume: bool, progress: bool, data_source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run (or resume) the Tune experiment over ``trials``; their (trials table, learning curves)."""
    from ray import tune

    res = params.sweep.resources
    with ray_session(params.sweep):
        import ray

        check_resources(res, ray.nodes(), params.source)    # before the first trial: Tune would wait for ever
        trainable = tune.with_resources(train_trial, {"cpu": res.cpu, "gpu": res.gpu})
        if resume:
            log.info("%s: resuming the sweep in %s", name, exp_path)
            tuner = tune.Tuner.restore(exp_path, trainable, resume_errored=True)
        else:
            if study.search is not None:
                setup = search_setup(study.search, trials[0], params.sweep.max_concurrent)
                space = {"trial": trials[0], "sample": setup["sample"], "context": context}
                extra = setup["tune_config"]
            else:
                space = {"trial": tune.grid_search(trials), "context": context}
                extra = {"max_concurrent_trials": params.sweep.max_concurrent}
            tuner = tune.Tuner(
                trainable,
                param_space=space,
                tune_config=tune.TuneConfig(reuse_actors=True,
                                            trial_dirname_creator=lambda t: f"trial_{t.trial_id}",
                                            **extra),
                run_config=tune.RunConfig(
                    name=name, storage_path=storage, verbose=1 if progress else 0,
                    progress_reporter=progress_reporter(study.search),
                    failure_config=tune.FailureConfig(max_failures=params.sweep.max_failures),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
        results = tuner.fit()
        unfinished = unfinished_trials(results)
        if unfinished:   # Tune returns early on SIGINT, its state saved
            total = study.search.num_samples if study.search else len(trials)
            raise UnmaskError(f"{name}: sweep interrupted with {len(results) - unfinished} of {total} "
                              f"trials done; run it again to resume ({exp_path})")
    return trial_rows(results, trials, data_source)
