"""Measurements of a study that read another study's models, made by the ``evaluate_across`` stages
(one per entry of params.yaml's ``across``: a study and a study it reads) and written to
``results/across/<study>/<other>/``; the report only reads them.

* ``champion.parquet``: ``other`` in the study's ``champions``: that study's champion measured on this
  study's test images (:mod:`.champions`).
* ``end_to_end.parquet`` + ``end_to_end.json`` + ``end_to_end_stages.npz``: ``other`` is the study's
  ``mask_from``: every finished mask-taking trial and every baseline given the segmenter's predicted
  mask, the segmenter's own scores and the columns of the stages figure (:mod:`.end_to_end`).
* ``parsing.parquet`` + ``parsing.json``: ``other`` is the study's ``scored_by``: every finished trial's
  and baseline's outputs parsed by that study's champion, and its score on the real faces
  (:mod:`.parsing_consistency`; for a study that restores images, the semantic fidelity inside the mask).

Each stage's DVC deps name the other study's trials table, champion and checkpoints, so a re-trained
champion re-measures here and nothing else.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from unmask.catalog.schemas import CHAMPION, EVAL, TableSchema
from unmask.errors import UnmaskError
from unmask.evaluation.champions import measure_champions
from unmask.evaluation.end_to_end import EndToEnd, measure_end_to_end
from unmask.evaluation.evaluate import EVAL_FILE
from unmask.evaluation.parsing_consistency import measure_parsing_consistency, measure_semantic_fidelity
from unmask.io.atomic import atomic_path, write_text
from unmask.io.named import naming
from unmask.metrics import MetricSuite

ACROSS_DIR = "across"
CHAMPION_FILE = "champion.parquet"
E2E_FILE = "end_to_end.parquet"
E2E_INFO_FILE = "end_to_end.json"
E2E_STAGES_FILE = "end_to_end_stages.npz"
PARSING_FILE = "parsing.parquet"
PARSING_INFO_FILE = "parsing.json"


def across_dir(results_dir: str | os.PathLike, study: str, other: str) -> Path:
    """Where what ``study`` measures of ``other``'s models is kept."""
    return Path(results_dir) / ACROSS_DIR / study / other


def measure_across(name: str, study: Any, other: str, results_dir: str | os.PathLike,
                   test_dir: str | os.PathLike, out_dir: str | os.PathLike, root: str | os.PathLike = ".",
                   metrics: MetricSuite | None = None, n_samples: int = 4) -> list[Path]:
    """Measure what study ``name`` (its params entry) reads of study ``other``'s models into
    ``out_dir``; returns the files written."""
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if other in study.champions:
        champ = measure_champions([other], results_dir, test_dir, study.kinds, root, metrics)
        written.append(_write_parquet(champ, out_dir / CHAMPION_FILE, CHAMPION))
    if other == study.mask_from:
        eval_path = results_dir / name / EVAL_FILE
        if not eval_path.is_file():
            raise UnmaskError(f"{eval_path}: missing; run the evaluate stage for study {name!r} first")
        e2e = measure_end_to_end(pd.read_parquet(eval_path), other, results_dir, test_dir,
                                 study.test_kinds or study.kinds, root, metrics, n_samples=n_samples)
        written.append(_write_parquet(e2e.rows, out_dir / E2E_FILE, EVAL))
        write_text(out_dir / E2E_INFO_FILE, json.dumps(
            {"segmenter": e2e.segmenter, "segmentation": e2e.segmentation}, indent=2) + "\n")
        written.append(out_dir / E2E_INFO_FILE)
        written.append(_write_stages(e2e.stages, out_dir / E2E_STAGES_FILE))
    if other == getattr(study, "scored_by", None):
        eval_path = results_dir / name / EVAL_FILE
        if not eval_path.is_file():
            raise UnmaskError(f"{eval_path}: missing; run the evaluate stage for study {name!r} first")
        measure = measure_semantic_fidelity if study.output() == "image" else measure_parsing_consistency
        rows, summary = measure(pd.read_parquet(eval_path), other, results_dir, test_dir,
                                study.test_kinds or study.kinds, root)
        with atomic_path(out_dir / PARSING_FILE) as tmp, naming(out_dir / PARSING_FILE):
            rows.to_parquet(tmp, index=False)
        write_text(out_dir / PARSING_INFO_FILE, json.dumps(summary, indent=2) + "\n")
        written += [out_dir / PARSING_FILE, out_dir / PARSING_INFO_FILE]
    return written


def load_parsing(out_dir: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, Any]]:
    """What :mod:`.parsing_consistency` wrote: the rows (by ``trial_id``) and the scorer's summary."""
    out_dir = Path(out_dir)
    rows = _read_parquet(out_dir / PARSING_FILE)
    info_path = out_dir / PARSING_INFO_FILE
    try:
        return rows, json.loads(info_path.read_text())
    except FileNotFoundError:
        raise UnmaskError(f"{info_path}: missing; {_RUN}") from None
    except (OSError, ValueError) as err:
        raise UnmaskError(f"{info_path}: not a parsing summary ({err})") from None


def load_champions(results_dir: str | os.PathLike, name: str, others: Iterable[str]) -> pd.DataFrame:
    """One row per study in ``others`` (in that order): its champion on study ``name``'s test images."""
    return pd.concat([_read_parquet(across_dir(results_dir, name, o) / CHAMPION_FILE) for o in others],
                     ignore_index=True)


def load_end_to_end(out_dir: str | os.PathLike) -> EndToEnd:
    out_dir = Path(out_dir)
    rows = _read_parquet(out_dir / E2E_FILE)
    info_path = out_dir / E2E_INFO_FILE
    try:
        info = json.loads(info_path.read_text())
        segmenter, segmentation = str(info["segmenter"]), {k: float(v) for k, v in info["segmentation"].items()}
    except FileNotFoundError:
        raise UnmaskError(f"{info_path}: missing; {_RUN}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise UnmaskError(f"{info_path}: not an end-to-end summary ({err})") from None
    return EndToEnd(rows, segmenter, segmentation, _read_stages(out_dir / E2E_STAGES_FILE))


_RUN = "run the evaluate_across stages first (dvc repro evaluate_across)"


def _write_parquet(df: pd.DataFrame, path: Path, schema: TableSchema) -> Path:
    schema.check(df, str(path))
    with atomic_path(path) as tmp, naming(path):
        df.to_parquet(tmp, index=False)
    return path


def _read_parquet(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise UnmaskError(f"{path}: missing; {_RUN}")
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise UnmaskError(f"{path}: not a table ({str(err).splitlines()[0]})") from None


def _write_stages(columns: Iterable[tuple[str, np.ndarray]], path: Path) -> Path:
    columns = list(columns)
    arrays = {"labels": np.array([label for label, _ in columns], dtype=str)}
    arrays.update({f"col_{i}": images for i, (_, images) in enumerate(columns)})
    with atomic_path(path) as tmp, naming(path), open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


def _read_stages(path: Path) -> list[tuple[str, np.ndarray]]:
    if not path.is_file():
        raise UnmaskError(f"{path}: missing; {_RUN}")
    try:
        with np.load(path, allow_pickle=False) as z:
            labels = [str(s) for s in z["labels"]]
            return [(label, z[f"col_{i}"]) for i, label in enumerate(labels)]
    except (OSError, KeyError, ValueError) as err:
        raise UnmaskError(f"{path}: not a stages file ({str(err).splitlines()[0]})") from None
