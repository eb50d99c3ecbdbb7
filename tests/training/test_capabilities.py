"""Networks declare what they can do; a trainer refuses a family that cannot do what it needs, when params
are read, naming the key where the user wrote the family (not a crash in a Ray worker at step 1)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from unmask.catalog.capabilities import Capability
from unmask.config import parse_params
from unmask.errors import ConfigError
from unmask.models import GENERATORS
from unmask.studies import parse_study_params
from unmask.studies.grid import expand_study
from unmask.training import TrainConfig, build_trainer

NEEDS_MASK = "the cyclegan trainer needs a generator that returns the mask it blends with; 'unet' does not"


def _expand(raw: dict, source: str = "mine.yaml") -> None:
    params = parse_study_params(parse_params(raw, source=source))
    for name in params.studies:
        expand_study(params, name)


@pytest.mark.parametrize("raw, key", [
    ({"train": {"framework": "cyclegan", "generator": {"name": "unet"}},
      "studies": {"s": {"grid": {"adv_loss": ["lsgan"]}}}}, "train.generator.name"),
    ({"studies": {"s": {"train": {"framework": "cyclegan", "generator": {"name": "unet"}},
                        "grid": {"adv_loss": ["lsgan"]}}}}, "studies.s.train.generator.name"),
    ({"studies": {"s": {"train": {"framework": "cyclegan"}, "grid": {"generator.name": ["stargan", "unet"]}}}},
     "studies.s.grid.generator.name"),
])
def test_cyclegan_with_a_unet_generator_is_refused_when_params_are_read(raw, key):
    with pytest.raises(ConfigError) as err:
        _expand(raw)
    assert str(err.value) == f"mine.yaml: {key}: {NEEDS_MASK} (choose stargan)"


def test_stargan_with_one_discriminator_needs_a_class_head_two_do_not():
    raw = {"studies": {"s": {"train": {"framework": "stargan", "discriminator": {"name": "dcgan"}},
                             "grid": {"adv_loss": ["lsgan"]}}}}
    with pytest.raises(ConfigError, match=r"^mine\.yaml: studies\.s\.train\.discriminator\.name: the stargan "
                                          r"trainer needs a discriminator that has a domain classification head"):
        _expand(raw)
    raw["studies"]["s"]["train"]["n_discriminators"] = 2
    _expand(raw)


def test_a_two_stage_unet_needs_the_mask_so_no_segmenter_or_cyclegan_takes_it():
    with pytest.raises(ConfigError, match=r"^train\.generator\.out_channels: the segmenter needs a one-channel"):
        TrainConfig.from_dict({"framework": "segmenter", "generator": {"name": "unet", "out_channels": 3}})
    assert Capability.IMAGE_ONLY not in GENERATORS.capabilities(
        GENERATORS.config({"name": "unet", "stages": 2}, "generator"))
    assert Capability.IMAGE_ONLY in GENERATORS.capabilities(GENERATORS.config({"name": "unet"}, "generator"))


@dataclass
class _ToyConfig:
    name: str = "toy_masker"


class _ToyMasker(nn.Module):
    """A generator family a contributor adds: the identity that also returns an empty blend mask."""

    def __init__(self, cfg: _ToyConfig, cond_channels: int = 0):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x, c=None, return_mask: bool = False):
        out = x * self.scale
        return (out, torch.zeros_like(x[:, :1])) if return_mask else out


def test_a_new_family_is_taken_by_the_trainers_whose_needs_it_declares(monkeypatch):
    monkeypatch.setattr(GENERATORS, "_entries", dict(GENERATORS._entries))   # registered for this test only
    GENERATORS.register("toy_masker", _ToyConfig, capabilities=(Capability.RETURNS_MASK, Capability.IMAGE_ONLY))(
        _ToyMasker)
    trainer = build_trainer(TrainConfig.from_dict({"framework": "cyclegan", "generator": {"name": "toy_masker"},
                                                   "image_size": 16, "device": "cpu"}))
    x = torch.zeros(2, 3, 16, 16)
    assert trainer.train_step({"occluded": x, "clean": x})   # trains a step with the new family
    with pytest.raises(ConfigError, match=r"^train\.generator\.name: the paired trainer needs a generator that "
                                          r"takes condition maps beside the image; 'toy_masker' does not"):
        TrainConfig.from_dict({"framework": "paired", "generator": {"name": "toy_masker"}})
