"""``reports/leaderboard.md`` (and ``leaderboard_real.md``) with a figure: every paper's methods on the
same test faces, ranked with rank intervals (:mod:`.ranking`), from what
:mod:`unmask.evaluation.leaderboard` measured. Renders only."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import pandas as pd

from unmask.evaluation.leaderboard import HIGHER_IS_BETTER, METRICS
from unmask.io.atomic import write_text
from unmask.reports.ranking import DRAWS, LEVEL, RankInterval, ahead, rank_intervals, rule_text, tied_with

RANK_METRIC = "psnr_masked"
REFERENCE_BASELINE = "telea"
LABELS = {"psnr_masked": "PSNR masked (dB)", "ssim_masked": "SSIM masked", "l1_masked": "L1 masked",
          "psnr": "PSNR (dB)", "ssim": "SSIM", "l1": "L1"}
DIGITS = {"psnr_masked": 2, "psnr": 2, "ssim_masked": 4, "ssim": 4, "l1_masked": 4, "l1": 4}


def _matrix(scores: pd.DataFrame, method: str, metric: str) -> np.ndarray:
    """(seeds, faces) of one method's metric, faces in the test order."""
    sub = scores[scores["method"] == method]
    return sub.pivot(index="seed", columns="face", values=metric).sort_index(axis=1).to_numpy(np.float64)


def intervals(scores: pd.DataFrame, methods: list[str], metric: str, groups: Optional[list] = None,
              seed: int = 0) -> dict[str, RankInterval]:
    mats = {m: _matrix(scores, m, metric) for m in methods}
    return {r.method: r for r in rank_intervals(mats, HIGHER_IS_BETTER[metric], groups=groups, seed=seed)}


def _paper(study: Optional[str], titles: Mapping[str, str]) -> str:
    if not study:
        return "classical"
    found = re.search(r"seed (\d{3})[^)]*", titles.get(study, ""))
    return found.group(0) if found else study


def _fmt(v: float, metric: str) -> str:
    return "–" if not np.isfinite(v) else f"{v:.{DIGITS[metric]}f}"


def render_leaderboard(scores: pd.DataFrame, info: Mapping[str, Any], out_dir: str | Path, stem: str,
                       title: str, data_line: str, titles: Mapping[str, str] | None = None) -> list[Path]:
    """Write ``<stem>.md`` and ``<stem>.png`` into ``out_dir``; returns their paths."""
    titles = titles or {}
    out_dir = Path(out_dir)
    methods = [m["name"] for m in info["methods"]]
    by_name = {m["name"]: m for m in info["methods"]}
    faces = scores[scores["method"] == methods[0]].drop_duplicates("face").sort_values("face")
    groups = faces["identity"].tolist()
    ranks = {metric: intervals(scores, methods, metric, groups) for metric in METRICS}
    order = sorted(methods, key=lambda m: (ranks[RANK_METRIC][m].rank, m))
    seeds = sorted({len(by_name[m]["seeds"]) for m in methods if by_name[m]["kind"] != "baseline"})

    lines = [f"# {title}", "",
             f"- Data: {data_line}", f"- Test faces: {info['n_faces']} from {info['n_identities']} identities; "
             f"occlusion kinds: {', '.join(info['kinds'])}",
             f"- Scoring size: **{info['scoring_size']} px** for every row. Each model runs at its own trained size "
             "(column *trained px*); its output is resized to the scoring size (bicubic up, antialiased down) "
             "and, for a model that takes a mask, pasted into the input inside that mask. An image-only model "
             "(CycleGAN) is scored on its whole output.",
             f"- Seeds: every seed of each champion's configuration ({'/'.join(map(str, seeds)) or '–'} per row); "
             "baselines are deterministic (one).",
             f"- End to end (`{'mask=predicted'}`): the same models given p > 0.5 of "
             f"{info.get('segmenter') or 'no segmenter'} instead of the true mask; masked metrics still use the "
             "true mask.",
             f"- CPU: {info['cpu']}. Seconds per face: one core, batch of 8 at the trained size, best of 3 "
             "(end to end adds the segmenter's time).", ""]

    head = ["rank (PSNR masked)", "method", "paper", "configuration", "trained px", "seeds",
            *[f"{LABELS[m]} {'↑' if HIGHER_IS_BETTER[m] else '↓'}" for m in METRICS], "parameters", "s / face"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * 4 + "---:|" * (len(head) - 4)]
    for name in order:
        m = by_name[name]
        cells = []
        for metric in METRICS:
            r = ranks[metric][name]
            cells.append(f"{_fmt(r.mean, metric)} ({r.low}–{r.high})" if r.low != r.high
                         else f"{_fmt(r.mean, metric)} ({r.low})")
        r = ranks[RANK_METRIC][name]
        lines.append("| " + " | ".join([
            f"{r.low}–{r.high}" if r.low != r.high else str(r.low), f"`{name}`", _paper(m.get("study"), titles),
            m.get("cell_label") or "–", str(m.get("trained_size") or "–"), str(len(m["seeds"])), *cells,
            f"{int(m['parameters']):,}" if m["parameters"] else "0",
            f"{m['seconds_per_face']:.4f}"]) + " |")
    lines += ["", "Each metric cell: mean over seeds and faces, and (in brackets) the method's rank interval on "
              "that metric. " + rule_text(DRAWS, LEVEL, grouped=True)
              + " Rows are sorted by their rank on masked PSNR.", ""]

    lines += ["## What the intervals order", ""]
    lines += _verdicts(ranks[RANK_METRIC], order, by_name, scores)
    lines += ["", "## Masked PSNR (dB) by occlusion kind", ""]
    kinds = info["kinds"]
    lines += ["| method | " + " | ".join(kinds) + " |", "|---|" + "---:|" * len(kinds)]
    for name in order:
        sub = scores[scores["method"] == name]
        vals = [sub[sub["kind"] == k][RANK_METRIC].mean() for k in kinds]
        lines.append(f"| `{name}` | " + " | ".join(_fmt(v, RANK_METRIC) for v in vals) + " |")
    lines += ["", f"Mean over seeds and the faces of each kind (seeds' faces pooled); no intervals: per-kind "
              "counts are small.", "", f"![mean masked PSNR with its 95 % bootstrap interval]({stem}.png)", ""]
    md = out_dir / f"{stem}.md"
    write_text(md, "\n".join(lines))
    png = out_dir / f"{stem}.png"
    _figure(scores, order, groups, png)
    return [md, png]


