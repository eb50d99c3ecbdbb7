"""The result tables have one definition each (unmask.catalog.schemas), checked when written: a table
that does not fit is refused naming the file and the column, and nothing is written."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from unmask.catalog.schemas import CURVES, EVAL, TRIALS
from unmask.errors import UnmaskError
from unmask.studies.results import write_parquet


def _trial(**over) -> dict:
    row = {"study": "s", "trial_id": "t0", "cell": "{}", "cell_label": "adv_loss=lsgan", "seed": 0,
           "status": "TERMINATED", "steps_done": 4, "framework": "cyclegan", "checkpoint": "results/s/checkpoints/t0.pt",
           "steps": 4, "image_size": 16, "data_source": "synthetic", "error": "", "val_psnr": 20.0,
           "test_psnr": 21.0, "test_psnr@cloth": 20.5, "note_lpips": "", "reused": False}
    row.update(over)
    return row


def test_a_table_that_fits_is_written(tmp_path):
    write_parquet(tmp_path / "trials.parquet", pd.DataFrame([_trial(), _trial(trial_id="t1", test_toy=math.nan)]),
                  TRIALS)
    assert len(pd.read_parquet(tmp_path / "trials.parquet")) == 2


@pytest.mark.parametrize("row, message", [
    ({"stauts": "TERMINATED"}, "column 'stauts' is not in its schema"),
    ({"seed": "0"}, "column 'seed' must hold integer values, got str '0'"),
    ({"test_psnr": "high"}, "column 'test_psnr' must hold float values"),
    ({"status": "DONE"}, "status 'DONE' is not a trial status"),
    ({"reused": "no"}, "column 'reused' must hold boolean values"),
])
def test_a_table_that_does_not_fit_is_refused_naming_file_and_column(tmp_path, row, message):
    path = tmp_path / "trials.parquet"
    with pytest.raises(UnmaskError) as err:
        write_parquet(path, pd.DataFrame([_trial(**row)]), TRIALS)
    assert str(err.value).startswith(f"{path}: trials table") and message in str(err.value)
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_a_missing_column_is_named(tmp_path):
    path = tmp_path / "curves.parquet"
    with pytest.raises(UnmaskError, match=r"curves.parquet: curves table lacks column metric$"):
        write_parquet(path, pd.DataFrame([{"study": "s", "trial_id": "t", "step": 1, "value": 0.5}]), CURVES)
    assert not path.exists()


def test_evaluate_and_the_end_to_end_rows_fit_the_evaluation_schema(tmp_path):
    base = {"study": "s", "role": "baseline", "trial_id": "baseline:input", "cell": "{}", "cell_label": "input",
            "seed": None, "status": "TERMINATED", "checkpoint": "", "steps": 0, "image_size": 16,
            "data_source": "synthetic", "n_test": 4, "cpu": "x", "eval_cpu": "x", "test_psnr": 17.0,
            "test_lpips": math.nan, "note_lpips": "n/a: weights missing"}
    df = pd.DataFrame([base, {**base, "trial_id": "baseline:input:mask=predicted", "twin_of": "baseline:input"}])
    df["seed"] = df["seed"].astype("Int64")
    path = tmp_path / "eval.parquet"
    write_parquet(path, df, EVAL)                      # written: end-to-end twins and metric notes fit
    back = pd.read_parquet(path)
    assert back["twin_of"].tolist()[1] == "baseline:input" and back["note_lpips"].tolist()[0] == "n/a: weights missing"
    with pytest.raises(UnmaskError, match=r"column 'lpips_note' is not in its schema"):
        EVAL.check(df.assign(lpips_note=""), "eval.parquet")


def test_whole_floats_count_as_integers_but_fractions_do_not(tmp_path):
    TRIALS.check(pd.DataFrame([_trial(seed=0.0), _trial(seed=math.nan)]), "t")
    with pytest.raises(UnmaskError, match="column 'seed' must hold integer values, got float 0.5"):
        TRIALS.check(pd.DataFrame([_trial(seed=0.5)]), "t")
