"""Honest comparisons in the reports: beats-baseline marks, the seed-range (non-overlap) rule, the
reference configuration, metrics.json for `dvc metrics`, and the CPU that produced a report."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from unmask.config import parse_params
from unmask.errors import ConfigError
from unmask.evaluation.summary import (beats_mark, compare_seeds, false_positive_rate, metrics_summary,
                                       write_metrics_json)
from unmask.reports.compare import noise_section
from unmask.reports.tables import search_table, study_table
from unmask.studies import parse_study_params
from unmask.sysinfo import cpu_description, vector_extensions

CPU = "Test CPU; vector extensions: avx2; torch 0"


def _row(label, seed, psnr, ssim, l1=0.1, role="trial", status="TERMINATED", cpu=CPU):
    return {"study": "s", "role": role, "trial_id": f"{label}-{seed}", "cell": "{}", "cell_label": label,
            "seed": seed, "status": status, "test_psnr": psnr, "test_ssim": ssim, "test_psnr_masked": psnr - 5,
            "test_l1": l1, "test_lpips": math.nan, "note_lpips": "n/a", "steps": 100 if role == "trial" else 0,
            "image_size": 32, "data_source": "synthetic", "n_test": 12, "cpu": cpu, "eval_cpu": cpu}


def _eval_df(rows):
    df = pd.DataFrame(rows)
    df["seed"] = df["seed"].astype("Int64")
    return df


# telea: PSNR 20, SSIM 0.70. "all" beats it in every seed, "none" in no seed, "mixed" in one of two.
CELLS = {"a=all": [(21.0, 0.75), (22.0, 0.76)],
         "a=none": [(18.0, 0.60), (19.0, 0.61)],
         "a=mixed": [(19.5, 0.69), (21.5, 0.72)]}


def _study_df(cells=CELLS, baseline=(20.0, 0.70), failed=False):
    rows = [_row(label, seed, p, s) for label, seeds in cells.items() for seed, (p, s) in enumerate(seeds)]
    if failed:
        rows.append(_row("a=failed", 0, math.nan, math.nan, l1=math.nan, status="ERROR"))
    rows.append(_row("telea", None, *baseline, role="baseline"))
    return _eval_df(rows)


def _section(md, title):
    return md.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def _table_row(md, start):
    """The cells of the markdown table row starting with ``start`` (first cell keeps its "| ")."""
    return next(line for line in md.splitlines() if line.startswith(start)).removesuffix(" |").split(" | ")


def test_beats_mark_every_seed_none_or_mixed():
    assert beats_mark([21, 22], 20, higher=True) == "✓"
    assert beats_mark([18, 20], 20, higher=True) == "✗"     # equal is not better
    assert beats_mark([19, 21], 20, higher=True) == "~"
    assert beats_mark([0.05, 0.06], 0.1, higher=False) == "✓"    # lower is better (L1)
    assert beats_mark([], 20, higher=True) is None and beats_mark([21], math.nan, higher=True) is None
    # a model that returns its input is 0.00004 dB above it: a tie, not a win
    assert beats_mark([17.10004, 17.10004], 17.1, higher=True) == "✗"
    assert beats_mark([0.05840, 0.05839], 0.0584, higher=False) == "✗"


def test_report_marks_each_cell_against_each_baseline_with_the_rule():
    md = study_table(_study_df(failed=True), {"name": "s", "title": "t", "metrics": ["psnr", "ssim"]}, None)
    beats = _section(md, "Against the baselines")
    assert "(metrics: PSNR, SSIM, PSNR masked)" in beats   # a key metric even when the study does not show it
    assert "- a=all (n=2): telea ✓ all" in beats                          # one short line per configuration
    assert "- a=none (n=2): telea ✗ PSNR, SSIM, PSNR masked" in beats
    assert "- a=mixed (n=2): telea ~ PSNR, SSIM, PSNR masked" in beats
    assert "- a=failed (n=0): not measured" in beats
    assert "| configuration" not in beats                                 # no 21-column table
    assert "1 of 3 configurations beat telea on SSIM in every seed" in beats
    assert "(1 configuration without results on SSIM is not counted)" in beats
    assert "✓: every seed of the configuration is better than the baseline by more than 0.1%" in beats
    assert "~: the seeds disagree" in beats


def test_non_overlap_rule_separates_only_disjoint_seed_ranges():
    assert compare_seeds([21, 22], [18, 19], higher=True) == 1
    assert compare_seeds([18, 19], [21, 22], higher=True) == -1
    assert compare_seeds([19.5, 21.5], [21, 22], higher=True) == 0     # ranges overlap
    assert compare_seeds([20, 21], [19, 20], higher=True) == 0         # a shared value is an overlap
    assert compare_seeds([0.05, 0.06], [0.07, 0.08], higher=False) == 1
    assert compare_seeds([21], [18, 19], higher=True) is None          # one seed: cannot call
    assert false_positive_rate(2, 2) == pytest.approx(1 / 3)
    assert false_positive_rate(3, 3) == pytest.approx(1 / 10)


def test_report_lists_separated_and_indistinguishable_cells_and_the_reference():
    md = study_table(_study_df(), {"name": "s", "title": "t", "metrics": ["psnr", "ssim"],
                                   "reference_cell": "a=none"}, None)
    noise = _section(md, "Differences above seed noise")
    assert "2/C(n1+n2, n1)" in noise and "2 vs 2 seeds: 1/3" in noise
    assert ("- PSNR (dB) ↑: best mean `a=all`; worse beyond noise: `a=none`; indistinguishable from it: `a=mixed`"
            in noise)
    assert ("Against the reference configuration `a=none` (`studies.s.reference_cell`)" in noise)
    assert "- SSIM ↑: better beyond noise: `a=all`, `a=mixed`; worse beyond noise: none; indistinguishable: none" in noise
    # without reference_cell the first cell is the reference
    first = _section(study_table(_study_df(), {"name": "s", "title": "t"}, None), "Differences above seed noise")
    assert "Against the reference configuration `a=all` (the first; set `studies.s.reference_cell`" in first


def test_three_seeds_state_one_in_ten_and_one_seed_cannot_call():
    three = {"a=x": [(21, 0.7), (22, 0.7), (23, 0.7)], "a=y": [(18, 0.7), (19, 0.7), (20, 0.7)]}
    assert "3 vs 3 seeds: 1/10" in "\n".join(noise_section(_study_df(three), ["psnr"]))
    one = {"a=x": [(21, 0.7)], "a=y": [(18, 0.6)]}
    text = "\n".join(noise_section(_study_df(one), ["psnr", "ssim"]))
    assert "too few seeds for any difference to be called" in text and "worse beyond noise" not in text
    md = study_table(_study_df(one), {"name": "s", "title": "t", "metrics": ["psnr"]}, None)
    assert "†" not in "".join(_table_row(md, "| PSNR (dB) ↑"))


def test_dagger_marks_best_beyond_noise_not_merely_best_mean():
    md = study_table(_study_df(), {"name": "s", "title": "t", "metrics": ["psnr"]}, None)
    assert _table_row(md, "| PSNR (dB) ↑")[1] == "**21.50 ± 0.71**"    # a=all overlaps a=mixed: no †
    apart = {"a=all": [(23.0, 0.8), (24.0, 0.8)], **{k: v for k, v in CELLS.items() if k != "a=all"}}
    md = study_table(_study_df(apart), {"name": "s", "title": "t", "metrics": ["psnr"]}, None)
    assert _table_row(md, "| PSNR (dB) ↑")[1] == "**23.50 ± 0.71**†"
    assert "† marks a configuration ahead of every other configuration beyond seed noise" in md


def test_metrics_json_numbers_nulls_and_baselines(tmp_path):
    df = _study_df(failed=True)
    path = tmp_path / "metrics.json"
    write_metrics_json(df, path, "s")
    got = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert got["study"] == "s"
    assert set(got["cells"]) == {*CELLS, "a=failed"}
    psnr = got["cells"]["a=all"]["test_psnr"]
    assert psnr["mean"] == pytest.approx(21.5) and psnr["std"] == pytest.approx(math.sqrt(0.5)) and psnr["n"] == 2
    assert got["cells"]["a=all"]["test_lpips"] == {"mean": None, "std": None, "n": 0}
    assert got["cells"]["a=failed"]["test_ssim"] == {"mean": None, "std": None, "n": 0}
    assert got["baselines"]["telea"]["test_psnr"] == 20.0 and got["baselines"]["telea"]["test_lpips"] is None
    assert got["beats"]["a=all"]["telea"]["test_ssim"] is True
    assert got["beats"]["a=none"]["telea"]["test_ssim"] is False
    assert got["beats"]["a=mixed"]["telea"]["test_ssim"] is False      # not every seed
    assert got["beats"]["a=failed"]["telea"]["test_ssim"] is None
    single = metrics_summary(_study_df({"a=x": [(21, 0.7)]}))
    assert single["cells"]["a=x"]["test_psnr"] == {"mean": 21.0, "std": None, "n": 1}


@pytest.mark.parametrize("study, msg", [
    ({"grid": {"generator.approach": ["normal", "mask"]}, "reference_cell": "generator.approach=masks"},
     "studies.t4.reference_cell: 'generator.approach=masks' is not a cell of this study"),
    ({"search": {"space": {"lr_g": {"loguniform": [1e-4, 1e-3]}}}, "reference_cell": "default"},
     "studies.t4.reference_cell: a search study has no fixed cells"),
])
def test_reference_cell_must_name_a_cell(study, msg):
    base = {"train": {"image_size": 32, "steps": 4, "generator": {"base_channels": 4, "n_blocks": 1}}}
    with pytest.raises(ConfigError) as e:
        parse_study_params(parse_params({**base, "studies": {"t4": study}}))
    assert str(e.value).startswith(f"params.yaml: {msg}"), str(e.value)


def test_a_misspelt_grid_key_is_named_even_when_the_study_has_a_reference_cell():
    base = {"train": {"image_size": 32, "steps": 4, "generator": {"base_channels": 4, "n_blocks": 1}}}
    study = {"grid": {"adv_los": ["hinge", "lsgan"]}, "reference_cell": "adv_loss=hinge"}
    with pytest.raises(ConfigError, match=r"^params.yaml: studies.t3.grid.adv_los: unknown key"):
        parse_study_params(parse_params({**base, "studies": {"t3": study}}))


def test_reference_cell_accepts_grid_and_extra_cells():
    base = {"train": {"image_size": 32, "steps": 4, "generator": {"base_channels": 4, "n_blocks": 1}}}
    for label in ("generator.approach=mask", "framework=paired weights={l1: 1.0}"):
        p = parse_study_params(parse_params({**base, "studies": {"t4": {
            "grid": {"generator.approach": ["normal", "mask"]},
            "extra_cells": [{"framework": "paired", "weights": {"l1": 1.0}}], "reference_cell": label}}}))
        assert p.studies["t4"].reference_cell == label


CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw amx_tile amx_bf16 amx_int8

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw amx_tile amx_bf16 amx_int8
"""


