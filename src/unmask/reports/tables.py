"""A study's comparison table in seed 000's layout: metrics as rows, configurations as columns.

Our cells show mean ± sample std over the seeds that finished; the best mean per metric among our
cells is bold, and marked † when it is ahead of every other cell beyond seed noise. The no-training
baselines and the paper's published columns follow as reference columns, and the header states where the
numbers come from (data source, image size, steps, seeds, CPU). Under the table: which cells beat each
baseline in every seed, and which differences exceed seed noise (:mod:`unmask.reports.compare`).

A search study (tuning, not tabulating) gets a leaderboard instead (:func:`search_table`): one row per
sampled trial, ranked on the validation metric the search optimised, with the sampled values, how far
the scheduler let it train, and its test metrics.
"""

from __future__ import annotations

import collections.abc
import json
import math
from typing import Any, Mapping

import pandas as pd

from unmask.catalog.status import TrialStatus
from unmask.metrics.baseline_kinds import NOTES as BASELINE_NOTES
from unmask.evaluation.summary import ahead_of_all, measured_metrics, seed_values
from unmask.reports.compare import beats_section, noise_section
from unmask.reports.paper import PaperTable
from unmask.catalog.metrics import DEFAULT_SHOWN, METRIC_SPECS, SPECS, spec
from unmask.catalog.schemas import NOTE

# name -> (row label, higher is better), in the order trials report them (from unmask.catalog.metrics)
class _Labels(collections.abc.Mapping):
    """name -> (row label, higher is better), live over the catalogue (registered metrics included)."""

    def __getitem__(self, name: str) -> tuple[str, bool]:
        s = SPECS[name]
        return s.label, s.higher_is_better

    def __iter__(self):
        return (s.name for s in METRIC_SPECS)

    def __len__(self) -> int:
        return len(METRIC_SPECS)


METRICS: Mapping[str, tuple[str, bool]] = _Labels()
NA_WEIGHTS = "n/a: weights missing"


def search_higher_is_better(search: Mapping[str, Any]) -> bool:
    """Whether a search (its params.yaml entry, as a mapping) maximises its metric: its ``mode``, else
    the metric's own direction."""
    mode = search.get("mode")
    if mode:
        return mode == "max"
    return METRICS.get(search.get("metric", "val_psnr").removeprefix("val_"), ("", False))[1]


def distribution_kind(dist: Mapping[str, Any]) -> tuple[str, Any]:
    """(kind, arguments) of a searched parameter's distribution mapping (the one field that is set)."""
    return next((k, v) for k, v in dist.items() if v is not None)


def metric_notes(eval_df: pd.DataFrame, metric: str) -> list[str]:
    """The reasons recorded for ``metric`` not being computed (its ``note_<metric>`` column)."""
    return sorted({n for n in eval_df.get(f"{NOTE}{metric}", pd.Series(dtype=str)).fillna("") if n})


def unmeasured(eval_df: pd.DataFrame, metrics: list[str]) -> dict[str, list[str]]:
    """metric -> the reasons recorded for it, for each shown metric that needs weights and was
    measured nowhere (a column of no values: evaluate writes one for each metric it was asked for)."""
    return {m: metric_notes(eval_df, m) for m in metrics
            if spec(m).needs_weights is not None and f"test_{m}" in eval_df.columns
            and bool(eval_df[f"test_{m}"].isna().all())}


def _na(metric: str, missing: Mapping[str, list[str]]) -> str:
    """The cell of a metric measured nowhere: n/a (weights missing, when every reason says so), footnoted."""
    why = missing[metric]
    return (NA_WEIGHTS if all("missing" in w for w in why) else "n/a") + f"[^{metric}]"


def _footnotes(missing: Mapping[str, list[str]]) -> list[str]:
    lines: list[str] = []
    for m, why in missing.items():
        lines += ["", f"[^{m}]: {'; '.join(why) or f'n/a: {METRICS[m][0]} was not computed'}"]
    return lines


def shown_metrics(eval_df: pd.DataFrame, study_meta: Mapping[str, Any]) -> list[str]:
    """The metrics a study's report shows: its ``metrics`` list (in that order) or every metric,
    keeping those the evaluation measured."""
    wanted = study_meta.get("metrics") or list(DEFAULT_SHOWN)
    return [m for m in wanted if m in METRICS and f"test_{m}" in eval_df.columns]


def _fmt(metric: str, value: float) -> str:
    return format(value, SPECS[metric].fmt if metric in SPECS else ".4f")


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


