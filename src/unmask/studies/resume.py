"""Whether a sweep resumes its Tune experiment: a pure decision, without Ray, MLflow or a file system.

:func:`plan_resume` takes what :func:`unmask.studies.state.resume` has read (the sweep state file
``<study>.unmask-sweep.json``, the fingerprints of the trials, whether Tune can restore the experiment
folder and whether that folder exists) and says what to do; the sweep does it (``state.resume`` deletes
the folder, :mod:`unmask.studies.tune_setup` restores or starts the experiment,
:mod:`unmask.studies.mlflow_runs` reopens or starts the MLflow parent run, ``state.save_state`` writes
the new state).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class ResumePlan:
    """What a run of a study does with the Tune experiment and the MLflow parent run of its last sweep."""

    # restore the last Tune experiment: its finished trials are not retrained, interrupted ones continue
    resume: bool
    # the restored experiment is the one over all the study's trials (not only those still to train)
    all_trials: bool
    # delete the old Tune experiment folder: another trial set (or changed data) starts afresh
    start_over: bool
    # log into the last sweep's MLflow parent run (the state's parent_run_id) instead of a new one
    reopen_parent: bool
    # the trials fingerprint written to the new state: that of the Tune experiment kept or started
    fingerprint: str | None


def plan_resume(state: Mapping[str, Any] | None, pending_fp: str, all_fp: str | None, study_fp: str | None,
                train: bool, can_restore: bool, experiment_exists: bool) -> ResumePlan:
    """The plan for a study's sweep.

    ``state``: the sweep state file as read (``None``: none, or unreadable); ``pending_fp``: the
    fingerprint of the trials to train now (and of the data); ``all_fp``: that of all the study's
    runnable trials, for a grid study (``None``: a search study); ``study_fp``: the keys of all the
    study's trials (``None``: a search study); ``train``: some trial is to be trained;
    ``can_restore``: Tune can restore the experiment folder (only consulted when ``train`` and a
    state); ``experiment_exists``: the experiment folder exists (only consulted when starting over).
    """
    resume = all_trials = False
    if train and state is not None and can_restore:
        if state.get("fingerprint") == pending_fp:
            resume = True
        elif all_fp is not None and state.get("fingerprint") == all_fp:
            # an experiment over all the study's trials (an earlier sweep, before another study stored
            # some of them): restoring it retrains nothing that finished there
            resume = all_trials = True
    start_over = train and not resume and experiment_exists
    # the same parent run for a resumed sweep, and for the same trials of a grid study (some trained since)
    reopen = state is not None and bool(state.get("parent_run_id")) and (
        resume or (study_fp is not None and state.get("study") == study_fp))
    # the fingerprint of the Tune experiment kept (resumed, or nothing trained now) or started
    kept = state is not None and (resume or (not train and reopen))
    return ResumePlan(resume=resume, all_trials=all_trials, start_over=start_over, reopen_parent=reopen,
                      fingerprint=state.get("fingerprint") if kept else pending_fp)
