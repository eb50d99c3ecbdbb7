"""``GENERATORS`` and ``DISCRIMINATORS``: the network families params.yaml names, and their builders.

Each family registers its class (or a builder function) with the config dataclass it declares
(:mod:`unmask.registry`). The build contract every family keeps:

* a generator is built as ``family(cfg, cond_channels=k)``: ``k`` extra input maps the trainer feeds
  beside the image (a hole mask, StarGAN's tiled domain labels), and its ``forward(x, c=None)`` maps an
  image (B, 3, H, W) in [-1, 1] (plus ``c`` (B, k, H, W) or (B, k)) to an image in [-1, 1];
* a discriminator is built as ``family(cfg, n_classes=k)`` and returns ``(src_logits, cls_logits or
  None)``; a config with an ``image_size`` field gets ``train.image_size`` (TrainConfig sets it, never the user).

A family also declares what it can do (:mod:`unmask.catalog.capabilities`: returns its blend mask,
runs on the image alone, takes condition maps, has a class head); trainers check those when params are read.

Seed 000's generator (encoder, middle blocks, decoder, output approach) is the family ``stargan``,
the default when ``name`` is absent, so existing params keep working.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from unmask.catalog.capabilities import Capability
from unmask.models.blocks import BLOCKS
from unmask.models.discriminators import DISCRIMINATORS as _DISCRIMINATOR_CLASSES
from unmask.models.discriminators import DiscriminatorConfig
from unmask.models.encoders import LAYOUTS
from unmask.models.generators import APPROACHES, Generator, GeneratorConfig
from unmask.registry import Registry

GENERATORS: Registry = Registry("generator", default="stargan")
DISCRIMINATORS: Registry = Registry("discriminator", default="stargan")

__all__ = ["APPROACHES", "BLOCKS", "DISCRIMINATORS", "GENERATORS", "LAYOUTS", "build_discriminator",
           "build_generator"]


@GENERATORS.register("stargan", GeneratorConfig, capabilities=(Capability.RETURNS_MASK, Capability.IMAGE_ONLY,
                                                              Capability.CONDITIONS))
def _encoder_blocks_decoder(cfg: GeneratorConfig, cond_channels: int = 0) -> Generator:
    """Seed 000's generator (:class:`~unmask.models.generators.Generator`)."""
    return Generator(cfg, cond_channels)


def _seed000_discriminator(name: str):
    def build(cfg: DiscriminatorConfig, n_classes: int = 0) -> nn.Module:
        return _DISCRIMINATOR_CLASSES[name](dataclasses.replace(cfg, n_classes=n_classes))
    build.__name__ = f"build_{name}"
    return build


for _name in _DISCRIMINATOR_CLASSES:
    DISCRIMINATORS.register(_name, DiscriminatorConfig, capabilities=(Capability.CLASS_HEAD,))(
        _seed000_discriminator(_name))


def build_generator(cfg: Any, cond_channels: int = 0) -> nn.Module:
    """The generator ``cfg`` (a registered family's config) describes."""
    return GENERATORS.build(cfg, cond_channels=cond_channels)


def build_discriminator(cfg: Any, n_classes: int = 0) -> nn.Module:
    """The discriminator ``cfg`` describes (``cfg.name`` picks the family)."""
    return DISCRIMINATORS.build(cfg, n_classes=n_classes)
