"""Networks, built by family name (``GENERATORS``, ``DISCRIMINATORS``: :mod:`unmask.models.registry`).

Importing this package registers every family: seed 000's encoder-blocks-decoder generator and its
three discriminators, and the families in the modules imported below.
"""

from unmask.models.blocks import DMFB, ResBlock
from unmask.models.discriminators import Discriminator, DiscriminatorConfig
from unmask.models.generators import Generator, GeneratorConfig
from unmask.models.receptive_field import measure_receptive_field
from unmask.models.registry import (
    APPROACHES,
    BLOCKS,
    DISCRIMINATORS,
    GENERATORS,
    LAYOUTS,
    build_discriminator,
    build_generator,
)
from unmask.models.convs import CONVS, GatedConv, make_conv  # noqa: F401  (registers the conv kinds)
from unmask.models.dcgan import DCGANConfig, DCGANDiscriminator  # noqa: F401  (registers "dcgan")
from unmask.models.se import SEDilatedBlock, SqueezeExcitation  # noqa: F401
from unmask.models.two_stage import TwoStage  # noqa: F401
from unmask.models.unet import UNet, UNetConfig, count_parameters  # noqa: F401  (registers "unet")
from unmask.models.inpainter import InpainterConfig  # noqa: F401  (registers "inpainter")
from unmask.models.portrait import LocalEmbeddingConfig  # noqa: F401  (seed 003's families, in their own registries)

__all__ = [
    "APPROACHES", "BLOCKS", "DISCRIMINATORS", "DMFB", "GENERATORS", "LAYOUTS", "Discriminator",
    "DiscriminatorConfig", "Generator", "GeneratorConfig", "ResBlock", "build_discriminator",
    "build_generator", "measure_receptive_field",
]
