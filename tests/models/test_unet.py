"""The ``unet`` generator family (seed 002's U-Net, FD-StackGAN's stages) and its SE middle blocks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from unmask.errors import ConfigError
from unmask.models import GENERATORS, build_generator
from unmask.models.convs import GatedConv
from unmask.models.se import SEDilatedBlock, SqueezeExcitation
from unmask.models.two_stage import TwoStage
from unmask.models.unet import UNet, UNetConfig, count_parameters

SMALL = {"name": "unet", "base_channels": 4, "max_channels": 16}
DEPTH_FOR = {32: 3, 64: 4, 256: 5}


def unet(cond_channels: int = 1, **kw) -> nn.Module:
    torch.manual_seed(0)
    return build_generator(GENERATORS.config({**SMALL, **kw}, "generator"), cond_channels=cond_channels)


def batch(b: int, size: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(b, 3, size, size, generator=gen) * 2 - 1
    m = (torch.rand(b, 1, size, size, generator=gen) > 0.7).float()
    return x, m


@pytest.mark.parametrize("size", [32, 64, 256])
@pytest.mark.parametrize("stages", [1, 2])
def test_shapes_and_range_at_every_size(size, stages):
    g = unet(depth=DEPTH_FOR[size], middle="se_dilated", n_middle=1, stages=stages)
    assert isinstance(g, TwoStage if stages == 2 else UNet)
    x, m = batch(2, size)
    with torch.no_grad():
        y = g(x, m)
    assert y.shape == (2, 3, size, size)
    assert y.abs().max() <= 1
    print(f"unet {size}px depth {DEPTH_FOR[size]} stages {stages}: {count_parameters(g)} parameters")


@pytest.mark.parametrize("kw", [
    {"conv": "gated"}, {"upsample": "nearest"}, {"conv": "gated", "upsample": "nearest", "norm": "none"},
    {"norm": "batch", "act": "swish"}, {"act": "leaky_relu", "down_act": "relu"}, {"depth": 1},
    {"depth": 1, "middle": "se_dilated"}, {"max_channels": 4},
])
def test_every_option_keeps_the_shape(kw):
    g = unet(**{"depth": 3, **kw})
    x, m = batch(2, 32)
    with torch.no_grad():
        assert g(x, m).shape == (2, 3, 32, 32)


def test_depth_five_fd_stackgan_scale_layout():
    cfg = UNetConfig(depth=5, base_channels=64, middle="se_dilated", stages=2)
    assert cfg.widths() == [64, 128, 256, 512, 512]
    g = build_generator(cfg, cond_channels=1)
    assert isinstance(g, TwoStage)
    assert g.stage1.down[0][0].in_channels == 4 and g.stage2.down[0][0].in_channels == 7
    assert len(g.stage1.down) == 5 and len(g.stage1.up) == 4 and len(g.stage1.middle) == 2
    # first layer without norm, the others instance-normed; output plain conv + tanh
    assert not any(isinstance(m, nn.GroupNorm) for m in g.stage1.down[0])
    assert all(isinstance(level[1], nn.GroupNorm) for level in g.stage1.down[1:])
    assert isinstance(g.stage1.out[0], nn.ConvTranspose2d) and g.stage1.out[0].out_channels == 3
    print(f"depth-5 U-Net base 64: {count_parameters(g.stage1)} (one stage), {count_parameters(g)} (two)")


def test_encoder_leaky_decoder_relu_by_default():
    g = unet(depth=3)
    assert all(isinstance(level[-1], nn.LeakyReLU) and level[-1].negative_slope == 0.2 for level in g.down)
    assert all(isinstance(up[-1], nn.ReLU) for up in g.up)
    swish = unet(depth=3, act="swish")
    assert all(isinstance(up[-1], nn.SiLU) for up in swish.up)


def test_gated_unet_never_activates_twice():
    g = unet(depth=3, conv="gated", middle="se_dilated", n_middle=1)
    gated = [m for m in g.modules() if isinstance(m, GatedConv)]
    assert len(gated) == 2 + 2 + 1   # down[1:], up, the middle block's conv; first and output plain
    for seq in (m for m in g.modules() if isinstance(m, nn.Sequential)):
        items = list(seq)
        for a, b in zip(items, items[1:] + [None]):
            if isinstance(a, GatedConv):
                assert not isinstance(b, (nn.ReLU, nn.LeakyReLU, nn.SiLU))


@pytest.mark.parametrize("kw", [{}, {"upsample": "nearest"}, {"conv": "gated"}])
def test_skip_connections_carry_a_pixel_past_a_dead_bottleneck(kw):
    """With the deepest level's output zeroed, a one-pixel change still reaches the output near that
    pixel (through the skips) and nowhere far from it."""
    g = unet(depth=3, norm="none", **kw)   # no norm: a norm would spread the change over the image
    g.down[-1].register_forward_hook(lambda module, inputs, out: torch.zeros_like(out))
    x, m = batch(1, 64)
    x2 = x.clone()
    x2[0, :, 32, 32] += 0.5
    with torch.no_grad():
        diff = (g(x2, m) - g(x, m)).abs().sum(dim=(0, 1))
    assert diff[28:37, 28:37].max() > 1e-4                  # the change arrives, near the pixel
    rows, cols = torch.nonzero(diff > 0, as_tuple=True)
    assert rows.min() >= 16 and rows.max() <= 48 and cols.min() >= 16 and cols.max() <= 48
    # and with the skips cut as well, nothing of x reaches the output
    for level in g.down[:-1]:
        level.register_forward_hook(lambda module, inputs, out: torch.zeros_like(out))
    with torch.no_grad():
        assert torch.equal(g(x2, m), g(x, m))


def test_skip_concatenation_widths():
    g = unet(depth=3)   # widths 4, 8, 16
    assert [up[0].in_channels for up in g.up] == [2 * 8, 16]
    assert [up[0].out_channels for up in g.up] == [4, 8]
    assert g.out[0].in_channels == 2 * 4


def test_sides_must_divide_by_two_to_the_depth():
    g = unet(depth=4)
    x, m = batch(1, 40)
    with pytest.raises(ValueError, match="divisible by 16"):
        g(x, m)


def test_instance_norm_on_a_1x1_bottleneck_is_refused():
    g = unet(depth=5)
    x, m = batch(1, 32)
    with pytest.raises(ValueError, match="1x1 bottleneck"):
        g(x, m)
    with torch.no_grad():
        assert unet(depth=5, norm="none")(x, m).shape == (1, 3, 32, 32)


def test_conditions_are_checked():
    x, m = batch(2, 32)
    with pytest.raises(ValueError, match="conditions c"):
        unet(depth=3)(x)
    with pytest.raises(ValueError, match="cond_channels=0"):
        unet(cond_channels=0, depth=3)(x, m)
    with torch.no_grad():   # (B, k) labels are tiled
        assert unet(cond_channels=2, depth=3)(x, torch.eye(2)).shape == (2, 3, 32, 32)


def test_two_stages_need_the_mask_channel():
    with pytest.raises(ConfigError, match=r"generator\.stages"):
        unet(cond_channels=0, depth=3, stages=2)


def test_unknown_key_names_the_dotted_key():
    with pytest.raises(ConfigError, match=r"train\.generator\.foo: unknown key for generator 'unet'"):
        GENERATORS.config({"name": "unet", "foo": 1}, "train.generator")


@pytest.mark.parametrize("field,value", [
    ("depth", 0), ("base_channels", 0), ("max_channels", 2), ("conv", "nope"), ("act", "gelu"),
    ("down_act", "tanh"), ("norm", "layer"), ("upsample", "bilinear"), ("middle", "dmfb"),
    ("n_middle", -1), ("middle_dilation", 0), ("se_reduction", 0), ("stages", 3), ("stages", True),
])
def test_bad_values_name_their_key(field, value):
    with pytest.raises(ConfigError, match=rf"^train\.generator\.{field}: "):
        GENERATORS.config({**SMALL, field: value}, "train.generator")


def test_se_channel_weights_lie_in_zero_one():
    torch.manual_seed(0)
    se = SqueezeExcitation(32, reduction=16)
    x = torch.randn(4, 32, 8, 8) * 3
    w = se.channel_weights(x)
    assert w.shape == (4, 32, 1, 1)
    assert (w > 0).all() and (w < 1).all()
    torch.testing.assert_close(se(x), x * w)
    assert se.reduce.out_features == 2 and SqueezeExcitation(8, 16).reduce.out_features == 1


@pytest.mark.parametrize("size", [32, 64, 256])
def test_se_dilated_block_keeps_the_shape(size):
    block = SEDilatedBlock(8, dilation=2, reduction=4)
    conv = block.body[0]
    assert conv.dilation == (2, 2) and conv.kernel_size == (3, 3)
    x = torch.randn(1, 8, size // 8, size // 8)
    with torch.no_grad():
        assert block(x).shape == x.shape


def test_parameter_counts():
    counts = {base: count_parameters(build_generator(UNetConfig(depth=5, base_channels=base), 1))
              for base in (16, 64)}
    print(f"depth-5 U-Net parameters: {counts}")
    assert counts[64] > 10 * counts[16]
    frozen = unet(depth=3)
    frozen.out.requires_grad_(False)
    assert count_parameters(frozen, trainable_only=True) < count_parameters(frozen)
