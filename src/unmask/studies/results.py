"""A study's results tables: the trials table, the learning curves and ``sweep.json``, and the copies of
the trials' final checkpoints the table points at.

The tables are built from the Tune ResultGrid (:func:`trial_rows`), and for a grid study from the trial
store (:mod:`unmask.studies.store`; :func:`store_and_tabulate`): after the sweep each newly finished
trial with finite test metrics is stored (its row, a copy of its ``last.pt``, its curves), then the
study's tables are built from the store for all its trials, in the study's order, with this study's
``study``/``cell``/``cell_label``, ``checkpoint`` at the study's copy of the store's ``last.pt`` (see
below), and ``trial_key``, ``trained_by`` (the study that trained it) and ``reused`` (its MLflow run is
a child of another parent run). Trials that failed are tabulated from the sweep and not stored: the
next run trains them again. Trials whose trainer cannot run here are tabulated ``NOT_RUN``
(:func:`not_run_reasons`, :func:`with_not_run`).

Statuses (:mod:`unmask.catalog.status`): a search study's trial that a scheduler (ASHA) stopped early
at a rung is ``STOPPED_EARLY``; Tune marks its last result ``done``, which tells it from a trial an
interruption stopped (:func:`unfinished_trials`).

:func:`write_results` writes ``<results_dir>/<study>/trials.parquet``, ``curves.parquet`` and
``sweep.json`` (validation summary; the test summary is the evaluate stage's metrics.json). It first
copies each trial's final checkpoint to ``<results_dir>/<study>/checkpoints/<trial_key or
trial_id>.pt`` (a DVC output of the sweep stage, so that ``dvc pull`` brings what evaluate reads;
replaced whole, only when the sweep succeeded) and points the table's ``checkpoint`` column at those
copies, relative to the project root (``root``), e.g. ``results/<study>/checkpoints/<key>.pt``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from unmask.catalog.schemas import CURVES, NOTE, TRIALS, TableSchema
from unmask.catalog.metrics import HIGHER_IS_BETTER, METRICS
from unmask.catalog.status import TrialStatus
from unmask.io.atomic import atomic_dir, atomic_path, write_text
from unmask.io.named import naming
from unmask.io.remote import local_copy
from unmask.studies.champion import RECORD_FILE, ChampionRule
from unmask.studies.grid import Trial, resolve_trial
from unmask.studies.store import TrialStore, required_test, storable
from unmask.training import TrainConfig, trainer_class
from unmask.training.base import CHECKPOINT_NAME

FINISHED, FAILED, STOPPED_EARLY, NOT_RUN = TrialStatus   # trials.parquet status (unmask.catalog.status)
SWEEP_FILE = RECORD_FILE          # <results_dir>/<study>/sweep.json: the sweep's own summary
CHECKPOINTS_DIR = "checkpoints"   # <results_dir>/<study>/checkpoints/<trial_key or trial_id>.pt (a DVC output)
RAY_KEYS = {"timestamp", "checkpoint_dir_name", "done", "training_iteration", "trial_id", "date",
            "time_this_iter_s", "time_total_s", "pid", "hostname", "node_ip", "node_id",
            "time_since_restore", "iterations_since_restore", "step", "train_time_s"}
RECORD_ONLY = {"parent_run_id", "experiment_id", "trial_key", "trained_by"}   # in record.json, not the table
CURVE_COLS = ["study", "trial_id", "step", "metric", "value"]


# --------------------------------------------------------------------------- from the sweep
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
            **{k: v for k, v in m.items() if k.startswith(NOTE) and isinstance(v, str)},
            "cpu": m.get("cpu", ""), "mlflow_run_id": m.get("mlflow_run_id", ""),
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


# --------------------------------------------------------------------------- trials not run, the trial store
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
                               "model_uri": "", "mlflow_run_id": "", "cpu": "",
                               "trained_by": "", "reused": False}
        row.update({f"{split}_{k}": math.nan for split in ("val", "test") for k in METRICS})
        rows.append(row)
    return pd.DataFrame(rows)


def with_not_run(name: str, table: pd.DataFrame, trials: list[Trial], reasons: dict[tuple[str, int], str],
                 data_source: str) -> pd.DataFrame:
    """``table`` with a :func:`not_run_rows` row per trial of ``reasons``, in the study's order (that of
    ``trials``: all the study's trials); ``table`` as it is when every trial could run."""
    if not reasons:
        return table
    # in the study's order: runnable trials as tabulated, then those not run
    table = pd.concat([table, not_run_rows(name, trials, reasons, data_source)], ignore_index=True)
    order = {(t["cell_label"], t["seed"]): i for i, t in enumerate(trials)}
    return table.iloc[sorted(range(len(table)), key=lambda i: order.get(
        (table["cell_label"].iloc[i], int(table["seed"].iloc[i])), len(order)))].reset_index(drop=True)


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


# --------------------------------------------------------------------------- the files
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


def write_parquet(path: Path, df: pd.DataFrame, schema: TableSchema) -> None:
    """``df`` to ``path`` atomically, once it fits ``schema`` (else UnmaskError naming the file)."""
    schema.check(df, str(path))
    with atomic_path(path) as tmp, naming(path):
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp)



def write_tables(table: pd.DataFrame, curves: pd.DataFrame, out_dir: Path, root: Path) -> pd.DataFrame:
    """The trials table as written: the checkpoints evaluate reads copied (:func:`copy_checkpoints`),
    then ``trials.parquet`` pointing at them and ``curves.parquet`` written to ``out_dir``."""
    # the checkpoints evaluate reads, as a DVC output beside the table (the store and Tune's
    # storage are not): replaced whole, before the table that points at them
    table = copy_checkpoints(table, out_dir, root)
    write_parquet(out_dir / "trials.parquet", table, TRIALS)
    write_parquet(out_dir / "curves.parquet", curves, CURVES)
    return table


def write_summary(name: str, table: pd.DataFrame, rule: ChampionRule, out_dir: Path) -> dict[str, Any]:
    """``sweep.json`` (:func:`study_metrics` and the champion ``rule``, for readers without params),
    written to ``out_dir``; returns what it holds."""
    metrics = {**study_metrics(name, table), "champion": rule.to_dict()}   # the rule, for readers without params
    write_text(out_dir / SWEEP_FILE, json.dumps(metrics, indent=2) + "\n")
    return metrics
