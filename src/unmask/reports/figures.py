"""Report pictures and pages: the comparison grid (seed 000 Figures 21, 23), learning curves, the
search scatter of a tuning study, and ``write_reports``, which turns each study's results into ``reports/<study>.md`` + PNGs + an index.

Plots are PNG files drawn with matplotlib's Agg backend: nothing needs a browser or a CDN.
"""

from __future__ import annotations

import json
import math
import os
import textwrap
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.ticker import NullFormatter  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from unmask.errors import UnmaskError  # noqa: E402
from unmask.io.atomic import atomic_path, write_text  # noqa: E402
from unmask.evaluation.evaluate import EVAL_FILE, FIGURES_FILE, SAMPLES_FILE, load_figures, load_samples  # noqa: E402
from unmask.reports.paper import paper_table  # noqa: E402
from unmask.evaluation.across import across_dir, load_champions, load_end_to_end, load_parsing  # noqa: E402
from unmask.reports.across import champions_section, end_to_end_section  # noqa: E402
from unmask.reports.tables import (  # noqa: E402
    METRICS,
    _fmt,
    unmeasured,
    best_cells,
    distribution_kind,
    search_higher_is_better,
    search_table,
    shown_metrics,
    study_table,
)

CELL_PX = 128      # one face in the comparison grid
LABEL_PX = 40      # column labels above the grid
DPI = 100
CURVES_FILE = "curves.parquet"
TRIALS_FILE = "trials.parquet"


def _save(fig: plt.Figure, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    plt.close(fig)
    return Path(path)


def _short(label: str) -> str:
    """``generator.approach=mask`` -> ``approach=mask``: a column label that wraps at spaces."""
    def short(part: str) -> str:
        key, eq, value = part.partition("=")
        return key.rsplit(".", 1)[-1] + eq + value if eq else part

    return " ".join(short(part) for part in label.split())


def comparison_figure(samples_path: str | os.PathLike, out_path: str | os.PathLike, target: str = "image") -> Path:
    """PNG grid: one row per test face; columns input, target, then each configuration's output (and
    the baselines), labelled on top. ``CELL_PX`` px per face, so the size is (columns x 128,
    rows x 128 + 40). ``target``: "image" (the clean face) or "mask" (the true occluder mask, for a
    segmentation study)."""
    s = load_samples(samples_path)
    truth = ("true mask", s["mask"]) if target == "mask" else ("target", s["target"])
    columns = [("input", s["input"]), truth, *zip(s["labels"], s["outputs"])]
    if len(s["input"]) == 0:
        raise UnmaskError(f"{samples_path}: no test faces to show")
    return image_grid(columns, out_path)


def image_grid(columns: Sequence[tuple[str, np.ndarray]], out_path: str | os.PathLike) -> Path:
    """PNG of labelled columns of images (each (N, H, W[, 3]) uint8, the same N), ``CELL_PX`` px each."""
    n_rows, n_cols = len(columns[0][1]), len(columns)
    width, height = n_cols * CELL_PX, n_rows * CELL_PX + LABEL_PX
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    for c, (label, images) in enumerate(columns):
        fig.text((c + 0.5) / n_cols, 1 - 2 / height, textwrap.fill(_short(label), 20), ha="center", va="top",
                 fontsize=7)
        for r in range(n_rows):
            ax = fig.add_axes((c / n_cols, 1 - (LABEL_PX + (r + 1) * CELL_PX) / height, 1 / n_cols, CELL_PX / height))
            grey = {"cmap": "gray", "vmin": 0, "vmax": 255} if images[r].ndim == 2 else {}
            ax.imshow(images[r], interpolation="nearest", **grey)
            ax.set_axis_off()
    return _save(fig, out_path)


def learning_curves(curves_path: str | os.PathLike, out_path: str | os.PathLike,
                    labels: Mapping[str, str] | None = None) -> Path:
    """PNG with one panel per logged metric (train losses and ``val_`` metrics) and one line per trial
    (``labels``: trial_id -> legend text, e.g. "cell seed=0")."""
    try:
        curves = pd.read_parquet(curves_path, columns=["trial_id", "step", "metric", "value"])
    except (OSError, ValueError, KeyError) as err:
        raise UnmaskError(f"{curves_path}: not a curves table ({str(err).splitlines()[0]})") from None
    # the one-off test metrics and Tune's bookkeeping flags are not curves; a validation metric measured
    # once (a study whose steps <= val_every) is a curve of one point, a train loss needs two
    n_steps = curves.groupby("metric")["step"].nunique()
    metrics = sorted((m for m, n in n_steps.items()
                      if (n > 1 or (n == 1 and m.startswith("val_"))) and not m.startswith(("test_", "should_"))),
                     key=lambda m: (not m.startswith("val_"), m))
    if not metrics:
        raise UnmaskError(f"{curves_path}: no learning curves recorded")
    n_cols = min(3, len(metrics))
    n_rows = math.ceil(len(metrics) / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.0 * n_rows), dpi=DPI, squeeze=False)
    labels = labels or {}
    for ax, metric in zip(axes.flat, metrics):
        part = curves[curves["metric"] == metric]
        # lines (and so colours) in the trials table's order (the study's cells, then seeds), not by Ray's
        # random trial ids: the same trials draw the same picture in every run
        order = {t: i for i, t in enumerate(labels)}
        groups = sorted(part.groupby("trial_id"), key=lambda g: (order.get(str(g[0]), len(order)), str(g[0])))
        for trial_id, rows in groups:
            rows = rows.sort_values("step")
            # markers: a trial stopped at its first validation is a single point
            ax.plot(rows["step"], rows["value"], lw=1, marker=".", ms=4,
                    label=labels.get(str(trial_id), str(trial_id)))
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_axis_off()
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(4, len(names)), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.04 + 0.02 * math.ceil(len(names) / 4), 1, 1))
    return _save(fig, out_path)


