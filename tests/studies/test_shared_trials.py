"""Two micro grid studies sharing a cell, through real Ray Tune and MLflow (``shared_study.py``): the
shared trial is trained once and reused from the trial store, also after the second study's grid
changes. Part of the default (CI) run: four 4-step trials at 16 px on one Ray cluster. Runs in a
loopback-only network namespace (skipped where not permitted)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.studies.isolated import namespace_or_skip, run_isolated
from tests.studies.shared_study import A, B

SCRIPT = Path(__file__).with_name("shared_study.py")
LSGAN = "adv_loss=lsgan"


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> dict:
    namespace_or_skip()
    work = tmp_path_factory.mktemp("shared")
    return {**run_isolated(SCRIPT, str(work), timeout=300), "work": work}


def _row(table: dict, label: str) -> pd.Series:
    t = pd.DataFrame(table)
    return t[t["cell_label"] == label].iloc[0]


def test_shared_trial_is_trained_once(shared):
    assert shared["after_a"] == {A: 2, B: 0}
    assert shared["after_b"] == {A: 2, B: 1}          # B trained only its minimax cell
    a, b = pd.DataFrame(shared["a"]), pd.DataFrame(shared["b"])
    assert b["cell_label"].tolist() == [LSGAN, "adv_loss=minimax"]
    assert (b["status"] == "TERMINATED").all() and (b["study"] == B).all()
    assert b["reused"].tolist() == [True, False] and not a["reused"].any()
    assert b["trained_by"].tolist() == [A, B] and (a["trained_by"] == A).all()
    a_ls, b_ls = _row(shared["a"], LSGAN), _row(shared["b"], LSGAN)
    assert b_ls["mlflow_run_id"] == a_ls["mlflow_run_id"] and b_ls["trial_key"] == a_ls["trial_key"]
    assert b_ls["test_psnr"] == a_ls["test_psnr"] and b_ls["model_uri"] == a_ls["model_uri"]
    # one file in the store; each study's table points at its own copy (a DVC output of its sweep)
    key, work = b_ls["trial_key"], shared["work"]
    assert a_ls["checkpoint"] == f"results/{A}/checkpoints/{key}.pt"
    assert b_ls["checkpoint"] == f"results/{B}/checkpoints/{key}.pt"
    stored = (work / "results" / "trial_store" / key / "last.pt").read_bytes()
    assert (work / a_ls["checkpoint"]).read_bytes() == (work / b_ls["checkpoint"]).read_bytes() == stored
    assert set(a["trial_key"]) | set(b["trial_key"]) == set(shared["store"])
    curves = pd.DataFrame(shared["b_curves"])          # the reused trial's curves, under this study
    assert set(curves["trial_id"]) == set(b["trial_id"]) and (curves["study"] == B).all()


def test_reused_runs_are_linked_from_the_parent_run(shared):
    parent, b_ls = shared["b_parent"], _row(shared["a"], LSGAN)
    assert parent["tags"]["unmask.reused_trials"] == "1"
    assert f"unmask.reused.{b_ls['mlflow_run_id']}" in parent["tags"]
    [link] = parent["links"]
    assert link["trained_by"] == A and link["cell_label"] == LSGAN and link["seed"] == 0
    assert link["mlflow_run_id"] == b_ls["mlflow_run_id"]
    assert link["ui_path"] == f"#/experiments/{link['experiment_id']}/runs/{link['mlflow_run_id']}"


def test_changed_grid_reuses_the_store_and_leaves_other_studies_alone(shared):
    assert shared["after_b2"] == {A: 2, B: 2}          # only rahinge was trained
    b2 = pd.DataFrame(shared["b2"])
    assert b2["cell_label"].tolist() == [LSGAN, "adv_loss=rahinge"]
    assert (b2["status"] == "TERMINATED").all()
    assert b2["reused"].tolist() == [True, False]
    a_ls = _row(shared["a"], LSGAN)
    assert _row(shared["b2"], LSGAN)["mlflow_run_id"] == a_ls["mlflow_run_id"]
    before, after = shared["store"], shared["store_2"]
    assert set(before) < set(after) and len(after) == len(before) + 1
    for key, entry in before.items():                   # stored trials untouched
        assert after[key] == entry
    assert shared["a_files_2"] == shared["a_files"]     # A's results files untouched
    assert shared["b2_parent"]["tags"]["unmask.reused_trials"] == "1"
    assert shared["b2_parent"]["n_parents"] == 2         # a new grid: a new parent run