def per_kind_section(eval_df: pd.DataFrame, metrics: list[str]) -> list[str]:
    """Markdown: each configuration's mean over seeds of each metric, per occlusion kind of the test set
    (evaluate's ``test_<metric>@<kind>`` columns)."""
    trials = eval_df[eval_df["role"] == "trial"]
    kinds = sorted({c.split("@", 1)[1] for c in trials.columns if c.startswith("test_") and "@" in c})
    if not kinds:
        return []
    lines = ["", "## Per occlusion kind", "",
             "| configuration | " + " | ".join(f"{METRICS[m][0]} {k}" for m in metrics for k in kinds) + " |",
             "|---|" + "---:|" * (len(metrics) * len(kinds))]
    for label in dict.fromkeys(trials["cell_label"]):
        rows = trials[trials["cell_label"] == label]
        cells = []
        for m in metrics:
            for k in kinds:
                v = rows.get(f"test_{m}@{k}", pd.Series(dtype=float)).dropna()
                cells.append(_fmt(m, float(v.mean())) + (f" ± {_fmt(m, float(v.std()))}" if len(v) > 1 else "")
                             if len(v) else "–")
        lines.append(f"| {_cell(label)} | " + " | ".join(cells) + " |")
    lines += ["", "Mean ± std over seeds of each metric on the test images of one occlusion kind."]
    return lines


def _params(eval_df: pd.DataFrame, label: str) -> str:
    """A configuration's trainable networks' parameter counts, "G / D" (all generators / all
    discriminators its trainer trains; "–" when not measured)."""
    rows = eval_df[(eval_df["role"] == "trial") & (eval_df["cell_label"] == label)]
    if "params_g" not in rows.columns or rows["params_g"].dropna().empty:
        return "–"
    g, d = int(rows["params_g"].dropna().iloc[0]), int(rows["params_d"].dropna().iloc[0])
    return f"{g:,} / {d:,}"


def not_run_cells(eval_df: pd.DataFrame) -> dict[str, str]:
    """cell_label -> reason, for the cells whose every trial has status NOT_RUN (``note`` holds why)."""
    trials = eval_df[eval_df["role"] == "trial"]
    if "status" not in trials.columns:
        return {}
    out = {}
    for label in dict.fromkeys(trials["cell_label"]):
        rows = trials[trials["cell_label"] == label]
        if len(rows) and (rows["status"] == TrialStatus.NOT_RUN).all():
            notes = rows["note"].dropna().astype(str) if "note" in rows.columns else pd.Series([], dtype=str)
            out[label] = (notes.iloc[0] if len(notes) and notes.iloc[0] else "not run").removeprefix("not run: ")
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
    twins = trials["twin_of"].notna() if "twin_of" in trials else pd.Series(False, index=trials.index)
    n_twins = int(twins.sum())    # the same checkpoints measured again (end to end): not more training
    trials = trials[~twins]
    seeds = sorted({int(s) for s in trials["seed"].dropna()})
    failed = trials[trials["status"] == TrialStatus.FAILED]
    stopped = trials[trials["status"] == TrialStatus.STOPPED_EARLY]
    not_run = trials[trials["status"] == TrialStatus.NOT_RUN]

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
             + (f", {len(failed)} failed: {', '.join(map(str, failed['trial_id']))}" if len(failed) else "")
             + (f", {len(stopped)} stopped early by the scheduler" if len(stopped) else "")
             + (f", {len(not_run)} not run (see [^notrun])" if len(not_run) else "")
             + (f"; {n_twins} more measurements of those checkpoints with a predicted mask" if n_twins else "")
             + ")",
             f"- Test images: {', '.join(map(str, n_test)) or 'none'}; metrics re-computed from the checkpoints",
             f"- CPU: {_cpu_text(eval_df)}",
             ""]
    return lines


def _cpu_text(eval_df: pd.DataFrame) -> str:
    """The CPUs that trained the trials (eval.parquet's ``cpu``), and the one that re-evaluated them when
    it differs (``eval_cpu``)."""
    def distinct(col: str, rows: pd.DataFrame) -> list[str]:
        return list(dict.fromkeys(str(v) for v in rows[col].dropna() if str(v))) if col in rows.columns else []

    trials = eval_df[eval_df["role"] == "trial"]
    train = distinct("cpu", trials) or distinct("cpu", eval_df)
    if not train:
        return "not recorded (evaluated before CPUs were recorded)"
    evaluated = [c for c in distinct("eval_cpu", eval_df) if c not in train]
    return " / ".join(train) + (f" (re-evaluated on {' / '.join(evaluated)})" if evaluated else "")


