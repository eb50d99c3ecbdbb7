"""A study's MLflow runs: the sweep's parent run, the trials' child runs it settles, and the champion alias.

The parent run (``<study> sweep``) is opened before the trials start (:func:`open_parent_run`): the
last sweep's parent run is reopened when that sweep is resumed or the study's trials are unchanged
(:mod:`unmask.studies.state`), else a new one logs the study's params. After the sweep it gets the
cell means (``comparison.json``), ``trials.parquet`` and the trial counts (:func:`log_results`); a grid
study's parent run links the trials it reused from the trial store (:func:`link_reused`): tag
``unmask.reused_trials`` (count), a tag ``unmask.reused.<run id>`` per run, and ``reused_trials.json``
(cell, seed, study, run and experiment ids, UI path). The champion (:mod:`unmask.studies.champion`) is
registered as ``unmask-<study>@champion`` (:func:`register_champion`) and named by the parent run's tag
``unmask.champion``.

A trial a scheduler stopped early ends its MLflow run FINISHED with the tag ``unmask.stopped_early``
(:func:`mark_stopped_early`).

Interruption: when the sweep fails or is interrupted the parent run is ended FAILED, and child runs of
trials that were stopped are closed FAILED too (:func:`fail_parent_run`; a resumed trial reopens its run
and ends it FINISHED). A driver that was killed outright leaves runs RUNNING: the next run of the study
closes them (:func:`close_stale_runs`, from :func:`open_parent_run`).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pandas as pd

from unmask.studies.champion import ChampionRule, find_champion
from unmask.studies.config import StudiesParams
from unmask.studies.results import STOPPED_EARLY, cell_means
from unmask.tracking import PARENT_TAG, flat_params

CHAMPION_ALIAS = "champion"


def open_parent_run(name: str, params: StudiesParams, experiment: str, last_run_id: str | None, reopen: bool,
                    n_trials: int, data_source: str):
    """The study's active parent run: ``last_run_id`` (the last sweep's) reopened when ``reopen``, else a
    new run logging the study's params; ``last_run_id`` and its child runs are first closed FAILED when
    a killed driver left them RUNNING. ``n_trials``: the runnable trials of a grid study."""
    import mlflow

    study = params.study(name)
    if last_run_id:
        close_stale_runs(experiment, last_run_id)     # runs a killed driver left RUNNING
    if reopen:
        return mlflow.start_run(run_id=last_run_id)
    parent = mlflow.start_run(experiment_id=experiment, run_name=f"{name} sweep")
    mlflow.log_params({"study": name, "title": study.title, "grid": json.dumps(study.grid),
                       "extra_cells": json.dumps(study.extra_cells),
                       "seeds": json.dumps(study.seeds), "kinds": json.dumps(study.kinds),
                       "n_trials": study.search.num_samples if study.search else n_trials,
                       "data_source": data_source,
                       **({"search": json.dumps(study.search.model_dump(exclude_none=True))}
                          if study.search else {}),
                       **{f"train.{k}": v for k, v in flat_params(params.train).items()}})
    return parent


def log_results(name: str, table: pd.DataFrame, metrics: dict[str, Any], out_dir: Path, rule: ChampionRule,
                links: list[dict[str, Any]] | None, scheduler: str | None) -> None:
    """On the active (parent) run: the cell means, ``trials.parquet`` and the trial counts of
    ``metrics`` (``sweep.json``), the reused runs (``links``; None: a search study, which reuses none);
    then the runs ``scheduler`` (a search study's) stopped early are settled and the champion registered."""
    import mlflow

    mlflow.log_table(cell_means(table), artifact_file="comparison.json")
    mlflow.log_artifact(str(out_dir / "trials.parquet"))
    mlflow.log_metrics({"trials_failed": metrics["failed"], "trials": metrics["trials"],
                        "trials_not_run": metrics["not_run"],
                        "trials_stopped_early": metrics["stopped_early"]})
    if links is not None:
        link_reused(links)
    if scheduler is not None:
        mark_stopped_early(table, scheduler)
    champion = register_champion(name, table, rule)
    if champion:
        mlflow.set_tag("unmask.champion", champion)


def fail_parent_run(experiment: str, parent_run_id: str) -> None:
    """End the active (parent) run FAILED, and close FAILED its child runs Tune stopped."""
    import mlflow

    mlflow.end_run("FAILED")
    with contextlib.suppress(Exception):
        close_stale_runs(experiment, parent_run_id)


def register_champion(name: str, table: pd.DataFrame, rule: ChampionRule) -> str | None:
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


def link_reused(links: list[dict[str, Any]]) -> None:
    """On the active (parent) run: the tag ``unmask.reused_trials`` (count), ``reused_trials.json`` and a
    tag ``unmask.reused.<run id>`` per reused run naming its study, cell and seed."""
    import mlflow

    mlflow.set_tags({"unmask.reused_trials": str(len(links)),
                     **{f"unmask.reused.{r['mlflow_run_id']}": f"{r['trained_by']}: {r['cell_label']} seed={r['seed']}"
                        for r in links if r["mlflow_run_id"]}})
    mlflow.log_dict(links, "reused_trials.json")
