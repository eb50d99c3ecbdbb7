"""Schema of the params.yaml sections ``train``, ``sweep``, ``tracking`` and ``studies``.

``train`` holds the :class:`~unmask.training.TrainConfig` keys shared by every study (``image_size``:
the side the trials train and test at, given to every network that needs it).
A study overrides some of them (``studies.<name>.train``) and either tabulates others over a grid
(``studies.<name>.grid``, dotted TrainConfig paths such as ``generator.approach``) or tunes them:
``studies.<name>.search`` samples ``num_samples`` configurations from a space of distributions with a
search algorithm (random or Optuna's TPE) while a scheduler (ASHA) stops the poor ones early. Every cell
of every grid, and both ends of every search range, is built into a TrainConfig when the params are
parsed, so a bad key or value fails before any trial starts, with a one-line error naming the dotted key
where it was written (``studies.table3.grid.adv_los``, ``studies.tune.search.space.lr_g``).

This module is the schema; :func:`unmask.studies.parse.parse_study_params` reads the sections with it
and builds every trial (:mod:`unmask.studies.grid`, which builds on these classes).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import PurePath, PurePosixPath
from typing import Annotated, Any, Iterable, Literal, Optional

from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, StrictInt, ValidationInfo, field_validator,
                      model_validator)

from unmask.catalog.metrics import METRICS, mode as metric_mode
from unmask.catalog.papers import PAPER_TABLES
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
    max_concurrent: StrictInt = Field(2, ge=1)
    max_failures: StrictInt = Field(2, ge=0)   # retries of a failed trial (tune.FailureConfig)
    isolate_network: bool = True         # local cluster: run in a loopback-only netns (unshare -rn)
    connect_timeout_s: float = Field(30, gt=0, allow_inf_nan=False)   # reaching sweep.address


class TrackingConfig(_Section):
    uri: str = "sqlite:///mlflow.db"     # relative sqlite paths are taken from the project root
    artifact_root: str = "mlartifacts"   # local folder (relative to the project root) or a URI

    @field_validator("uri")
    @classmethod
    def _known_scheme(cls, uri: str) -> str:
        """Refuse what MLflow cannot open (a plain folder, ``foo://``) now, not when the first run is logged:
        the schemes are the tracking stores MLflow registers (mlflow.tracking._tracking_service.utils)."""
        from urllib.parse import urlsplit

        databases = ("sqlite", "postgresql", "mysql", "mssql")   # also as <db>+<driver>
        schemes = (*databases, "http", "https", "file", "databricks", "databricks-uc", "uc")
        if uri in ("databricks", "databricks-uc", "uc"):     # MLflow's bare forms (default profile)
            return uri
        parts = urlsplit(uri)
        scheme = parts.scheme.lower()
        if len(scheme) < 2:       # none, or a Windows drive letter
            raise ValueError("need a URI such as sqlite:///mlflow.db or http://host:5000 "
                             "(MLflow 3 has no plain-folder store)")
        base, _, driver = scheme.partition("+")
        if base not in schemes or (driver and base not in databases):
            raise ValueError(f"unknown scheme {scheme + ':'!r}; MLflow accepts {', '.join(schemes)} "
                             "(databases also as <db>+<driver>)")
        if base in databases and not uri[len(scheme) + 1:].startswith("//"):
            raise ValueError(f"a database URI is {base}://... (sqlite:///relative.db or sqlite:////absolute.db)")
        if base in ("http", "https") and not parts.hostname:
            raise ValueError(f"no host in the {base} URI (http://host:5000)")
        return uri


DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")


class Distribution(_Section):
    """One searched parameter: exactly one of ``uniform: [low, high]``, ``loguniform: [low, high]``
    (low > 0), ``randint: [low, high]`` (high exclusive, as in Tune) or ``choice: [v1, v2, ...]``."""

    uniform: Optional[tuple[float, float]] = None
    loguniform: Optional[tuple[float, float]] = None
    randint: Optional[tuple[StrictInt, StrictInt]] = None
    choice: Optional[Annotated[list[Any], Field(min_length=1)]] = None

    @model_validator(mode="after")
    def _one_kind(self) -> "Distribution":
        given = [k for k in DISTRIBUTIONS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(DISTRIBUTIONS)} "
                             f"(got {', '.join(given) or 'none'})")
        if self.kind != "choice":
            low, high = self.args
            if not low < high:
                raise ValueError(f"{self.kind}: low must be below high, got [{low}, {high}]")
            if self.kind == "loguniform" and low <= 0:
                raise ValueError(f"loguniform: low must be > 0, got {low}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in DISTRIBUTIONS if getattr(self, k) is not None)

    @property
    def args(self) -> Any:
        return getattr(self, self.kind)

    def probes(self) -> list[Any]:
        """Values every trial could get at the extremes: built into a TrainConfig when parsing."""
        if self.kind == "choice":
            return list(self.choice)
        low, high = self.args
        return [low, high - 1] if self.kind == "randint" else [low, high]

    def to_tune(self):
        from ray import tune

        if self.kind == "choice":
            return tune.choice(list(self.choice))
        return getattr(tune, self.kind)(*self.args)


class SearchConfig(_Section):
    """Tuning instead of tabulating: ``num_samples`` trials drawn from ``space`` (dotted train key ->
    distribution) by ``algorithm``; ``scheduler: asha`` stops trials whose ``metric`` (a ``val_``
    metric: never chosen on test) is poor at a rung, the first after ``grace_period`` steps."""

    space: Annotated[dict[str, Distribution], Field(min_length=1)]
    num_samples: StrictInt = Field(8, ge=1)
    algorithm: Literal["random", "optuna"] = "random"     # optuna: TPE (Bayesian), seeded
    scheduler: Literal["fifo", "asha"] = "asha"
    metric: str = "val_psnr"
    mode: Optional[Literal["max", "min"]] = None          # None: from the metric (PSNR, SSIM: max)
    grace_period: Optional[StrictInt] = Field(None, ge=1)       # steps before ASHA may stop; None: train.val_every
    reduction_factor: float = Field(3.0, gt=1)            # ASHA keeps the best 1/reduction_factor per rung

    @field_validator("metric")
    @classmethod
    def _metric(cls, metric: str) -> str:
        if metric not in {f"val_{m}" for m in METRICS}:
            raise ValueError(f"{metric!r} is not a validation metric; choose one of "
                             + ", ".join(f"val_{m}" for m in METRICS))
        return metric

    @field_validator("space")
    @classmethod
    def _space(cls, space: dict[str, Distribution]) -> dict[str, Distribution]:
        for key in ("image_size", "seed"):
            if key in space:
                raise ValueError(f"{key} cannot be searched (set it in train, or as the study's seeds)")
        return space

    @property
    def resolved_mode(self) -> str:
        return self.mode or metric_mode(self.metric)


MAX_TRIALS = 10_000   # trials of one study (cells x seeds): the shipped studies have at most 24


class StudyConfig(_Section):
    title: str = ""
    train: dict[str, Any] = Field(default_factory=dict)       # overrides of the base ``train``
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(default_factory=dict)  # path -> values
    extra_cells: list[dict[str, Any]] = Field(default_factory=list)  # more cells (dotted path -> value)
    # beside the grid, e.g. a reference method with another framework (Table 4's paired inpainter)
    seeds: list[Annotated[StrictInt, Field(ge=0)]] = Field(default_factory=lambda: [0], min_length=1)
    kinds: Optional[list[str]] = None      # occlusion kinds to train and test on (None: all)
    test_kinds: Optional[list[str]] = None  # kinds the test split is measured on, when not `kinds`
    # (how a model does on occlusions it was not trained on)
    baselines: list[str] = Field(default_factory=list)
    reference: Optional[str] = None        # a published table (unmask.catalog.papers; its numbers: reports)
    search: Optional[SearchConfig] = None  # tune instead of tabulate (then no grid, one seed)
    metrics: Optional[list[str]] = None    # test metrics the report shows, in this order (None: all)
    beats: Optional[list[str]] = None      # those its beats-the-baselines table compares (None: metrics)
    reference_cell: Optional[str] = None   # cell label the report compares every other cell with
    # beyond seed noise (e.g. "generator.approach=normal"; None: the first cell)
    per_kind: bool = False                  # the report also breaks each metric down by occlusion kind
    champions: list[str] = Field(default_factory=list)   # other studies whose champion the evaluate_across
    # stage measures on this study's test images (seed 004's Table 1 against seeds 000 and 002)
    mask_from: Optional[str] = None         # a segmentation study: evaluate_across also measures every
    # configuration and baseline given the mask its champion predicts (seed 001 end to end)
    scored_by: Optional[str] = None         # a face-parsing study: evaluate_across parses every
    # configuration's and baseline's outputs with its champion, a parser never used as a loss (seed 003)

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: list[int]) -> list[int]:
        twice = sorted({s for s in seeds if seeds.count(s) > 1})
        if twice:   # one trial would stand for n seeds, with a spread of 0
            raise ValueError(f"seed {twice[0]} is listed twice; each seed is one trial of every cell")
        return seeds

    @field_validator("metrics", "beats")
    @classmethod
    def _known_metrics(cls, metrics: Optional[list[str]]) -> Optional[list[str]]:
        for m in metrics or []:
            if m not in METRICS:
                raise ValueError(f"unknown metric {m!r}; choose from {', '.join(METRICS)}")
        if metrics is not None and not metrics:
            raise ValueError("list at least one metric, or leave it out for all")
        return metrics

    def reads(self) -> list[str]:
        """The other studies whose models this study's evaluation reads (its ``champions``, then
        ``mask_from``): the evaluate_across stage measures them and depends on their checkpoints."""
        return list(dict.fromkeys([*self.champions, *([self.mask_from] if self.mask_from else []),
                                   *([self.scored_by] if self.scored_by else [])]))

    def finds_masks(self) -> bool:
        """Whether this study trains a segmenter (its trainer outputs a mask, not an image)."""
        return _finds_masks(self.train)

    def output(self) -> str:
        """What this study's trainer outputs (``Trainer.output``)."""
        return _output(self.train)

    @field_validator("baselines")
    @classmethod
    def _known_baselines(cls, names: list[str], info: ValidationInfo) -> list[str]:
        """Image baselines (telea...) fill a mask, mask baselines (lower_face) find one, ...: a study takes
        those of its trainer's output (:mod:`unmask.metrics.baseline_kinds`)."""
        from unmask.metrics.baseline_kinds import BASELINE_KINDS

        kind = BASELINE_KINDS[_output(info.data.get("train") or {})]
        for name in names:
            if name not in kind.names:
                raise ValueError(f"unknown baseline {name!r} for {kind.what} study; choose from {', '.join(kind.names)}")
        return names

    @field_validator("reference")
    @classmethod
    def _known_reference(cls, key: Optional[str]) -> Optional[str]:
        if key is not None and key not in PAPER_TABLES:
            raise ValueError(f"unknown paper table {key!r}; choose from {', '.join(PAPER_TABLES)}")
        return key

    @field_validator("kinds", "test_kinds")
    @classmethod
    def _known_kinds(cls, kinds: Optional[list[str]]) -> Optional[list[str]]:
        from unmask.data.occlusions import OCCLUDERS

        if kinds is not None and not kinds:
            raise ValueError("list at least one occlusion kind, or leave it out for all")
        for kind in kinds or []:
            if kind not in OCCLUDERS:
                raise ValueError(f"unknown occlusion kind {kind!r}; choose from {', '.join(OCCLUDERS)}")
        return kinds

    @field_validator("reference_cell")
    @classmethod
    def _known_cell(cls, label: Optional[str], info: ValidationInfo) -> Optional[str]:
        if label is None:
            return label
        if info.data.get("search") is not None:
            raise ValueError("a search study has no fixed cells to refer to; leave reference_cell out")
        return label   # that it names a cell is checked once the grid's keys are (parse_study_params)

    @model_validator(mode="after")
    def _grid_or_search(self) -> "StudyConfig":
        if self.search is not None:
            if self.grid or self.extra_cells:
                raise ValueError("a study has either a grid (tabulate) or a search (tune), not both")
            if len(self.seeds) != 1:
                raise ValueError(f"a search study takes one seed (each sample is one trial), "
                                 f"got seeds {self.seeds}")
        return self


