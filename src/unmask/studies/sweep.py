"""Run a study as one Ray Tune sweep tracked in MLflow, and write its results tables.

``run_study`` expands the study into trials (:mod:`unmask.studies.grid`), looks each grid trial up in
the trial store, opens the study's MLflow parent run, starts or attaches to Ray and runs one
``tune.Tuner`` over the trials the store does not hold, and writes
``<results_dir>/<study>/trials.parquet``, ``curves.parquet``, ``sweep.json`` and ``checkpoints/``.
It composes the parts, each in a module of its own:

- :mod:`unmask.studies.store`: the trial store (``<results_dir>/trial_store`` unless ``trial_store`` is
  given; a cache shared by the studies, not a DVC output). A grid trial's key is the hash of its
  resolved TrainConfig (seed included), image size, occlusion kinds and the split files' contents, so
  the same trial in several studies (the reference cell of most tables) is trained once; Ray is not
  started when the store holds every trial. Search studies sample their trials and do not use the store.
- :mod:`unmask.studies.state`: the study's lock, and whether the sweep resumes its last Tune experiment
  (the state file beside it; the decision is :mod:`unmask.studies.resume`).
- :mod:`unmask.studies.mlflow_runs`: the parent run, the trials' runs it settles, the champion alias.
- :mod:`unmask.studies.tune_setup` and :mod:`unmask.studies.cluster`: the Tuner (grid or search) and
  the Ray cluster it runs on.
- :mod:`unmask.studies.results`: the tables (from the sweep, the store, and trials not run here), the
  copies of the checkpoints they point at, ``sweep.json``.

Failures: a study with a trial that failed (or diverged) writes nothing and registers no champion
(the last good results stay); a sweep interrupted by SIGINT raises before any table is written. In
both cases the parent run is ended FAILED. Trials are put in the store only once the whole sweep has
finished, so a resumed sweep has the same trials to train, and the trials that failed are trained again
by the next run.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from unmask.errors import UnmaskError
from unmask.studies.champion import champion_rule
from unmask.studies.config import StudiesParams, StudyConfig, storage_conflict
from unmask.studies.grid import Trial, expand_study
from unmask.studies.mlflow_runs import fail_parent_run, log_results, open_parent_run
from unmask.studies.results import (CURVE_COLS, failed_trials, not_run_reasons, store_and_tabulate, to_train,
                                    with_not_run, write_summary, write_tables)
from unmask.studies.resume import ResumePlan
from unmask.studies.state import LOCK_FILE, Experiment, resume, save_state, study_lock, tune_storage
from unmask.studies.store import HASH_MEMO, TrialStore, data_version, trial_key
from unmask.studies.tune_setup import sweep_trials
from unmask.tracking import configure, experiment_id

log = logging.getLogger("unmask")


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
        why = storage_conflict(Path(tune_storage(params.sweep, root)), root, params.studies,
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
    data_root = _splits(data_root)
    work = _plan_trials(name, study, trials, data_root, Path(results_dir), trial_store)
    out_dir = Path(results_dir) / name

    exp = Experiment.of(name, params.sweep, root)
    tracking_uri = configure(params.tracking, root)
    exp_id = experiment_id(name, params.tracking, root)
    resumed = resume(exp, work.trials, work.pending, work.keys, data_root, study.search)
    parent = open_parent_run(name, params, exp_id, resumed.last_parent_run_id, resumed.plan.reopen_parent,
                             len(work.trials), data_source)
    run_id = parent.info.run_id
    save_state(exp, resumed, run_id)
    context = _trial_context(params, data_root, root, tracking_uri, exp_id, run_id)
    try:
        table, curves = _train(name, study, params, work, exp, resumed.plan, context, progress, data_source)
        links = None    # a search study reuses no trials
        if work.store is not None:
            table, curves, links = store_and_tabulate(name, work.trials, work.keys, work.store, table, curves,
                                                      run_id, exp_id)
        table = with_not_run(name, table, work.every, work.skipped, data_source)
        _refuse_failures(name, table, out_dir, work.store)
        table = write_tables(table, curves, out_dir, root)
        rule = champion_rule(table, study)
        metrics = write_summary(name, table, rule, out_dir)
        log_results(name, table, metrics, out_dir, rule, links, study.search.scheduler if study.search else None)
    except BaseException:
        fail_parent_run(exp_id, run_id)
        raise
    mlflow.end_run("FINISHED")
    log.info("%s: %d trials (%d trained now, %d reused, %d failed, %d stopped early) -> %s", name,
             metrics["trials"], len(work.pending), len(links or ()), metrics["failed"],
             metrics["stopped_early"], out_dir)
    return out_dir


@dataclass(frozen=True)
class _Work:
    """What a run of the study trains."""

    every: list[Trial]                    # all the study's trials, in its order
    skipped: dict[tuple[str, int], str]   # (cell label, seed) -> why the trial is not run here
    trials: list[Trial]                   # the others: those that can run here
    store: TrialStore | None              # a grid study's trial store; None for a search study
    keys: list[str] | None                # the store keys of ``trials`` (grid studies)
    pending: list[Trial]                  # those to train now: ``trials`` whose key the store lacks


def _splits(data_root: str | os.PathLike) -> Path:
    """``data_root`` made absolute, after checking that it holds every split."""
    data_root = Path(data_root).resolve()
    for split in ("train", "val", "test"):   # before any trial starts
        if not (data_root / split).is_dir():
            raise UnmaskError(f"{data_root / split}: missing split (run the data stages first: dvc repro split)")
    return data_root


def _plan_trials(name: str, study: StudyConfig, trials: list[Trial], data_root: Path, results_dir: Path,
                 trial_store: str | os.PathLike | None) -> _Work:
    """The trials of the study that can run here and, for a grid study, those the store lacks."""
    skipped = not_run_reasons(trials)
    for why in sorted(set(skipped.values())):
        log.warning("%s: %d trial(s) %s", name, sum(v == why for v in skipped.values()), why)
    runnable = [t for t in trials if (t["cell_label"], t["seed"]) not in skipped]
    if study.search is not None:     # search studies sample their trials: no store
        return _Work(trials, skipped, runnable, None, None, runnable)
    store = TrialStore(trial_store if trial_store is not None else results_dir / "trial_store")
    version = data_version(data_root, memo=store.root / HASH_MEMO)
    keys = [trial_key(t, version) for t in runnable]
    return _Work(trials, skipped, runnable, store, keys, to_train(store, runnable, keys))


def _trial_context(params: StudiesParams, data_root: Path, root: Path, tracking_uri: str, experiment: str,
                   parent_run_id: str) -> dict[str, Any]:
    """What every trial gets beside its config (:func:`unmask.studies.trial.train_trial`)."""
    return {"data_root": str(data_root), "tracking_uri": tracking_uri, "experiment_id": experiment,
            "parent_run_id": parent_run_id, "cpus": params.sweep.resources.cpu, "root": str(root),
            "lpips_weights": (str(root / params.reports.lpips_weights_dir)     # relative: from the project root
                              if params.reports.lpips_weights_dir else None)}


def _train(name: str, study: StudyConfig, params: StudiesParams, work: _Work, exp: Experiment, plan: ResumePlan,
           context: dict[str, Any], progress: bool, data_source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(trials table, learning curves) of the trials trained now: empty when the store holds them all."""
    if not work.pending:
        log.info("%s: all %d trials are in the trial store %s; nothing to train", name, len(work.trials),
                 work.store.root)
        return pd.DataFrame(columns=["cell_label", "seed"]), pd.DataFrame(columns=CURVE_COLS)
    trials = work.trials if plan.all_trials else work.pending   # those of the experiment kept or started
    return sweep_trials(name, study, params, trials, context, exp.storage, exp.path, plan.resume, progress,
                        data_source)


def _refuse_failures(name: str, table: pd.DataFrame, out_dir: Path, store: TrialStore | None) -> None:
    """UnmaskError naming the trials that failed or diverged: nothing is written or registered then."""
    problems = failed_trials(table)
    if problems:   # nothing is written or registered: the last good results stay
        raise UnmaskError(f"{name}: {len(problems)} of {len(table)} trials failed ({'; '.join(problems[:2])}"
                          f"{'; ...' if len(problems) > 2 else ''}); the previous results in {out_dir} are "
                          "kept and no champion is registered. Finished trials are kept"
                          + (" in the trial store" if store is not None else "")
                          + "; fix the cause and run the study again")
