"""Build a trainer from a TrainConfig, or rebuild one from a checkpoint."""

from __future__ import annotations

import os

from unmask.errors import UnmaskError
from unmask.training.base import Trainer
from unmask.training.checkpoint import CheckpointError, load_state
from unmask.training.config import TrainConfig
from unmask.training.registry import trainer_class


def build_trainer(cfg: TrainConfig) -> Trainer:
    """The trainer ``cfg.framework`` names."""
    return trainer_class(cfg)(cfg)


def load_trainer(path: str | os.PathLike, **overrides) -> Trainer:
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