def study_table(eval_df: pd.DataFrame, study_meta: Mapping[str, Any], paper: PaperTable | None) -> str:
    """Markdown report table of one study (``eval_df`` as written by ``evaluate_study``).

    ``study_meta`` needs ``title`` (or ``name``); ``kinds`` is shown when given. ``paper`` adds the
    published columns, prefixed "paper:", with their setting stated under the table.
    """
    stats = cell_stats(eval_df)
    best = best_cells(eval_df)
    baselines = eval_df[eval_df["role"] == "baseline"].drop_duplicates("cell_label").set_index("cell_label")
    metrics = shown_metrics(eval_df, study_meta)
    ahead = ahead_of_all(seed_values(eval_df), metrics)
    missing = unmeasured(eval_df, metrics)
    not_run = not_run_cells(eval_df)

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
            if label in not_run:
                row.append("not run[^notrun]")
            elif metric in missing:
                row.append(_na(metric, missing))
            elif n == 0:
                row.append("–")
            else:
                text = _fmt(metric, mean) + (f" ± {_fmt(metric, std)}" if n > 1 else "")
                text = f"**{text}**" if label in best.get(metric, ([], 0))[0] else text
                row.append(text + ("†" if label in ahead.get(metric, ()) else ""))
        for name in baselines.index:
            v = baselines.loc[name].get(f"test_{metric}", math.nan)
            row.append(_na(metric, missing) if metric in missing else "–" if pd.isna(v) else _fmt(metric, float(v)))
        row += [f"{c.metrics[metric]:g}" if metric in c.metrics else "–" for c in paper_cols]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("| parameters G / D | " + " | ".join(
        [_params(eval_df, label) for label in stats]
        + ["–"] * (len(baselines.index) + len(paper_cols))) + " |")

    lines += ["", "Mean ± sample standard deviation over seeds (n = seeds measured); the best mean per metric "
              "among our configurations is in **bold** (↓ lower is better, ↑ higher is better); † marks a "
              "configuration ahead of every other configuration beyond seed noise (each of its seeds better than "
              "every seed of each other configuration, see below). A bold mean without † may be noise. Baselines "
              "involve no training (each is described below the table, where it is not a classical inpainter). Masked metrics average over "
              "the occluded pixels only. Parameters count "
              "every network the configuration trains (CycleGAN: both generators and both critics), at this "
              "image size."]
    for b in (b for b in baselines.index if b in BASELINE_NOTES):
        lines += ["", f"Baseline `{b}`: {BASELINE_NOTES[b]}"]
    if paper and not paper.columns and not paper.not_run:
        lines += ["", f"Published numbers: {paper.source}; {paper.setting}." + (f" {paper.note}" if paper.note else "")]
    elif paper:
        lines += ["", f"Paper columns: {paper.source}; setting: {paper.setting}. They are not comparable "
                  "number for number with ours (different data, image size and training length)."
                  + (f" {paper.note}" if paper.note else "")]
        for what, why in paper.not_run:
            lines += ["", f"Not run: {what}: {why}"]
    lines += beats_section(eval_df, [m for m in study_meta.get("beats") or metrics if m in metrics])
    lines += noise_section(eval_df, metrics, study_meta.get("reference_cell"),
                           f"studies.{study_meta.get('name', '<study>')}.reference_cell")
    lines += _footnotes(missing)
    if study_meta.get("per_kind"):
        lines += per_kind_section(eval_df, metrics)
    if not_run:
        reasons = "; ".join(sorted(set(not_run.values())))
        lines += ["", f"[^notrun]: {reasons}. These configurations need pretrained weights that are not on this "
                      "machine; they were not trained, and no number stands in for them."]
    return "\n".join(lines) + "\n"


def _distribution(d: Mapping[str, Any]) -> str:
    kind, args = distribution_kind(d)
    return f"{kind}({', '.join(map(str, args))})"


def _search_lines(search: Mapping[str, Any], seed: Any, mode: str) -> list[str]:
    space = "; ".join(f"`{key}` ~ {_distribution(d)}" for key, d in search["space"].items())
    sched = search.get("scheduler", "asha")
    sched_text = ("ASHA (asynchronous successive halving: at each rung, from "
                  f"{search.get('grace_period') or 'val_every'} steps on, trials outside the best "
                  f"1/{search.get('reduction_factor', 3):g} stop)" if sched == "asha" else "FIFO (every trial runs to the end)")
    algo = {"random": "random search", "optuna": "Optuna TPE"}.get(search.get("algorithm", "random"))
    return [f"- Search: {search.get('num_samples')} samples drawn by {algo} (seeded {seed}); scheduler {sched_text}; "
            f"ranked on `{search.get('metric', 'val_psnr')}` ({mode}), never on test",
            f"- Space: {space}", ""]


