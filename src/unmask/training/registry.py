"""``TRAINERS``: framework name (``TrainConfig.framework``) -> trainer class, and the builders."""

from __future__ import annotations

import os

from unmask.errors import ConfigError
from unmask.training.base import Trainer
from unmask.training.checkpoint import load_state
from unmask.training.config import TrainConfig
from unmask.training.cyclegan import CycleGANTrainer
from unmask.training.paired import PairedInpaintingTrainer
from unmask.training.stargan import StarGANTrainer

TRAINERS: dict[str, type[Trainer]] = {
    cls.framework: cls for cls in (CycleGANTrainer, StarGANTrainer, PairedInpaintingTrainer)
}


def build_trainer(cfg: TrainConfig) -> Trainer:
    """The trainer ``cfg.framework`` names; unknown names raise ConfigError naming the choices."""
    try:
        cls = TRAINERS[cfg.framework]
    except KeyError:
        raise ConfigError(f"train.framework: unknown {cfg.framework!r}; choose one of "
                          f"{', '.join(sorted(TRAINERS))}") from None
    return cls(cfg)


def load_trainer(path: str | os.PathLike, **overrides) -> Trainer:
    """Rebuild the trainer a checkpoint was written by and restore it (``overrides`` replace config
    keys that do not change the networks, e.g. ``device``, ``threads``, ``steps``)."""
    cfg = TrainConfig.from_dict({**load_state(path)["config"], **overrides})
    trainer = build_trainer(cfg)
    trainer.load_checkpoint(path)
    return trainer