def _output(train: dict[str, Any]) -> str:
    """What the trainer a study's ``train`` names outputs (``Trainer.output``; "image" when it names
    none or an unknown one, which TrainConfig names later)."""
    from unmask.training import TRAINERS   # the package: importing it registers every trainer

    framework = train.get("framework")
    return TRAINERS.get(framework, "train.framework").output if framework in TRAINERS else "image"


def _finds_masks(train: dict[str, Any]) -> bool:
    return _output(train) == "mask"


class ReportsConfig(_Section):
    lpips_weights_dir: Optional[str] = None  # folder with alexnet-owt-7be5be79.pth (else: torch hub cache)
    n_samples: StrictInt = Field(6, ge=1)           # test faces shown in reports/<study>.png


STUDY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
MAX_NAME = 100   # a study's name is a file name (reports/<name>_curves.png, results/<name>.unmask-sweep.json)
# folders of the project that a sweep's storage (where a changed sweep deletes <storage>/<study>) must
# not overlap: the pipeline's data and reports, each study's results, the trial store
PROTECTED = ("data", "reports")


def _overlap(a: PurePath, b: PurePath) -> bool:
    return a == b or a in b.parents or b in a.parents


def storage_conflict(storage: PurePath, root: PurePath, studies: Iterable[str],
                     results: PurePath | None = None) -> str | None:
    """Why Tune's ``storage`` (its experiments are ``<storage>/<study>``) cannot be used in the project at
    ``root``: it is or holds ``results`` (default ``root/results``), or overlaps data/, reports/, a
    study's results or the trial store (a sweep that starts over deletes ``<storage>/<study>``); None
    when it is apart."""
    results = root / "results" if results is None else results
    if storage == results or storage in results.parents:
        return f"it holds {results} (a sweep that starts over would delete results/<study>)"
    for folder in [root / p for p in PROTECTED] + [results / n for n in (*studies, "trial_store")]:
        if _overlap(storage, folder):
            return f"it overlaps {folder} (a sweep that starts over deletes <storage>/<study>)"
    return None


