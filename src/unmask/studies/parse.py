"""Reading the study sections of params.yaml: the schema (:mod:`unmask.studies.config`), then every
trial the studies imply built into a TrainConfig (:mod:`unmask.studies.grid`), so that a bad key or value
fails before any trial starts, with one line naming the file and the dotted key."""

from __future__ import annotations

import itertools
from typing import Any

from pydantic import ValidationError

from unmask.config import STUDY_SECTIONS, Params, _format_error
from unmask.errors import ConfigError
from unmask.studies.config import StudiesParams, StudyConfig
from unmask.studies.grid import cell_label, expand_study


def cell_labels(grid: dict[str, list[Any]], extra_cells: list[dict[str, Any]]) -> list[str]:
    """The labels of a study's cells (grid product, then extra cells), as trials carry them."""
    keys = list(grid)
    cells = [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]
    return [cell_label(c) for c in [*cells, *extra_cells]]


def _check_drawn(params: Params, name: str, study: StudyConfig, source: str) -> None:
    """A study's kinds must be ones the synthesize stage draws (a positive weight in synthesize.kinds, or
    synthesize.every_image): else its trials find no rows, after Ray has started."""
    syn = params.synthesize
    drawn = {k for k, w in syn.kinds.items() if w > 0} | set(syn.every_image)
    for key in ("kinds", "test_kinds"):
        for kind in getattr(study, key) or []:
            if kind.split(":")[0] not in drawn:
                raise ConfigError(f"{source}: studies.{name}.{key}: {kind!r} is never drawn (synthesize.kinds "
                                  f"gives it no weight and synthesize.every_image does not list it; drawn: "
                                  f"{', '.join(sorted(drawn))})")


def parse_study_params(params: Params, source: str | None = None) -> StudiesParams:
    """Validate the study sections of ``params`` (its extra keys) and every trial they imply; errors
    name ``source`` (default: the file ``params`` was read from)."""
    source = source or params.source
    extra = params.model_extra or {}
    raw = {k: extra[k] for k in STUDY_SECTIONS if k in extra and extra[k] is not None}
    try:
        parsed = StudiesParams.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_error(source, err)) from None
    parsed._source = source
    for name, study in parsed.studies.items():
        try:
            expand_study(parsed, name)   # names a misspelt grid key before the reference_cell check below
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None
        _check_drawn(params, name, study, source)
        labels = cell_labels(study.grid, study.extra_cells)
        if study.reference_cell is not None and study.reference_cell not in labels:
            raise ConfigError(f"{source}: studies.{name}.reference_cell: {study.reference_cell!r} is not a cell "
                              "of this study; choose one of " + ", ".join(repr(lb) for lb in labels))
    return parsed
