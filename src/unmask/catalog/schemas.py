"""The columns of the result tables, one definition each, checked whenever a table is written.

``trials.parquet`` (a row per trial, :mod:`unmask.studies.results`), ``curves.parquet`` (a row per
logged value), ``eval.parquet`` (a row per trial and baseline, :mod:`unmask.evaluation.evaluate`; the
end-to-end rows add ``twin_of``) and ``champion.parquet`` (:mod:`unmask.evaluation.across`). A
schema names the columns every row has and their kind, the columns some writers add, and the
prefixes of the measured columns (``val_<metric>``, ``test_<metric>[@kind]``: floats, NaN where not
measured, one per catalogue metric, so a registered metric needs no schema change) and of the notes
that say why a metric was not measured (``note_<metric>``: "n/a: ... weights missing"). A table that
lacks a column, holds one of the wrong kind or one no schema declares is refused naming the file and
the column, before anything is written: the data stages' :mod:`unmask.data.schema` for the results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from unmask.catalog.status import TrialStatus
from unmask.errors import UnmaskError

STR, INT, FLOAT, BOOL = "string", "integer", "float", "boolean"
NOTE = "note_"    # note_<metric>: why that metric is n/a in the row


@dataclass(frozen=True)
class TableSchema:
    name: str
    required: Mapping[str, str]                       # column -> kind, in every table
    optional: Mapping[str, str] = field(default_factory=dict)   # column -> kind, when a writer adds it
    measured: tuple[str, ...] = ()                    # prefixes of float metric columns
    statuses: bool = False                            # ``status`` holds TrialStatus values
    noted: tuple[str, ...] = ()                       # prefixes of text columns (why a metric is n/a)

    def kind_of(self, column: str) -> str | None:
        if column in self.required:
            return self.required[column]
        if column in self.optional:
            return self.optional[column]
        if self.noted and column.startswith(self.noted):
            return STR
        return FLOAT if column.startswith(self.measured) and self.measured else None

    def check(self, df, where: str) -> None:
        """UnmaskError naming ``where`` and the column when pandas frame ``df`` does not fit."""
        missing = [c for c in self.required if c not in df.columns]
        if missing:
            raise UnmaskError(f"{where}: {self.name} table lacks column{'s' if len(missing) > 1 else ''} "
                              f"{', '.join(missing)}")
        for column in df.columns:
            kind = self.kind_of(str(column))
            if kind is None:
                raise UnmaskError(f"{where}: {self.name} table: column {column!r} is not in its schema "
                                  f"(unmask.catalog.schemas)")
            wrong = _wrong_kind(df[column], kind)
            if wrong is not None:
                raise UnmaskError(f"{where}: {self.name} table: column {column!r} must hold {kind} values, "
                                  f"got {wrong}")
        if self.statuses and len(df):
            bad = sorted({str(s) for s in df["status"]} - {s.value for s in TrialStatus})
            if bad:
                raise UnmaskError(f"{where}: {self.name} table: status {bad[0]!r} is not a trial status "
                                  f"(choose from {', '.join(s.value for s in TrialStatus)})")


def _wrong_kind(series, kind: str) -> str | None:
    """None when every non-missing value of ``series`` is of ``kind``; else what was found."""
    from pandas.api import types

    values = series.dropna()
    if not len(values):
        return None
    if kind == FLOAT:
        ok = types.is_float_dtype(series) or types.is_integer_dtype(series) and not types.is_bool_dtype(series)
    elif kind == INT:   # a float column of whole numbers counts (pandas makes one of ints with a gap)
        ok = (types.is_integer_dtype(series) and not types.is_bool_dtype(series)
              or types.is_float_dtype(series) and bool((values == values.round()).all()))
    elif kind == BOOL:
        ok = types.is_bool_dtype(series)
    else:
        ok = types.is_string_dtype(series) and all(isinstance(v, str) for v in values)
    if ok:
        return None
    sample = values.iloc[0]
    sample = sample.item() if hasattr(sample, "item") else sample   # numpy scalar -> its Python value
    return f"{type(sample).__name__} {repr(sample)[:40]}"


_IDS = {"study": STR, "trial_id": STR, "cell": STR, "cell_label": STR}

TRIALS = TableSchema(
    "trials",
    required={**_IDS, "seed": INT, "status": STR, "steps_done": INT, "framework": STR, "checkpoint": STR,
              "steps": INT, "image_size": INT, "data_source": STR, "error": STR},
    optional={"cpu": STR, "mlflow_run_id": STR, "model_uri": STR, "train_time_s": FLOAT,
              "node_ip": STR, "node_id": STR, "trial_key": STR, "trained_by": STR, "reused": BOOL},
    measured=("val_", "test_"), statuses=True, noted=(NOTE,))

CURVES = TableSchema("curves", required={"study": STR, "trial_id": STR, "step": INT, "metric": STR, "value": FLOAT})

EVAL = TableSchema(
    "evaluation",
    required={**_IDS, "role": STR, "seed": INT, "status": STR, "checkpoint": STR, "steps": INT,
              "image_size": INT, "data_source": STR, "n_test": INT, "cpu": STR, "eval_cpu": STR},
    optional={"note": STR, "params_g": FLOAT, "params_d": FLOAT,
              "twin_of": STR},    # end to end: the trial_id of the row measured with the true mask
    measured=("test_",), statuses=True, noted=(NOTE,))

CHAMPION = TableSchema(
    "champion",
    required={"study": STR, "cell_label": STR, "seed": INT, "framework": STR, "model_input": STR,
              "image_size": INT, "n_test": INT},
    measured=("test_",))
