"""A study's comparison table in seed 000's layout: metrics as rows, configurations as columns.

Our cells show mean ± sample std over the seeds that finished; the best mean per metric among our
cells is bold. The no-training baselines and the paper's published columns follow as reference
columns, and the header states where the numbers come from (data source, image size, steps, seeds).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import pandas as pd

from unmask.reports.paper import PaperTable

METRICS: dict[str, tuple[str, bool]] = {   # name -> (row label, higher is better)
    "l1": ("L1", False), "l2": ("L2", False), "psnr": ("PSNR (dB)", True), "ssim": ("SSIM", True),
    "lpips": ("LPIPS", False), "l1_masked": ("L1 masked", False), "l2_masked": ("L2 masked", False),
    "psnr_masked": ("PSNR masked (dB)", True),
}
NA_LPIPS = "n/a: weights missing"


def _fmt(metric: str, value: float) -> str:
    return f"{value:.2f}" if metric.startswith("psnr") else f"{value:.4f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def cell_stats(eval_df: pd.DataFrame) -> dict[str, dict[str, tuple[float, float, int]]]:
    """cell_label -> metric -> (mean, sample std (nan for one seed), seeds measured), trials only, in
    the table's order; metrics NaN for every seed give (nan, nan, 0)."""
    trials = eval_df[eval_df["role"] == "trial"]
    out: dict[str, dict[str, tuple[float, float, int]]] = {}
    for label in dict.fromkeys(trials["cell_label"]):
        rows = trials[trials["cell_label"] == label]
        stats = {}
        for metric in METRICS:
            col = f"test_{metric}"
            if col in rows.columns:
                v = rows[col].dropna().astype(float)
                stats[metric] = (float(v.mean()) if len(v) else math.nan,
                                 float(v.std(ddof=1)) if len(v) > 1 else math.nan, len(v))
        out[label] = stats
    return out


def best_cells(eval_df: pd.DataFrame) -> dict[str, tuple[list[str], float]]:
    """metric -> (cell labels with the best mean over seeds (ties share it), that mean); metrics no
    cell measured are left out."""
    stats = cell_stats(eval_df)
    best: dict[str, tuple[list[str], float]] = {}
    for metric, (_, higher) in METRICS.items():
        means = {label: s[metric][0] for label, s in stats.items() if metric in s and not math.isnan(s[metric][0])}
        if means:
            top = max(means.values()) if higher else min(means.values())
            best[metric] = ([label for label, m in means.items() if m == top], top)
    return best


def _header(eval_df: pd.DataFrame, meta: Mapping[str, Any], stats: dict) -> list[str]:
    trials = eval_df[eval_df["role"] == "trial"]
    seeds = sorted({int(s) for s in trials["seed"].dropna()})
    failed = trials[trials["status"] != "TERMINATED"]

    def values(col: str) -> str:
        vals = sorted({str(v) for v in eval_df.loc[eval_df["role"] == "trial", col].dropna()}) if col in eval_df else []
        return ", ".join(vals) or "unknown"

    n_test = sorted({int(n) for n in eval_df["n_test"] if n})
    lines = [f"# {meta.get('title') or meta.get('name', 'study')}", "",
             f"- Data source: {values('data_source')}"
             + (f" (occlusion kinds: {', '.join(meta['kinds'])})" if meta.get("kinds") else ""),
             f"- Image size: {values('image_size')} px",
             f"- Training steps per trial: {values('steps')}",
             f"- Seeds: {', '.join(map(str, seeds)) or 'none'} ({len(stats)} configurations, {len(trials)} trials"
             + (f", {len(failed)} failed: {', '.join(map(str, failed['trial_id']))}" if len(failed) else "") + ")",
             f"- Test images: {', '.join(map(str, n_test)) or 'none'}; metrics re-computed from the checkpoints",
             ""]
    return lines


def study_table(eval_df: pd.DataFrame, study_meta: Mapping[str, Any], paper: PaperTable | None) -> str:
    """Markdown report table of one study (``eval_df`` as written by ``evaluate_study``).

    ``study_meta`` needs ``title`` (or ``name``); ``kinds`` is shown when given. ``paper`` adds the
    published columns, prefixed "paper:", with their setting stated under the table.
    """
    stats = cell_stats(eval_df)
    best = best_cells(eval_df)
    baselines = eval_df[eval_df["role"] == "baseline"].drop_duplicates("cell_label").set_index("cell_label")
    metrics = [m for m in METRICS if f"test_{m}" in eval_df.columns]
    lpips_notes = sorted({n for n in eval_df.get("lpips_note", pd.Series(dtype=str)).fillna("") if n})
    lpips_missing = "lpips" in metrics and eval_df["test_lpips"].isna().all()

    columns = [f"{_cell(label)} (n={max((s[2] for s in st.values()), default=0)})" for label, st in stats.items()]
    columns += [f"baseline: {_cell(name)}" for name in baselines.index]
    paper_cols = list(paper.columns) if paper else []
    columns += [f"paper: {_cell(c.label)}" for c in paper_cols]

    lines = _header(eval_df, study_meta, stats)
    lines.append("| metric | " + " | ".join(columns) + " |")
    lines.append("|---|" + "---:|" * len(columns))
    for metric in metrics:
        name, higher = METRICS[metric]
        row = [f"{name} {'↑' if higher else '↓'}"]
        for label, st in stats.items():
            mean, std, n = st.get(metric, (math.nan, math.nan, 0))
            if metric == "lpips" and lpips_missing:
                row.append(f"{NA_LPIPS}[^lpips]")
            elif n == 0:
                row.append("–")
            else:
                text = _fmt(metric, mean) + (f" ± {_fmt(metric, std)}" if n > 1 else "")
                row.append(f"**{text}**" if label in best.get(metric, ([], 0))[0] else text)
        for name in baselines.index:
            v = baselines.loc[name].get(f"test_{metric}", math.nan)
            row.append(f"{NA_LPIPS}[^lpips]" if metric == "lpips" and lpips_missing
                       else "–" if pd.isna(v) else _fmt(metric, float(v)))
        row += [f"{c.metrics[metric]:g}" if metric in c.metrics else "–" for c in paper_cols]
        lines.append("| " + " | ".join(row) + " |")

    lines += ["", "Mean ± sample standard deviation over seeds (n = seeds measured); the best mean per metric "
              "among our configurations is in **bold** (↓ lower is better, ↑ higher is better). Baselines fill "
              "the mask without training. Masked metrics average over the occluded pixels only."]
    if paper:
        lines += ["", f"Paper columns: {paper.source}; setting: {paper.setting}. They are not comparable "
                  "number for number with ours (different data, image size and training length)."
                  + (f" {paper.note}" if paper.note else "")]
    if lpips_missing:
        lines += ["", f"[^lpips]: {'; '.join(lpips_notes) or 'n/a: LPIPS was not computed'}"]
    return "\n".join(lines) + "\n"