def _verdicts(ri: dict[str, RankInterval], order: list[str], by_name, scores: pd.DataFrame) -> list[str]:
    out = []
    top = [ri[order[0]], *(ri[n] for n in tied_with(ri[order[0]], list(ri.values())) if ri[n].low == 1)]
    leader = ri[order[0]]
    if all(ahead(leader, ri[o]) for o in order[1:]):
        out.append(f"- **Leader on masked PSNR: `{leader.method}`**, ordered ahead of every other row.")
    else:
        tied = sorted({r.method for r in top} | set(tied_with(leader, list(ri.values()))), key=order.index)
        out.append(f"- No single leader on masked PSNR: `{leader.method}` has the best mean, tied with "
                   + ", ".join(f"`{t}`" for t in tied if t != leader.method) + ".")
    ref = next((n for n in order if n == REFERENCE_BASELINE), None)
    if ref is not None:
        base = scores[scores["method"] == ref].set_index("face")[RANK_METRIC]
        for name in order:
            if name == ref or by_name[name]["kind"] == "baseline":
                continue
            gain = scores[scores["method"] == name].groupby("face")[RANK_METRIC].mean() - base
            word = ("ahead of" if ahead(ri[name], ri[ref]) else "behind" if ahead(ri[ref], ri[name])
                    else "not ordered against")
            out.append(f"- `{name}`: {gain.mean():+.2f} dB masked PSNR over Telea, {word} it by the intervals.")
    return out


def _figure(scores: pd.DataFrame, order: list[str], groups: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    _, of_face = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    g = int(of_face.max()) + 1
    means, lows, highs = [], [], []
    for name in order:
        mat = _matrix(scores, name, RANK_METRIC)
        w = rng.multinomial(g, np.full(g, 1.0 / g), size=DRAWS)[:, of_face].astype(np.float64)
        per_seed = w @ mat.T / w.sum(axis=1, keepdims=True)
        pick = rng.integers(0, mat.shape[0], size=per_seed.shape)
        draws = np.take_along_axis(per_seed, pick, axis=1).mean(axis=1)
        means.append(mat.mean())
        lows.append(np.quantile(draws, (1 - LEVEL) / 2))
        highs.append(np.quantile(draws, 1 - (1 - LEVEL) / 2))
    fig, ax = plt.subplots(figsize=(7.5, 0.35 * len(order) + 1.2))
    y = np.arange(len(order))[::-1]
    colours = ["tab:grey" if n in ("input", "telea", "navier_stokes", "biharmonic") or
               n.split(" ")[0] in ("input", "telea", "navier_stokes", "biharmonic") else
               "tab:orange" if n.endswith("mask=predicted") else "tab:blue" for n in order]
    ax.errorbar(means, y, xerr=[np.array(means) - lows, np.array(highs) - means], fmt="none", ecolor="black",
                capsize=3, lw=1)
    ax.scatter(means, y, c=colours, zorder=3)
    ax.set_yticks(y, order, fontsize=8)
    ax.set_xlabel("masked PSNR (dB), mean with 95 % bootstrap interval (identities and seeds redrawn)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
