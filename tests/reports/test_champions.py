"""Other studies' champions measured on a study's test images (seed 004's Table 1)."""

import math

import pandas as pd
import pytest

from unmask.errors import UnmaskError
from unmask.evaluation.champions import champion_row
from unmask.reports.across import champions_section
from unmask.reports.tables import METRICS, _fmt


def _trials(rows):
    return pd.DataFrame([{"trial_id": f"t{i}", "cell": "{}", "cell_label": c, "seed": s, "status": st,
                          "checkpoint": f"results/x/checkpoints/t{i}.pt", "val_psnr": v}
                         for i, (c, s, st, v) in enumerate(rows)])


def test_the_champion_is_the_finished_trial_with_the_best_validation_psnr():
    t = _trials([("a", 0, "TERMINATED", 20.0), ("b", 0, "TERMINATED", 25.0), ("c", 0, "ERROR", 30.0),
                 ("d", 0, "NOT_RUN", math.nan)])
    assert champion_row(t, "x")["cell_label"] == "b"
    with pytest.raises(UnmaskError, match="results/x/trials.parquet: no finished trial"):
        champion_row(_trials([("c", 0, "ERROR", 30.0)]), "results/x/trials.parquet")


def test_the_section_sets_each_champion_beside_the_best_configuration_and_the_baselines():
    ev = pd.DataFrame([{"role": "trial", "cell_label": "two", "test_psnr": 28.0},
                       {"role": "trial", "cell_label": "two", "test_psnr": 30.0},
                       {"role": "trial", "cell_label": "one", "test_psnr": 27.0},
                       {"role": "baseline", "cell_label": "telea", "test_psnr": 22.0}])
    champs = pd.DataFrame([{"study": "table4", "cell_label": "framework=paired", "seed": 1, "test_psnr": 26.5}])
    lines = champions_section(champs, ev, ["psnr"], METRICS, _fmt)
    row = next(line for line in lines if line.startswith("| PSNR"))
    assert row == "| PSNR (dB) ↑ | 29.00 | 26.50 | 22.00 |"
    assert any("champion of table4: framework=paired seed 1" in line for line in lines)
