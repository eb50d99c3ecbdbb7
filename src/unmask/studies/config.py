"""Schema of the params.yaml sections ``train``, ``sweep``, ``tracking`` and ``studies``.

``train`` holds :class:`~unmask.training.TrainConfig` fields shared by every study, plus
``image_size`` (the side the trials train and test at; it also sets ``discriminator.image_size``).
A study overrides some of them (``studies.<name>.train``) and sweeps others (``studies.<name>.grid``,
dotted TrainConfig paths such as ``generator.approach``). Every cell of every grid is built into a
TrainConfig when the params are parsed, so a bad key or value fails before any trial starts, with a
one-line error naming the dotted key where it was written (``studies.table3.grid.adv_los``).
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from unmask.config import Params, _format_error
from unmask.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResourcesConfig(_Section):
    cpu: float = Field(1, gt=0)      # CPUs per trial (also the trial's torch threads, at least 1)
    gpu: float = Field(0, ge=0)      # GPUs per trial; fractions share one GPU between trials


class SweepConfig(_Section):
    address: Optional[str] = None    # Ray cluster; None -> RAY_ADDRESS or a local cluster on 127.0.0.1
    storage_path: str = "results/ray"   # made absolute; or a pyarrow filesystem URI (s3://, gs://, ...)
    resources: ResourcesConfig = ResourcesConfig()
    max_concurrent: int = Field(2, ge=1)
    max_failures: int = Field(2, ge=0)   # retries of a failed trial (tune.FailureConfig)
    isolate_network: bool = True         # local cluster: run in a loopback-only netns (unshare -rn)


class TrackingConfig(_Section):
    uri: str = "sqlite:///mlflow.db"     # relative sqlite paths are taken from the project root
    artifact_root: str = "mlartifacts"   # local folder (relative to the project root) or a URI


class StudyConfig(_Section):
    title: str = ""
    train: dict[str, Any] = Field(default_factory=dict)       # overrides of the base ``train``
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(default_factory=dict)  # path -> values
    extra_cells: list[dict[str, Any]] = Field(default_factory=list)  # more cells (dotted path -> value)
    # beside the grid, e.g. a reference method with another framework (Table 4's paired inpainter)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    kinds: Optional[list[str]] = None      # occlusion kinds to train and test on (None: all)
    baselines: list[str] = Field(default_factory=list)
    reference: Optional[str] = None        # key into the paper's numbers (reports)


class ReportsConfig(_Section):
    lpips_weights_dir: Optional[str] = None  # folder with alexnet-owt-7be5be79.pth (else: torch hub cache)
    n_samples: int = Field(6, ge=1)           # test faces shown in reports/<study>.png


class StudiesParams(_Section):
    train: dict[str, Any] = Field(default_factory=dict)
    sweep: SweepConfig = SweepConfig()
    tracking: TrackingConfig = TrackingConfig()
    reports: ReportsConfig = ReportsConfig()
    studies: dict[str, StudyConfig] = Field(default_factory=dict)

    def study(self, name: str) -> StudyConfig:
        """The study called ``name``; ConfigError naming ``studies.<name>`` when there is none."""
        if name not in self.studies:
            raise ConfigError(f"studies.{name}: no such study (have: {', '.join(self.studies) or 'none'})")
        return self.studies[name]


SECTIONS = ("train", "sweep", "tracking", "reports", "studies")


def parse_study_params(params: Params, source: str = "params.yaml") -> StudiesParams:
    """Validate the study sections of ``params`` (its extra keys) and every trial they imply."""
    extra = params.model_extra or {}
    raw = {k: extra[k] for k in SECTIONS if k in extra and extra[k] is not None}
    try:
        parsed = StudiesParams.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_error(source, err)) from None
    from unmask.studies.grid import expand_study   # grid builds on this module's classes

    for name in parsed.studies:
        try:
            expand_study(parsed, name)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None
    return parsed