def search_figure(trials_path: str | os.PathLike, search: Mapping[str, Any], out_path: str | os.PathLike) -> Path:
    """PNG with one panel per searched parameter: the sampled value (log axis for ``loguniform``,
    categories for ``choice``) against the searched validation metric at the trial's last report;
    finished trials as dots, trials the scheduler stopped early as crosses, failed ones left out."""
    try:
        t = pd.read_parquet(trials_path)
    except (OSError, ValueError) as err:
        raise UnmaskError(f"{trials_path}: not a trials table ({str(err).splitlines()[0]})") from None
    metric = search.get("metric", "val_psnr")
    if metric not in t.columns:
        raise UnmaskError(f"{trials_path}: no column {metric!r} (the search's metric)")
    t = t[t["status"] != "ERROR"].dropna(subset=[metric])
    cells = [json.loads(c) for c in t["cell"]]
    keys = list(search["space"])
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.2), dpi=DPI, squeeze=False)
    for ax, key in zip(axes.flat, keys):
        kind, _ = distribution_kind(search["space"][key])
        xs = [c.get(key) for c in cells]
        if kind == "choice":
            choices = [str(v) for v in search["space"][key]["choice"]]
            pos = {c: i for i, c in enumerate(choices)}
            xs = [pos.get(str(x), math.nan) for x in xs]
            ax.set_xticks(range(len(choices)), choices, fontsize=7)
            ax.set_xlim(-0.5, len(choices) - 0.5)
        elif kind == "loguniform":
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())   # decade labels only: minor ones overlap
        for status, marker, label in (("TERMINATED", "o", "finished"), ("STOPPED_EARLY", "x", "stopped early")):
            sel = (t["status"] == status).to_numpy()
            ax.scatter([x for x, s in zip(xs, sel) if s], t.loc[sel, metric], marker=marker, s=28, label=label)
        ax.set_title(key, fontsize=9)
        ax.set_ylabel(metric, fontsize=8)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return _save(fig, out_path)


