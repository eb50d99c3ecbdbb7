"""Networks of seed 000: generators (approach x blocks x encoder) and discriminators, built by name."""

from unmask.models.blocks import DMFB, ResBlock
from unmask.models.discriminators import Discriminator, DiscriminatorConfig
from unmask.models.generators import Generator, GeneratorConfig
from unmask.models.receptive_field import measure_receptive_field
from unmask.models.registry import (
    APPROACHES,
    BLOCKS,
    DISCRIMINATORS,
    GENERATORS,
    build_discriminator,
    build_generator,
)

__all__ = [
    "APPROACHES", "BLOCKS", "DISCRIMINATORS", "DMFB", "GENERATORS", "Discriminator", "DiscriminatorConfig",
    "Generator", "GeneratorConfig", "ResBlock", "build_discriminator", "build_generator",
    "measure_receptive_field",
]
