"""The report of a search study: a leaderboard ranked on the searched val metric, the search scatter
figure and the index headline."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from PIL import Image

from unmask.errors import UnmaskError
from unmask.reports.figures import search_figure, write_reports
from unmask.reports.tables import search_table

from tests.reports.test_tables import NOTE

SEARCH = {"space": {"lr_g": {"loguniform": [1e-4, 1e-2], "uniform": None, "randint": None, "choice": None},
                    "adv_loss": {"choice": ["hinge", "lsgan"], "uniform": None, "loguniform": None, "randint": None}},
          "num_samples": 4, "algorithm": "random", "scheduler": "asha", "metric": "val_psnr", "mode": None,
          "grace_period": 100, "reduction_factor": 3.0}
# trial id, lr_g, adv_loss, status, steps done, val_psnr, test_psnr, test_l1
TRIALS = [("a", 1e-3, "hinge", "TERMINATED", 300, 14.0, 15.0, 0.20),
          ("b", 2e-4, "lsgan", "STOPPED_EARLY", 100, 12.5, math.nan, math.nan),
          ("c", 5e-3, "lsgan", "TERMINATED", 300, 14.5, 14.8, 0.18),
          ("d", 1.5e-4, "hinge", "ERROR", 0, math.nan, math.nan, math.nan)]


def _frames():
    trials, evals = [], []
    for tid, lr, loss, status, done, val, test, l1 in TRIALS:
        cell = {"lr_g": lr, "adv_loss": loss}
        label = f"lr_g={lr:.3g} adv_loss={loss}"
        trials.append({"trial_id": tid, "cell": json.dumps(cell), "cell_label": label, "seed": 0, "status": status,
                       "steps_done": done, "val_psnr": val, "test_psnr": test})
        evals.append({"study": "tune", "role": "trial", "trial_id": tid, "cell": json.dumps(cell), "cell_label": label,
                      "seed": 0, "status": status, "test_l1": l1, "test_psnr": test, "test_lpips": math.nan,
                      "note_lpips": NOTE, "steps": 300, "image_size": 32, "data_source": "synthetic", "n_test": 12})
    evals.append({"study": "tune", "role": "baseline", "trial_id": "baseline:input", "cell": "{}",
                  "cell_label": "input", "seed": None, "status": "TERMINATED", "test_l1": 0.1, "test_psnr": 17.0,
                  "test_lpips": math.nan, "note_lpips": NOTE, "steps": 0, "image_size": 32,
                  "data_source": "synthetic", "n_test": 12})
    ev = pd.DataFrame(evals)
    ev["seed"] = ev["seed"].astype("Int64")
    return pd.DataFrame(trials), ev


def test_leaderboard_ranks_finished_trials_on_the_val_metric():
    trials, ev = _frames()
    md = search_table(ev, trials, {"title": "Tune", "search": SEARCH})
    rows = [line.split(" | ") for line in md.splitlines() if line.startswith("| ") and line[2:3].isdigit()]
    # finished trials first, best val_psnr first (c 14.5 > a 14.0), then the early stop, then the failure
    assert [r[1] for r in rows] == ["c", "a", "b", "d"]
    assert rows[0][2:5] == ["0.005", "lsgan", "finished"]
    assert rows[2][4] == "stopped early at step 100" and rows[3][4] == "failed"
    header = next(line for line in md.splitlines() if line.startswith("| rank"))
    assert "val_psnr ↑" in header and "test PSNR (dB) ↑" in header
    cols = header.split(" | ")
    psnr, l1 = cols.index("test PSNR (dB) ↑"), cols.index("test L1 ↓")
    assert rows[1][psnr] == "**15.00**" and rows[0][l1] == "**0.1800**"   # best finished per test metric
    assert rows[2][psnr] == "–"
    assert "| baseline: input |" in md and "17.00" in md
    assert "n/a: weights missing" in md
    assert "Search: 4 samples drawn by random search (seeded 0); scheduler ASHA" in md
    assert "`lr_g` ~ loguniform(0.0001, 0.01); `adv_loss` ~ choice(hinge, lsgan)" in md
    assert "1 failed: d" in md and "1 stopped early by the scheduler" in md
    assert "Image size: 32 px" in md and "Data source: synthetic" in md


def test_search_figure_and_pages(tmp_path):
    trials, ev = _frames()
    study = tmp_path / "results" / "tune"
    study.mkdir(parents=True)
    trials.to_parquet(study / "trials.parquet")
    ev.to_parquet(study / "eval.parquet")
    with Image.open(search_figure(study / "trials.parquet", SEARCH, tmp_path / "s.png")) as im:
        assert im.format == "PNG" and im.size[0] >= 2 * 300      # a panel per searched parameter
    written = {p.name for p in write_reports(tmp_path / "results", tmp_path / "reports", {"tune": {"search": SEARCH}})}
    assert written == {"tune.md", "tune_search.png", "README.md"}
    index = (tmp_path / "reports" / "README.md").read_text()
    assert "search: 4 sampled, 1 stopped early; selected on val_psnr: lr_g=0.005 adv_loss=lsgan (14.5)" in index
    with pytest.raises(UnmaskError, match="no column 'val_l1'"):
        search_figure(study / "trials.parquet", {**SEARCH, "metric": "val_l1"}, tmp_path / "x.png")