def _search_headline(trials: pd.DataFrame, search: Mapping[str, Any]) -> str:
    metric = search.get("metric", "val_psnr")
    higher = search_higher_is_better(search)
    done = trials[trials["status"] == "TERMINATED"].dropna(subset=[metric])
    n_stopped = int((trials["status"] == "STOPPED_EARLY").sum())
    if done.empty:
        return f"- search: no trial finished ({len(trials)} sampled, {n_stopped} stopped early)"
    best = done.loc[done[metric].idxmax() if higher else done[metric].idxmin()]
    return (f"- search: {len(trials)} sampled, {n_stopped} stopped early; selected on {metric}: "
            f"{best['cell_label']} ({best[metric]:.4g})")


FIGURE_CAPTIONS = {
    "swaps": "target, source (the next test face), the self-reconstruction, every component from the source "
             "(mask-to-face on the target's map), then one component group at a time (the thesis's Figs. 4.11, 4.13)",
    "mask_to_face": "each test face as the source of the first face's map and background (Fig. 4.7)",
    "edited": "the target's map with the source's mouth, then its eyes, at the target's centres, and the face "
              "generated on each (Figs. 4.8-4.10)",
    "unmask": "the masked test face, its true map, then per configuration the map completed under the mask and "
              "the restoration (the generated face inside the mask), and the clean target",
}
# figures every cell adds its own columns to (the rest are the reference cell's): name -> the columns
# that are the same in every cell, shown once
PER_CELL_FIGURES = {"unmask": ("input", "true map", "target")}


def _per_cell(own: Mapping[str, Mapping[str, list]], fig: str, first: str) -> list:
    shared = PER_CELL_FIGURES[fig]
    base = dict(own[first][fig])
    columns = [(c, base[c]) for c in shared[:-1] if c in base]
    for cell in [first, *(c for c in own if c != first)]:
        columns += [(f"{cell}: {c}", img) for c, img in own[cell].get(fig, []) if c not in shared]
    return columns + [(c, base[c]) for c in shared[-1:] if c in base]


def trainer_figures(own: Mapping[str, Mapping[str, list]], reference: str | None, reports_dir: Path,
                    name: str) -> tuple[list[Path], list[str]]:
    """A trainer's own figures (evaluate's ``figures.npz``): each figure of the reference cell (the
    first cell when none is named), and the skin-only swap of every cell side by side (the thesis's
    Figs. 4.13 / 4.14: original vs eye mask)."""
    cell = reference if reference in own else next(iter(own))
    written, lines = [], []
    for fig, columns in own[cell].items():
        if fig in PER_CELL_FIGURES:
            columns = _per_cell(own, fig, cell)
        path = reports_dir / f"{name}_{fig}.png"
        written.append(image_grid(columns, path))
        which = "every configuration" if fig in PER_CELL_FIGURES else f"configuration `{cell}`"
        lines += ["", f"![{fig}: {FIGURE_CAPTIONS.get(fig, fig)}; {which.replace('`', '')}]({path.name})",
                  "", f"*{fig}*: {FIGURE_CAPTIONS.get(fig, fig)}; {which}, first seed."]
    skin = [(c, dict(figs["swaps"])) for c, figs in own.items() if "swaps" in figs]
    if len(skin) > 1 and all("skin from source" in cols for _, cols in skin):
        first = skin[0][1]
        columns = [("target", first["target"]), ("source", first["source"])]
        columns += [(f"skin from source: {c}", cols["skin from source"]) for c, cols in skin]
        path = reports_dir / f"{name}_skin_swap.png"
        written.append(image_grid(columns, path))
        lines += ["", f"![skin-only swap per configuration]({path.name})", "",
                  "*skin swap*: only the skin embedding from the source, per configuration (first seed): with "
                  "unmasked eye windows the skin around the eyes should stay the target's (the thesis, 4.5.1)."]
    return written, lines


def _with_twins(eval_df: pd.DataFrame, twins: pd.DataFrame) -> pd.DataFrame:
    """``eval_df`` with the end-to-end rows after its trials and after its baselines, respectively."""
    parts = [eval_df[eval_df["role"] == "trial"], twins[twins["role"] == "trial"],
             eval_df[eval_df["role"] != "trial"], twins[twins["role"] != "trial"]]
    return pd.concat([p for p in parts if len(p)], ignore_index=True)


