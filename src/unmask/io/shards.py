"""Parquet shards: the on-disk form of every data stage's output.

A dataset is a directory of ``part-00000.parquet``, ``part-00001.parquet``, ... each holding up to
``rows_per_shard`` rows. Image columns hold PNG bytes; landmarks are ``list<float32>`` (136 values, x/y
interleaved) or null. Writers fill a temporary directory and rename it into place when complete
(:func:`unmask.io.atomic.atomic_dir`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from unmask.errors import UnmaskError

DEFAULT_ROWS_PER_SHARD = 512


class ShardWriter:
    """Append rows (dicts) and flush them as numbered Parquet files under ``directory``."""

    def __init__(self, directory: str | os.PathLike, schema: pa.Schema,
                 rows_per_shard: int = DEFAULT_ROWS_PER_SHARD):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.rows_per_shard = rows_per_shard
        self._rows: list[dict[str, Any]] = []
        self._n_shards = 0
        self.n_rows = 0

    def write(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        if len(self._rows) >= self.rows_per_shard:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        table = pa.Table.from_pylist(self._rows, schema=self.schema)
        pq.write_table(table, self.directory / f"part-{self._n_shards:05d}.parquet",
                       compression="none")  # PNG bytes are compressed already
        self.n_rows += len(self._rows)
        self._n_shards += 1
        self._rows = []

    def close(self) -> None:
        self.flush()
        if self._n_shards == 0:  # keep the schema discoverable even for an empty dataset
            pq.write_table(self.schema.empty_table(), self.directory / "part-00000.parquet")
            self._n_shards = 1

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()


def shard_files(directory: str | os.PathLike) -> list[Path]:
    directory = Path(directory)
    if not directory.is_dir():
        raise UnmaskError(f"{directory}: dataset directory not found (run the stage that writes it)")
    files = sorted(directory.glob("part-*.parquet"))
    if not files:
        raise UnmaskError(f"{directory}: no part-*.parquet shards in dataset directory")
    return files


def read_table(directory: str | os.PathLike, columns: list[str] | None = None,
               filters=None) -> pa.Table:
    """Read all shards of a dataset into one Arrow table."""
    tables = []
    for f in shard_files(directory):
        with _naming(f):
            tables.append(pq.read_table(f, columns=columns, filters=filters))
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def iter_rows(directory: str | os.PathLike, columns: list[str] | None = None,
              batch_size: int = 64) -> Iterator[dict[str, Any]]:
    """Stream rows as dicts, shard by shard, without loading the whole dataset."""
    for f in shard_files(directory):
        with _naming(f):
            batches = pq.ParquetFile(f).iter_batches(batch_size=batch_size, columns=columns)
        while True:
            with _naming(f):   # a shard damaged past its footer fails here, mid-file
                batch = next(batches, None)
            if batch is None:
                break
            yield from batch.to_pylist()


def count_rows(directory: str | os.PathLike) -> int:
    total = 0
    for f in shard_files(directory):
        with _naming(f):
            total += pq.ParquetFile(f).metadata.num_rows
    return total


def arrow_reason(err: BaseException) -> str:
    """The first line of an Arrow/Parquet error, without pyarrow's "Could not open ... '<Buffer>':" prefix."""
    text = (str(err).strip().splitlines() or [type(err).__name__])[0]
    if text.startswith("Could not open Parquet input source") and "': " in text:
        text = text.split("': ", 1)[1]
    return text


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Turn a pyarrow failure on one shard into a one-line UnmaskError naming that shard."""
    try:
        yield
    except (pa.ArrowException, OSError) as e:   # ArrowInvalid (not Parquet, corrupt), ArrowIOError / OSError
        raise UnmaskError(f"{path}: unreadable Parquet shard ({arrow_reason(e)})") from None


def write_rows(directory: str | os.PathLike, schema: pa.Schema, rows: Iterable[dict[str, Any]],
               rows_per_shard: int = DEFAULT_ROWS_PER_SHARD) -> int:
    """Write ``rows`` to ``directory`` (must be a fresh or temporary directory). Returns the row count."""
    with ShardWriter(directory, schema, rows_per_shard) as w:
        for r in rows:
            w.write(r)
    return w.n_rows
