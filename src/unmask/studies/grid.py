"""A study's trials: the cartesian product of its grid and its seeds, each a full TrainConfig dict.

A search study (``studies.<name>.search``) has one base trial instead; Ray Tune draws the searched
values per trial into ``config["sample"]`` and :func:`resolve_trial` applies them to the base trial,
in the worker and when the results are tabulated.
"""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any, TypedDict

from unmask.errors import ConfigError
from unmask.studies.config import StudiesParams
from unmask.training import TRAINERS, TrainConfig, trainer_class
from unmask.training.config import train_keys


class Trial(TypedDict, total=False):
    """One trial's configuration: plain data, so Ray Tune can ship and store it (``test_kinds`` only
    when the study measures other kinds than it trains on)."""

    study: str
    cell: dict[str, Any]       # the grid overrides of this cell (dotted keys)
    cell_label: str            # "adv_loss=hinge weights.adv=0.1" ("default" for an empty grid)
    seed: int
    image_size: int
    kinds: list[str] | None
    train: dict[str, Any]      # TrainConfig.to_dict() of the trial
    test_kinds: list[str]      # the kinds its test split is measured on (default: kinds)


def _label_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_label_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def cell_label(cell: dict[str, Any]) -> str:
    return " ".join(f"{k}={_label_value(v)}" for k, v in cell.items()) or "default"


REPLACED = ("weights",)
"""Sections an override replaces as a whole (a framework's loss terms are its own; a dotted grid key
such as ``weights.adv`` still changes one term)."""


