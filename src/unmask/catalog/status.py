"""The ``status`` of a trial in ``trials.parquet`` and ``eval.parquet``: one definition.

The stored values are Ray Tune's (``TERMINATED``, ``ERROR``) plus the pipeline's own; a
:class:`TrialStatus` compares equal to its stored string, so tables written before it read the same.
(MLflow run statuses, ``FINISHED`` / ``FAILED`` / ``KILLED``, are MLflow's vocabulary, not these.)
"""

from __future__ import annotations

from enum import StrEnum


class TrialStatus(StrEnum):
    FINISHED = "TERMINATED"          # trained every step and was measured
    FAILED = "ERROR"                 # raised (the reason is the row's ``error``)
    STOPPED_EARLY = "STOPPED_EARLY"  # a search's scheduler stopped it (``steps_done`` < ``steps``)
    NOT_RUN = "NOT_RUN"              # cannot train here (weights it needs are missing; ``error`` says which)
