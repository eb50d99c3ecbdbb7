"""The leaderboard: every champion (all seeds of its configuration), end to end and the baselines on the
same faces, scored per face at one size, and rendered with rank intervals."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import torch

from unmask.data.torch_datasets import PairedDataset, infinite_batches
from unmask.errors import UnmaskError
from unmask.evaluation.leaderboard import (PREDICTED, _outputs, _reference, masked_ssim, measure_leaderboard,
                                           score_faces)
from unmask.metrics.image import compute_metrics
from unmask.reports.leaderboard import render_leaderboard
from unmask.training import TrainConfig, build_trainer, load_trainer

from tests.reports.helpers import SIZE, make_splits, train_tiny, trial_row

SCORE_AT = 48


def _train(cfg: dict, splits, out, steps: int, seed: int = 0) -> str:
    trainer = build_trainer(TrainConfig.from_dict({"device": "cpu", "threads": 1, "batch_size": 4, "steps": steps,
                                                   "val_every": 0, "checkpoint_every": 0, "log_every": 1,
                                                   "image_size": SIZE, "seed": seed, **cfg}))
    trainer.fit(itertools.islice(infinite_batches(PairedDataset(splits / "train", size=SIZE), 4, seed=seed), steps))
    trainer.save_checkpoint(out)
    return str(out)


INPAINTER = {"framework": "paired", "weights": {"adv": 0.0, "l1": 1.0},
             "generator": {"name": "inpainter", "base_channels": 4, "downsamples": 1, "n_dilated": 1,
                           "conv": "imputed", "stages": 2},
             "discriminator": {"name": "patchgan", "base_channels": 4}}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("leaderboard")
    splits = make_splits(root)
    results = root / "results"
    rows = []
    for seed in (0, 1):
        ckpt = _train(INPAINTER, splits, root / f"inp{seed}.pt", steps=2, seed=seed)
        rows.append({**trial_row(f"a{seed}", {"generator.conv": "imputed"}, seed, ckpt), "val_psnr": 20.0 + seed})
    ckpt = _train(INPAINTER, splits, root / "other.pt", steps=1)
    rows.append({**trial_row("b0", {"generator.conv": "gated"}, 0, ckpt), "val_psnr": 10.0})   # not the champion
    (results / "inp").mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(results / "inp" / "trials.parquet")
    _, cyc = train_tiny(splits, root / "cyc")
    (results / "cyc").mkdir()
    pd.DataFrame([{**trial_row("c0", {"lambda_adv": 0.1}, 0, cyc), "val_psnr": 15.0}]).to_parquet(
        results / "cyc" / "trials.parquet")
    seg = _train({"framework": "segmenter", "lr_g": 2e-3,
                  "generator": {"name": "unet", "depth": 3, "base_channels": 8, "norm": "batch", "out_channels": 1}},
                 splits, root / "seg.pt", steps=30)
    (results / "seg").mkdir()
    pd.DataFrame([{**trial_row("s0", {"weights": "dice"}, 0, seg), "framework": "segmenter", "val_dice": 0.5}]
                 ).to_parquet(results / "seg" / "trials.parquet")
    scores, info = measure_leaderboard(["inp", "cyc"], ["input", "telea"], "seg", ["telea"], results,
                                       splits / "test", None, SCORE_AT, root)
    return root, splits, scores, info


def test_rows_are_each_champions_seeds_end_to_end_and_the_baselines_on_the_same_faces(project):
    root, splits, scores, info = project
    by = {m["name"]: m for m in info["methods"]}
    assert list(by) == ["inp", f"inp {PREDICTED}", "cyc", "input", "telea", f"telea {PREDICTED}"]
    assert by["inp"]["seeds"] == [0, 1] and by["inp"]["cell_label"] == "generator.conv=imputed"
    assert by["cyc"]["model_input"] == "image" and f"cyc {PREDICTED}" not in by   # a CycleGAN takes no mask
    assert by["inp"]["trained_size"] == SIZE and info["scoring_size"] == SCORE_AT
    assert by[f"inp {PREDICTED}"]["parameters"] > by["inp"]["parameters"] > 0   # + the segmenter
    assert all(m["seconds_per_face"] > 0 for m in info["methods"])
    n = info["n_faces"]
    counts = scores.groupby("method").size().to_dict()
    assert counts == {"inp": 2 * n, f"inp {PREDICTED}": 2 * n, "cyc": n, "input": n, "telea": n,
                      f"telea {PREDICTED}": n}
    faces = scores.groupby("method")["image_id"].apply(tuple)
    assert len(set(faces[[m for m in counts if m != "inp" and "inp " not in m]])) == 1


def test_a_mask_taking_model_is_scored_at_the_common_size_with_the_input_kept_outside_the_mask(project):
    root, splits, scores, info = project
    ref = _reference(splits / "test", None, SCORE_AT)
    trainer = load_trainer(root / "inp0.pt", device="cpu")
    out = _outputs(trainer, splits / "test", None, SIZE, ref, None, 4)
    assert out.shape == ref.clean.shape and out.shape[-1] == SCORE_AT
    outside = ref.mask < 0.5
    assert torch.equal(out.expand_as(ref.clean)[outside.expand_as(ref.clean)],
                       ref.occluded[outside.expand_as(ref.clean)])
    mine = scores[(scores["method"] == "inp") & (scores["seed"] == 0)].sort_values("face")
    again = score_faces(out, ref.clean, ref.mask)
    np.testing.assert_allclose(mine["psnr_masked"].to_numpy(), again["psnr_masked"], rtol=1e-6)


def test_the_input_row_is_the_occluded_face_scored_and_masked_ssim_sees_only_the_hole(project):
    root, splits, scores, info = project
    ref = _reference(splits / "test", None, SCORE_AT)
    want = compute_metrics(ref.occluded, ref.clean, ref.mask)["psnr"].numpy()
    got = scores[scores["method"] == "input"].sort_values("face")["psnr"].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5)
    perfect_inside = ref.occluded * (1 - ref.mask) + ref.clean * ref.mask   # right in the hole only
    assert np.allclose(masked_ssim(perfect_inside, ref.clean, ref.mask).numpy(), 1.0, atol=0.05)
    assert (masked_ssim(ref.occluded, ref.clean, ref.mask) < 0.9).all()


def test_the_page_states_the_scoring_size_ranks_with_intervals_and_the_rule(project, tmp_path):
    root, splits, scores, info = project
    md, png = render_leaderboard(scores, info, tmp_path, "leaderboard", "Leaderboard", "synthetic test split",
                                 {"inp": "Imputed (seed 001, Section 4.3.1)"})
    text = md.read_text()
    assert f"Scoring size: **{SCORE_AT} px**" in text and info["cpu"] in text
    assert "| rank (PSNR masked) | method | paper |" in text and "seed 001" in text
    assert "ordered ahead of another only when its whole interval is above" in text
    assert "over Telea" in text and "## Masked PSNR (dB) by occlusion kind" in text
    assert png.is_file() and png.stat().st_size > 1000


def test_real_photos_become_test_faces_scored_by_the_same_code_and_the_folder_is_untouched(project, tmp_path):
    """benchmark-real's path: real unmasked crops aligned, masks drawn, every row scored as on the
    synthetic split (skips without ../shared)."""
    import hashlib
    import shutil

    from tests.conftest import shared_dir
    from unmask.config import AlignConfig, SynthesizeConfig
    from unmask.evaluation.real_faces import prepare_real_test

    root, splits, _, _ = project
    folder = tmp_path / "mine"
    folder.mkdir()
    for p in sorted(shared_dir("faces", "unmasked-crops").glob("*.png"))[:10]:
        shutil.copy(p, folder / p.name)
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    faces = prepare_real_test(folder, tmp_path / "work", AlignConfig(size=SCORE_AT), SynthesizeConfig(), 0,
                              progress=False)
    assert faces.photos == 10 and faces.aligned >= 9 and faces.faces == faces.aligned
    scores, info = measure_leaderboard(["inp"], ["input", "telea"], None, [], root / "results", faces.test_dir,
                                       None, SCORE_AT, root)
    assert info["n_faces"] == faces.faces and set(scores["method"]) == {"inp", "input", "telea"}
    assert scores.groupby("method").size().to_dict() == {"inp": 2 * faces.faces, "input": faces.faces,
                                                         "telea": faces.faces}
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()} == before


def test_the_report_joins_one_part_per_stage_and_refuses_parts_measured_on_other_faces(project, tmp_path):
    from unmask.evaluation.leaderboard import load_leaderboard, write_leaderboard

    root, splits, scores, info = project
    for part, names in (("inp", ["inp", f"inp {PREDICTED}"]), ("baselines", ["input", "telea"])):
        write_leaderboard(scores[scores["method"].isin(names)],
                          {**info, "methods": [m for m in info["methods"] if m["name"] in names]}, tmp_path / part)
    joined, joined_info = load_leaderboard(tmp_path, ["inp", "baselines"])
    assert [m["name"] for m in joined_info["methods"]] == ["inp", f"inp {PREDICTED}", "input", "telea"]
    assert len(joined) == len(scores[scores["method"].isin(["inp", f"inp {PREDICTED}", "input", "telea"])])
    write_leaderboard(scores[scores["method"] == "input"], {**info, "n_faces": 3, "methods": []}, tmp_path / "other")
    with pytest.raises(UnmaskError, match=r"other: measured on other test faces than .*n_faces differ"):
        load_leaderboard(tmp_path, ["inp", "other"])
    with pytest.raises(UnmaskError, match=r"missing/scores.parquet: missing; run the leaderboard stages"):
        load_leaderboard(tmp_path, ["inp", "missing"])


def test_the_benchmark_real_command_runs_end_to_end_and_writes_the_real_leaderboard(project, tmp_path):
    """The whole `run_benchmark_real` (its data steps inside the project's results/), with params naming
    the tiny trained studies; skips without ../shared."""
    import shutil

    from tests.conftest import shared_dir
    from unmask.config import parse_params
    from unmask.pipeline import run_benchmark_real

    root, splits, _, _ = project
    folder = tmp_path / "photos"
    folder.mkdir()
    for p in sorted(shared_dir("faces", "unmasked-crops").glob("*.png"))[:6]:
        shutil.copy(p, folder / p.name)
    params = parse_params({
        "align": {"size": SCORE_AT},
        "tracking": {"uri": "sqlite:///mlflow.db"},
        "studies": {"inp": {"train": INPAINTER}, "cyc": {"train": {"framework": "cyclegan"}},
                    "seg": {"train": {"framework": "segmenter", "generator": {"name": "unet", "out_channels": 1}},
                            "metrics": ["dice"]}},
        "leaderboard": {"champions": ["inp"], "mask_from": "seg", "baselines": ["input", "telea"],
                        "kinds": ["surgical", "cloth"], "image_size": SCORE_AT}})
    written = run_benchmark_real(params, folder, root, progress=False)
    assert [p.name for p in written] == ["leaderboard_real.md", "leaderboard_real.png"]
    text = (root / "reports" / "leaderboard_real.md").read_text()
    assert "6 real unmasked photos of `photos/`" in text and "`inp mask=predicted`" in text
    assert (root / "results" / "benchmark_real" / "leaderboard" / "scores.parquet").is_file()
    assert not list((root / "results").glob(".benchmark_real*"))          # no working folder left behind
