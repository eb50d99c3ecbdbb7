"""The DCGAN discriminator (Radford et al. 2016), seed 002's cGAN critic: family ``dcgan``.

k4 s2 p1 convs whose width doubles from ``base_channels``, BatchNorm on every one but the first,
LeakyReLU 0.2; a last conv whose kernel covers the whole remaining map (4x4 when ``n_layers`` is
None: DCGAN's final 4x4 conv) gives one logit per image. No sigmoid: the ``minimax`` adversarial
loss is BCE on logits. Weights N(0, 0.02), BatchNorm weights N(1, 0.02), biases 0 (DCGAN Section 4).
It only runs at ``image_size`` (one logit per image); it has no classification head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from unmask.errors import ConfigError
from unmask.models.choices import check_int
from unmask.models.discriminators import check_depth
from unmask.models.registry import DISCRIMINATORS

INIT_STD = 0.02

__all__ = ["DCGANConfig", "DCGANDiscriminator", "INIT_STD"]


@dataclass
class DCGANConfig:
    """DCGAN discriminator choices; checked on construction (ConfigError naming ``discriminator.<key>``)."""

    name: str = "dcgan"
    image_size: int = 64
    base_channels: int = 64
    n_layers: int | None = None      # stride-2 convs; None: down to a 4x4 map (log2(image_size) - 2)

    def __post_init__(self) -> None:
        check_int("discriminator.image_size", self.image_size, 16)
        check_int("discriminator.base_channels", self.base_channels, 1)
        check_depth(self.image_size, self.n_layers, self.depth)

    @property
    def depth(self) -> int:
        """Stride-2 convs built."""
        return self.n_layers if self.n_layers is not None else int(math.log2(self.image_size)) - 2

    @property
    def final_size(self) -> int:
        """Side of the last feature map, the kernel of the logit conv (4 when ``n_layers`` is None)."""
        return self.image_size // 2 ** self.depth


@DISCRIMINATORS.register("dcgan", DCGANConfig)
class DCGANDiscriminator(nn.Module):
    """``forward(x)`` -> ``(logits (B, 1, 1, 1), None)`` for x (B, 3, image_size, image_size)."""

    def __init__(self, cfg: DCGANConfig, n_classes: int = 0):
        super().__init__()
        if n_classes:
            raise ConfigError(f"discriminator.name: dcgan has no classification head "
                              f"(n_classes must be 0, got {n_classes})")
        self.cfg = cfg
        layers: list[nn.Module] = []
        ch = 3
        for i in range(cfg.depth):
            out = cfg.base_channels * 2 ** i
            layers.append(nn.Conv2d(ch, out, 4, stride=2, padding=1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            ch = out
        self.features = nn.Sequential(*layers)
        self.logit = nn.Conv2d(ch, 1, cfg.final_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """DCGAN init: conv weights N(0, 0.02), BatchNorm weights N(1, 0.02), all biases 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, INIT_STD)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, INIT_STD)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        size = self.cfg.image_size
        if x.shape[-2:] != (size, size):
            raise ValueError(f"DCGAN discriminator built for {size}x{size} images, got "
                             f"{tuple(x.shape[-2:])}: set train.image_size")
        return self.logit(self.features(x)), None
