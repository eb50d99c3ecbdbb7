import math

import numpy as np
import pandas as pd
import pytest

from unmask.reports import PAPER
from unmask.reports.tables import best_cells, study_table

NOTE = "n/a: weights missing (AlexNet backbone alexnet-owt-7be5be79.pth not in /w; no internet to fetch it)"


def _row(label, seed, l1, psnr, role="trial", lpips=math.nan, status="TERMINATED"):
    return {"study": "s", "role": role, "trial_id": f"{label}-{seed}", "cell": "{}", "cell_label": label,
            "seed": seed, "status": status, "test_l1": l1, "test_psnr": psnr, "test_lpips": lpips,
            "note_lpips": NOTE if math.isnan(lpips) else "", "steps": 150 if role == "trial" else 0,
            "image_size": 32, "data_source": "synthetic", "n_test": 12}


def _eval_df(lpips=(math.nan,) * 4):
    rows = [_row("adv_loss=hinge", 0, 0.10, 20.0, lpips=lpips[0]), _row("adv_loss=hinge", 1, 0.20, 22.0, lpips=lpips[1]),
            _row("adv_loss=wgan_gp", 0, 0.05, 19.0, lpips=lpips[2]), _row("adv_loss=wgan_gp", 1, 0.07, 19.5, lpips=lpips[3]),
            _row("adv_loss=lsgan", 0, math.nan, math.nan, status="ERROR"),
            _row("telea", None, 0.30, 15.0, role="baseline", lpips=lpips[0])]
    df = pd.DataFrame(rows)
    df["seed"] = df["seed"].astype("Int64")
    return df


def _line(md, start):
    return next(line for line in md.splitlines() if line.startswith(start))


def test_mean_std_and_best_per_direction():
    md = study_table(_eval_df(), {"title": "Table 3 micro"}, None)
    l1 = _line(md, "| L1 ↓").split(" | ")
    psnr = _line(md, "| PSNR (dB) ↑").split(" | ")
    # hinge: mean 0.15, std 0.0707; wgan: 0.06 ± 0.0141 is the lowest L1 -> bold, and both its seeds
    # beat both of hinge's (the failed lsgan has no seeds) -> † (ahead beyond seed noise)
    assert l1[1] == "0.1500 ± 0.0707" and l1[2] == "**0.0600 ± 0.0141**†"
    # PSNR: higher is better -> hinge (21.00 ± 1.41; seeds 20, 22 above wgan's 19, 19.5) bold and †
    assert psnr[1] == "**21.00 ± 1.41**†" and psnr[2] == "19.25 ± 0.35"
    assert l1[3] == "–"   # the failed cell has no numbers
    labels, mean = best_cells(_eval_df())["l1"]
    assert labels == ["adv_loss=wgan_gp"] and mean == pytest.approx(0.06)


def test_header_names_source_size_steps_seeds_and_failures():
    md = study_table(_eval_df(), {"title": "Table 3 micro", "kinds": ["surgical"]}, None)
    assert md.startswith("# Table 3 micro")
    assert "Data source: synthetic (occlusion kinds: surgical)" in md
    assert "Image size: 32 px" in md and "Training steps per trial: 150" in md
    assert "Seeds: 0, 1 (3 configurations, 5 trials, 1 failed: adv_loss=lsgan-0)" in md
    header = _line(md, "| metric")
    assert "adv_loss=hinge (n=2)" in header and "baseline: telea" in header


def test_the_published_tables_are_the_ones_params_may_name():
    """reading params.yaml checks ``reference`` against the catalogue's names, the report looks them up in PAPER"""
    from unmask.catalog.papers import PAPER_TABLES

    assert tuple(PAPER) == PAPER_TABLES


def test_paper_columns_beside_ours_with_their_setting():
    md = study_table(_eval_df(), {"title": "t"}, PAPER["paper_table3"])
    header = _line(md, "| metric")
    assert header.endswith("| paper: RL λ0.1 |") and "paper: W λ0.1" in header
    l1 = _line(md, "| L1 ↓").split(" | ")
    assert l1[header.split(" | ").index("paper: W λ0.1")] == "0.0453"
    assert "256 px" in md and "2 epochs" in md and "FFHQ / CMFD" in md
    assert _line(md, "| L1 ↓").split(" | ")[4] == "0.3000"   # the baseline column, never bold


def test_lpips_unavailable_reads_na_with_reason_in_footnote():
    md = study_table(_eval_df(), {"title": "t"}, None)
    cells = _line(md, "| LPIPS ↓").split(" | ")[1:]
    assert all(c.startswith("n/a: weights missing[^lpips]") for c in cells)
    assert f"[^lpips]: {NOTE}" in md


def test_lpips_present_is_a_number():
    md = study_table(_eval_df(lpips=(0.3, 0.5, 0.2, 0.2)), {"title": "t"}, None)
    cells = _line(md, "| LPIPS ↓").split(" | ")
    assert cells[1] == "0.4000 ± 0.1414" and cells[2] == "**0.2000 ± 0.0000**†"
    assert "[^lpips]" not in md and not np.isnan(best_cells(_eval_df(lpips=(0.3, 0.5, 0.2, 0.2)))["lpips"][1])


def test_study_metrics_choose_and_order_the_rows():
    md = study_table(_eval_df(), {"title": "t", "metrics": ["psnr", "l1"]}, None)
    main = md.split("| metric", 1)[1].split("\n\n", 1)[0]   # the comparison table, not the sections below
    rows = [line.split(" | ")[0] for line in main.splitlines() if line.startswith("| ")]
    assert rows == ["| PSNR (dB) ↑", "| L1 ↓", "| parameters G / D"]   # the metrics, then the networks' sizes
    assert "LPIPS" not in md


def test_a_configuration_that_could_not_run_says_so_with_its_reason():
    df = _eval_df()
    why = "not run: VGG-19 weights missing (looked for vgg19-dcbb9e9d.pth in /w)"
    extra = [{**_row("weights.perceptual=33", s, math.nan, math.nan, status="NOT_RUN"), "note": why} for s in (0, 1)]
    df = pd.concat([df, pd.DataFrame(extra)], ignore_index=True)
    md = study_table(df, {"title": "t"}, None)
    psnr = _line(md, "| PSNR (dB) ↑").split(" | ")
    header = _line(md, "| metric").split(" | ")
    col = next(i for i, h in enumerate(header) if h.startswith("weights.perceptual=33"))
    assert psnr[col] == "not run[^notrun]"
    assert "2 not run" in md
    assert "[^notrun]: VGG-19 weights missing (looked for vgg19-dcbb9e9d.pth in /w)" in md


def test_comparisons_the_pipeline_cannot_run_and_baseline_caveats_are_stated_under_the_table():
    md = study_table(_eval_df(), {"title": "t"}, PAPER["paper_seed001_conv_type"])
    line = _line(md, "Not run: StyleGAN2 with a pSp encoder")
    assert "pretrained on FFHQ" in line and "cannot be downloaded here" in line
    df = _eval_df()
    df.loc[df.role == "baseline", "cell_label"] = "lower_face"
    assert "clean face, so it is at its best here" in _line(study_table(df, {"title": "t"}, None), "Baseline `lower_face`")
    assert "Baseline `" not in study_table(_eval_df(), {"title": "t"}, None)
