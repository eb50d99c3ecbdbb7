"""A study names its models in params.yaml: the registries hold the paper's names, bad ones fail."""

from __future__ import annotations

import pytest

from unmask.errors import ConfigError
from unmask.models import (
    APPROACHES,
    BLOCKS,
    DISCRIMINATORS,
    GENERATORS,
    LAYOUTS,
    DiscriminatorConfig,
    GeneratorConfig,
    build_discriminator,
    build_generator,
)
from unmask.models.blocks import DMFB, ResBlock


def test_registries_hold_the_paper_names():
    assert set(APPROACHES) == {"normal", "residual", "mask", "binary_mask"}
    assert set(BLOCKS) == {"resblock", "dilated", "dmfb"}
    assert set(LAYOUTS) == {"stargan", "dmfn"}
    assert {"stargan", "unet"} <= set(GENERATORS)
    assert set(DISCRIMINATORS) == {"stargan", "patchgan", "red", "dcgan"}


def test_dilated_block_dilates_only_the_second_conv():
    convs = [m for m in BLOCKS["dilated"](8).modules() if hasattr(m, "dilation")]
    assert [c.dilation for c in convs] == [(1, 1), (2, 2)]
    assert isinstance(BLOCKS["resblock"](8), ResBlock) and isinstance(BLOCKS["dmfb"](8), DMFB)


@pytest.mark.parametrize("field,key", [("approach", "generator.approach"), ("blocks", "generator.blocks"),
                                       ("encoder", "generator.encoder")])
def test_unknown_generator_names_name_the_key_and_choices(field, key):
    with pytest.raises(ConfigError) as err:
        build_generator(GeneratorConfig(**{field: "nope"}))
    message = str(err.value)
    assert key in message and "'nope'" in message
    assert "\n" not in message
    valid = {"approach": APPROACHES, "blocks": BLOCKS, "encoder": LAYOUTS}[field]
    assert all(choice in message for choice in valid)


def test_unknown_discriminator_name_names_the_key_and_choices():
    with pytest.raises(ConfigError, match=r"discriminator\.name: unknown 'nope'.*patchgan, red, stargan"):
        build_discriminator(DiscriminatorConfig(name="nope"))


@pytest.mark.parametrize("kw,key", [({"base_channels": 0}, "generator.base_channels"),
                                    ({"n_blocks": -1}, "generator.n_blocks"),
                                    ({"mask_init": 1.5}, "generator.mask_init")])
def test_bad_generator_sizes_are_config_errors(kw, key):
    with pytest.raises(ConfigError, match=key):
        GeneratorConfig(**kw)
