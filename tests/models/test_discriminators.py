"""Discriminator behaviour: output shapes, depth capping, receptive fields, parameter count."""

from __future__ import annotations

import pytest
import torch

from unmask.errors import ConfigError
from unmask.models import DiscriminatorConfig, build_discriminator, measure_receptive_field
from unmask.models.discriminators import PAPER_DEPTH


def small(name: str, image_size: int = 32, n_classes: int = 0, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_discriminator(DiscriminatorConfig(name=name, image_size=image_size, base_channels=4, **kw),
                               n_classes=n_classes)


# side of the source logits map: 4 px after the last stride-2 conv (the depth cap keeps it so), PatchGAN's
# two k4 s1 p1 convs then take 1 px each
SRC_SIDE = {"stargan": {32: 4, 64: 4, 256: 4}, "red": {32: 4, 64: 4, 256: 4},
            "patchgan": {32: 2, 64: 6, 256: 30}}


@pytest.mark.parametrize("name", sorted(PAPER_DEPTH))   # seed 000's three (DiscriminatorConfig)
@pytest.mark.parametrize("n_classes", [0, 2])
@pytest.mark.parametrize("size", [32, 64, 256])
def test_output_shapes(name, n_classes, size):
    d = small(name, size, n_classes=n_classes)
    with torch.no_grad():
        src, cls = d(torch.rand(2, 3, size, size) * 2 - 1)
    side = SRC_SIDE[name][size]
    assert src.shape == (2, 1, side, side)
    if n_classes:
        assert cls.shape == (2, n_classes)
    else:
        assert cls is None


@pytest.mark.parametrize("name,size,depth", [("stargan", 32, 3), ("stargan", 64, 4), ("stargan", 128, 5),
                                             ("stargan", 256, 6), ("stargan", 512, 6), ("red", 32, 3),
                                             ("red", 256, 6), ("patchgan", 32, 3), ("patchgan", 16, 2),
                                             ("patchgan", 256, 3)])
def test_paper_depth_is_capped_to_the_image(name, size, depth):
    assert DiscriminatorConfig(name=name, image_size=size).depth == depth


def test_explicit_depth_beyond_the_cap_or_indivisible_size_is_a_config_error():
    with pytest.raises(ConfigError, match="discriminator.n_layers"):
        DiscriminatorConfig(image_size=32, n_layers=4)
    with pytest.raises(ConfigError, match="discriminator.image_size"):
        DiscriminatorConfig(image_size=200)  # depth 5 (cap), 200 is not divisible by 32


def test_paper_scale_stargan_critic_matches_stargan():
    """Table 2 widths 64 .. 2048; StarGAN's critic with 5 labels at 256 px has 44,884,928 parameters."""
    d = build_discriminator(DiscriminatorConfig(), n_classes=5)
    widths = [m.out_channels for m in d.features if isinstance(m, torch.nn.Conv2d)]
    assert widths == [64, 128, 256, 512, 1024, 2048]
    assert d.cls.kernel_size == (4, 4)
    n = sum(p.numel() for p in d.parameters())
    assert abs(n - 44_884_928) / 44_884_928 < 0.01


@pytest.mark.parametrize("name,expected", [("stargan", 318), ("red", 253), ("patchgan", 70)])
def test_receptive_fields_at_256_px_paper_depth(name, expected):
    d = small(name, 256)
    # StarGAN's field (318) exceeds 256 px: its fully convolutional source head is measured on a
    # larger input; RED's per-position layer fixes its input to 256 px, where its field fits.
    measure_at = 512 if name == "stargan" else 256
    assert measure_receptive_field(d, measure_at) == expected


def test_receptive_field_measurement_refuses_a_clipped_field():
    with pytest.raises(ValueError, match="border"):
        measure_receptive_field(small("stargan", 256), 256)


def test_receptive_field_restores_training_mode():
    d = small("patchgan", 128).train()
    assert measure_receptive_field(d, 128) == 70
    assert d.training


def test_red_rejects_another_image_size():
    with pytest.raises(ValueError, match="image_size"):
        small("red", 64)(torch.zeros(1, 3, 32, 32))


@pytest.mark.parametrize("name", sorted(PAPER_DEPTH))   # seed 000's three (DiscriminatorConfig)
def test_gradient_penalty_double_backward(name):
    """WGAN-GP differentiates the gradient norm: every critic must support double backward."""
    d = small(name, 32, n_classes=2)
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    src, _ = d(x)
    (grad,) = torch.autograd.grad(src.sum(), x, create_graph=True)
    penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    penalty.backward()
    assert next(d.features.parameters()).grad is not None


@pytest.mark.parametrize("name", sorted(PAPER_DEPTH))   # seed 000's three (DiscriminatorConfig)
def test_channels_last_weights_and_inputs_give_the_same_result(name):
    d = small(name, 32, n_classes=2).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        ref_src, ref_cls = d(x)
        d = d.to(memory_format=torch.channels_last)
        src, cls = d(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(src, ref_src, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(cls, ref_cls, rtol=1e-4, atol=1e-4)
