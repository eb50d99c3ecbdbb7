"""``TRAINERS``: framework name (``TrainConfig.framework``) -> trainer class.

Trainer modules register themselves (``@TRAINERS.register("cyclegan")``); importing
:mod:`unmask.training` imports them all. :mod:`unmask.training.config` looks trainers up here (their
roles and options), so this module imports no other part of the package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from unmask.registry import Registry

if TYPE_CHECKING:
    from unmask.training.base import Trainer

TRAINERS: Registry = Registry("framework")


def trainer_class(cfg_or_name: Any) -> type["Trainer"]:
    """The class ``cfg.framework`` names; unknown names raise ConfigError naming ``train.framework``."""
    name = cfg_or_name if isinstance(cfg_or_name, str) else cfg_or_name.framework
    return TRAINERS.get(name, "train.framework")
