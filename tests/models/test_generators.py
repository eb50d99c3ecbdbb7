"""Generator behaviour: shapes of every combination, the four approaches, labels, memory format."""

from __future__ import annotations

import itertools

import pytest
import torch

from torch import nn

from unmask.errors import ConfigError
from unmask.models import APPROACHES, BLOCKS, LAYOUTS, GeneratorConfig, build_generator
from unmask.models.generators import Generator

SMALL = {"base_channels": 4, "n_blocks": 1}


def small(n_classes: int = 0, **kw) -> torch.nn.Module:
    """A small seed-000 generator; ``n_classes`` conditioning channels (domain labels or a mask)."""
    torch.manual_seed(0)
    return build_generator(GeneratorConfig(**{**SMALL, **kw}), cond_channels=n_classes)


def images(b: int = 2, size: int = 32, seed: int = 1) -> torch.Tensor:
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def labels(b: int, n: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.arange(b) % n, n).float()


@pytest.mark.parametrize("approach,blocks,encoder",
                         list(itertools.product(APPROACHES, BLOCKS, LAYOUTS)))
@pytest.mark.parametrize("n_classes", [0, 2])
def test_every_generator_keeps_the_image_shape_and_range(approach, blocks, encoder, n_classes):
    g = small(approach=approach, blocks=blocks, encoder=encoder, n_classes=n_classes)
    for size in (32, 64, 256):
        x = images(1, size)
        c = labels(1, n_classes) if n_classes else None
        with torch.no_grad():
            out, mask = g(x, c, return_mask=True)
        assert out.shape == x.shape
        assert out.abs().max() <= 1.0
        if approach in ("mask", "binary_mask"):
            assert mask.shape == (1, 1, size, size)
        else:
            assert mask is None


def test_paper_scale_parameter_count_matches_stargan():
    """StarGAN's generator (Table 1, 6 ResBlocks, 5 labels) has 8,430,528 parameters."""
    g = build_generator(GeneratorConfig(), cond_channels=5)
    n = sum(p.numel() for p in g.parameters())
    assert abs(n - 8_430_528) / 8_430_528 < 0.01


def test_dmfn_layout_uses_kernel_5_first_and_3_elsewhere():
    g = small(encoder="dmfn", n_blocks=0)
    kernels = [m.kernel_size[0] for m in g.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert kernels == [5, 3, 3, 3, 3, 3]


@pytest.mark.parametrize("approach", ["mask", "binary_mask"])
def test_mask_zero_leaves_the_input_untouched(approach):
    g = small(approach=approach)
    with torch.no_grad():
        g.head.bias[3] = -1e4  # the mask head's logit: sigmoid -> exactly 0
    x = images()
    with torch.no_grad():
        out, mask = g(x, return_mask=True)
    assert torch.equal(mask, torch.zeros_like(mask))
    assert torch.equal(out, x)


@pytest.mark.parametrize("approach", ["mask", "binary_mask"])
def test_mask_one_takes_the_generated_image(approach):
    g = small(approach=approach)
    with torch.no_grad():
        g.head.bias[3] = 1e4
    x = images()
    with torch.no_grad():
        out = g(x)
        generated = torch.tanh(g.head(g.body(x))[:, :3])
    torch.testing.assert_close(out, generated, rtol=0, atol=1e-6)
    assert not torch.allclose(out, x, atol=1e-2)


def test_binary_mask_is_binary_and_passes_gradients_to_the_mask_head():
    g = small(approach="binary_mask")
    x = images()
    out, mask = g(x, return_mask=True)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    out.square().sum().backward()
    mask_head_grad = g.head.weight.grad[3]
    assert mask_head_grad.abs().sum() > 0  # torch.round alone has zero gradient


def test_residual_with_zero_residual_is_the_identity():
    g = small(approach="residual")
    with torch.no_grad():
        g.head.weight.zero_()
        g.head.bias.zero_()
    x = images()
    with torch.no_grad():
        assert torch.equal(g(x), x)


def test_residual_clamps_to_the_image_range_but_keeps_gradients():
    g = small(approach="residual")
    with torch.no_grad():
        g.head.bias.fill_(5.0)
    x = images()
    out = g(x)
    assert torch.equal(out, torch.ones_like(out))
    out.sum().backward()
    assert g.head.bias.grad.abs().sum() > 0


def test_normal_approach_outputs_tanh_and_rewrites_every_pixel():
    g = small(approach="normal")
    with torch.no_grad():
        g.head.bias[:] = -1e4
    x = images()
    with torch.no_grad():
        assert torch.equal(g(x), -torch.ones_like(x))


def test_domain_labels_change_the_output_and_are_required():
    g = small(n_classes=2)
    x = images(1)
    with torch.no_grad():
        a = g(x, torch.tensor([[1.0, 0.0]]))
        b = g(x, torch.tensor([[0.0, 1.0]]))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="domain labels"):
        g(x)
    with pytest.raises(ValueError, match="domain labels"):
        small()(x, torch.tensor([[1.0, 0.0]]))