def search_table(eval_df: pd.DataFrame, trials: pd.DataFrame, study_meta: Mapping[str, Any]) -> str:
    """Markdown leaderboard of a search study: trials ranked on the searched validation metric
    (finished trials first, then those stopped early, deepest first), sampled values, steps trained,
    test metrics (best finished trial per metric in bold), then the baselines. ``trials`` is the
    sweep's trials.parquet (for the val_ metrics); ``study_meta`` holds ``search`` as in params.yaml."""
    search = study_meta["search"]
    metric = search.get("metric", "val_psnr")
    higher = search_higher_is_better(search)
    keys = list(search["space"])
    rows = eval_df[eval_df["role"] == "trial"].merge(
        trials[["trial_id", metric, "steps_done"]], on="trial_id", how="left")
    finished = rows["status"] == TrialStatus.FINISHED
    score = rows[metric].astype(float) * (-1 if higher else 1)
    rows = rows.assign(_done=~finished, _depth=-rows["steps_done"].fillna(0), _score=score.fillna(math.inf))
    rows = rows.sort_values(["_done", "_depth", "_score"]).reset_index(drop=True)
    best = best_cells(eval_df)
    metrics = shown_metrics(eval_df, study_meta)
    missing = unmeasured(eval_df, metrics)
    seeds = sorted({int(x) for x in rows["seed"].dropna()})

    lines = _header(eval_df, study_meta, cell_stats(eval_df))
    lines[-1:-1] = _search_lines(search, ", ".join(map(str, seeds)), "max" if higher else "min")[:-1]
    cols = ["rank", "trial", *(f"`{k}`" for k in keys), "status", f"{metric} {'↑' if higher else '↓'}",
            *(f"test {METRICS[m][0]} {'↑' if METRICS[m][1] else '↓'}" for m in metrics)]
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|---:|---|" + "---|" * len(keys) + "---|---:|" + "---:|" * len(metrics))
    steps = {int(v) for v in rows["steps"].dropna()}
    for i, r in rows.iterrows():
        cell = json.loads(r["cell"]) if isinstance(r["cell"], str) else {}
        values = [_cell(f"{cell[k]:.3g}" if isinstance(cell.get(k), float) else str(cell.get(k, "–"))) for k in keys]
        status = ("finished" if r["status"] == TrialStatus.FINISHED
                  else f"stopped early at step {int(r['steps_done'])}" if r["status"] == TrialStatus.STOPPED_EARLY
                  else "failed")
        val = r[metric]
        row = [str(i + 1), str(r["trial_id"]), *values, status, "–" if pd.isna(val) else _fmt(metric[4:], float(val))]
        for m in metrics:
            v = r.get(f"test_{m}", math.nan)
            if m in missing:
                row.append(_na(m, missing) if r["status"] == TrialStatus.FINISHED else "–")
            elif pd.isna(v):
                row.append("–")
            else:
                text = _fmt(m, float(v))
                row.append(f"**{text}**" if r["cell_label"] in best.get(m, ([], 0))[0] else text)
        lines.append("| " + " | ".join(row) + " |")
    for _, b in eval_df[eval_df["role"] == "baseline"].drop_duplicates("cell_label").iterrows():
        row = ["", f"baseline: {_cell(b['cell_label'])}", *("" for _ in keys), "no training", "–"]
        for m in metrics:
            v = b.get(f"test_{m}", math.nan)
            row.append(_na(m, missing) if m in missing else "–" if pd.isna(v) else _fmt(m, float(v)))
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", f"Ranked on `{metric}` (the last validation each trial reached; trials stopped early were judged "
              f"at fewer steps than the {', '.join(map(str, sorted(steps)))} of a finished trial). Test metrics are "
              "re-computed from the checkpoints of finished trials only; the best finished trial per test metric "
              "is in **bold**. One seed per sample: differences between close trials may be noise."]
    ids = dict(zip(rows["cell_label"], rows["trial_id"]))
    lines += beats_section(eval_df, metrics, row_names=lambda label: f"{ids.get(label, '')} ({_cell(label)})",
                           what="finished trials", skip_unmeasured=True)
    if measured_metrics(seed_values(eval_df), metrics):
        lines += ["", "## Differences above seed noise", "",
                  "One seed per sampled configuration: too few seeds for any difference between trials to be "
                  "called beyond seed noise (the rule used for grid studies needs every compared configuration "
                  "to have at least two seeds, and calls a difference only when their seed ranges do not overlap)."]
    lines += _footnotes(missing)
    return "\n".join(lines) + "\n"
