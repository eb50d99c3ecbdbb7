"""The Ray Tune side of a sweep: the Tuner over a study's trials, started or restored, and what it shows.

:func:`sweep_trials` runs one ``tune.Tuner`` on the cluster :func:`unmask.studies.cluster.ray_session`
opens (after :func:`unmask.studies.cluster.check_resources`), or restores the study's last experiment
(``Tuner.restore(..., resume_errored=True)``; see :mod:`unmask.studies.state`), and returns the trials
table and learning curves (:func:`unmask.studies.results.trial_rows`). A grid study's trials are one
``grid_search``; each trial runs :func:`unmask.studies.trial.train_trial`.

Search studies (``studies.<name>.search``; :func:`search_setup`) run ``num_samples`` trials drawn by a
search algorithm (Tune's seeded random search or Optuna's TPE) under a scheduler: with ASHA a trial
whose validation metric is poor at a rung is stopped early (tabulated ``STOPPED_EARLY``).

Interruption: a sweep stopped by SIGINT (Tune saves its state and returns early) raises instead of
returning tables with unfinished trials (:func:`unmask.studies.results.unfinished_trials`); running the
study again resumes it.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from unmask.errors import UnmaskError
from unmask.studies.cluster import check_resources, ray_session
from unmask.studies.config import SearchConfig, StudiesParams, StudyConfig
from unmask.studies.grid import Trial
from unmask.studies.results import trial_rows, unfinished_trials
from unmask.studies.trial import train_trial

log = logging.getLogger("unmask")


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


def sweep_trials(name: str, study: StudyConfig, params: StudiesParams, trials: list[Trial],
                 context: dict[str, Any], storage: str, exp_path: str, resume: bool, progress: bool,
                 data_source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
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
