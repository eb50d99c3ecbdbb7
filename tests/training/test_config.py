"""TrainConfig: defaults of seed 000, one-line errors naming the key, round trip through plain data."""

from __future__ import annotations

import pytest

from unmask.errors import ConfigError
from unmask.models import DiscriminatorConfig, GeneratorConfig
from unmask.training import TrainConfig, build_trainer

from tests.training.helpers import tiny_config


def test_defaults_follow_the_paper() -> None:
    cfg = TrainConfig()
    assert (cfg.lr_g, cfg.lr_d, cfg.betas, cfg.batch_size) == (1e-4, 4e-4, (0.5, 0.9), 4)


def test_round_trip_through_plain_data() -> None:
    cfg = TrainConfig.from_dict({"adv_loss": "wgan_gp", "weights": {"adv": 0.1}, "image_size": 32,
                                 "generator": GeneratorConfig(approach="mask"),
                                 "discriminator": {"name": "patchgan"}})
    assert cfg.networks["discriminator"] == DiscriminatorConfig(name="patchgan", image_size=32)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    stargan = TrainConfig.from_dict({"framework": "stargan", "n_discriminators": 2, "recon": "l2"})
    assert (stargan.options.n_discriminators, stargan.options.recon) == (2, "l2")
    assert TrainConfig.from_dict(stargan.to_dict()) == stargan


@pytest.mark.parametrize("raw, message", [
    ({"framework": "cyclegan", "n_discriminators": 2},
     "train.n_discriminators: unknown key for framework 'cyclegan'"),        # StarGAN's option, not CycleGAN's
    ({"framework": "segmenter", "discriminator": {}}, "train.discriminator: unknown key for framework 'segmenter'"),
    ({"image_size": 64, "discriminator": {"image_size": 32}},
     "train.discriminator.image_size: is set by train.image_size (64), got 32"),
    ({"image_size": 18}, "train.image_size: 18 is not divisible"),          # the size the discriminator cannot take
])
def test_each_key_belongs_to_the_trainer_that_reads_it(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match="^" + message.replace(".", r"\.").replace("(", r"\(").replace(")", r"\)")):
        TrainConfig.from_dict(raw)


@pytest.mark.parametrize("raw, key", [
    ({"weights": {"adv": -1}}, "train.weights.adv"),
    ({"lr_g": 0}, "train.lr_g"),
    ({"betas": (0.5,)}, "train.betas"),
    ({"n_critic": 0}, "train.n_critic"),
    ({"framework": "stargan", "n_discriminators": 3}, "train.n_discriminators"),
    ({"device": "tpu"}, "train.device"),
    ({"steps": 1.5}, "train.steps"),
    ({"lambda_cycle": 1.0}, "train.lambda_cycle"),
    ({"generator": {"name": "unet", "n_blocks": 2}}, "train.generator.n_blocks"),
    ({"generator": {"name": "resnet"}}, "train.generator.name"),
    ({"generator": {"approach": "masked"}}, "generator.approach"),
    ({"discriminator": {"colour": 1}}, "train.discriminator.colour"),
])
def test_bad_values_name_the_key(raw: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        TrainConfig.from_dict(raw)


@pytest.mark.parametrize("overrides, key", [
    ({"framework": "pix2pix"}, "train.framework"),
    ({"adv_loss": "wgan"}, "train.adv_loss"),
    ({"recon": "l3"}, "train.recon"),
])
def test_unknown_names_are_config_errors(overrides: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as err:
        build_trainer(tiny_config(**overrides))
    assert "\n" not in str(err.value)
