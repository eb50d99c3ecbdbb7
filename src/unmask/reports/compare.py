"""The comparison sections of a study's report: against the baselines, and the differences above
seed noise, laid out from the rules in :mod:`unmask.evaluation.summary` (which the evaluate stage also
uses for ``results/<study>/metrics.json``).
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import pandas as pd

from unmask.catalog.metrics import HIGHER_IS_BETTER, SPECS
from unmask.evaluation.summary import (BEATS, LOSES, MIN_SEEDS, MIXED, Values, is_finite, baseline_values,
                                       beats_mark, compare_seeds, false_positive_rate, measured_metrics,
                                       TIE_REL,
                                       seed_values)

# the metrics a beats-baseline table always shows when they were measured
KEY_METRICS = ("psnr", "ssim", "psnr_masked")


def _fraction(p: float) -> str:
    inv = 1 / p
    return f"1/{round(inv)}" if abs(inv - round(inv)) < 1e-9 else f"{p:.2g}"


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
            if any(is_finite(b.get(m, math.nan)) for b in baselines.values())]


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
    lines += ["", "Per configuration, against each baseline (metrics: " + ", ".join(_short(m) for m in metrics) + "):", ""]
    for label in values:
        parts = []
        for name, base in baselines.items():
            marks = {m: beats_mark(values[label].get(m, []), base.get(m, math.nan), m in HIGHER_IS_BETTER)
                     for m in metrics}
            measured = [m for m in metrics if marks[m]]
            if not measured:
                continue
            if all(marks[m] == BEATS for m in measured):
                parts.append(f"{_label(name)} {BEATS} all")
                continue
            groups = [(mark, [_short(m) for m in measured if marks[m] == mark]) for mark in (BEATS, MIXED, LOSES)]
            parts.append(f"{_label(name)} " + " ".join(f"{mark} {', '.join(ms)}" for mark, ms in groups if ms))
        lines.append(f"- {row_names(label)}: " + ("; ".join(parts) if parts else "not measured"))
    lines += ["", f"{BEATS}: every seed of the configuration is better than the baseline by more than "
              f"{TIE_REL:.1%} of the baseline's value; {LOSES}: no seed is (each is worse, equal or within that); "
              f"{MIXED}: the seeds disagree. The baselines fill the mask without training and are deterministic, "
              "so one number per baseline is compared with each seed."]
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
