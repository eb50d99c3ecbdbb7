"""Studies: the seeds' comparisons (grids over seeds, or searches) as Ray Tune sweeps tracked in MLflow (params.yaml ``studies:``)."""

from unmask.studies.config import (
    ResourcesConfig,
    StudiesParams,
    StudyConfig,
    SweepConfig,
    TrackingConfig,
)
from unmask.studies.grid import Trial, expand_study
from unmask.studies.parse import parse_study_params

__all__ = ["ResourcesConfig", "StudiesParams", "StudyConfig", "SweepConfig", "TrackingConfig", "Trial",
           "expand_study", "parse_study_params", "run_study"]


def __getattr__(name: str):
    if name == "run_study":   # deferred: importing Ray and MLflow takes seconds
        from unmask.studies.sweep import run_study

        return run_study
    raise AttributeError(name)
