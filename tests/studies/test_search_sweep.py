"""A micro search study through real Ray Tune (random search and Optuna TPE, each under ASHA) and
MLflow, run twice: ASHA stops some trials early, they are tabulated and tracked as such, the second
run resumes without retraining. Runs in a loopback-only network namespace (skipped where not permitted)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from tests.studies.isolated import namespace_or_skip, run_isolated
from tests.studies.search_study import N_SAMPLES, SELECT, STEPS

SCRIPT = Path(__file__).with_name("search_study.py")


# random search runs by default (CI); Optuna with file:// storage with the slow tests
@pytest.fixture(scope="module", params=["random", pytest.param("optuna", marks=pytest.mark.slow)])
def search(request, tmp_path_factory) -> dict:
    namespace_or_skip()
    work = tmp_path_factory.mktemp(f"search_{request.param}")
    return {**run_isolated(SCRIPT, str(work), request.param, timeout=300), "algorithm": request.param,
            "work": work}


def test_samples_are_drawn_from_the_space_and_asha_stops_some(search):
    t = pd.DataFrame(search["before"])
    assert len(t) == N_SAMPLES
    cells = [json.loads(c) for c in t["cell"]]
    assert all(set(c) == {"lr_g", "adv_loss"} for c in cells)
    assert all(1e-5 <= c["lr_g"] <= 1e-1 and c["adv_loss"] in ("lsgan", "hinge") for c in cells)
    assert len({c["lr_g"] for c in cells}) == N_SAMPLES
    assert set(t["status"]) == {"TERMINATED", "STOPPED_EARLY"}, t[["status", "error"]]
    done, stopped = t[t["status"] == "TERMINATED"], t[t["status"] == "STOPPED_EARLY"]
    assert (done["steps_done"] == STEPS).all() and (stopped["steps_done"] < STEPS).all()
    assert done["test_psnr"].notna().all() and stopped["test_psnr"].isna().all()
    assert stopped["val_psnr"].notna().all()             # judged on validation, never on test
    # copied into the study's checkpoints folder (the optuna run's Tune storage is a file:// URI)
    for ckpt, trial_id in zip(t["checkpoint"], t["trial_id"]):
        assert ckpt == f"results/tune/checkpoints/{trial_id}.pt" and (search["work"] / ckpt).is_file()
    metrics = search["metrics"]
    assert metrics["stopped_early"] == len(stopped) and metrics["failed"] == 0


def test_mlflow_runs_end_finished_and_name_the_early_stop(search):
    t = pd.DataFrame(search["before"])
    runs = {r["run_id"]: r for r in search["runs"]}
    assert all(r["status"] == "FINISHED" for r in runs.values()), [r["status"] for r in runs.values()]
    parents = [r for r in runs.values() if "mlflow.parentRunId" not in r["tags"]]
    assert len(parents) == 1 and len(runs) == N_SAMPLES + 1
    assert json.loads(parents[0]["params"]["search"])["num_samples"] == N_SAMPLES
    for row in t.itertuples():
        tag = runs[row.mlflow_run_id]["tags"].get("unmask.stopped_early")
        assert tag == (f"asha at step {row.steps_done}" if row.status == "STOPPED_EARLY" else None)
        assert float(runs[row.mlflow_run_id]["params"]["lr_g"]) == pytest.approx(json.loads(row.cell)["lr_g"])
    done = t[t["status"] == "TERMINATED"]
    select = SELECT[search["algorithm"]]
    values = done[select["metric"]].astype(float)
    best = done.loc[values.idxmin() if select["mode"] == "min" else values.idxmax()]
    assert search["champion"] == best["mlflow_run_id"]


def test_mlflow_champion_is_study_champion_and_infer_default(search):
    """One champion rule: the trial MLflow's alias names is the one ``tune:champion`` loads and the one
    ``unmask infer`` takes by default (for the default run: a search tuned on val_l1, mode min)."""
    from unmask.infer import default_model, load_unmasker

    t = pd.DataFrame(search["before"])
    alias = t[t["mlflow_run_id"] == search["champion"]].iloc[0]
    assert search["metrics"]["champion"] == SELECT[search["algorithm"]]    # the rule the sweep recorded
    loaded = load_unmasker("tune:champion", root=search["work"])
    assert loaded.name == f"tune: {alias['cell_label']} seed {alias['seed']}"
    assert default_model(search["work"], ["tune"], need_mask_free=True) == "tune:champion"


def test_second_run_resumes_without_retraining(search):
    before, after = pd.DataFrame(search["before"]), pd.DataFrame(search["after"])
    for col in ("trial_id", "cell", "status", "steps_done", "train_time_s", "mlflow_run_id", "checkpoint"):
        assert before[col].tolist() == after[col].tolist(), col
    assert all(math.isnan(a) and math.isnan(b) or a == b for a, b in zip(before["test_psnr"], after["test_psnr"]))
