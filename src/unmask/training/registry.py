"""``TRAINERS``: framework name (``TrainConfig.framework``) -> trainer class, and the builders.

Trainer modules register themselves (``@TRAINERS.register("cyclegan")``); importing
:mod:`unmask.training` imports them all.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from unmask.errors import UnmaskError
from unmask.registry import Registry
from unmask.training.checkpoint import CheckpointError, load_state
from unmask.training.config import TrainConfig

if TYPE_CHECKING:
    from unmask.training.base import Trainer

TRAINERS: Registry = Registry("framework")


def trainer_class(cfg_or_name: TrainConfig | str) -> type["Trainer"]:
    """The class ``cfg.framework`` names; unknown names raise ConfigError naming ``train.framework``."""
    name = cfg_or_name if isinstance(cfg_or_name, str) else cfg_or_name.framework
    return TRAINERS.get(name, "train.framework")


def build_trainer(cfg: TrainConfig) -> "Trainer":
    """The trainer ``cfg.framework`` names."""
    return trainer_class(cfg)(cfg)


def load_trainer(path: str | os.PathLike, **overrides) -> "Trainer":
    """Rebuild the trainer a checkpoint was written by and restore it (``overrides`` replace config
    keys that do not change the networks, e.g. ``device``, ``threads``, ``steps``)."""
    state = load_state(path)
    if not isinstance(state.get("config"), dict):
        raise CheckpointError(f"{path}: checkpoint without a training config")
    try:
        cfg = TrainConfig.from_dict({**state["config"], **overrides})
        trainer = build_trainer(cfg)
    except UnmaskError as err:   # its config names keys of another version or framework
        raise CheckpointError(f"{path}: its training config does not build a trainer here ({err})") from None
    trainer.load_checkpoint(path)
    return trainer
