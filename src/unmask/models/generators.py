"""The generator of seed 000: encoder, middle blocks, decoder, and one of four output approaches.

Approaches (Section 4.5), all returning an image in [-1, 1]:

* ``normal``: tanh of the output conv.
* ``residual`` (ResGAN): the output conv gives a residual r; out = clamp(x + r, -1, 1). The clamp is
  straight-through (forward clamps exactly, backward passes the gradient as if unclamped), so a
  saturated pixel still tells r which way to move; r = 0 reproduces x exactly.
* ``mask``: the output conv is duplicated into a 1-channel sigmoid head m (one fused conv with 4
  output channels: identical maths, one op); out = m * tanh(G) + (1 - m) * x.
* ``binary_mask``: as ``mask`` with m rounded to {0, 1}; the rounding is straight-through (its
  gradient is taken as 1) so the mask head still learns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from unmask.models.blocks import BLOCKS
from unmask.errors import ConfigError
from unmask.models.choices import check_choice, check_int
from unmask.models.encoders import (
    DOWNSAMPLINGS,
    LAYOUTS,
    build_decoder,
    build_encoder,
    build_output_conv,
)

APPROACHES = ("normal", "residual", "mask", "binary_mask")
MASK_APPROACHES = ("mask", "binary_mask")


@dataclass
class GeneratorConfig:
    """Generator choices; names are checked on construction (ConfigError naming ``generator.<key>``).

    Paper scale is the default (64 base channels, 6 blocks); the same class runs small (8-16, 2-3).
    The conditioning channels are not a config key: the trainer builds the generator with
    ``cond_channels`` (StarGAN's one-hot target label tiled over the image, the paired trainer's mask).
    """

    name: str = "stargan"            # the family (unmask.models.GENERATORS)
    approach: str = "normal"
    blocks: str = "resblock"
    encoder: str = "stargan"
    base_channels: int = 64
    n_blocks: int = 6
    mask_init: float | None = None   # mask approaches: initial mean of m (bias of the mask logit); None: torch default (~0.5)

    def __post_init__(self) -> None:
        check_choice("generator.approach", self.approach, APPROACHES)
        check_choice("generator.blocks", self.blocks, BLOCKS)
        check_choice("generator.encoder", self.encoder, LAYOUTS)
        check_int("generator.base_channels", self.base_channels, 1)
        check_int("generator.n_blocks", self.n_blocks, 0)
        m = self.mask_init
        if m is not None and not (isinstance(m, (int, float)) and not isinstance(m, bool) and 0 < m < 1):
            raise ConfigError(f"generator.mask_init: must be null or a number in (0, 1), got {m!r}")


def straight_through(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """Forward value exactly ``hard`` (soft - soft.detach() is exactly 0); the gradient flows to
    ``soft`` as if the output were ``soft``."""
    return hard.detach() + (soft - soft.detach())


class Generator(nn.Module):
    """Image-to-image generator; ``forward(x, c)`` maps (B,3,H,W) in [-1,1] (H, W divisible by 4)
    to an image of the same shape in [-1, 1]."""

    def __init__(self, cfg: GeneratorConfig, cond_channels: int = 0):
        super().__init__()
        check_int("cond_channels", cond_channels, 0)
        self.cfg = cfg
        self.cond_channels = cond_channels
        layout = LAYOUTS[cfg.encoder]
        base = cfg.base_channels
        mid = base * 2 ** DOWNSAMPLINGS
        block = BLOCKS[cfg.blocks]
        self.body = nn.Sequential(
            build_encoder(layout, 3 + cond_channels, base),
            *(block(mid) for _ in range(cfg.n_blocks)),
            build_decoder(layout, base),
        )
        self.head = build_output_conv(layout, base, 4 if cfg.approach in MASK_APPROACHES else 3)
        """Output conv; with a mask approach channel 3 is the mask head's logit."""
        if cfg.approach in MASK_APPROACHES and cfg.mask_init is not None:
            with torch.no_grad():   # m = sigmoid(bias + w * features) starts near mask_init
                self.head.bias[3] = math.log(cfg.mask_init / (1 - cfg.mask_init))

    def _input(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        _, _, h, w = x.shape
        step = 2 ** DOWNSAMPLINGS
        if h % step or w % step:
            raise ValueError(f"generator input sides must be divisible by {step}, got {h}x{w}")
        n = self.cond_channels
        if n == 0:
            if c is not None:
                raise ValueError("generator has cond_channels=0 but was given domain labels c")
            return x
        b = x.shape[0]
        if c is not None and c.shape == (b, n):
            labels = c.to(x.dtype)[:, :, None, None].expand(-1, -1, h, w)  # one-hot domain, tiled
        elif c is not None and c.shape == (b, n, h, w):
            labels = c.to(x.dtype)                                         # spatial maps (a mask)
        else:
            got = None if c is None else tuple(c.shape)
            raise ValueError(f"generator needs domain labels c of shape ({b}, {n}) or condition maps "
                             f"({b}, {n}, {h}, {w}), got {got}")
        return torch.cat([x, labels], dim=1)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None, return_mask: bool = False):
        """Translate ``x``; with ``return_mask`` return ``(image, mask (B,1,H,W) or None)``."""
        y = self.head(self.body(self._input(x, c)))
        mask = None
        approach = self.cfg.approach
        if approach == "normal":
            out = torch.tanh(y)
        elif approach == "residual":
            soft = x + y
            out = straight_through(soft.detach().clamp(-1.0, 1.0), soft)
        else:
            mask = torch.sigmoid(y[:, 3:])
            if approach == "binary_mask":
                mask = straight_through(torch.round(mask.detach()), mask)
            out = torch.lerp(x, torch.tanh(y[:, :3]), mask)  # exact x where m = 0 and exact G where m = 1
        return (out, mask) if return_mask else out
