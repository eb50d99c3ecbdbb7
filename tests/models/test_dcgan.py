"""The DCGAN discriminator (seed 002) and the PatchGAN setting for FD-StackGAN's 32x32 patches."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from unmask.errors import ConfigError
from unmask.models import DISCRIMINATORS, DiscriminatorConfig, build_discriminator, measure_receptive_field
from unmask.models.dcgan import DCGANConfig, DCGANDiscriminator


def dcgan(**kw) -> nn.Module:
    torch.manual_seed(0)
    return build_discriminator(DISCRIMINATORS.config({"name": "dcgan", **kw}, "train.discriminator"))


@pytest.mark.parametrize("size,depth", [(32, 3), (64, 4), (256, 6)])
def test_one_logit_per_image_at_every_size(size, depth):
    d = dcgan(image_size=size, base_channels=4)
    assert isinstance(d, DCGANDiscriminator) and d.cfg.depth == depth
    src, cls = d(torch.randn(2, 3, size, size))
    assert src.shape == (2, 1, 1, 1) and cls is None
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4 * 2 ** i for i in range(depth)] + [1]
    assert all(c.kernel_size == (4, 4) for c in convs)
    assert all(c.stride == (2, 2) and c.padding == (1, 1) for c in convs[:-1])
    assert convs[-1].stride == (1, 1) and convs[-1].padding == (0, 0)   # final 4x4 conv on a 4x4 map


def test_batch_norm_everywhere_but_the_first_layer_and_leaky_relu():
    d = dcgan(image_size=64, base_channels=8)
    layers = list(d.features)
    assert isinstance(layers[0], nn.Conv2d) and isinstance(layers[1], nn.LeakyReLU)   # no BN after conv 1
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == d.cfg.depth - 1
    for i, layer in enumerate(layers):
        if isinstance(layer, nn.Conv2d) and i > 0:
            assert isinstance(layers[i + 1], nn.BatchNorm2d) and layer.bias is None
    assert all(m.negative_slope == 0.2 for m in d.modules() if isinstance(m, nn.LeakyReLU))
    assert not any(isinstance(m, nn.Sigmoid) for m in d.modules())   # logits for BCE-with-logits


def test_dcgan_init():
    d = dcgan(image_size=64, base_channels=64)
    weights = torch.cat([m.weight.flatten() for m in d.modules() if isinstance(m, nn.Conv2d)])
    assert abs(weights.std().item() - 0.02) < 0.001 and abs(weights.mean().item()) < 0.001
    bn = torch.cat([m.weight.flatten() for m in d.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(bn.mean().item() - 1.0) < 0.003 and abs(bn.std().item() - 0.02) < 0.003
    biases = [m.bias for m in d.modules() if getattr(m, "bias", None) is not None]
    assert biases and all(torch.count_nonzero(b) == 0 for b in biases)


def test_explicit_depth_keeps_one_logit():
    d = dcgan(image_size=64, base_channels=4, n_layers=2)
    assert d.logit.kernel_size == (16, 16)
    assert d(torch.randn(1, 3, 64, 64))[0].shape == (1, 1, 1, 1)


def test_only_runs_at_its_image_size():
    with pytest.raises(ValueError, match="image_size"):
        dcgan(image_size=64, base_channels=4)(torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize("raw,key", [
    ({"foo": 1}, "train.discriminator.foo"), ({"n_layers": 5, "image_size": 64}, "train.discriminator.n_layers"),
    ({"image_size": 8}, "train.discriminator.image_size"), ({"base_channels": 0}, "train.discriminator.base_channels"),
    ({"image_size": 48, "n_layers": 3}, None),
])
def test_config_errors_name_the_key(raw, key):
    if key is None:   # 48 / 2**3 = 6: fine, a 6x6 final kernel
        assert DISCRIMINATORS.config({"name": "dcgan", **raw}, "train.discriminator").final_size == 6
        return
    with pytest.raises(ConfigError, match="^" + re.escape(key) + ": "):
        DISCRIMINATORS.config({"name": "dcgan", **raw}, "train.discriminator")


def test_no_classification_head():
    with pytest.raises(ConfigError, match="no classification head"):
        DCGANDiscriminator(DCGANConfig(), n_classes=2)


def test_patchgan_with_two_layers_judges_34px_patches():
    """FD-StackGAN's 32x32 patches: the existing ``patchgan`` with ``n_layers: 2`` (pix2pix's 70 px
    PatchGAN has 3) sees 34 px; 1 layer would see 16."""
    fields = {}
    for n in (1, 2, 3):
        d = build_discriminator(DiscriminatorConfig(name="patchgan", image_size=128, base_channels=4,
                                                    n_layers=n))
        fields[n] = measure_receptive_field(d, 128)
    assert fields == {1: 16, 2: 34, 3: 70}
