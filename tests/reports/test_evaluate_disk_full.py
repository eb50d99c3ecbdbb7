"""A full disk while evaluate writes its table: one line naming the file, the earlier table kept whole."""

from __future__ import annotations

import errno

import pandas as pd
import pytest

from unmask.cli import os_error_line
from unmask.evaluation import evaluate_study

from tests.reports.helpers import make_splits, trial_row, trials_frame


def test_no_space_left_during_evaluate_names_eval_parquet_and_keeps_the_old_one(tmp_path, monkeypatch):
    splits = make_splits(tmp_path)
    trials = trials_frame([trial_row("t1", {"adv_loss": "hinge"}, 0, tmp_path / "none.pt", status="ERROR")])
    out = tmp_path / "results" / "s"
    out.mkdir(parents=True)
    (out / "eval.parquet").write_bytes(b"the last good table")

    def full_disk(self, path, **kw):   # what pyarrow raises: an errno, no file name
        with open(path, "wb") as f:
            f.write(b"PAR1 half")
        raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full_disk)
    with pytest.raises(OSError) as e:
        evaluate_study(trials, splits / "test", None, ["input"], None, out, n_samples=1, progress=False)
    assert os_error_line(e.value) == f"cannot write {out / 'eval.parquet'}: No space left on device"
    assert (out / "eval.parquet").read_bytes() == b"the last good table"
    assert sorted(p.name for p in out.iterdir()) == ["eval.parquet", "figures.npz", "samples.npz"]   # no temporary left
