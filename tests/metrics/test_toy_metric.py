"""A metric that needs weights, added by a contributor as one declaration and one loader (here, in this
test alone): the suite loads it once, trainers and evaluation compute it without knowing its name, a
study that lists it gets its row in the report's table, and absent weights give "n/a" with the reason."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from unmask.catalog import metrics as catalog
from unmask.catalog.metrics import MetricSpec, register_metric
from unmask.evaluation import evaluate_study
from unmask.metrics import suite as suite_module
from unmask.metrics.lpips_metric import MetricUnavailable
from unmask.metrics.suite import MetricSuite
from unmask.reports.tables import study_table

from tests.reports.helpers import make_splits, train_tiny, trial_row, trials_frame

WEIGHTS = "toy-weights.bin"


def _load_toy(weights_dir, image_size):
    """Mean absolute difference scaled by a number read from its weights file: (pred, target) -> (B,)."""
    path = None if weights_dir is None else Path(weights_dir) / WEIGHTS
    if path is None or not path.is_file():
        return MetricUnavailable("toy", f"n/a: weights missing ({WEIGHTS} not in {weights_dir})")
    scale = float(path.read_text())
    return lambda pred, target: scale * (pred - target).abs().flatten(1).mean(1)


@pytest.fixture
def toy():
    """Registered for this test only: declared in the catalogue, its loader beside LPIPS's."""
    spec = register_metric(MetricSpec("toy", "Toy distance", False, ".3f", shown_by_default=False,
                                      needs_weights=WEIGHTS))
    suite_module.WEIGHTED["toy"] = _load_toy
    yield spec
    catalog.METRIC_SPECS.remove(spec)
    del catalog.SPECS["toy"], suite_module.WEIGHTED["toy"]


def test_a_registered_metric_with_weights_appears_in_a_micro_studys_table(toy, tmp_path):
    torch.set_num_threads(1)
    splits = make_splits(tmp_path)
    _, ckpt = train_tiny(splits, tmp_path / "t0")
    trials = trials_frame([trial_row("t0", {"adv_loss": "lsgan"}, 0, ckpt)])
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / WEIGHTS).write_text("2.0")
    suite = MetricSuite(str(weights), names=["toy"])
    assert suite.unavailable == {}
    table = evaluate_study(trials, splits / "test", None, ["input"], suite, tmp_path / "out", n_samples=1,
                           batch_size=4, progress=False)
    row = table[table.trial_id == "t0"].iloc[0]
    assert row["test_toy"] == pytest.approx(2.0 * row["test_l1"], rel=1e-5)   # computed on the same images
    md = study_table(table, {"title": "micro", "metrics": ["toy", "psnr"]}, None)
    assert "Toy distance" in md and f"{row['test_toy']:.3f}" in md

    missing = MetricSuite(str(tmp_path / "nothing"), names=["toy"])
    assert missing.note("toy").startswith("n/a: weights missing (toy-weights.bin not in")
    got = missing(torch.zeros(2, 3, 8, 8), torch.ones(2, 3, 8, 8))
    assert "toy" not in got and math.isclose(float(got["l1"][0]), 1.0)


def test_an_unavailable_metric_a_study_lists_is_na_with_its_reason_in_the_table(toy, tmp_path):
    torch.set_num_threads(1)
    splits = make_splits(tmp_path)
    _, ckpt = train_tiny(splits, tmp_path / "t0")
    trials = trials_frame([trial_row("t0", {"adv_loss": "lsgan"}, 0, ckpt)])
    suite = MetricSuite(str(tmp_path / "nothing"), names=["toy"])
    table = evaluate_study(trials, splits / "test", None, ["input"], suite, tmp_path / "out", n_samples=1,
                           batch_size=4, progress=False)
    assert table["test_toy"].isna().all() and table["note_toy"].str.startswith("n/a: weights missing").all()
    md = study_table(table, {"title": "micro", "metrics": ["toy", "psnr"]}, None)
    assert "| Toy distance ↓ | n/a: weights missing[^toy] |" in md
    assert f"[^toy]: {suite.note('toy')}" in md


def test_niqe_and_brisque_are_asked_through_the_suite_and_say_why_they_are_not_computed(tmp_path):
    small = MetricSuite(str(tmp_path), names=["niqe", "brisque"], image_size=32)
    assert small.asked == ("niqe", "brisque")
    assert small.note("niqe") == "n/a: NIQE needs images of at least 96 px (got 32)"
    assert small.note("brisque").startswith("n/a: BRISQUE parameters missing (looked for brisque_svm_weights.pth")
    big = MetricSuite(str(tmp_path), names=["niqe"], image_size=128)
    assert big.note("niqe").startswith("n/a: NIQE parameters missing (looked for niqe_modelparameters.mat")
    assert MetricSuite(str(tmp_path)).asked == ("lpips",)     # not asked unless a study lists them
    assert small.notes() == {"note_niqe": small.note("niqe"), "note_brisque": small.note("brisque")}
