"""A study's trials: the cartesian product of its grid and its seeds, each a full TrainConfig dict."""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any, TypedDict

from unmask.errors import ConfigError
from unmask.losses import ADV_LOSSES, RECON_LOSSES
from unmask.studies.config import StudiesParams
from unmask.training import TRAINERS, TrainConfig

DEFAULT_IMAGE_SIZE = 64


class Trial(TypedDict):
    """One trial's configuration: plain data, so Ray Tune can ship and store it."""

    study: str
    cell: dict[str, Any]       # the grid overrides of this cell (dotted keys)
    cell_label: str            # "adv_loss=hinge lambda_adv=0.1" ("default" for an empty grid)
    seed: int
    image_size: int
    kinds: list[str] | None
    train: dict[str, Any]      # TrainConfig.to_dict() of the trial


def cell_label(cell: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in cell.items()) or "default"


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _set_dotted(d: dict[str, Any], path: str, value: Any, where: str) -> None:
    *parents, leaf = path.split(".")
    for p in parents:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise ConfigError(f"{where}: {p!r} is not a section, cannot set {path!r}")
    d[leaf] = copy.deepcopy(value)


def _flat_keys(d: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for k, v in d.items():
        keys.add(prefix + k)
        if isinstance(v, dict):
            keys |= _flat_keys(v, f"{prefix}{k}.")
    return keys


def _check_names(cfg: TrainConfig) -> None:
    for key, value, choices in (("train.framework", cfg.framework, TRAINERS),
                                ("train.adv_loss", cfg.adv_loss, ADV_LOSSES),
                                ("train.recon", cfg.recon, RECON_LOSSES)):
        if value not in choices:
            raise ConfigError(f"{key}: unknown {value!r}; choose one of {', '.join(sorted(choices))}")


def _locate(err: ConfigError, study: str, cell: dict[str, Any], overrides: dict[str, Any]) -> ConfigError:
    """Rewrite ``train.<key>: msg`` to name where ``key`` was written: grid, study train or base train."""
    key, _, msg = str(err).partition(": ")
    path = key.removeprefix("train.")
    over_keys = _flat_keys(overrides)
    for candidate in [path, *(path.rsplit(".", i)[0] for i in range(1, path.count(".") + 1))]:
        if candidate in cell:
            return ConfigError(f"studies.{study}.grid.{path}: {msg}")
        if candidate in over_keys:
            return ConfigError(f"studies.{study}.train.{path}: {msg}")
    return ConfigError(f"train.{path}: {msg}")


def build_train(params: StudiesParams, study: str, cell: dict[str, Any], seed: int) -> tuple[dict[str, Any], int]:
    """(TrainConfig dict, image size) of one cell and seed; ConfigError names the offending key."""
    cfg = params.study(study)
    raw = _merge(params.train, cfg.train)
    for key, value in cell.items():
        _set_dotted(raw, key, value, f"studies.{study}.grid.{key}")
    try:
        size = raw.pop("image_size", DEFAULT_IMAGE_SIZE)
        if not isinstance(size, int) or isinstance(size, bool) or size < 16:
            raise ConfigError(f"train.image_size: must be an integer >= 16, got {size!r}")
        disc = raw.setdefault("discriminator", {})
        if not isinstance(disc, dict):
            raise ConfigError(f"train.discriminator: must be a mapping, got {disc!r}")
        disc["image_size"] = size
        raw["seed"] = seed
        train_cfg = TrainConfig.from_dict(raw)
        _check_names(train_cfg)
    except ConfigError as err:
        raise _locate(err, study, cell, cfg.train) from None
    return train_cfg.to_dict(), size


def expand_study(params: StudiesParams, study: str) -> list[Trial]:
    """Every (cell, seed) of ``study``: cells in grid order (first key slowest), then ``extra_cells``;
    seeds innermost."""
    cfg = params.study(study)
    keys = list(cfg.grid)
    cells = [dict(zip(keys, values)) for values in itertools.product(*(cfg.grid[k] for k in keys))]
    trials: list[Trial] = []
    for cell in [*cells, *cfg.extra_cells]:
        for seed in cfg.seeds:
            train, size = build_train(params, study, cell, seed)
            trials.append(Trial(study=study, cell=cell, cell_label=cell_label(cell), seed=seed,
                                image_size=size, kinds=cfg.kinds, train=train))
    return trials


def fingerprint(trials: list[Trial]) -> str:
    """A stable text identifying the trial set (a changed grid or budget gives a new one)."""
    return json.dumps(trials, sort_keys=True, default=list)