def _same_family(registry, old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether two network sections configure the same config class (unknown names: treat as same,
    so the registry reports the bad name when the config is built)."""
    names = [d.get("name", registry.default) for d in (old, new)]
    if not all(n in registry for n in names):
        return True
    return registry.entry(names[0], "").config is registry.entry(names[1], "").config


def _merge(base: dict[str, Any], over: dict[str, Any], roles: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` applied: mappings merge key by key, except the :data:`REPLACED` sections
    and a network role (``roles``: role -> its registry) of another family (another config class),
    which ``over`` replaces."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        old = out.get(k)
        merge = isinstance(v, dict) and isinstance(old, dict) and k not in REPLACED
        if merge and k in roles:
            merge = _same_family(roles[k], old, v)
        out[k] = _merge(old, v, {}) if merge else copy.deepcopy(v)
    return out


def _framework_roles(*trains: dict[str, Any]) -> dict[str, Any]:
    """role -> registry of the trainer the last of ``trains`` that names a framework names (none: the
    default framework's; an unknown name: none, so TrainConfig names it)."""
    name = next((t["framework"] for t in reversed(trains) if "framework" in t), TrainConfig.framework)
    try:
        return {role: r.registry for role, r in trainer_class(name).NETWORKS.items()}
    except ConfigError:
        return {}


def _left_out(framework: Any) -> set[str]:
    """The keys of ``train:`` that other trainers read and the trainer ``framework`` does not (their
    roles and options): left out of its trials when only the top-level ``train:`` sets them. Any other
    unknown key stays, so TrainConfig names it (an unknown framework: nothing is left out)."""
    try:
        own = {key for keys in train_keys(trainer_class(framework)) for key in keys}
    except ConfigError:
        return set()
    others = {key for name in TRAINERS.names() for keys in train_keys(trainer_class(name)) for key in keys}
    return others - own


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
        keys.add(f"{prefix}{k}")    # a key may be no string (weights: {1: 1.0}): TrainConfig names it
        if isinstance(v, dict):
            keys |= _flat_keys(v, f"{prefix}{k}.")
    return keys


def _locate(err: ConfigError, study: str, cell: dict[str, Any], overrides: dict[str, Any],
            section: str = "grid") -> ConfigError:
    """Rewrite ``train.<key>: msg`` to name where ``key`` was written: grid (or search space), study
    train or base train."""
    key, _, msg = str(err).partition(": ")
    path = key.removeprefix("train.")
    over_keys = _flat_keys(overrides)
    for candidate in [path, *(path.rsplit(".", i)[0] for i in range(1, path.count(".") + 1))]:
        if candidate in cell:
            return ConfigError(f"studies.{study}.{section}.{path}: {msg}")
        if candidate in over_keys:
            return ConfigError(f"studies.{study}.train.{path}: {msg}")
    return ConfigError(f"train.{path}: {msg}")


def build_train(params: StudiesParams, study: str, cell: dict[str, Any], seed: int,
                section: str = "grid") -> tuple[dict[str, Any], int]:
    """(TrainConfig dict, image size) of one cell and seed; ConfigError names the offending key (the
    cell's keys as written in ``studies.<study>.<section>``).

    The top-level ``train:`` holds defaults for every framework: a key of it that this cell's trainer
    does not read (a discriminator for the segmenter, StarGAN's ``n_discriminators`` for CycleGAN) is
    left out here; a study's own ``train`` or cell naming one is an error."""
    cfg = params.study(study)
    raw = _merge(params.train, cfg.train, _framework_roles(params.train, cfg.train))
    for key, value in cell.items():
        _set_dotted(raw, key, value, f"studies.{study}.{section}.{key}")
    written = {k.split(".")[0] for k in [*cfg.train, *cell]}
    drop = _left_out(raw.get("framework", TrainConfig.framework)) - written
    raw = {k: v for k, v in raw.items() if k not in drop}
    try:
        raw["seed"] = seed
        train_cfg = TrainConfig.from_dict(raw)
    except ConfigError as err:
        raise _locate(err, study, cell, cfg.train, section) from None
    return train_cfg.to_dict(), train_cfg.image_size


def expand_study(params: StudiesParams, study: str) -> list[Trial]:
    """Every (cell, seed) of ``study``: cells in grid order (first key slowest), then ``extra_cells``;
    seeds innermost. A search study gives its one base trial, after checking that the ends of every
    searched range (and every choice) make a valid TrainConfig."""
    cfg = params.study(study)
    if cfg.search is not None:
        return [_search_base(params, study)]
    keys = list(cfg.grid)
    cells = [dict(zip(keys, values)) for values in itertools.product(*(cfg.grid[k] for k in keys))]
    trials: list[Trial] = []
    extra = {"test_kinds": cfg.test_kinds} if cfg.test_kinds else {}
    sections = ["grid"] * len(cells) + [f"extra_cells[{i}]" for i in range(len(cfg.extra_cells))]
    for cell, section in zip([*cells, *cfg.extra_cells], sections):
        for seed in cfg.seeds:
            train, size = build_train(params, study, cell, seed, section)
            trials.append(Trial(study=study, cell=cell, cell_label=cell_label(cell), seed=seed,
                                image_size=size, kinds=cfg.kinds, train=train, **extra))
    return trials


def _search_base(params: StudiesParams, study: str) -> Trial:
    cfg = params.study(study)
    search, seed = cfg.search, cfg.seeds[0]
    train, size = build_train(params, study, {}, seed)
    for key, dist in search.space.items():
        for value in dist.probes():
            build_train(params, study, {key: value}, seed, section="search.space")
    grace = search.grace_period
    if grace is not None and grace > train["steps"]:
        raise ConfigError(f"studies.{study}.search.grace_period: {grace} is beyond the trials' "
                          f"{train['steps']} steps")
    return Trial(study=study, cell={}, cell_label=cell_label({}), seed=seed, image_size=size, kinds=cfg.kinds,
                 train=train)


def _plain(value: Any) -> Any:
    """A sampled value as plain Python (Tune and Optuna may hand out numpy scalars)."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (list, dict, str)) else value


def _short_value(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def apply_sample(trial: Trial, sample: dict[str, Any]) -> Trial:
    """``trial`` with the sampled values (dotted train key -> value) set; its cell and label name them."""
    sample = {k: _plain(v) for k, v in sample.items()}
    train = copy.deepcopy(trial["train"])
    for key, value in sample.items():
        _set_dotted(train, key, value, f"studies.{trial['study']}.search.space.{key}")
    train = TrainConfig.from_dict(train).to_dict()
    cell = {**trial["cell"], **sample}
    label = " ".join(f"{k}={_short_value(v)}" for k, v in cell.items()) or "default"
    return Trial(study=trial["study"], cell=cell, cell_label=label, seed=trial["seed"],
                 image_size=trial["image_size"], kinds=trial["kinds"], train=train)


def resolve_trial(config: dict[str, Any]) -> Trial:
    """The trial a Tune config describes: ``config["trial"]``, with ``config["sample"]`` applied when
    the study is a search."""
    sample = config.get("sample")
    return apply_sample(config["trial"], sample) if sample else config["trial"]


def fingerprint(trials: list[Trial]) -> str:
    """A stable text identifying the trial set (a changed grid or budget gives a new one)."""
    return json.dumps(trials, sort_keys=True, default=list)
