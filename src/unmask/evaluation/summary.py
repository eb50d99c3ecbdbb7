"""The rules that decide, from a study's evaluation, which configurations beat which baseline and
which differ beyond seed noise, and the numbers ``dvc metrics`` compares between runs
(``results/<study>/metrics.json``). The reports lay these out (:mod:`unmask.reports.compare`); the
evaluate stage writes the summary, so an edit to a report's wording re-measures nothing.

With two or three seeds per configuration, a mean ± std says little about whether two
configurations differ. The rules therefore hold with so few seeds:

* **Beats a baseline** (:func:`beats_mark`): the no-training baselines are deterministic, so a
  configuration beats one on a metric when *every* seed does (✓), loses when no seed does (✗), and is
  undecided when its seeds disagree (~). A seed beats the baseline only when it is better by more than
  :data:`TIE_REL` of the baseline's value: a model that returns its input (0.00004 dB above it) ties.
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
from typing import Any, Sequence

import pandas as pd

from unmask.catalog.metrics import HIGHER_IS_BETTER, METRICS
from unmask.io.atomic import write_text

METRICS_FILE = "metrics.json"
BEATS, LOSES, MIXED = "✓", "✗", "~"
MIN_SEEDS = 2   # a configuration needs a seed range (two seeds or more) for the non-overlap rule
TIE_REL = 1e-3  # closer to a baseline than this share of its value is a tie, not a win (0.017 dB at 17 dB)

Values = dict[str, dict[str, list[float]]]   # label -> metric -> finite per-seed values


def is_finite(v: Any) -> bool:
    return v is not None and not pd.isna(v) and math.isfinite(float(v))


def seed_values(eval_df: pd.DataFrame) -> Values:
    """cell_label -> metric -> the finite values of its trials (one per seed), trials only, in the
    table's order; every metric with a ``test_`` column is present (empty list if never measured)."""
    trials = eval_df[eval_df["role"] == "trial"]
    cols = [m for m in METRICS if f"test_{m}" in eval_df.columns]
    out: Values = {}
    for label in dict.fromkeys(trials["cell_label"]):
        rows = trials[trials["cell_label"] == label]
        out[label] = {m: [float(v) for v in rows[f"test_{m}"] if is_finite(v)] for m in cols}
    return out


def baseline_values(eval_df: pd.DataFrame) -> dict[str, dict[str, float]]:
    """baseline name -> metric -> value (NaN when not measured)."""
    base = eval_df[eval_df["role"] == "baseline"].drop_duplicates("cell_label")
    cols = [m for m in METRICS if f"test_{m}" in eval_df.columns]
    return {str(r["cell_label"]): {m: float(r[f"test_{m}"]) if is_finite(r[f"test_{m}"]) else math.nan for m in cols}
            for _, r in base.iterrows()}


def _better(a: float, b: float, higher: bool) -> bool:
    return a > b if higher else a < b


def _beats(a: float, baseline: float, higher: bool) -> bool:
    """``a`` better than ``baseline`` by more than :data:`TIE_REL` of the baseline's magnitude."""
    margin = TIE_REL * abs(baseline)
    return a > baseline + margin if higher else a < baseline - margin


def beats_mark(values: Sequence[float], baseline: float, higher: bool) -> str | None:
    """✓ when every seed is better than the (deterministic) baseline beyond a tie (:data:`TIE_REL`), ✗ when
    none is, ~ when the seeds disagree; None when there is no seed or no baseline value."""
    if not values or not is_finite(baseline):
        return None
    wins = sum(_beats(v, baseline, higher) for v in values)
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


def _num(v: float) -> float | None:
    return float(v) if is_finite(v) else None


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
