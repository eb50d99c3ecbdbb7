"""Seed 001 end to end: inpainters given the mask the champion segmenter predicts, and the
segmentation studies' no-training baseline."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
import torch

from unmask.data.occlusions.geometry import lower_face_region
from unmask.data.torch_datasets import PairedDataset, infinite_batches
from unmask.metrics.mask_baselines import lower_face_mask
from unmask.evaluation import evaluate_study
from unmask.evaluation.end_to_end import PREDICTED, measure_end_to_end
from unmask.reports.across import end_to_end_section
from unmask.training import TrainConfig, build_trainer
from unmask.training.segmenter import SegmenterTrainer

from unmask.config import SplitConfig
from unmask.data.schema import SYNTH
from unmask.data.split import split_dataset
from unmask.io.shards import write_rows

from tests.helpers import synth_rows
from tests.reports.helpers import SIZE, make_splits, trial_row


def _train(cfg: dict, splits, out, steps: int) -> str:
    trainer = build_trainer(TrainConfig.from_dict({"device": "cpu", "threads": 1, "batch_size": 4, "steps": steps,
                                                   "val_every": 0, "checkpoint_every": 0, "log_every": 1, "image_size": SIZE, **cfg}))
    trainer.fit(itertools.islice(infinite_batches(PairedDataset(splits / "train", size=SIZE), 4, seed=0), steps))
    trainer.save_checkpoint(out)
    return str(out)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("e2e")
    splits = make_splits(root)
    inpainter = _train({"framework": "paired", "weights": {"adv": 0.0, "l1": 1.0},
                        "generator": {"name": "inpainter", "base_channels": 4, "downsamples": 1, "n_dilated": 1,
                                      "conv": "imputed", "stages": 2},
                        "discriminator": {"name": "patchgan", "base_channels": 4}},
                       splits, root / "inpainter.pt", steps=2)
    seg = _train({"framework": "segmenter", "lr_g": 2e-3,
                  "generator": {"name": "unet", "depth": 3, "base_channels": 8, "norm": "batch", "out_channels": 1}},
                 splits, root / "seg.pt", steps=30)
    (root / "results" / "seg").mkdir(parents=True)
    pd.DataFrame([{**trial_row("s0", {"weights": "dice"}, 0, seg), "framework": "segmenter", "val_dice": 0.5}]
                 ).to_parquet(root / "results" / "seg" / "trials.parquet")
    trials = pd.DataFrame([trial_row("t0", {"generator.conv": "imputed"}, 0, inpainter)])
    eval_df = evaluate_study(trials, splits / "test", None, ["input", "telea"], None, root / "out",
                             n_samples=2, batch_size=4, progress=False)
    return root, splits, eval_df


def test_every_mask_taking_trial_and_baseline_gets_a_predicted_mask_twin(project):
    root, splits, eval_df = project
    e2e = measure_end_to_end(eval_df, "seg", root / "results", splits / "test", None, root, n_samples=3)
    labels = list(e2e.rows["cell_label"])
    assert labels == [f"generator.conv=imputed {PREDICTED}", f"input {PREDICTED}", f"telea {PREDICTED}"]
    assert json.loads(e2e.rows["cell"].iloc[0]) == {"generator.conv": "imputed", "mask": "predicted"}
    assert list(e2e.rows["role"]) == ["trial", "baseline", "baseline"]
    assert e2e.segmenter == "seg: weights=dice seed 0"
    assert 0 <= e2e.segmentation["dice"] <= 1 and 0.5 < e2e.segmentation["pixel_acc"] <= 1
    # Figs. 7-11: target, input with the predicted mask, then coarse, refined and composite of the cell
    assert [name for name, _ in e2e.stages] == [
        "target", "input + predicted mask", "generator.conv=imputed: coarse", "generator.conv=imputed: refined",
        "generator.conv=imputed: composite"]
    assert all(img.shape == (3, SIZE, SIZE, 3) and img.dtype == np.uint8 for _, img in e2e.stages)
    text = "\n".join(end_to_end_section(e2e, "x_stages.png"))
    assert "seg: weights=dice seed 0" in text and "x_stages.png" in text


def test_a_segmenter_that_finds_nothing_leaves_every_twin_at_the_input(project, monkeypatch):
    """The model really is given the predicted mask (empty: the composite is the input), while the
    metrics still judge the true occluded pixels (masked PSNR is the input's, not undefined)."""
    root, splits, eval_df = project
    monkeypatch.setattr(SegmenterTrainer, "predict_mask", lambda self, x: torch.zeros(x.shape[0], 1, *x.shape[2:]))
    e2e = measure_end_to_end(eval_df, "seg", root / "results", splits / "test", None, root)
    rows = e2e.rows.set_index("cell_label")
    base = eval_df[eval_df.role == "baseline"].set_index("cell_label")
    assert e2e.segmentation["dice"] == pytest.approx(0.0)
    for twin in (f"generator.conv=imputed {PREDICTED}", f"telea {PREDICTED}"):
        for metric in ("test_psnr", "test_ssim", "test_psnr_masked"):
            assert rows.loc[twin, metric] == pytest.approx(base.loc["input", metric], rel=1e-6), (twin, metric)
    # the cost table: the same checkpoint's change, here from the cell's own PSNR down to the input's
    from unmask.reports.tables import METRICS
    text = "\n".join(end_to_end_section(e2e, None, eval_df, ["psnr"], METRICS))
    cell = eval_df.set_index("cell_label").loc["generator.conv=imputed", "test_psnr"]
    want = base.loc["input", "test_psnr"] - cell
    assert f"| generator.conv=imputed | {want:+.4g} |" in text and "| input | +0 |" in text
    # with the true mask, the trained cell differs from the input
    assert eval_df.set_index("cell_label").loc["generator.conv=imputed", "test_psnr"] != pytest.approx(
        base.loc["input", "test_psnr"], rel=1e-6)


def _jaw(size: int = SIZE) -> np.ndarray:
    """68 landmarks whose jaw line (1..15) and nose bridge outline the lower half of a ``size`` face."""
    lm = np.zeros((68, 2))
    lm[1:16] = [(size * (0.02 + 0.96 * i / 14), size * (0.5 + 0.49 * np.sin(np.pi * i / 14))) for i in range(15)]
    lm[28], lm[29] = (size / 2, size * 0.45), (size / 2, size * 0.5)
    return lm


def test_the_lower_face_region_covers_the_jaw_and_nose_polygon():
    lm = _jaw()
    region = lower_face_region(lm, SIZE)
    assert region[24, 16] and region[17, 2] and not region[8, 16] and not region[31, 0]
    assert region.dtype == bool and region.shape == (SIZE, SIZE)
    mask = lower_face_mask(torch.zeros(2, 3, SIZE, SIZE), torch.from_numpy(np.stack([lm, lm])).float())
    assert mask.shape == (2, 1, SIZE, SIZE) and torch.equal(mask[0, 0].bool(), torch.from_numpy(region))


def test_segmentation_studies_measure_the_lower_face_baseline_like_a_segmenter(project, tmp_path):
    """On faces whose masks cover the lower half and whose landmarks outline it, the baseline finds
    most of each mask, scored per kind too, without training."""
    root, _, _ = project
    rows = synth_rows(n_identities=12, per_identity=2, size=SIZE)
    for r in rows:
        r["landmarks"] = _jaw().reshape(-1).tolist()
    write_rows(tmp_path / "synth", SYNTH, rows)
    split_dataset(tmp_path / "synth", tmp_path / "splits", SplitConfig(val=0.1, test=0.25), seed=0, progress=False)
    trials = pd.read_parquet(root / "results" / "seg" / "trials.parquet")
    table = evaluate_study(trials, tmp_path / "splits" / "test", None, ["lower_face"], None, tmp_path / "out",
                           n_samples=2, batch_size=4, progress=False)
    base = table[table.role == "baseline"].iloc[0]
    assert base["cell_label"] == "lower_face"
    region, half = lower_face_region(_jaw(), SIZE), np.arange(SIZE)[:, None] >= SIZE // 2
    half = np.broadcast_to(half, region.shape)
    inter = (region & half).sum()
    assert base["test_dice"] == pytest.approx(2 * inter / (region.sum() + half.sum()), rel=1e-5)
    assert base["test_iou"] == pytest.approx(inter / (region | half).sum(), rel=1e-5)
    assert base["test_pixel_acc"] == pytest.approx((region == half).mean(), rel=1e-5)
    assert 0.5 < base["test_dice"] < 1
    assert {"test_dice@surgical", "test_dice@cloth"} <= set(table.columns)
    assert np.isfinite(base["test_dice@surgical"])


def test_evaluate_across_writes_what_the_report_renders_and_the_report_measures_nothing(project, tmp_path,
                                                                                        monkeypatch):
    """evaluate_across measures end to end into results/across/<study>/<segmenter study>/; the report reads it back (the
    same rows, segmenter scores and stage pictures) and renders the page without loading any model."""
    from types import SimpleNamespace

    from unmask.errors import UnmaskError
    from unmask.evaluation import across
    from unmask.reports.figures import write_reports

    root, splits, eval_df = project
    results = tmp_path / "results"
    (results / "conv").mkdir(parents=True)
    eval_df.to_parquet(results / "conv" / "eval.parquet")
    (results / "seg").mkdir()
    (results / "seg" / "trials.parquet").write_bytes((root / "results" / "seg" / "trials.parquet").read_bytes())
    study = SimpleNamespace(champions=[], mask_from="seg", kinds=None, test_kinds=None)
    with pytest.raises(UnmaskError, match=r"across/conv/seg/end_to_end.parquet: missing; run the evaluate_across"):
        write_reports(results, tmp_path / "reports0", {"conv": {"mask_from": "seg"}})

    out = across.across_dir(results, "conv", "seg")
    written = across.measure_across("conv", study, "seg", results, splits / "test", out, root, n_samples=3)
    assert sorted(p.name for p in written) == sorted([across.E2E_FILE, across.E2E_INFO_FILE, across.E2E_STAGES_FILE])
    direct = measure_end_to_end(eval_df, "seg", results, splits / "test", None, root, n_samples=3)
    back = across.load_end_to_end(out)
    pd.testing.assert_frame_equal(back.rows, direct.rows)
    assert back.segmenter == direct.segmenter and back.segmentation == pytest.approx(direct.segmentation)
    assert [n for n, _ in back.stages] == [n for n, _ in direct.stages]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(back.stages, direct.stages))

    import unmask.evaluation.champions as champions_mod
    import unmask.evaluation.end_to_end as e2e_mod
    for mod in (champions_mod, e2e_mod):
        monkeypatch.setattr(mod, "load_trainer", lambda *a, **k: pytest.fail("the report loaded a model"))
    names = {p.name for p in write_reports(results, tmp_path / "reports", {"conv": {"mask_from": "seg"}})}
    assert {"conv.md", "conv_stages.png"} <= names
    page = (tmp_path / "reports" / "conv.md").read_text()
    assert f"generator.conv=imputed {PREDICTED}" in page and "seg: weights=dice seed 0" in page
