"""The coarse-to-fine inpainter family ``inpainter`` (seed 001; DeepFill v2's layout with its
refinement network replaced by a copy of the coarse one, as seed 001 does).

One stage: an encoder (a k5 conv, then per down-sampling a stride-2 k3 conv and a k3 conv), dilated k3
convs in the middle (dilations 2, 4, 8, 16, ... for ``n_dilated`` layers), a decoder (per up-sampling
x2 nearest then a k3 conv, and a k3 conv) and a k3 output conv to RGB with tanh. Every conv but the
output is of kind ``conv`` (:data:`~unmask.models.convs.CONVS`: plain, gated or imputed). The encoder
and the middle normalise with LayerNorm (over channels and space, as ``GroupNorm(1, C)``) and use
LeakyReLU 0.2; the decoder has no norm (seed 001: "eliminating normalization in the decoder part was
very important").

Imputed convs need the map of known pixels: it is threaded through the stage (each imputed conv
returns its updated certainty; the nearest up-sampling doubles it), starting from ``1 - hole``. Plain and
gated convs see the hole mask as an input channel (as DeepFill v2's ``[x * (1 - m), m]``).

``stages: 2`` builds a :class:`~unmask.models.two_stage.TwoStage`: coarse then refine network of the
same structure, the known pixels pasted back between the stages and at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from unmask.catalog.capabilities import Capability
from unmask.errors import ConfigError
from unmask.models.choices import check_choice, check_int
from unmask.models.convs import CONVS, LEAKY_SLOPE, make_conv
from unmask.models.registry import GENERATORS
from unmask.models.two_stage import TwoStage

__all__ = ["InpainterConfig", "InpainterStage", "build_inpainter"]


@dataclass
class InpainterConfig:
    """Choices of the coarse-to-fine inpainter; checked on construction."""

    name: str = "inpainter"
    base_channels: int = 32          # width after the first conv; x2 per down-sampling
    downsamples: int = 2             # stride-2 levels: sides must divide by 2**downsamples
    n_dilated: int = 4               # middle k3 convs with dilation 2, 4, 8, ...
    conv: str = "gated"              # plain | gated | imputed
    stages: int = 2                  # 1 (coarse only) or 2 (coarse -> refine)

    def __post_init__(self) -> None:
        check_int("generator.base_channels", self.base_channels, 1)
        check_int("generator.downsamples", self.downsamples, 0)
        check_int("generator.n_dilated", self.n_dilated, 0)
        check_choice("generator.conv", self.conv, CONVS.names())
        if self.stages not in (1, 2) or isinstance(self.stages, bool):
            raise ConfigError(f"generator.stages: must be 1 or 2, got {self.stages!r}")


class _Layer(nn.Module):
    """conv (of any kind) [+ LayerNorm] + LeakyReLU; threads the certainty map for imputed convs."""

    def __init__(self, kind: str, in_ch: int, out_ch: int, kernel: int, stride: int = 1, dilation: int = 1,
                 norm: bool = False, act: bool = True):
        super().__init__()
        pad = dilation * (kernel - 1) // 2
        self.masked = CONVS.get(kind, "generator.conv").needs_mask
        fuse = CONVS.get(kind, "generator.conv").fuses_activation and act
        kw = {"activation": nn.LeakyReLU(LEAKY_SLOPE)} if fuse else {}
        self.conv = make_conv(kind, in_ch, out_ch, kernel, stride, pad, dilation, bias=not norm or fuse, **kw)
        self.norm = nn.GroupNorm(1, out_ch) if norm else nn.Identity()
        self.act = nn.LeakyReLU(LEAKY_SLOPE) if act and not fuse else nn.Identity()

    def forward(self, x: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.masked:
            x, known = self.conv(x, known)
        else:
            x = self.conv(x)
            if x.shape[-2:] != known.shape[-2:]:
                known = nn.functional.interpolate(known, size=x.shape[-2:], mode="nearest")
        return self.act(self.norm(x)), known


class InpainterStage(nn.Module):
    """One coarse (or refine) network: ``forward(x, c)`` with ``c[:, :1]`` the hole mask."""

    def __init__(self, cfg: InpainterConfig, in_channels: int):
        super().__init__()
        k, b = cfg.conv, cfg.base_channels
        enc = [_Layer(k, in_channels, b, 5, norm=True)]
        ch = b
        for _ in range(cfg.downsamples):
            enc += [_Layer(k, ch, 2 * ch, 3, stride=2, norm=True), _Layer(k, 2 * ch, 2 * ch, 3, norm=True)]
            ch *= 2
        mid = [_Layer(k, ch, ch, 3, dilation=2 ** (i + 1), norm=True) for i in range(cfg.n_dilated)]
        dec = []
        for _ in range(cfg.downsamples):
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), _Layer(k, ch, ch // 2, 3),
                    _Layer(k, ch // 2, ch // 2, 3)]
            ch //= 2
        self.layers = nn.ModuleList(enc + mid + dec)
        self.out = nn.Conv2d(ch, 3, 3, padding=1)
        self.step = 2 ** cfg.downsamples

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if c is None or c.dim() != 4 or c.shape[1] < 1:
            raise ValueError("the inpainter needs the hole mask as c of shape (B, >=1, H, W)")
        if x.shape[-1] % self.step or x.shape[-2] % self.step:
            raise ValueError(f"inpainter input sides must be divisible by {self.step}, got {tuple(x.shape[-2:])}")
        known = 1 - c[:, :1]
        h = torch.cat([x, c], 1)
        for layer in self.layers:
            if isinstance(layer, nn.Upsample):
                h, known = layer(h), layer(known)
            else:
                h, known = layer(h, known)
        return torch.tanh(self.out(h))


@GENERATORS.register("inpainter", InpainterConfig, capabilities=(Capability.CONDITIONS,))
def build_inpainter(cfg: InpainterConfig, cond_channels: int = 0) -> nn.Module:
    """A one- or two-stage inpainter; it needs the hole mask (``cond_channels`` >= 1)."""
    if cond_channels < 1:
        raise ConfigError("generator.name: 'inpainter' needs the hole mask as input (a paired trainer)")
    coarse = InpainterStage(cfg, 3 + cond_channels)
    if cfg.stages == 1:
        return coarse
    return TwoStage(coarse, InpainterStage(cfg, 6 + cond_channels))
