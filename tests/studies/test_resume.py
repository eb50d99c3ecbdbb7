"""The resume decision of a sweep (:func:`unmask.studies.resume.plan_resume`), without Ray.

See test_sweep.py and test_shared_trials.py for the real sweeps that act on these plans.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from unmask.studies.resume import ResumePlan, plan_resume

PENDING = '["pending trials", "data"]'     # the fingerprint of the trials to train now
ALL = '["all trials", "data"]'             # that of all the study's runnable trials (a grid study)
STUDY = '["key-a", "key-b", "key-c"]'      # the keys of all the study's trials
OTHER = '["other trials", "data"]'


def _state(fingerprint=PENDING, study=STUDY, parent_run_id="run-1"):
    return {"fingerprint": fingerprint, "study": study, "parent_run_id": parent_run_id}


def _plan(state, pending_fp=PENDING, all_fp=ALL, study_fp=STUDY, train=True, can_restore=True,
          experiment_exists=True):
    return plan_resume(state, pending_fp, all_fp, study_fp, train, can_restore, experiment_exists)


def test_first_sweep_starts_a_new_experiment_and_parent_run():
    assert _plan(None, can_restore=False, experiment_exists=False) == ResumePlan(
        resume=False, all_trials=False, start_over=False, reopen_parent=False, fingerprint=PENDING)


def test_first_sweep_over_a_leftover_folder_without_state_deletes_it():
    assert _plan(None, can_restore=True, experiment_exists=True) == ResumePlan(
        resume=False, all_trials=False, start_over=True, reopen_parent=False, fingerprint=PENDING)


def test_same_trials_after_ctrl_c_resume_the_experiment_and_parent_run():
    assert _plan(_state()) == ResumePlan(
        resume=True, all_trials=False, start_over=False, reopen_parent=True, fingerprint=PENDING)


def test_another_trial_set_starts_over_with_a_new_parent_run():
    plan = _plan(_state(fingerprint=OTHER, study='["key-x"]'))
    assert plan == ResumePlan(resume=False, all_trials=False, start_over=True, reopen_parent=False,
                              fingerprint=PENDING)


def test_changed_data_with_the_same_study_keys_starts_over_in_the_same_parent_run():
    # the trial keys hash the data, so this is e.g. a changed search budget or a mtime-only data change
    assert _plan(_state(fingerprint=OTHER)) == ResumePlan(
        resume=False, all_trials=False, start_over=True, reopen_parent=True, fingerprint=PENDING)


def test_grid_study_where_another_study_stored_some_trials_since_restores_over_all_trials():
    assert _plan(_state(fingerprint=ALL)) == ResumePlan(
        resume=True, all_trials=True, start_over=False, reopen_parent=True, fingerprint=ALL)


def test_same_trials_to_train_win_over_all_trials_when_none_was_stored_since():
    # nothing stored since: the trials to train are all the study's trials, both fingerprints agree
    assert _plan(_state(), all_fp=PENDING) == ResumePlan(
        resume=True, all_trials=False, start_over=False, reopen_parent=True, fingerprint=PENDING)


def test_nothing_to_train_keeps_the_state_fingerprint_and_reopens_the_parent_run():
    plan = _plan(_state(fingerprint=OTHER), train=False, can_restore=False, experiment_exists=False)
    assert plan == ResumePlan(resume=False, all_trials=False, start_over=False, reopen_parent=True,
                              fingerprint=OTHER)


def test_nothing_to_train_in_a_changed_study_starts_a_new_parent_run():
    plan = _plan(_state(fingerprint=OTHER, study='["key-x"]'), train=False, can_restore=False,
                 experiment_exists=True)
    assert plan == ResumePlan(resume=False, all_trials=False, start_over=False, reopen_parent=False,
                              fingerprint=PENDING)


def test_nothing_to_train_keeps_a_state_without_fingerprint_as_is():
    state = _state()
    del state["fingerprint"]
    assert _plan(state, train=False, can_restore=False) == ResumePlan(
        resume=False, all_trials=False, start_over=False, reopen_parent=True, fingerprint=None)


@pytest.mark.parametrize("parent_run_id", [None, ""], ids=["missing", "empty"])
def test_state_without_parent_run_id_resumes_the_experiment_in_a_new_parent_run(parent_run_id):
    state = _state(parent_run_id=parent_run_id)
    if parent_run_id is None:
        del state["parent_run_id"]
    assert _plan(state) == ResumePlan(
        resume=True, all_trials=False, start_over=False, reopen_parent=False, fingerprint=PENDING)


def test_state_without_parent_run_id_and_nothing_to_train_stores_the_new_fingerprint():
    state = _state(fingerprint=OTHER)
    del state["parent_run_id"]
    assert _plan(state, train=False, can_restore=False) == ResumePlan(
        resume=False, all_trials=False, start_over=False, reopen_parent=False, fingerprint=PENDING)


def test_tune_experiment_folder_missing_cannot_be_restored_so_it_starts_afresh():
    plan = _plan(_state(), can_restore=False, experiment_exists=False)
    assert plan == ResumePlan(resume=False, all_trials=False, start_over=False, reopen_parent=True,
                              fingerprint=PENDING)


def test_tune_experiment_folder_incomplete_cannot_be_restored_so_it_is_deleted():
    plan = _plan(_state(fingerprint=ALL), can_restore=False, experiment_exists=True)
    assert plan == ResumePlan(resume=False, all_trials=False, start_over=True, reopen_parent=True,
                              fingerprint=PENDING)


def test_search_study_same_trials_resume():
    assert _plan(_state(study=None), all_fp=None, study_fp=None) == ResumePlan(
        resume=True, all_trials=False, start_over=False, reopen_parent=True, fingerprint=PENDING)


def test_search_study_changed_starts_over_with_a_new_parent_run():
    # a search study has no trial keys: equal (None) study entries do not reopen the parent run
    assert _plan(_state(fingerprint=OTHER, study=None), all_fp=None, study_fp=None) == ResumePlan(
        resume=False, all_trials=False, start_over=True, reopen_parent=False, fingerprint=PENDING)


def test_search_study_never_restores_over_all_trials_even_for_a_state_without_fingerprint():
    state = _state(study=None)
    del state["fingerprint"]           # None == all_fp (None) must not count as "all trials"
    assert _plan(state, all_fp=None, study_fp=None) == ResumePlan(
        resume=False, all_trials=False, start_over=True, reopen_parent=False, fingerprint=PENDING)


def test_plan_is_frozen():
    plan = _plan(None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.resume = True


def test_resume_module_imports_nothing_heavy():
    # the package (its config) may load torch; the resume module itself must add no heavy import
    code = ("import sys, unmask.studies; before = set(sys.modules); import unmask.studies.resume; "
            "print(sorted(m for m in set(sys.modules) - before "
            "if m.split('.')[0] in ('ray', 'torch', 'mlflow', 'pyarrow', 'pandas')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
