"""Honest comparisons for a study's report, and the numbers ``dvc metrics`` compares between runs.

With two or three seeds per configuration, a mean ± std says little about whether two
configurations differ. The report therefore uses rules that hold with so few seeds:

* **Beats a baseline** (:func:`beats_mark`): the no-training baselines are deterministic, so a
  configuration beats one on a metric when *every* seed does (✓), loses when no seed does (✗), and is
  undecided when its seeds disagree (~).
* **Differs beyond seed noise** (:func:`compare_seeds`): two configurations differ only when their
  seed ranges do not overlap (every seed of one better than every seed of the other). Under the null
  that the seeds of both are exchangeable, that happens by chance with probability
  ``2 / C(n1 + n2, n1)`` (:func:`false_positive_rate`: 1/3 for 2 vs 2 seeds, 1/10 for 3 vs 3); a
  configuration with a single seed has no range, and no difference with it is called.

:func:`metrics_summary` / :func:`write_metrics_json` give ``results/<study>/metrics.json``: every
cell's mean, std and n and every baseline's value per test metric, and which cells beat which baseline.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from unmask.io.atomic import write_text
from unmask.catalog.metrics import HIGHER_IS_BETTER, METRICS, SPECS

METRICS_FILE = "metrics.json"
BEATS, LOSES, MIXED = "✓", "✗", "~"
# the metrics a beats-baseline table always shows when they were measured
KEY_METRICS = ("psnr", "ssim", "psnr_masked")
MIN_SEEDS = 2   # a configuration needs a seed range (two seeds or more) for the non-overlap rule

Values = dict[str, dict[str, list[float]]]   # label -> metric -> finite per-seed values


def _finite(v: Any) -> bool:
    return v is not None and not pd.isna(v) and math.isfinite(float(v))


def seed_values(eval_df: pd.DataFrame) -> Values:
    """cell_label -> metric -> the finite values of its trials (one per seed), trials only, in the
    table's order; every metric with a ``test_`` column is present (empty list if never measured)."""
    trials = eval_df[eval_df["role"] == "trial"]
    cols = [m for m in METRICS if f"test_{m}" in eval_df.columns]
    out: Values = {}
    for label in dict.fromkeys(trials["cell_label"]):
        rows = trials[trials["cell_label"] == label]
        out[label] = {m: [float(v) for v in rows[f"test_{m}"] if _finite(v)] for m in cols}
    return out


def baseline_values(eval_df: pd.DataFrame) -> dict[str, dict[str, float]]:
    """baseline name -> metric -> value (NaN when not measured)."""
    base = eval_df[eval_df["role"] == "baseline"].drop_duplicates("cell_label")
    cols = [m for m in METRICS if f"test_{m}" in eval_df.columns]
    return {str(r["cell_label"]): {m: float(r[f"test_{m}"]) if _finite(r[f"test_{m}"]) else math.nan for m in cols}
            for _, r in base.iterrows()}


def _better(a: float, b: float, higher: bool) -> bool:
    return a > b if higher else a < b


def beats_mark(values: Sequence[float], baseline: float, higher: bool) -> str | None:
    """✓ when every seed is strictly better than the (deterministic) baseline, ✗ when none is, ~ when
    the seeds disagree; None when there is no seed or no baseline value."""
    if not values or not _finite(baseline):
        return None
    wins = sum(_better(v, baseline, higher) for v in values)
    return BEATS if wins == len(values) else LOSES if wins == 0 else MIXED


def compare_seeds(a: Sequence[float], b: Sequence[float], higher: bool) -> int | None:
    """+1 when ``a`` is ahead of ``b`` beyond seed noise (every seed of ``a`` strictly better than every
    seed of ``b``), -1 when behind, 0 when their seed ranges overlap; None when either has fewer than
    :data:`MIN_SEEDS` seeds (too few for any difference to be called)."""
    if len(a) < MIN_SEEDS or len(b) < MIN_SEEDS:
        return None
    if higher:
        ahead, behind = min(a) > max(b), min(b) > max(a)
    else:
        ahead, behind = max(a) < min(b), max(b) < min(a)
    return 1 if ahead else -1 if behind else 0


def false_positive_rate(n1: int, n2: int) -> float:
    """Chance that the seed ranges of two configurations with ``n1`` and ``n2`` seeds do not overlap
    (in either direction) when all their seeds are exchangeable: 2 / C(n1 + n2, n1)."""
    return min(1.0, 2 / math.comb(n1 + n2, n1))


def _fraction(p: float) -> str:
    inv = 1 / p
    return f"1/{round(inv)}" if abs(inv - round(inv)) < 1e-9 else f"{p:.2g}"


def measured_metrics(values: Values, metrics: Sequence[str]) -> list[str]:
    """``metrics`` that at least one cell measured."""
    return [m for m in metrics if any(v.get(m) for v in values.values())]