def test_spatial_condition_maps_are_concatenated_not_tiled():
    """The paired inpainter passes its mask as c of shape (B, 1, H, W)."""
    g = small(n_classes=1)
    x = images(2)
    m = torch.zeros(2, 1, *x.shape[2:])
    m[:, :, 8:, :] = 1
    with torch.no_grad():
        a, b = g(x, m), g(x, torch.zeros_like(m))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="condition maps"):
        g(x, m[:, :, :8])


def test_image_sides_must_divide_by_4():
    with pytest.raises(ValueError, match="divisible by 4"):
        small()(images(1, 30))


def test_eval_and_train_modes_agree():
    """InstanceNorm keeps no running statistics, so eval() translates exactly like training."""
    g = small(blocks="dmfb", approach="mask")
    x = images()
    with torch.no_grad():
        train_out = g.train()(x)
        eval_out = g.eval()(x)
    assert torch.equal(train_out, eval_out)


@pytest.mark.parametrize("approach,blocks,encoder", [("mask", "dmfb", "dmfn"),
                                                     ("residual", "dilated", "stargan"),
                                                     ("binary_mask", "resblock", "stargan")])
def test_channels_last_weights_and_inputs_give_the_same_result(approach, blocks, encoder):
    g = small(approach=approach, blocks=blocks, encoder=encoder, n_classes=2)
    x, c = images(2, 32), labels(2, 2)
    with torch.no_grad():
        ref = g(x, c)
        g = g.to(memory_format=torch.channels_last)
        out = g(x.contiguous(memory_format=torch.channels_last), c)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_instance_norm_is_torch_instance_norm():
    """The GroupNorm-based InstanceNorm computes exactly what nn.InstanceNorm2d(affine=True) does, with
    the same parameter names (checkpoints of either load into the other)."""
    from unmask.models.blocks import instance_norm

    ours, ref = instance_norm(6), nn.InstanceNorm2d(6, affine=True)
    with torch.no_grad():
        ref.weight.normal_()
        ref.bias.normal_()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(3, 6, 8, 8) * 4 + 2
    assert torch.allclose(ours(x), ref(x), atol=1e-5)
    assert set(ours.state_dict()) == set(ref.state_dict()) == {"weight", "bias"}


@pytest.mark.parametrize("init", [0.1, 0.9])
def test_mask_init_sets_the_initial_mask(init):
    torch.manual_seed(0)
    g = Generator(GeneratorConfig(approach="mask", base_channels=4, n_blocks=1, mask_init=init))
    _, mask = g(torch.rand(2, 3, 16, 16) * 2 - 1, return_mask=True)
    assert abs(mask.mean().item() - init) < 0.1


@pytest.mark.parametrize("bad", [0, 1, 1.5, "x"])
def test_mask_init_out_of_range_names_the_key(bad):
    with pytest.raises(ConfigError, match="generator.mask_init"):
        GeneratorConfig(approach="mask", mask_init=bad)
