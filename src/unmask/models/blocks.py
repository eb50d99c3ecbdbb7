"""Middle blocks of the generator (seed 000, Section 4.8): ResBlock, dilated ResBlock, DMFB.

Convolutions that feed an InstanceNorm carry no bias: the norm subtracts the per-channel mean, so a
bias there is a parameter and an op that cannot change the output.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn


class InstanceNorm(nn.GroupNorm):
    """InstanceNorm with affine parameters and no running statistics (train and eval agree), computed
    as GroupNorm with one group per channel: the same maths (and the same ``weight``/``bias``
    parameters as ``nn.InstanceNorm2d(affine=True)``), through a fused kernel. InstanceNorm2d runs
    batch norm over a (1, B*C, H, W) view with its affine parameters repeated B times, which cost
    8-24 % of a CPU training step at the embedded default's width (benchmarks/train_step.py)."""

    def __init__(self, ch: int):
        super().__init__(ch, ch, eps=1e-5, affine=True)


def instance_norm(ch: int) -> InstanceNorm:
    """The generators' normalisation: :class:`InstanceNorm` over ``ch`` channels."""
    return InstanceNorm(ch)


def conv3(in_ch: int, out_ch: int, dilation: int = 1) -> nn.Conv2d:
    """3x3 'same' convolution without bias (always followed by InstanceNorm here)."""
    return nn.Conv2d(in_ch, out_ch, 3, padding=dilation, dilation=dilation, bias=False)


class ResBlock(nn.Module):
    """x + IN(conv3(ReLU(IN(conv3(x))))); ``dilation`` applies to the second conv (EdgeConnect's
    dilated ResBlock uses 2)."""

    def __init__(self, ch: int, dilation: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            conv3(ch, ch), instance_norm(ch), nn.ReLU(inplace=True),
            conv3(ch, ch, dilation), instance_norm(ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class DMFB(nn.Module):
    """Dense multi-scale fusion block (Hui et al. 2020, DMFN).

    3x3 conv ch -> ch/4 + IN + ReLU; four 3x3 convs with dilation 1, 2, 4, 8 whose outputs are
    summed cumulatively (k1, k1+k2, k1+k2+k3, k1+k2+k3+k4); the four are concatenated (ch channels),
    IN + ReLU, fused by a 1x1 conv, IN, and added to the input.
    """

    dilations = (1, 2, 4, 8)

    def __init__(self, ch: int):
        super().__init__()
        if ch % 4:
            raise ValueError(f"DMFB needs channels divisible by 4, got {ch}")
        q = ch // 4
        self.reduce = nn.Sequential(conv3(ch, q), instance_norm(q), nn.ReLU(inplace=True))
        self.branches = nn.ModuleList(conv3(q, q, d) for d in self.dilations)
        self.fuse = nn.Sequential(
            instance_norm(ch), nn.ReLU(inplace=True), nn.Conv2d(ch, ch, 1, bias=False), instance_norm(ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.reduce(x)
        total = None
        parts = []
        for branch in self.branches:
            k = branch(y)
            total = k if total is None else total + k
            parts.append(total)
        return x + self.fuse(torch.cat(parts, dim=1))


BLOCKS: dict[str, Callable[[int], nn.Module]] = {
    "resblock": ResBlock,
    "dilated": partial(ResBlock, dilation=2),
    "dmfb": DMFB,
}
"""Middle block name (``GeneratorConfig.blocks``) -> constructor taking the channel count."""
