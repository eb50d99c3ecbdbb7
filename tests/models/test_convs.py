"""Conv kinds (``CONVS``): plain and gated convs, the layer factory, and the mask-needing protocol."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unmask.errors import ConfigError
from unmask.models.convs import (
    CONVS,
    LEAKY_SLOPE,
    GatedConv,
    conv_norm_act,
    make_act,
    make_conv,
    make_norm,
)


def test_registry_holds_plain_and_gated_with_plain_default():
    assert {"plain", "gated"} <= set(CONVS.names())
    assert CONVS.default == "plain"
    for name in ("plain", "gated"):
        assert CONVS.get(name, "conv").needs_mask is False


def test_unknown_kind_is_a_config_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"generator\.conv: unknown conv 'nope'.*gated, imputed, plain"):
        make_conv("nope", 3, 4, 3, key="generator.conv")


@pytest.mark.parametrize("kind", ["plain", "gated"])
@pytest.mark.parametrize("size", [32, 64, 256])
def test_shapes_of_every_kind(kind, size):
    x = torch.randn(2, 3, size, size)
    same = make_conv(kind, 3, 5, 3, padding=1)
    down = make_conv(kind, 3, 5, 4, stride=2, padding=1)
    dilated = make_conv(kind, 3, 5, 3, padding=2, dilation=2)
    up = make_conv(kind, 3, 5, 4, stride=2, padding=1, transpose=True)
    assert same(x).shape == (2, 5, size, size)
    assert down(x).shape == (2, 5, size // 2, size // 2)
    assert dilated(x).shape == (2, 5, size, size)
    assert up(x).shape == (2, 5, 2 * size, 2 * size)


def test_plain_is_an_ordinary_conv():
    conv = make_conv("plain", 3, 4, 3, padding=1, bias=False)
    assert isinstance(conv, nn.Conv2d) and conv.bias is None
    assert isinstance(make_conv("plain", 3, 4, 4, 2, 1, transpose=True), nn.ConvTranspose2d)


def test_gated_output_is_features_times_sigmoid_gate_by_hand():
    torch.manual_seed(0)
    conv = make_conv("gated", 3, 4, 3, stride=2, padding=2, dilation=2)
    assert isinstance(conv, GatedConv)
    w, b = conv.conv.weight, conv.conv.bias
    assert w.shape == (8, 3, 3, 3)   # one conv with 2 * out channels
    x = torch.randn(2, 3, 16, 16)
    f = F.conv2d(x, w[:4], b[:4], stride=2, padding=2, dilation=2)
    g = F.conv2d(x, w[4:], b[4:], stride=2, padding=2, dilation=2)
    with torch.no_grad():
        torch.testing.assert_close(conv(x), f * torch.sigmoid(g), rtol=1e-6, atol=1e-6)
        # with an activation phi: phi(f) * sigmoid(g) (DeepFill v2)
        fused = make_conv("gated", 3, 4, 3, stride=2, padding=2, dilation=2, activation=make_act("swish"))
        fused.load_state_dict(conv.state_dict())
        torch.testing.assert_close(fused(x), F.silu(f) * torch.sigmoid(g), rtol=1e-6, atol=1e-6)


def test_only_fusing_kinds_take_an_activation():
    with pytest.raises(TypeError, match="does not take an activation"):
        make_conv("plain", 3, 4, 3, activation=nn.ReLU())


def _activations(seq: nn.Sequential) -> list[nn.Module]:
    return [m for m in seq if isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.SiLU))]


@pytest.mark.parametrize("act", ["relu", "swish", "leaky_relu"])
def test_layer_activates_exactly_once(act):
    plain = conv_norm_act("plain", 3, 4, 3, padding=1, norm="instance", act=act)
    assert len(_activations(plain)) == 1 and isinstance(plain[-1], type(make_act(act)))
    assert plain[0].bias is None   # the norm cancels a bias
    gated = conv_norm_act("gated", 3, 4, 3, padding=1, norm="instance", act=act)
    assert isinstance(gated[0], GatedConv)
    assert _activations(gated) == []                                   # no activation after the gate ...
    assert isinstance(gated[0].activation, type(make_act(act)))        # ... it is inside, on the features
    assert gated[0].conv.bias is not None                              # the gate keeps its bias
    x = torch.randn(1, 3, 8, 8)
    gated.eval()
    with torch.no_grad():
        f, g = gated[0].conv(x).chunk(2, dim=1)
        torch.testing.assert_close(gated(x), gated[1](make_act(act)(f) * torch.sigmoid(g)))


def test_gated_leaky_relu_inside_equals_outside_the_gate():
    """For positively homogeneous activations the place of phi does not matter (documented)."""
    conv = make_conv("gated", 3, 4, 3, padding=1, activation=nn.LeakyReLU(LEAKY_SLOPE))
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        f, g = conv.conv(x).chunk(2, dim=1)
        torch.testing.assert_close(conv(x), F.leaky_relu(f * torch.sigmoid(g), LEAKY_SLOPE))


def test_norm_and_act_factories():
    assert isinstance(make_norm("batch", 4), nn.BatchNorm2d)
    assert isinstance(make_norm("instance", 4), nn.GroupNorm)
    assert isinstance(make_norm("none", 4), nn.Identity)
    assert isinstance(make_act("swish"), nn.SiLU)
    assert make_act("leaky_relu").negative_slope == 0.2
    with pytest.raises(ConfigError, match=r"generator\.norm: unknown 'layer'"):
        make_norm("layer", 4, key="generator.norm")
    with pytest.raises(ConfigError, match=r"act: unknown 'gelu'"):
        make_act("gelu")


def test_a_kind_that_needs_the_mask_is_refused_where_no_mask_is_threaded():
    """Seed 001's imputed conv (``needs_mask``) is refused by the mask-free builders and the U-Net."""
    from unmask.models.unet import UNetConfig

    assert CONVS.get("imputed", "conv").needs_mask is True
    with pytest.raises(ValueError, match="needs the mask"):
        conv_norm_act("imputed", 3, 4, 3)
    with pytest.raises(ValueError, match="no transposed variant"):
        make_conv("imputed", 3, 4, 4, 2, 1, transpose=True)
    with pytest.raises(ConfigError, match=r"generator\.conv: 'imputed' needs the mask"):
        UNetConfig(conv="imputed")
