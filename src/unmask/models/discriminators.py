"""Discriminators / critics of seed 000 (Section 4.7): StarGAN critic, PatchGAN 70x70, RED.

Every discriminator returns ``(src_logits (B,1,h,w), cls_logits (B,n_classes) or None)``; with
``n_classes`` > 0 a classification head (a conv whose kernel covers the whole last feature map,
StarGAN's Dcls) sits beside the source head.

Depth (``n_layers``) counts the stride-2 convs: StarGAN 6, RED 6, PatchGAN 3 in the paper. At
small image sizes the paper depth does not fit (six halvings of 32 px leave nothing), so
``n_layers=None`` means ``min(paper depth, log2(image_size) - 2)``: the last stride-2 conv still
leaves a 4x4 map, as at 256 px with 6 layers. An explicit ``n_layers`` must respect the same cap.
Widths start at ``base_channels`` and double per layer (StarGAN: 64 .. 2048 at base 64; PatchGAN
caps at 8x base as in pix2pix; RED follows PEPSI++: 1, 2, 4, 4, 4 x base, last layer 8x base).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from unmask.errors import ConfigError
from unmask.models.choices import check_choice, check_int

PAPER_DEPTH = {"stargan": 6, "patchgan": 3, "red": 6}


def check_depth(image_size: int, n_layers: int | None, depth: int) -> None:
    """A discriminator's stride-2 depth fits its image: an explicit ``n_layers`` leaves at least a 4 px
    map, and ``image_size`` divides by ``2**depth``; ConfigError naming the key otherwise."""
    cap = int(math.log2(image_size)) - 2
    if n_layers is not None:
        check_int("discriminator.n_layers", n_layers, 1)
        if n_layers > cap:
            raise ConfigError(f"discriminator.n_layers: {n_layers} halvings of {image_size} px leave "
                              f"less than 4 px; at most {cap}")
    if image_size % 2 ** depth:
        raise ConfigError(f"discriminator.image_size: {image_size} is not divisible by 2**{depth} "
                          "(the number of stride-2 layers)")


@dataclass
class DiscriminatorConfig:
    """Discriminator choices; checked on construction (ConfigError naming ``discriminator.<key>``)."""

    name: str = "stargan"
    image_size: int = 256
    base_channels: int = 64
    n_layers: int | None = None
    n_classes: int = 0

    def __post_init__(self) -> None:
        check_choice("discriminator.name", self.name, PAPER_DEPTH)
        check_int("discriminator.image_size", self.image_size, 16)
        check_int("discriminator.base_channels", self.base_channels, 1)
        check_int("discriminator.n_classes", self.n_classes, 0)
        check_depth(self.image_size, self.n_layers, self.depth)

    @property
    def depth(self) -> int:
        """Stride-2 layers actually built: ``n_layers`` or the paper depth capped to the image."""
        if self.n_layers is not None:
            return self.n_layers
        return min(PAPER_DEPTH[self.name], int(math.log2(self.image_size)) - 2)


class Discriminator(nn.Module):
    """Shared head logic: ``features`` -> (``src`` head, optional whole-map ``cls`` head)."""

    def __init__(self, cfg: DiscriminatorConfig, features: nn.Sequential, src: nn.Module,
                 feat_ch: int, feat_size: int):
        super().__init__()
        self.cfg = cfg
        self.features = features
        self.src = src
        self.cls = (nn.Conv2d(feat_ch, cfg.n_classes, feat_size, bias=False)
                    if cfg.n_classes else None)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.features(x)
        cls = self.cls(h).flatten(1) if self.cls is not None else None
        return self.src(h), cls


class StarGANDiscriminator(Discriminator):
    """Table 2: k4 s2 p1 convs (width doubling), LeakyReLU 0.01, no norm; Dsrc k3 s1 p1 -> 1;
    Dcls kernel image_size / 2**depth -> n_classes. Receptive field 318 at depth 6."""

    def __init__(self, cfg: DiscriminatorConfig):
        layers: list[nn.Module] = []
        ch = 3
        for i in range(cfg.depth):
            layers += [nn.Conv2d(ch, cfg.base_channels * 2 ** i, 4, stride=2, padding=1),
                       nn.LeakyReLU(0.01, inplace=True)]
            ch = cfg.base_channels * 2 ** i
        super().__init__(cfg, nn.Sequential(*layers), nn.Conv2d(ch, 1, 3, padding=1),
                         ch, cfg.image_size // 2 ** cfg.depth)


class PatchGANDiscriminator(Discriminator):
    """Table 6 (pix2pix 70x70): k4 s2 convs (first without norm, the rest BN), one k4 s1 conv with
    BN, LeakyReLU 0.2, then a k4 s1 conv -> 1. Receptive field 70 at depth 3."""

    def __init__(self, cfg: DiscriminatorConfig):
        base = cfg.base_channels
        layers: list[nn.Module] = [nn.Conv2d(3, base, 4, stride=2, padding=1),
                                   nn.LeakyReLU(0.2, inplace=True)]
        ch = base
        for i in range(1, cfg.depth + 1):
            out = base * min(2 ** i, 8)
            stride = 2 if i < cfg.depth else 1
            layers += [nn.Conv2d(ch, out, 4, stride=stride, padding=1, bias=False),
                       nn.BatchNorm2d(out), nn.LeakyReLU(0.2, inplace=True)]
            ch = out
        feat_size = cfg.image_size // 2 ** cfg.depth - 1  # the k4 s1 p1 conv shrinks the map by 1
        super().__init__(cfg, nn.Sequential(*layers), nn.Conv2d(ch, 1, 4, padding=1), ch, feat_size)


class PerPositionLinear(nn.Module):
    """RED's last layer: a separate fully connected layer (C -> 1, with bias) at every position of an
    (h, w) map, i.e. a 1x1 conv whose kernel differs per pixel."""

    def __init__(self, ch: int, size: int):
        super().__init__()
        bound = 1.0 / math.sqrt(ch)
        self.weight = nn.Parameter(torch.empty(ch, size, size).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(1, size, size).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1:] != self.weight.shape:
            raise ValueError(f"RED expects features of shape {tuple(self.weight.shape)}, got "
                             f"{tuple(x.shape[1:])}: the input image size differs from image_size")
        return (x * self.weight).sum(dim=1, keepdim=True) + self.bias


class REDDiscriminator(Discriminator):
    """Region Ensemble Discriminator (PEPSI++): spectral-norm k5 s2 p2 convs, LeakyReLU 0.2, then a
    per-position fully connected layer. Only runs at ``image_size``. Receptive field 253 at depth 6."""

    def __init__(self, cfg: DiscriminatorConfig):
        base = cfg.base_channels
        widths = [base * min(2 ** i, 4) for i in range(cfg.depth - 1)] + [base * 8]
        layers: list[nn.Module] = []
        ch = 3
        for out in widths:
            layers += [spectral_norm(nn.Conv2d(ch, out, 5, stride=2, padding=2)),
                       nn.LeakyReLU(0.2, inplace=True)]
            ch = out
        size = cfg.image_size // 2 ** cfg.depth
        super().__init__(cfg, nn.Sequential(*layers), PerPositionLinear(ch, size), ch, size)


DISCRIMINATORS: dict[str, type[Discriminator]] = {
    "stargan": StarGANDiscriminator,
    "patchgan": PatchGANDiscriminator,
    "red": REDDiscriminator,
}
"""Discriminator name (``DiscriminatorConfig.name``) -> class."""
