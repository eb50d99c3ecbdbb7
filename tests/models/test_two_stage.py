"""TwoStage: stage II sees cat(stage-I input, pasted stage-I output); known pixels are kept exactly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from unmask.models import GENERATORS, build_generator
from unmask.models.two_stage import TwoStage, paste_known
from unmask.models.unet import UNet


class Recording(nn.Module):
    """A stage that returns ``scale * x[:, -3:] + shift`` (its last three input maps: stage II's are the
    pasted stage-I result) and records what it was given."""

    def __init__(self, scale: float, shift: float):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(scale))
        self.shift = shift
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, x, c):
        self.seen.append((x.detach().clone(), c.detach().clone()))
        return self.scale * x[:, -3:] + self.shift


def batch(b: int = 2, size: int = 32, k: int = 1, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(b, 3, size, size, generator=gen) * 2 - 1
    m = (torch.rand(b, 1, size, size, generator=gen) > 0.6).float()
    extra = torch.rand(b, k - 1, size, size, generator=gen)
    x = x * (1 - m)   # the paired trainer blanks the hole
    return x, torch.cat([m, extra], dim=1)


def test_stage_two_sees_the_input_and_the_pasted_stage_one_output():
    s1, s2 = Recording(0.5, 0.3), Recording(-1.0, 0.1)
    x, c = batch(k=2)
    m = c[:, :1]
    y1, y2 = TwoStage(s1, s2).forward_stages(x, c)
    (x1, c1), = s1.seen
    (x2, c2), = s2.seen
    assert torch.equal(x1, x) and torch.equal(c1, c) and torch.equal(c2, c)
    assert x2.shape == (2, 6, 32, 32)
    assert torch.equal(x2[:, :3], x)
    k1 = x * (1 - m) + y1 * m
    torch.testing.assert_close(x2[:, 3:], k1)
    torch.testing.assert_close(y1, 0.5 * x + 0.3)          # raw, not pasted
    torch.testing.assert_close(y2, -1.0 * k1 + 0.1)


@pytest.mark.parametrize("size", [32, 64, 256])
def test_known_pixels_are_bit_identical(size):
    torch.manual_seed(0)
    g = build_generator(GENERATORS.config(
        {"name": "unet", "depth": {32: 3, 64: 4, 256: 5}[size], "base_channels": 4, "max_channels": 16,
         "stages": 2}, "generator"), cond_channels=1)
    x, c = batch(2, size, seed=size)
    x = torch.rand_like(x) * 2 - 1   # known pixels with arbitrary values (hole not blanked)
    m = c[:, :1].bool().expand_as(x)
    with torch.no_grad():
        out = g(x, c)
        y1, y2 = g.forward_stages(x, c)
    assert out.shape == y1.shape == y2.shape == (2, 3, size, size)
    assert torch.equal(out[~m], x[~m])      # known pixels: exactly x
    assert torch.equal(out[m], y2[m])       # hole: exactly stage II's output
    assert not torch.equal(y2[~m], x[~m])   # (the raw output differs there)


def test_paste_is_exact_at_zero_and_one_and_blends_soft_masks():
    x = torch.randn(1, 3, 4, 4)
    y = torch.randn(1, 3, 4, 4) * 1e3
    hole = torch.tensor([0.0, 1.0, 0.25, 1.0]).reshape(1, 1, 1, 4).expand(1, 1, 4, 4)
    out = paste_known(x, y, hole)
    assert torch.equal(out[..., 0], x[..., 0]) and torch.equal(out[..., 1], y[..., 1])
    torch.testing.assert_close(out[..., 2], 0.75 * x[..., 2] + 0.25 * y[..., 2])


def test_gradients_reach_both_stages():
    s1, s2 = Recording(0.5, 0.3), Recording(2.0, 0.1)
    x, c = batch()
    x = torch.rand_like(x) * 2 - 1   # hole not blanked, so y1 depends on stage I's scale there
    TwoStage(s1, s2)(x, c).sum().backward()
    assert s2.scale.grad is not None and s2.scale.grad != 0
    assert s1.scale.grad is not None and s1.scale.grad != 0   # through k1's hole pixels


def test_stage_one_losses_see_stage_one_raw_output():
    g = build_generator(GENERATORS.config({"name": "unet", "depth": 3, "base_channels": 4, "stages": 2},
                                          "generator"), cond_channels=1)
    assert isinstance(g.stage1, UNet) and isinstance(g.stage2, UNet)
    assert g.stage2.in_channels == g.stage1.in_channels + 3
    x, c = batch()
    with torch.no_grad():
        y1, _ = g.forward_stages(x, c)
        torch.testing.assert_close(y1, g.stage1(x, c))


@pytest.mark.parametrize("c", [None, torch.zeros(2, 0, 32, 32), torch.zeros(2, 1), torch.zeros(2, 1, 16, 16)])
def test_the_mask_is_required(c):
    x, _ = batch()
    with pytest.raises(ValueError, match="hole mask"):
        TwoStage(Recording(1.0, 0.0), Recording(1.0, 0.0))(x, c)
