"""The content-addressed trial store: a grid trial shared by several studies is trained once.

A trial's key is the sha256 of a canonical JSON of what defines its result: its resolved TrainConfig
(``trial["train"]``, the seed included), its image size and occlusion kinds, and the data version --
the sha256 of the split files' bytes (``train``/``val``/``test`` under the data root; names and
contents, never mtimes, so a fresh clone of the same data gives the same keys). The study, cell and
cell label are not part of it: the same trial may be another cell of another study.

``<store>/<key>/`` (default ``results/trial_store``; git-ignored, not a DVC output) holds

- ``record.json``: the trial's finished row as the sweep tabulated it (metrics, ``mlflow_run_id``,
  ``model_uri``, ``train_time_s``, ``steps``, ...) plus ``trained_by`` (the study that trained it),
  ``parent_run_id`` and ``experiment_id`` (where its MLflow run lives);
- ``last.pt``: a copy of its final checkpoint (fetched when the sweep stored it on a remote filesystem);
- ``curves.parquet``: its learning-curve rows.

The folder is written whole and renamed into place (:func:`unmask.io.atomic.atomic_dir`): an entry
exists only complete. Only finished trials with finite test metrics are stored (LPIPS may be missing,
with its reason). Per-file digests of the split files are memoised in ``<store>/data_hashes.json``
by (path, size, mtime) so that each sweep does not re-read the whole data set.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from unmask.catalog.metrics import METRIC_SPECS
from unmask.catalog.schemas import NOTE
from unmask.catalog.status import TrialStatus
from unmask.io.atomic import atomic_dir, atomic_path, write_text
from unmask.io.remote import local_copy

RECORD, CHECKPOINT, CURVES = "record.json", "last.pt", "curves.parquet"
SPLITS = ("train", "val", "test")
HASH_MEMO = "data_hashes.json"


def required_test(row: dict[str, Any]) -> tuple[str, ...]:
    """The test metrics that must be finite for a trial row to count as finished well: those its
    trainer declares (``Trainer.REQUIRED_METRICS``; rows without a ``framework`` column are image
    trainers'). An image trainer's LPIPS may be n/a instead (its note says why)."""
    from unmask.training import trainer_class

    framework = row.get("framework")
    cls = trainer_class(framework if isinstance(framework, str) and framework else "cyclegan")
    return tuple(f"test_{m}" for m in cls.REQUIRED_METRICS)


def select_by(table: pd.DataFrame) -> str:
    """The validation metric a grid study's champion is chosen on: its trainers' ``SELECT_BY``
    (``val_psnr`` for the image trainers, ``val_dice`` for a segmenter)."""
    from unmask.training import trainer_class

    names = {f for f in table.get("framework", pd.Series([], dtype=str)).dropna() if f}
    picks = {trainer_class(f).SELECT_BY for f in names}
    if len(picks) > 1:
        raise ValueError(f"trainers {sorted(names)} choose their champions on different metrics {sorted(picks)}")
    return picks.pop() if picks else "val_psnr"   # rows written before trainers declared it: image trainers


def weighted_columns(row: dict[str, Any]) -> list[str]:
    """The weighted metrics a stored image trial must account for: the ones a trial's suite asks for
    (those shown by default) and any other the row holds a note column for."""
    if "test_psnr" not in required_test(row):     # a segmenter: measured by its own metrics only
        return []
    return [s.name for s in METRIC_SPECS if s.needs_weights is not None and s.kind == "image"
            and (s.shown_by_default or f"{NOTE}{s.name}" in row)]


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=list, allow_nan=False)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def data_version(data_root: str | os.PathLike, memo: str | os.PathLike | None = None) -> str:
    """sha256 over the relative names and contents of every file in the ``train``/``val``/``test``
    splits under ``data_root``. ``memo``: a JSON file of per-file digests keyed by path, size and
    mtime, to skip re-reading unchanged files (the digest itself never depends on the mtime)."""
    root = Path(data_root)
    files = sorted(p for split in SPLITS if (root / split).is_dir() for p in (root / split).rglob("*") if p.is_file())
    cache: dict[str, Any] = {}
    if memo is not None:
        try:
            cache = json.loads(Path(memo).read_text())
        except (OSError, ValueError):
            cache = {}
    fresh: dict[str, Any] = {}
    h = hashlib.sha256()
    for p in files:
        st = p.stat()
        key = str(p.resolve())
        hit = cache.get(key)
        digest = hit[2] if hit and hit[:2] == [st.st_size, st.st_mtime_ns] else _file_sha256(p)
        fresh[key] = [st.st_size, st.st_mtime_ns, digest]
        h.update(f"{p.relative_to(root).as_posix()}\0{digest}\n".encode())
    if memo is not None and any(cache.get(k) != v for k, v in fresh.items()):
        with contextlib.suppress(OSError):   # a read-only store still works, only slower
            write_text(memo, json.dumps({**cache, **fresh}))
    return h.hexdigest()


def trial_key(trial: dict[str, Any], data: str) -> str:
    """The content address of a (grid) trial on data version ``data``."""
    key = {"train": trial["train"], "image_size": trial["image_size"], "kinds": trial["kinds"], "data": data}
    if trial.get("test_kinds"):     # measured on other kinds than it trains on
        key["test_kinds"] = trial["test_kinds"]
    return hashlib.sha256(_canonical(key).encode()).hexdigest()


def storable(row: dict[str, Any]) -> bool:
    """Finished, with a checkpoint and finite test metrics (a weighted one such as LPIPS: finite, or n/a
    with its note)."""
    def finite(v: Any) -> bool:
        return isinstance(v, (int, float)) and math.isfinite(v)

    if row.get("status") != TrialStatus.FINISHED or not row.get("checkpoint"):
        return False
    if not all(finite(row.get(k)) for k in required_test(row)):
        return False
    def noted(v: Any) -> bool:
        return isinstance(v, str) and bool(v)

    return all(finite(row.get(f"test_{m}")) or noted(row.get(f"{NOTE}{m}")) for m in weighted_columns(row))


def _plain(v: Any) -> Any:
    """A JSON-able scalar (numpy scalars from a DataFrame row as Python)."""
    return v.item() if hasattr(v, "item") and not isinstance(v, (str, bytes)) else v


class TrialStore:
    """``<root>/<key>/{record.json, last.pt, curves.parquet}``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()

    def entry(self, key: str) -> Path:
        return self.root / key

    def checkpoint(self, key: str) -> Path:
        return self.entry(key) / CHECKPOINT

    def load(self, key: str) -> dict[str, Any] | None:
        """The record of ``key``; None when not stored (or the entry is incomplete / unreadable)."""
        entry = self.entry(key)
        try:
            record = json.loads((entry / RECORD).read_text())
        except (OSError, ValueError):
            return None
        return record if (entry / CHECKPOINT).is_file() and (entry / CURVES).is_file() else None

    def curves(self, key: str) -> pd.DataFrame:
        return pd.read_parquet(self.entry(key) / CURVES)

    def put(self, key: str, row: dict[str, Any], curves: pd.DataFrame, **extra: Any) -> dict[str, Any]:
        """Store a finished trial: ``row`` (its trials-table row, whose ``checkpoint`` is a path or URI
        to copy), its curve rows and ``extra`` record fields; returns the record."""
        record = {k: _plain(v) for k, v in row.items()}
        record.update({k: _plain(v) for k, v in extra.items()}, trial_key=key)
        with atomic_dir(self.entry(key)) as tmp:
            with local_copy(str(row["checkpoint"])) as ckpt:
                shutil.copyfile(ckpt, tmp / CHECKPOINT)
            with atomic_path(tmp / CURVES) as f:
                curves.reset_index(drop=True).to_parquet(f, index=False)
            (tmp / RECORD).write_text(json.dumps(record, indent=1) + "\n")
        return record