class AcrossEntry(_Section):
    """One ``evaluate_across`` stage: what ``study`` measures of study ``reads``'s models."""
    study: str
    reads: str


class LeaderboardConfig(_Section):
    """``leaderboard``: every listed study's champion, end to end with ``mask_from``'s segmenter, and
    the classical baselines, on the same test faces scored at ``image_size``
    (:mod:`unmask.evaluation.leaderboard`)."""
    champions: list[str] = Field(min_length=1)
    mask_from: Optional[str] = None
    baselines: list[str] = Field(default_factory=lambda: ["input", "telea", "navier_stokes", "biharmonic"])
    end_to_end_baselines: list[str] = Field(default_factory=lambda: ["telea"])   # also given the predicted mask
    kinds: Optional[list[str]] = None          # occlusion kinds of the test faces (None: all)
    image_size: StrictInt = Field(64, ge=8, le=1024)   # the common scoring size

    @field_validator("baselines", "end_to_end_baselines")
    @classmethod
    def _known_baselines(cls, names: list[str]) -> list[str]:
        from unmask.metrics.baselines import BASELINES

        for n in names:
            if n not in BASELINES:
                raise ValueError(f"unknown baseline {n!r} (choose from {', '.join(sorted(BASELINES))})")
        return names


class StudiesParams(_Section):
    train: dict[str, Any] = Field(default_factory=dict)
    sweep: SweepConfig = SweepConfig()
    tracking: TrackingConfig = TrackingConfig()
    reports: ReportsConfig = ReportsConfig()
    studies: dict[str, StudyConfig] = Field(default_factory=dict)
    # one DVC stage per entry (foreach in dvc.yaml), so that its deps name the other study's files:
    # exactly the pairs the studies' champions and mask_from ask for (checked below); left out (a
    # params file run without DVC), it is those pairs
    across: Optional[list[AcrossEntry]] = None
    leaderboard: Optional[LeaderboardConfig] = None
    _source: str = PrivateAttr("params.yaml")   # the file it was read from, for errors found later

    @property
    def source(self) -> str:
        """The file these sections were read from (what the sweep's errors name)."""
        return self._source

    @field_validator("studies", mode="before")
    @classmethod
    def _plain_names(cls, studies: Any) -> Any:
        """A study's name becomes file and folder names (results/<name>, reports/<name>.md), so it must
        be a plain identifier: no path separators, dots or spaces."""
        for name in studies if isinstance(studies, dict) else ():
            if not isinstance(name, str) or not STUDY_NAME.fullmatch(name):
                raise ValueError(f"study name {name!r} is not a plain identifier (a letter, then letters, "
                                 "digits or _): it is used as a file name")
            if len(name) > MAX_NAME:
                raise ValueError(f"study name {name[:20]}... is {len(name)} characters long, more than "
                                 f"{MAX_NAME}: it is used as a file name")
        return studies

    @model_validator(mode="after")
    def _storage_apart(self) -> "StudiesParams":
        path = self.sweep.storage_path
        if "://" not in path and not os.path.isabs(path):   # absolute: checked against the root by the sweep
            why = storage_conflict(PurePosixPath(os.path.normpath(path)), PurePosixPath("."), self.studies)
            if why:
                raise ValueError(f"sweep.storage_path: {path!r}: {why}; use a folder of its own such as "
                                 "results/ray")
        return self

    @model_validator(mode="after")
    def _across_matches_the_studies(self) -> "StudiesParams":
        wanted = [(name, other) for name, study in self.studies.items() for other in study.reads()]
        if self.across is None:
            object.__setattr__(self, "across", [AcrossEntry(study=a, reads=b) for a, b in wanted])
            return self
        have = [(e.study, e.reads) for e in self.across]
        for i, pair in enumerate(have):
            if pair in have[:i]:
                raise ValueError(f"across[{i}]: {{study: {pair[0]}, reads: {pair[1]}}} is listed twice")
            study = self.studies.get(pair[0])
            if study is None or pair[1] not in study.reads():
                why = (f"there is no study {pair[0]!r}" if study is None else
                       f"studies.{pair[0]} does not read {pair[1]!r} (not in its champions or mask_from)")
                raise ValueError(f"across[{i}]: {{study: {pair[0]}, reads: {pair[1]}}}: {why}; remove the entry")
        for name, study in self.studies.items():
            for other in study.reads():
                if (name, other) not in have:
                    key = ("champions" if other in study.champions else "mask_from" if other == study.mask_from
                           else "scored_by")
                    raise ValueError(f"across: add {{study: {name}, reads: {other}}}, which studies.{name}.{key} "
                                     "asks for (dvc.yaml runs one evaluate_across stage per entry)")
        return self

    @model_validator(mode="after")
    def _leaderboard_rows_exist(self) -> "StudiesParams":
        lb = self.leaderboard
        if lb is None:
            return self
        for i, name in enumerate(lb.champions):
            study = self.studies.get(name)
            if study is None or study.output() != "image":
                have = [n for n, s in self.studies.items() if s.output() == "image"]
                raise ValueError(f"leaderboard.champions[{i}]: {name!r} is not a study that restores faces "
                                 f"(have: {', '.join(have) or 'none'})")
        if lb.mask_from is not None:
            self._check_segmenter("leaderboard.mask_from", lb.mask_from)
        return self

    def _check_segmenter(self, key: str, name: str) -> None:
        """ValueError naming ``key`` unless study ``name`` is a segmentation study."""
        seg = self.studies.get(name)
        if seg is None or not seg.finds_masks():
            have = [n for n, s in self.studies.items() if s.finds_masks()]
            raise ValueError(f"{key}: {name!r} is not a segmentation study (have: {', '.join(have) or 'none'})")

    @model_validator(mode="after")
    def _sizes_and_links(self) -> "StudiesParams":
        for name, study in self.studies.items():
            sizes = [len(v) for v in study.grid.values()]
            n = (math.prod(sizes) + len(study.extra_cells)) * len(study.seeds)   # before any cell is built
            if n > MAX_TRIALS:
                raise ValueError(f"studies.{name}.grid: {' x '.join(map(str, sizes)) or 1} cells "
                                 f"(+{len(study.extra_cells)} extra) x {len(study.seeds)} seeds = {n} trials, "
                                 f"more than the {MAX_TRIALS} a study may have")
            for other in study.champions:
                if other not in self.studies or other == name:
                    raise ValueError(f"studies.{name}.champions: {other!r} is not another study "
                                     f"(have: {', '.join(n for n in self.studies if n != name)})")
            if study.mask_from is not None:
                self._check_segmenter(f"studies.{name}.mask_from", study.mask_from)
            if study.scored_by is not None:
                parser = self.studies.get(study.scored_by)
                if parser is None or parser.output() != "parsing" or study.output() not in ("portrait", "image"):
                    have = [n for n, s in self.studies.items() if s.output() == "parsing"]
                    raise ValueError(f"studies.{name}.scored_by: {study.scored_by!r} is not a face-parsing study "
                                     f"(have: {', '.join(have) or 'none'}), or {name!r} makes no faces")
        return self

    def study(self, name: str) -> StudyConfig:
        """The study called ``name``; ConfigError naming ``studies.<name>`` when there is none."""
        if name not in self.studies:
            raise ConfigError(f"studies.{name}: no such study (have: {', '.join(self.studies) or 'none'})")
        return self.studies[name]