def ahead_of_all(values: Values, metrics: Sequence[str]) -> dict[str, set[str]]:
    """metric -> the cells ahead of every other measured cell beyond seed noise (at most one; empty
    when any measured cell has too few seeds, or when only one cell was measured)."""
    out: dict[str, set[str]] = {}
    for m in metrics:
        higher = m in HIGHER_IS_BETTER
        measured = {label: v[m] for label, v in values.items() if v.get(m)}
        out[m] = {label for label, v in measured.items() if len(measured) > 1
                  and all(compare_seeds(v, o, higher) == 1 for other, o in measured.items() if other != label)}
    return out


def _n(values: Values, label: str) -> int:
    return max((len(v) for v in values[label].values()), default=0)


def _label(text: str) -> str:
    return text.replace("|", "\\|")


def _metric_name(metric: str) -> str:
    s = SPECS[metric]
    return f"{s.label} {'↑' if s.higher_is_better else '↓'}"


def _short(metric: str) -> str:
    return SPECS[metric].label.replace(" (dB)", "")


def beats_metrics(values: Values, baselines: Mapping[str, Mapping[str, float]], shown: Sequence[str]) -> list[str]:
    """The metrics of the beats-baseline table: the shown ones, then PSNR, SSIM and PSNR masked if not
    shown, keeping those measured by some cell and some baseline."""
    wanted = list(dict.fromkeys([*shown, *KEY_METRICS]))
    return [m for m in measured_metrics(values, wanted)
            if any(_finite(b.get(m, math.nan)) for b in baselines.values())]


def beats_section(eval_df: pd.DataFrame, shown: Sequence[str], row_names: Callable[[str], str] | None = None,
                  what: str = "configurations", skip_unmeasured: bool = False) -> list[str]:
    """Markdown lines: a headline per baseline, then a table with one row per cell (✓ / ✗ / ~ against each
    baseline on each key metric) and the rule. Empty when the study has no baseline."""
    values = seed_values(eval_df)
    baselines = baseline_values(eval_df)
    metrics = beats_metrics(values, baselines, shown)
    if not baselines or not metrics:
        return []
    if skip_unmeasured:
        values = {label: v for label, v in values.items() if any(v.get(m) for m in metrics)}
    row_names = row_names or (lambda label: f"{_label(label)} (n={_n(values, label)})")
    headline_metric = "ssim" if "ssim" in metrics else metrics[0]
    counted = [label for label in values if values[label].get(headline_metric)]
    lines = ["", "## Against the baselines", ""]
    for name, base in baselines.items():
        def wins(m: str) -> int:
            return sum(beats_mark(values[label].get(m, []), base.get(m, math.nan), m in HIGHER_IS_BETTER) == BEATS
                       for label in counted)
        others = [m for m in metrics if m != headline_metric]
        lines.append(f"- {wins(headline_metric)} of {len(counted)} {what} beat {name} on {_short(headline_metric)} "
                     "in every seed" + (f" ({'; '.join(f'{_short(m)}: {wins(m)} of {len(counted)}' for m in others)})"
                                        if others else ""))
    missing = len(values) - len(counted)
    if missing:
        lines.append(f"- ({missing} {what.removesuffix('s') if missing == 1 else what} without results on "
                     f"{_short(headline_metric)} {'is' if missing == 1 else 'are'} not counted)")
    cols = [f"{_short(m)} {'↑' if m in HIGHER_IS_BETTER else '↓'} vs {_label(name)}" for name in baselines for m in metrics]
    lines += ["", "| configuration | " + " | ".join(cols) + " |", "|---|" + ":---:|" * len(cols)]
    for label in values:
        marks = [beats_mark(values[label].get(m, []), base.get(m, math.nan), m in HIGHER_IS_BETTER) or "–"
                 for base in baselines.values() for m in metrics]
        lines.append(f"| {row_names(label)} | " + " | ".join(marks) + " |")
    lines += ["", f"{BEATS}: every seed of the configuration is better than the baseline; {LOSES}: no seed is "
              f"(each is worse or equal); {MIXED}: the seeds disagree; –: not measured. The baselines fill the "
              "mask without training and are deterministic, so one number per baseline is compared with each seed."]
    return lines