def test_cpu_description_names_model_and_vector_extensions(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(CPUINFO)
    text = cpu_description(info)
    assert text.startswith("Intel(R) Xeon(R) Platinum 8480+, 2 logical CPUs")
    assert "vector extensions: sse4_2, avx, avx2, fma, avx512f, avx512bw, amx_tile, amx_bf16, amx_int8" in text
    assert "torch " in text
    assert vector_extensions(["neon", "asimd", "sve"]) == ["asimd", "sve"]
    missing = cpu_description(tmp_path / "absent", with_torch=False)
    assert missing and "vector extensions: unknown" in missing


def test_report_header_states_training_cpu_and_evaluation_cpu():
    df = _study_df()
    md = study_table(df, {"name": "s", "title": "t"}, None)
    assert f"- CPU: {CPU}\n" in md
    df.loc[df.role == "trial", "cpu"] = "Trainer CPU; vector extensions: amx_tile"
    md = study_table(df, {"name": "s", "title": "t"}, None)
    assert f"- CPU: Trainer CPU; vector extensions: amx_tile (re-evaluated on {CPU})" in md
    assert "- CPU: not recorded" in study_table(df.drop(columns=["cpu", "eval_cpu"]), {"title": "t"}, None)


def test_search_report_marks_finished_trials_against_baselines_and_calls_nothing():
    trials, rows = [], []
    for tid, p, status in (("t1", 21.0, "TERMINATED"), ("t2", 19.0, "TERMINATED"), ("t3", math.nan, "ERROR")):
        label = f"lr_g={tid}"
        rows.append({**_row(label, 0, p, 0.7 if status == "TERMINATED" else math.nan), "trial_id": tid,
                     "status": status})
        trials.append({"trial_id": tid, "val_psnr": p, "steps_done": 100})
    rows.append(_row("input", None, 20.0, 0.65, role="baseline"))
    search = {"space": {"lr_g": {"choice": ["t1", "t2", "t3"]}}, "num_samples": 3, "metric": "val_psnr"}
    md = search_table(_eval_df(rows), pd.DataFrame(trials), {"title": "t", "search": search, "metrics": ["psnr"]})
    beats = _section(md, "Against the baselines")
    line = {ln.split(":")[0]: ln for ln in beats.splitlines() if ln.startswith("- t")}
    assert line["- t1 (lr_g=t1)"].endswith("input ✓ all") and "✗ PSNR" in line["- t2 (lr_g=t2)"]
    assert "| t3" not in beats     # only finished trials
    assert "2 of 2 finished trials beat input on SSIM in every seed" in beats
    assert "too few seeds for any difference between trials to be called" in _section(md, "Differences above seed noise")
