"""The U-Net generator family ``unet``: seed 002's U-Net autoencoder and FD-StackGAN's generators (seed 004).

Layout (pix2pix-style U-Net, Ronneberger et al. 2015, as FD-StackGAN's Section 3.2 describes it):

* encoder: ``depth`` levels, each a k4 s2 p1 conv halving the sides, widths
  ``min(base_channels * 2**i, max_channels)``; the first level has no norm (pix2pix), the others
  ``norm``; activation ``down_act`` (LeakyReLU 0.2 by default: seed 002's "LeakyReLU down");
* middle (at the bottleneck, sides / 2**depth): ``n_middle`` blocks of kind ``middle`` (``se_dilated``:
  FD-StackGAN's dilated conv + Squeeze-and-Excitation, :class:`~unmask.models.se.SEDilatedBlock`);
* decoder: ``depth - 1`` up-sampling layers (``upsample``: ``transpose``, a k4 s2 p1 transposed conv,
  FD-StackGAN's "de-convolution"; or ``nearest``, x2 nearest + k3 conv, DeepFill's choice) with
  ``norm`` and activation ``act``; after each, the encoder output of the same size is concatenated
  (skip connection); a last up-sampling layer maps to 3 channels at full size, then tanh.

The first and output layers are plain convs of no other kind: the output conv has no activation to
gate (DeepFill v2 does not gate its output either). Every other conv is of kind ``conv``
(:data:`~unmask.models.convs.CONVS`): with ``gated`` the activation is applied inside the conv to
the feature half, never twice (:func:`~unmask.models.convs.conv_norm_act`).

Image sides must be divisible by ``2**depth``; with ``norm: instance`` the bottleneck must be larger
than 1x1 (instance norm of a single pixel is a constant). Both are checked at forward time
(ValueError), as the config does not know the image size. ``stages: 2`` builds a
:class:`~unmask.models.two_stage.TwoStage` of two U-Nets of this config, stage II with 3 more inputs.
FD-StackGAN scale: ``depth 5, base_channels 64, norm instance, middle se_dilated, stages 2`` at 256 px.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from unmask.catalog.capabilities import Capability
from unmask.data.components import N_LABELS
from unmask.errors import ConfigError
from unmask.models.choices import check_choice, check_int
from unmask.models.convs import ACTIVATIONS, CONVS, NORMS, conv_norm_act
from unmask.models.registry import GENERATORS
from unmask.models.se import SEDilatedBlock
from unmask.models.two_stage import TwoStage

MIDDLES = ("none", "se_dilated")
UPSAMPLINGS = ("transpose", "nearest")

__all__ = ["MIDDLES", "UPSAMPLINGS", "UNet", "UNetConfig", "build_unet", "count_parameters"]


@dataclass
class UNetConfig:
    """U-Net choices; checked on construction (ConfigError naming ``generator.<key>``).

    The defaults are a single-stage U-Net at pix2pix / FD-StackGAN scale without middle blocks.
    ``n_middle``, ``middle_dilation`` and ``se_reduction`` only matter with ``middle: se_dilated``.
    """

    name: str = "unet"
    depth: int = 5                   # stride-2 levels: sides must divide by 2**depth
    base_channels: int = 64          # width of the first level, doubling per level ...
    max_channels: int = 512          # ... up to this cap
    conv: str = "plain"              # conv kind (unmask.models.convs.CONVS): plain | gated
    act: str = "relu"                # decoder (and middle) activation: relu | swish | leaky_relu
    down_act: str = "leaky_relu"     # encoder activation
    norm: str = "instance"           # none | batch | instance
    upsample: str = "transpose"      # transpose (k4 s2 ConvT) | nearest (x2 nearest + k3 conv)
    middle: str = "none"             # none | se_dilated
    n_middle: int = 2                # middle blocks (with middle: se_dilated)
    middle_dilation: int = 2         # dilation of the middle blocks' 3x3 conv
    se_reduction: int = 16           # SE bottleneck ratio (channels // reduction, at least 1)
    stages: int = 1                  # 1, or 2: TwoStage, stage II sees cat(stage-I input, stage-I output)
    out_channels: int = 3            # 3: an image; 1: a mask (the segmenter), both through tanh; 11: a face parser's logits

    def __post_init__(self) -> None:
        check_int("generator.depth", self.depth, 1)
        check_int("generator.base_channels", self.base_channels, 1)
        check_int("generator.max_channels", self.max_channels, 1)
        if self.max_channels < self.base_channels:
            raise ConfigError(f"generator.max_channels: must be >= base_channels ({self.base_channels}), "
                              f"got {self.max_channels}")
        check_choice("generator.conv", self.conv, CONVS.names())
        if CONVS.get(self.conv, "generator.conv").needs_mask:
            raise ConfigError(f"generator.conv: {self.conv!r} needs the mask threaded through the "
                              "network, which unet does not do; choose plain or gated")
        check_choice("generator.act", self.act, ACTIVATIONS)
        check_choice("generator.down_act", self.down_act, ACTIVATIONS)
        check_choice("generator.norm", self.norm, NORMS)
        check_choice("generator.upsample", self.upsample, UPSAMPLINGS)
        check_choice("generator.middle", self.middle, MIDDLES)
        check_int("generator.n_middle", self.n_middle, 0)
        check_int("generator.middle_dilation", self.middle_dilation, 1)
        check_int("generator.se_reduction", self.se_reduction, 1)
        if self.stages not in (1, 2) or isinstance(self.stages, bool):
            raise ConfigError(f"generator.stages: must be 1 or 2, got {self.stages!r}")
        if self.out_channels not in (1, 3, N_LABELS) or isinstance(self.out_channels, bool):
            raise ConfigError(f"generator.out_channels: must be 3 (an image), 1 (a mask) or {N_LABELS} (a face "
                              f"parser's labels), got {self.out_channels!r}")
        if self.stages == 2 and self.out_channels != 3:
            raise ConfigError("generator.out_channels: a two-stage U-Net outputs an image (3)")

    def capabilities(self, declared: frozenset[str]) -> frozenset[str]:
        """A two-stage U-Net needs the hole mask (not the image alone); one output channel is a mask."""
        caps = set(declared)
        if self.stages == 2:
            caps.discard(Capability.IMAGE_ONLY)
        if self.out_channels == 1:
            caps.add(Capability.ONE_CHANNEL)
        if self.out_channels == N_LABELS:
            caps.add(Capability.PARSES)
        return frozenset(caps)

    def widths(self) -> list[int]:
        """Channels of the encoder levels (and of the decoder layer of the same size)."""
        return [min(self.base_channels * 2 ** i, self.max_channels) for i in range(self.depth)]


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``module`` (only those with ``requires_grad`` if ``trainable_only``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def with_conditions(x: torch.Tensor, c: torch.Tensor | None, n: int) -> torch.Tensor:
    """``x`` with ``n`` condition maps appended: ``c`` (B, n, H, W), or (B, n) tiled over the image."""
    if n == 0:
        if c is not None:
            raise ValueError("generator has cond_channels=0 but was given conditions c")
        return x
    b, _, h, w = x.shape
    if c is not None and c.shape == (b, n):
        maps = c.to(x.dtype)[:, :, None, None].expand(-1, -1, h, w)
    elif c is not None and c.shape == (b, n, h, w):
        maps = c.to(x.dtype)
    else:
        got = None if c is None else tuple(c.shape)
        raise ValueError(f"generator needs conditions c of shape ({b}, {n}) or ({b}, {n}, {h}, {w}), "
                         f"got {got}")
    return torch.cat([x, maps], dim=1)


class UNet(nn.Module):
    """One U-Net: ``forward(x, c)`` maps ``x`` (B, in_channels, H, W) (+ ``c``, ``cond_channels`` maps)
    to an image (B, out_channels, H, W) in [-1, 1] (tanh).

    Parts: ``down`` (encoder levels, shallowest first), ``middle`` (blocks at the bottleneck),
    ``up`` (decoder layers, ``up[i]`` brings level i+1's size to level i's; deepest last), ``out``
    (the full-size output layer).
    """

    def __init__(self, cfg: UNetConfig, cond_channels: int = 0, in_channels: int = 3):
        super().__init__()
        check_int("cond_channels", cond_channels, 0)
        self.cfg = cfg
        self.cond_channels = cond_channels
        self.in_channels = in_channels
        widths = cfg.widths()
        ch = in_channels + cond_channels
        self.down = nn.ModuleList()
        for i, width in enumerate(widths):
            kind = "plain" if i == 0 else cfg.conv
            norm = "none" if i == 0 else cfg.norm
            self.down.append(conv_norm_act(kind, ch, width, 4, 2, 1, norm=norm, act=cfg.down_act))
            ch = width
        self.middle = nn.Sequential(*(
            SEDilatedBlock(ch, cfg.middle_dilation, cfg.se_reduction, cfg.norm, cfg.act, cfg.conv)
            for _ in range(cfg.n_middle if cfg.middle == "se_dilated" else 0)))
        self.up = nn.ModuleList()
        for i in range(cfg.depth - 1):   # up[i]: level i+1 (in channels) -> level i (widths[i])
            in_ch = widths[i + 1] if i + 1 == cfg.depth - 1 else 2 * widths[i + 1]
            self.up.append(self._up(cfg.conv, in_ch, widths[i], cfg.norm, cfg.act))
        out_in = widths[0] if cfg.depth == 1 else 2 * widths[0]
        self.out = self._up("plain", out_in, cfg.out_channels, "none", None)

    def _up(self, kind: str, in_ch: int, out_ch: int, norm: str, act: str | None) -> nn.Module:
        if self.cfg.upsample == "transpose":
            return conv_norm_act(kind, in_ch, out_ch, 4, 2, 1, norm=norm, act=act, transpose=True)
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                             conv_norm_act(kind, in_ch, out_ch, 3, 1, 1, norm=norm, act=act))

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"U-Net expects x of shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        step = 2 ** self.cfg.depth
        if h % step or w % step:
            raise ValueError(f"U-Net of depth {self.cfg.depth} needs image sides divisible by {step}, "
                             f"got {h}x{w}: resize or lower generator.depth")
        if self.cfg.norm == "instance" and h == step and w == step and (self.cfg.depth > 1 or len(self.middle)):
            raise ValueError(f"U-Net of depth {self.cfg.depth} leaves a 1x1 bottleneck at {h}x{w}, where "
                             "instance norm outputs a constant: lower generator.depth")

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return torch.tanh(self.logits(x, c))

    def logits(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """The output before tanh (a face parser's per-label logits)."""
        self._check(x)
        h = with_conditions(x, c, self.cond_channels)
        skips = []
        for level in self.down:
            h = level(h)
            skips.append(h)
        h = self.middle(skips.pop())
        for up in reversed(self.up):
            h = torch.cat([up(h), skips.pop()], dim=1)
        return self.out(h)


@GENERATORS.register("unet", UNetConfig, capabilities=(Capability.IMAGE_ONLY, Capability.CONDITIONS))
def build_unet(cfg: UNetConfig, cond_channels: int = 0) -> nn.Module:
    """A :class:`UNet`, or with ``stages: 2`` a :class:`TwoStage` of two (the first condition map must
    then be the hole mask)."""
    check_int("cond_channels", cond_channels, 0)
    if cfg.stages == 1:
        return UNet(cfg, cond_channels)
    if cond_channels < 1:
        raise ConfigError("generator.stages: 2 needs the hole mask as the first condition map "
                          "(cond_channels >= 1), got cond_channels 0")
    return TwoStage(UNet(cfg, cond_channels), UNet(cfg, cond_channels, in_channels=6))
