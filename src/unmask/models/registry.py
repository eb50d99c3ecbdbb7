"""Names a study uses in params.yaml -> model parts, and the two builders trainers call.

* ``GENERATORS``: encoder-decoder name (``GeneratorConfig.encoder``: "stargan", "dmfn") -> layout;
  with ``APPROACHES`` and ``BLOCKS`` it spans every generator of seed 000's Table 8.
* ``BLOCKS``: middle block name (``GeneratorConfig.blocks``) -> constructor(channels).
* ``DISCRIMINATORS``: ``DiscriminatorConfig.name`` -> class.

Unknown names raise ``unmask.errors.ConfigError`` naming the key and the valid choices (the config
dataclasses check themselves on construction; the builders accept nothing else).
"""

from __future__ import annotations

from unmask.models.blocks import BLOCKS
from unmask.models.discriminators import DISCRIMINATORS, Discriminator, DiscriminatorConfig
from unmask.models.encoders import LAYOUTS as GENERATORS
from unmask.models.generators import APPROACHES, Generator, GeneratorConfig

__all__ = ["APPROACHES", "BLOCKS", "DISCRIMINATORS", "GENERATORS", "build_discriminator", "build_generator"]


def build_generator(cfg: GeneratorConfig) -> Generator:
    """The generator ``cfg`` describes."""
    return Generator(cfg)


def build_discriminator(cfg: DiscriminatorConfig) -> Discriminator:
    """The discriminator ``cfg`` describes (``cfg.name`` picks the class)."""
    return DISCRIMINATORS[cfg.name](cfg)