def _meta(name: str, study: Any) -> dict[str, Any]:
    raw = study.model_dump() if hasattr(study, "model_dump") else dict(study or {})
    return {"name": name, **raw}


def _trial_labels(study_dir: Path) -> dict[str, str]:
    path = study_dir / TRIALS_FILE
    if not path.is_file():
        return {}
    t = pd.read_parquet(path, columns=["trial_id", "cell_label", "seed"])
    return {str(r.trial_id): f"{r.cell_label} seed={r.seed}" for r in t.itertuples()}


def _headline(metric: str, best: tuple[list[str], float], eval_df: pd.DataFrame) -> str:
    """One index line: the best configuration on ``metric`` when it is ahead of every other beyond seed
    noise, else the group tied with the best mean."""
    from unmask.evaluation.summary import compare_seeds, seed_values

    name = METRICS[metric][0]
    labels, value = best
    if len(labels) > 1:
        return f"- {name}: tied at the best mean ({value:.4g}): {', '.join(labels)}"
    values = seed_values(eval_df)
    top = values.get(labels[0], {}).get(metric, [])
    higher = METRICS[metric][1]
    others = [lb for lb, v in values.items() if lb != labels[0] and v.get(metric)]
    tied = [lb for lb in others if compare_seeds(top, values[lb][metric], higher) != 1]
    if not others:
        return f"- {name}: {labels[0]} ({value:.4g}), the only configuration measured"
    if not tied:
        return f"- best {name}: {labels[0]} ({value:.4g}), ahead of every other beyond seed noise"
    return (f"- {name}: no best beyond seed noise; the best mean {labels[0]} ({value:.4g}) is tied with "
            + ", ".join(tied))


