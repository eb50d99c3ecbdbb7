"""Re-compute a study's test metrics from its checkpoints, without retraining, beside the baselines.

``evaluate_study`` rebuilds each finished trial's trainer from the configuration stored in its
checkpoint, translates the test split and measures it exactly as training did (``compute_metrics`` on
[0, 1], averaged over all test images), so LPIPS can be filled in later when its weights appear. The
no-training baselines (``unmask.metrics.BASELINES``) are measured on the same images. The first test
faces and every configuration's output on them are kept for the comparison figure.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from torch.utils.data import Subset
from tqdm import tqdm

from unmask.catalog.schemas import EVAL
from unmask.catalog.status import TrialStatus
from unmask.data.torch_datasets import PAIRED_FIELDS, batches, test_set
from unmask.errors import UnmaskError
from unmask.io.atomic import atomic_path
from unmask.io.locations import resolve_location
from unmask.io.named import naming
from unmask.io.remote import local_copy
from unmask.io.shards import arrow_reason
from unmask.metrics import MetricSuite, aggregate
from unmask.metrics.baseline_kinds import BaselineKind, baseline_kind, check_baselines
from unmask.sysinfo import cpu_description
from unmask.training import Trainer, load_trainer, trainer_class

EVAL_FILE = "eval.parquet"
SAMPLES_FILE = "samples.npz"
FIGURES_FILE = "figures.npz"     # a trainer's own figures (Trainer.figure_columns), per cell; empty when none
REQUIRED = ("trial_id", "cell", "cell_label", "seed", "status", "checkpoint")


def _measure_trainer(trainer, ds: Subset, batch_size: int, metrics: MetricSuite, n_keep: int
                     ) -> tuple[dict[str, float], np.ndarray]:
    """Mean of the trainer's own test metrics (:meth:`~unmask.training.Trainer.measure`: image metrics,
    or a segmenter's mask metrics) over ``ds``, and per occlusion kind as ``<metric>@<kind>`` when it
    holds several; and the first ``n_keep`` outputs as uint8."""
    def outputs():
        for b in batches(ds, batch_size):
            yield trainer.measure(b, metrics), lambda b=b: trainer.translate(*trainer.inputs(b))
    return means_by_kind(outputs(), ds, n_keep)


def _set_level(trainer, ds: Subset, batch_size: int, metrics: MetricSuite) -> dict[str, float]:
    """The suite's set-level metrics (FID) of the trainer's outputs against the true faces, over all of ``ds``."""
    if not metrics.set_level:
        return {}
    outs, reals = [], []
    for b in batches(ds, batch_size):
        outs.append((trainer.translate(*trainer.inputs(b)).float().cpu() + 1) / 2)
        reals.append((b["clean"].float() + 1) / 2)
    fake, real = torch.cat(outs), torch.cat(reals)
    return {name: fn(fake, real) for name, fn in metrics.set_level.items()}


def _measure_baseline(kind: BaselineKind, name: str, ds: Subset, batch_size: int, metrics: MetricSuite,
                      n_keep: int) -> tuple[dict[str, float], np.ndarray]:
    """A baseline of ``kind`` measured as that kind measures it, overall and per occlusion kind; its
    first outputs as uint8."""
    fn = kind.names[name]
    return means_by_kind((kind.measure(fn, b, metrics) for b in batches(ds, batch_size)), ds, n_keep,
                         per_kind=kind.per_kind)


def means_by_kind(outputs, ds: Subset, n_keep: int, per_kind: bool = True) -> tuple[dict[str, float], np.ndarray]:
    """Means of per-image metric batches, overall and per occlusion kind as ``<metric>@<kind>`` when
    ``ds`` holds several kinds; and the first ``n_keep`` outputs (each batch's image thunk) as uint8."""
    per_batch, kept, n = [], [], 0
    for metrics, images in outputs:
        per_batch.append(metrics)
        if n < n_keep:
            kept.append(to_uint8(images()[: n_keep - n]))
            n += len(kept[-1])
    means = aggregate(per_batch)
    kinds = np.array([ds.dataset.kinds[i] for i in ds.indices])
    if per_kind and len(set(kinds)) > 1:
        for metric in per_batch[0] if per_batch else ():
            values = torch.cat([torch.as_tensor(b[metric]).double().flatten().cpu() for b in per_batch]).numpy()
            for kind in sorted(set(kinds)):
                sel = values[kinds == kind]
                means[f"{metric}@{kind}"] = float(np.nanmean(sel)) if np.isfinite(sel).any() else math.nan
    return means, np.concatenate(kept) if kept else np.zeros((0, 1, 1, 3), np.uint8)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) in [-1, 1] -> (B, H, W, C) uint8 (C = 1 squeezed to (B, H, W))."""
    arr = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    arr = arr.permute(0, 2, 3, 1).numpy()
    return arr[..., 0] if arr.shape[-1] == 1 else arr


def _check_trials(trials: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED if c not in trials.columns]
    if missing:
        raise UnmaskError(f"trials table: missing column {missing[0]!r} (need {', '.join(REQUIRED)})")


def read_trials(path: str | os.PathLike) -> pd.DataFrame:
    """``results/<study>/trials.parquet`` as a DataFrame; a file that is not one (not Parquet, damaged, or
    without the columns evaluation needs) raises a one-line UnmaskError naming it."""
    try:
        trials = pd.read_parquet(path)
    except (pa.ArrowException, OSError, ValueError) as e:   # ArrowInvalid is a ValueError
        raise UnmaskError(f"{path}: not a trials table ({arrow_reason(e)})") from None
    missing = [c for c in REQUIRED if c not in trials.columns]
    if missing:
        raise UnmaskError(f"{path}: not a trials table (no column {missing[0]!r}; need {', '.join(REQUIRED)})")
    return trials


def _first(trials: pd.DataFrame, column: str, default):
    return trials[column].iloc[0] if column in trials.columns and len(trials) else default


def evaluate_study(trials: pd.DataFrame, test_split_dir: str | os.PathLike, kinds: Sequence[str] | None,
                   baselines: Sequence[str], metrics: MetricSuite | None,
                   out_dir: str | os.PathLike, n_samples: int = 6, batch_size: int = 16,
                   device: str = "cpu", progress: bool = True,
                   root: str | os.PathLike | None = None, trainer: type[Trainer] | None = None) -> pd.DataFrame:
    """Test metrics (``metrics``; None: every catalogue metric whose weights are in their default
    places) of every trial (from its checkpoint) and of each baseline; writes
    ``out_dir/eval.parquet`` and ``out_dir/samples.npz`` atomically and returns the table.

    Rows: one per trial (``role`` "trial"; trials that did not finish keep their row with NaN metrics)
    and one per baseline (``role`` "baseline", ``seed`` null). Columns: study, role, trial_id, cell,
    cell_label, seed, status, test_<metric>..., note_<metric> (why an asked metric is n/a), checkpoint, steps, image_size,
    data_source, n_test, cpu (the CPU that trained the trial: trials.parquet's ``cpu`` when it has
    one, else this machine's; :func:`unmask.sysinfo.cpu_description`) and eval_cpu (this machine's).
    ``samples.npz`` holds ``input``/``target`` (N, H, W, 3) and ``mask`` (N, H, W) uint8, ``labels``
    (one per column) and ``out_<i>`` for each label: the first finished trial of each cell (in the
    trials' order), then the baselines. Unknown baselines raise ConfigError; unreadable checkpoints CheckpointError.
    Relative ``checkpoint`` paths are read from the project root ``root`` (:func:`resolve_location`; None: the
    working directory); the table keeps them as stored. ``trainer``: the study's trainer class (its
    ``output`` picks the kind of baselines, its ``FIELDS`` and ``inputs`` what the test set holds and the
    figure shows; None: the class of the trials' ``framework``).
    """
    _check_trials(trials)
    if trainer is None:   # the trials' own framework (every trial of a study has one)
        frameworks = trials["framework"].dropna() if "framework" in trials.columns else pd.Series([], dtype=str)
        trainer = trainer_class(str(frameworks.iloc[0])) if len(frameworks) else Trainer
    trainer_cls = trainer   # ``trainer`` names each trial's loaded trainer below
    kind = baseline_kind(trainer_cls.output)
    check_baselines(baselines, trainer_cls.output, key="studies.<study>.baselines")
    fields = tuple(dict.fromkeys([*PAIRED_FIELDS, *trainer_cls.FIELDS, *(kind.fields if baselines else ())]))
    metrics = metrics if metrics is not None else MetricSuite()
    notes = metrics.notes()
    kinds = list(kinds) if kinds else None
    study = _first(trials, "study", Path(out_dir).name)
    eval_cpu = cpu_description()
    datasets: dict[int | None, Subset] = {}

    def dataset(size: int | None) -> Subset:
        """The test set, reordered so the sample faces in the figure are different people."""
        if size not in datasets:
            datasets[size] = test_set(test_split_dir, kinds, size, fields)
        return datasets[size]

    rows: list[dict] = []
    samples: dict[str, np.ndarray] = {}
    figures: list[tuple[str, np.ndarray]] = []
    sample_size: int | None = None
    for _, t in tqdm(list(trials.iterrows()), desc=f"evaluate {study}", unit="trial", disable=None if progress else True):
        row = {"study": study, "role": "trial", "trial_id": str(t["trial_id"]), "cell": t["cell"],
               "cell_label": t["cell_label"], "seed": int(t["seed"]), "status": t["status"],
               **notes, "checkpoint": t["checkpoint"],
               "steps": _opt_int(t.get("steps")), "image_size": _opt_int(t.get("image_size")),
               "data_source": t.get("data_source", ""), "n_test": 0,
               "cpu": _text(t.get("cpu")) or eval_cpu, "eval_cpu": eval_cpu,
               "note": _text(t.get("error")) if t["status"] != TrialStatus.FINISHED else ""}
        if t["status"] == TrialStatus.FINISHED:
            with local_copy(resolve_location(t["checkpoint"], root)) as ckpt:
                trainer = load_trainer(ckpt, device=device)
            row["params_g"] = sum(p.numel() for p in trainer.generators.parameters())
            row["params_d"] = sum(p.numel() for p in trainer.discriminators.parameters())
            size = row["image_size"] or trainer.cfg.image_size
            row["image_size"] = row["image_size"] or size
            sample_size = size if sample_size is None else sample_size
            ds = dataset(size)
            keep = n_samples if size == sample_size and t["cell_label"] not in samples else 0
            means, kept = _measure_trainer(trainer, ds, batch_size, metrics, keep)
            means.update(_set_level(trainer, ds, batch_size, metrics))
            row.update({f"test_{k}": v for k, v in means.items()}, n_test=len(ds))
            if keep:
                samples[t["cell_label"]] = kept
                columns = getattr(trainer, "figure_columns", None)
                if columns is not None:
                    first = next(iter(batches(ds, n_samples)))
                    figures += [(f"{t['cell_label']}\t{fig}\t{col}", to_uint8(images))
                                for fig, col, images in columns(first, n_samples)]
        rows.append(row)

    size = sample_size if sample_size is not None else _opt_int(_first(trials, "image_size", None))
    ds = dataset(size)
    for name in baselines:
        means, kept = _measure_baseline(kind, name, ds, batch_size, metrics, n_samples)
        samples[f"baseline: {name}"] = kept
        rows.append({"study": study, "role": "baseline", "trial_id": f"baseline:{name}",
                     "cell": json.dumps({"baseline": name}), "cell_label": name, "seed": None,
                     "status": TrialStatus.FINISHED.value, **{f"test_{k}": v for k, v in means.items()}, **notes,
                     "checkpoint": "", "steps": 0, "image_size": size or _native_size(ds),
                     "data_source": _first(trials, "data_source", ""), "n_test": len(ds),
                     "cpu": eval_cpu, "eval_cpu": eval_cpu})

    table = pd.DataFrame(rows)
    table["seed"] = table["seed"].astype("Int64")
    for m in metrics.asked:    # a column for every metric asked, NaN where not computed (its note says why)
        if f"test_{m}" not in table.columns:
            table[f"test_{m}"] = np.nan
    out_dir = Path(out_dir)
    _write_samples(out_dir / SAMPLES_FILE, ds, n_samples, samples, trainer_cls)
    _write_figures(out_dir / FIGURES_FILE, figures)
    EVAL.check(table, str(out_dir / EVAL_FILE))
    with atomic_path(out_dir / EVAL_FILE) as tmp, naming(out_dir / EVAL_FILE):
        table.to_parquet(tmp, index=False)
    return table


def _text(v) -> str:
    return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)


def _opt_int(v) -> int | None:
    return None if v is None or pd.isna(v) else int(v)


def _native_size(ds: Subset) -> int:
    return int(ds[0]["clean"].shape[-1])


def _write_samples(path: Path, ds: Subset, n: int, outputs: dict[str, np.ndarray], trainer: type[Trainer]) -> None:
    n = min(n, len(ds))
    items = [ds[i] for i in range(n)]
    arrays = {"input": to_uint8(torch.stack([trainer.inputs(it)[0] for it in items])),   # what the model is given
              "target": to_uint8(torch.stack([it["clean"] for it in items])),
              "mask": to_uint8(torch.stack([it["mask"] for it in items]) * 2 - 1),
              "labels": np.array(list(outputs), dtype=str)}
    arrays.update({f"out_{i}": out[:n] for i, out in enumerate(outputs.values())})
    with atomic_path(path) as tmp, naming(path), open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def _write_figures(path: Path, figures: list[tuple[str, np.ndarray]]) -> None:
    arrays = {"labels": np.array([label for label, _ in figures], dtype=str)}
    arrays.update({f"col_{i}": images for i, (_, images) in enumerate(figures)})
    with atomic_path(path) as tmp, naming(path), open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def load_figures(path: str | os.PathLike) -> dict[str, dict[str, list[tuple[str, np.ndarray]]]]:
    """``figures.npz`` as cell label -> figure name -> [(column label, images (N, H, W, 3) uint8)]
    (empty when the file is absent: a study whose trainer draws no figures of its own)."""
    out: dict[str, dict[str, list[tuple[str, np.ndarray]]]] = {}
    if not Path(path).is_file():
        return out
    try:
        with np.load(path, allow_pickle=False) as z:
            for i, label in enumerate(str(s) for s in z["labels"]):
                cell, fig, col = label.split("\t")
                out.setdefault(cell, {}).setdefault(fig, []).append((col, z[f"col_{i}"]))
    except (OSError, KeyError, ValueError) as err:
        raise UnmaskError(f"{path}: not a figures file ({str(err).splitlines()[0]})") from None
    return out


def load_samples(path: str | os.PathLike) -> dict[str, np.ndarray | list[str]]:
    """``samples.npz`` as ``{"input", "target", "mask", "labels": [...], "outputs": [array per label]}``."""
    try:
        with np.load(path, allow_pickle=False) as z:
            labels = [str(s) for s in z["labels"]]
            return {"input": z["input"], "target": z["target"], "mask": z["mask"], "labels": labels,
                    "outputs": [z[f"out_{i}"] for i in range(len(labels))]}
    except (OSError, KeyError, ValueError) as err:
        raise UnmaskError(f"{path}: not a samples file ({str(err).splitlines()[0]})") from None