def noise_section(eval_df: pd.DataFrame, metrics: Sequence[str], reference: str | None = None,
                  reference_key: str = "reference_cell") -> list[str]:
    """Markdown lines: per metric the best-mean cell, the cells worse than it beyond seed noise and those
    indistinguishable from it; then which cells are better / worse than the ``reference`` cell (the first
    cell when None) beyond noise; with the rule and its false-positive rate."""
    values = seed_values(eval_df)
    metrics = measured_metrics(values, metrics)
    lines = ["", "## Differences above seed noise", ""]
    if not metrics:
        return lines + ["No configuration was measured: nothing to compare."]
    sizes = sorted({len(v[m]) for v in values.values() for m in metrics if v.get(m)})
    rule = ("Two configurations differ on a metric only when their seed ranges do not overlap: every seed of one "
            "is better than every seed of the other. ")
    callable_sizes = [n for n in sizes if n >= MIN_SEEDS]
    if not callable_sizes:
        return lines + [rule + f"Every configuration has {'one seed' if sizes == [1] else 'fewer than two seeds'}: "
                        "too few seeds for any difference to be called (a single seed has no range; more seeds "
                        "per configuration are needed)."]
    pairs = sorted({(a, b) for a in callable_sizes for b in callable_sizes if a <= b})
    rates = "; ".join(f"{a} vs {b} seeds: {_fraction(false_positive_rate(a, b))}" for a, b in pairs)
    rule += (f"If seeds were exchangeable (no real difference), this would still happen by chance with probability "
             f"2/C(n1+n2, n1) — {rates}. The best mean is picked by the same seeds, so calls against it are "
             "somewhat likelier by chance, and with many configurations some calls are expected to be false.")
    if sizes[0] < MIN_SEEDS:
        rule += (" Configurations with a single seed have no range: no difference with them can be called "
                 "(listed as too few seeds).")
    lines += [rule, ""]

    def call(label: str, other: str, m: str) -> int | None:
        return compare_seeds(values[label][m], values[other][m], m in HIGHER_IS_BETTER)

    def names(labels: list[str]) -> str:
        return ", ".join(f"`{lb}`" for lb in labels) or "none"

    for m in metrics:
        higher = m in HIGHER_IS_BETTER
        means = {lb: sum(v[m]) / len(v[m]) for lb, v in values.items() if v.get(m)}
        top = max(means.values()) if higher else min(means.values())
        best = next(lb for lb, mean in means.items() if mean == top)
        others = [lb for lb in means if lb != best]
        if len(values[best][m]) < MIN_SEEDS:
            lines.append(f"- {_metric_name(m)}: best mean `{best}` has one seed: too few to call any difference")
            continue
        worse = [lb for lb in others if call(best, lb, m) == 1]
        same = [lb for lb in others if call(best, lb, m) == 0]
        few = [lb for lb in others if call(best, lb, m) is None]
        lines.append(f"- {_metric_name(m)}: best mean `{best}`; worse beyond noise: {names(worse)}; "
                     f"indistinguishable from it: {names(same)}" + (f"; too few seeds: {names(few)}" if few else ""))

    ref = reference if reference in values else next(iter(values))
    lines += ["", f"Against the reference configuration `{ref}`"
              + (f" (`{reference_key}`)" if reference in values else f" (the first; set `{reference_key}` to choose)")
              + ":", ""]
    for m in metrics:
        if not values[ref].get(m):
            lines.append(f"- {_metric_name(m)}: the reference was not measured")
            continue
        others = [lb for lb in values if lb != ref and values[lb].get(m)]
        better = [lb for lb in others if call(lb, ref, m) == 1]
        worse = [lb for lb in others if call(lb, ref, m) == -1]
        same = [lb for lb in others if call(lb, ref, m) == 0]
        few = [lb for lb in others if call(lb, ref, m) is None]
        if len(values[ref][m]) < MIN_SEEDS:
            lines.append(f"- {_metric_name(m)}: the reference has one seed: too few to call any difference")
            continue
        lines.append(f"- {_metric_name(m)}: better beyond noise: {names(better)}; worse beyond noise: {names(worse)}; "
                     f"indistinguishable: {names(same)}" + (f"; too few seeds: {names(few)}" if few else ""))
    return lines


def _num(v: float) -> float | None:
    return float(v) if _finite(v) else None


def metrics_summary(eval_df: pd.DataFrame, study: str | None = None) -> dict[str, Any]:
    """Plain-number summary of an evaluation for ``dvc metrics``: ``cells`` (label -> test_<metric> ->
    mean, sample std, n), ``baselines`` (name -> test_<metric> -> value) and ``beats`` (label -> baseline
    -> test_<metric> -> whether every seed beats it). NaN is written as null."""
    values = seed_values(eval_df)
    baselines = baseline_values(eval_df)
    if study is None:
        study = str(eval_df["study"].iloc[0]) if "study" in eval_df.columns and len(eval_df) else ""
    cells = {}
    for label, per_metric in values.items():
        cells[label] = {}
        for m, v in per_metric.items():
            mean = sum(v) / len(v) if v else math.nan
            std = math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else math.nan
            cells[label][f"test_{m}"] = {"mean": _num(mean), "std": _num(std), "n": len(v)}
    beats: dict[str, dict[str, dict[str, bool | None]]] = {}
    for label, per_metric in values.items():
        beats[label] = {}
        for name, base in baselines.items():
            marks = {m: beats_mark(v, base.get(m, math.nan), m in HIGHER_IS_BETTER) for m, v in per_metric.items()}
            beats[label][name] = {f"test_{m}": None if mark is None else mark == BEATS for m, mark in marks.items()}
    return {"study": study,
            "cells": cells,
            "baselines": {name: {f"test_{m}": _num(v) for m, v in base.items()} for name, base in baselines.items()},
            "beats": beats}


def write_metrics_json(eval_df: pd.DataFrame, path: str | os.PathLike, study: str | None = None) -> dict[str, Any]:
    """Write :func:`metrics_summary` to ``path`` atomically (strict JSON: no NaN) and return it."""
    summary = metrics_summary(eval_df, study)
    write_text(path, json.dumps(summary, indent=2, allow_nan=False) + "\n")
    return summary