def write_reports(results_dir: str | os.PathLike, reports_dir: str | os.PathLike,
                  studies: Mapping[str, Any]) -> list[Path]:
    """For each study (name -> its params entry: ``title``, ``reference``, ``kinds``...) read
    ``results/<study>/{eval.parquet, samples.npz, curves.parquet}`` (and, for a study that reads other
    studies, ``results/across/<study>/<other>/``) and write ``reports/<study>.md``, ``<study>.png``,
    ``<study>_curves.png`` (when curves exist) and ``reports/README.md``. Returns the files written. It
    measures nothing: a missing file raises UnmaskError naming it and the stage that writes it."""
    results_dir, reports_dir = Path(results_dir), Path(reports_dir)
    written: list[Path] = []
    index = ["# Study reports", "",
             "Re-runs of the seeds' comparisons (seed 000's tables, seed 002's U-Net vs cGAN, seed 004's "
             "FD-StackGAN, seed 001's mask segmenter and coarse-to-fine inpainters; see each page for data "
             "source, image size, steps, seeds and CPU). "
             "Headline per metric: a configuration is named best only when it is ahead of every other beyond "
             "seed noise (every seed of it better than every seed of each other, the rule of each page); "
             "otherwise the configurations tied with the best mean are listed.", ""]
    for name, study in studies.items():
        meta = _meta(name, study)
        study_dir = results_dir / name
        eval_path = study_dir / EVAL_FILE
        if not eval_path.is_file():
            raise UnmaskError(f"{eval_path}: missing; run the evaluate stage for study {name!r} first")
        try:
            eval_df = pd.read_parquet(eval_path)
        except (OSError, ValueError) as err:   # pyarrow's ArrowInvalid is a ValueError
            raise UnmaskError(f"{eval_path}: not a table ({str(err).strip().splitlines()[0]}); re-run the "
                              f"evaluate stage for study {name!r}") from None
        paper = paper_table(meta.get("reference"), where=f"studies.{name}.reference")
        search = meta.get("search")
        if search:
            trials_path = study_dir / TRIALS_FILE
            if not trials_path.is_file():
                raise UnmaskError(f"{trials_path}: missing; run the sweep of study {name!r} first")
            trials = pd.read_parquet(trials_path)
            page = [search_table(eval_df, trials, meta)]
            written.append(search_figure(trials_path, search, reports_dir / f"{name}_search.png"))
            page += ["", f"![each sampled value against {search.get('metric', 'val_psnr')}]({name}_search.png)"]
        else:
            e2e = None
            if meta.get("mask_from"):
                e2e = load_end_to_end(across_dir(results_dir, name, meta["mask_from"]))
                eval_df = _with_twins(eval_df, e2e.rows)
            scored = None
            if meta.get("scored_by"):
                rows, scored = load_parsing(across_dir(results_dir, name, meta["scored_by"]))
                eval_df = eval_df.drop(columns=[c for c in rows.columns if c != "trial_id" and c in eval_df]).merge(
                    rows, on="trial_id", how="left")
            page = [study_table(eval_df, meta, paper)]
            if scored is not None and "real_hole_miou" in scored:
                page += ["", f"Semantic fidelity (`parse_hole_miou`): each restoration (given the true mask) parsed "
                         f"by `{scored['scorer']}` (the champion of `{meta['scored_by']}`, trained on clean faces, "
                         f"never a loss), its labels against the true clean map inside the mask only. Its ceiling, "
                         f"the scorer on the clean faces themselves inside the masks: {scored['real_hole_miou']:.4f} "
                         f"({scored['real_miou']:.4f} on the whole of the {scored['n_test']} faces)."]
            elif scored is not None:
                page += ["", f"Parsing mIoU rows: the outputs parsed by `{scored['scorer']}` (the champion of "
                         f"`{meta['scored_by']}`, never a loss), against the map each was generated on; that parser "
                         f"scores {scored['real_miou']:.4f} mIoU ({scored['real_acc']:.4f} pixel accuracy) on the "
                         f"{scored['n_test']} real test faces, the ceiling. Swap: every component from the next test "
                         "face; edited: the target's map with that face's mouth and eyes at the target's centres."]
            if meta.get("champions"):
                page += champions_section(load_champions(results_dir, name, meta["champions"]), eval_df, shown_metrics(eval_df, meta), METRICS,
                                          _fmt)
            if e2e is not None:
                stages_png = None
                if e2e.stages:
                    written.append(image_grid(e2e.stages, reports_dir / f"{name}_stages.png"))
                    stages_png = f"{name}_stages.png"
                page += end_to_end_section(e2e, stages_png, eval_df, shown_metrics(eval_df, meta), METRICS)
        if (study_dir / SAMPLES_FILE).is_file():
            finds_masks = getattr(study, "finds_masks", lambda: False)()
            written.append(comparison_figure(study_dir / SAMPLES_FILE, reports_dir / f"{name}.png",
                                             target="mask" if finds_masks else "image"))
            page += ["", f"![input, target and each configuration's output on the same test faces]({name}.png)"]
        own = load_figures(study_dir / FIGURES_FILE)
        if own:
            written_figs, lines = trainer_figures(own, meta.get("reference_cell"), reports_dir, name)
            written += written_figs
            page += lines
        if (study_dir / CURVES_FILE).is_file():
            written.append(learning_curves(study_dir / CURVES_FILE, reports_dir / f"{name}_curves.png",
                                           _trial_labels(study_dir)))
            page += ["", f"![learning curves]({name}_curves.png)"]
        write_text(reports_dir / f"{name}.md", "\n".join(page) + "\n")
        written.append(reports_dir / f"{name}.md")
        index += [f"## [{meta.get('title') or name}]({name}.md)", ""]
        if search:
            index.append(_search_headline(trials, search))
        best = best_cells(eval_df)
        shown = shown_metrics(eval_df, meta)
        index += [_headline(m, best[m], eval_df) for m in shown if m in best]
        for m, notes in unmeasured(eval_df, shown).items():
            if m not in best:
                index.append(f"- {METRICS[m][0]}: {notes[0] if notes else 'n/a'}")
        index.append("")
    write_text(reports_dir / "README.md", "\n".join(index))
    written.append(reports_dir / "README.md")
    return written
