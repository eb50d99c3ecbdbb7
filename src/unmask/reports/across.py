"""The report's sections for what the ``evaluate_across`` stage measured (:mod:`unmask.evaluation.across`):
other studies' champions on this study's test images, and end to end with a predicted mask.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from unmask.evaluation.end_to_end import PREDICTED, THRESHOLD, EndToEnd


def champions_section(champions: pd.DataFrame, eval_df: pd.DataFrame, metrics: Sequence[str],
                      labels: Mapping[str, tuple[str, bool]], fmt) -> list[str]:
    """Markdown: this study's best configuration per metric, each champion, the baselines."""
    if champions.empty:
        return []
    trials = eval_df[eval_df["role"] == "trial"]
    base = eval_df[eval_df["role"] == "baseline"].drop_duplicates("cell_label")
    cols = ["this study's best (mean over seeds)"] + [f"champion of {r.study}: {r.cell_label} seed {r.seed}"
                                                      for r in champions.itertuples()]
    cols += [f"baseline: {b}" for b in base["cell_label"]]
    lines = ["", "## Against other studies' champions (same test images)", "",
             "| metric | " + " | ".join(c.replace("|", "\\|") for c in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for m in metrics:
        col = f"test_{m}"
        name, higher = labels[m]
        means = trials.groupby("cell_label", sort=False)[col].mean().dropna() if col in trials else pd.Series([])
        best = (means.max() if higher else means.min()) if len(means) else math.nan
        row = [f"{name} {'↑' if higher else '↓'}", "–" if math.isnan(best) else fmt(m, best)]
        row += ["–" if pd.isna(v) else fmt(m, float(v)) for v in champions.get(col, [math.nan] * len(champions))]
        row += ["–" if pd.isna(v) else fmt(m, float(v)) for v in base.get(col, [math.nan] * len(base))]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "A champion is its study's trial best on the validation metric it is chosen on (a search's "
                  "own metric and mode, else its trainer's: PSNR for an image trainer; the registered `champion` "
                  "model), measured here on this study's test images and occlusion kinds with the true mask "
                  "where its model takes one; a CycleGAN champion sees the image only. One trial, one seed: "
                  "no spread is known for it, so a difference to it is not called beyond noise."]
    return lines


def cost_of_segmenting(eval_df: pd.DataFrame, twins: pd.DataFrame, metrics: Sequence[str],
                       labels: dict[str, tuple[str, bool]]) -> list[str]:
    """Markdown table: per configuration (and baseline), the change of each metric from the true mask to
    the predicted one, mean and per seed. The two are the same checkpoint, so the change is paired: a sign
    shared by every seed is not seed noise (whether it matters is for the size to say)."""
    by_id = eval_df.set_index(eval_df["trial_id"].astype(str))
    cols = [m for m in metrics if f"test_{m}" in twins and twins[f"test_{m}"].notna().any()]
    lines = ["", "| configuration | " + " | ".join(f"Δ {labels[m][0]}" for m in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for label, group in twins.groupby("cell_label", sort=False):
        cells = []
        for m in cols:
            deltas = [float(r[f"test_{m}"]) - float(by_id.loc[str(r["twin_of"]), f"test_{m}"])
                      for _, r in group.iterrows() if str(r["twin_of"]) in by_id.index]
            signs = {np.sign(d) for d in deltas}
            same = len(deltas) > 1 and len(signs) == 1 and 0 not in signs
            cells.append(f"{np.mean(deltas):+.4g}" + (" (" + ", ".join(f"{d:+.3g}" for d in deltas) + ")"
                                                      if len(deltas) > 1 else "") + (" *" if same else ""))
        lines.append(f"| {label.removesuffix(' ' + PREDICTED)} | " + " | ".join(cells) + " |")
    lines += ["", "Δ: predicted-mask value minus true-mask value of the same checkpoint (baselines: the same "
                  "method), mean over seeds and each seed in brackets; * marks a change of the same sign in "
                  "every seed."]
    return lines


def end_to_end_section(e2e: EndToEnd, figure: str | None, eval_df: pd.DataFrame | None = None,
                       metrics: Sequence[str] = (), labels: dict[str, tuple[str, bool]] | None = None) -> list[str]:
    """Markdown under the study table: where the predicted masks came from, how good they are, and
    (given the study's ``eval_df``, metrics and their labels) what they cost each configuration."""
    s = e2e.segmentation
    lines = ["", "## End to end: the segmenter's predicted mask", "",
             f"The `{PREDICTED}` columns are the same trained checkpoints as their true-mask twins, given "
             f"p > {THRESHOLD} of the champion segmenter (`{e2e.segmenter}`) instead of the true mask; the "
             "baselines too. On these test images that mask has pixel accuracy "
             f"{s.get('pixel_acc', float('nan')):.4f}, IoU {s.get('iou', float('nan')):.4f} and Dice "
             f"{s.get('dice', float('nan')):.4f}. The masked metrics average over the true occluded pixels. "
             "The inpainters were trained with true masks (seed 001 trains its two networks apart), so a "
             "drop from a cell to its twin is the cost of segmenting."]
    if eval_df is not None and labels and len(e2e.rows):
        lines += cost_of_segmenting(eval_df, e2e.rows, metrics, labels)
    if figure:
        lines += ["", f"![target, input with the predicted mask (green), then each configuration's coarse, "
                      f"refined and composite output (seed 001's Figs. 7-11)]({figure})"]
    return lines
