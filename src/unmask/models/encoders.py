"""Encoder-decoder layouts around the middle blocks (seed 000, Table 1 and Section 4.8).

Both layouts downsample twice (C -> 2C -> 4C) and upsample twice back to C channels, with
InstanceNorm + ReLU after every conv; the output conv (not built here) maps C channels to the image.

* ``stargan`` (Table 1): k7 s1 p3, k4 s2 p1, k4 s2 p1 | ConvT k4 s2 p1 (x2) | output k7 s1 p3.
* ``dmfn``: "the first layer has a kernel size of 5 and all the others have a size of 3":
  k5 s1 p2, k3 s2 p1, k3 s2 p1 | ConvT k3 s2 p1 output_padding 1 (exactly doubles the size, like
  the k4 ConvT) | output k3 s1 p1.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from unmask.models.blocks import instance_norm


@dataclass(frozen=True)
class Layout:
    """Kernel sizes of an encoder-decoder; paddings keep 'same' (stride 1) or exact halving/doubling."""

    first_kernel: int
    down_kernel: int
    up_kernel: int
    up_output_padding: int
    last_kernel: int


LAYOUTS: dict[str, Layout] = {
    "stargan": Layout(first_kernel=7, down_kernel=4, up_kernel=4, up_output_padding=0, last_kernel=7),
    "dmfn": Layout(first_kernel=5, down_kernel=3, up_kernel=3, up_output_padding=1, last_kernel=3),
}
"""Encoder-decoder name (``GeneratorConfig.encoder``) -> layout."""

DOWNSAMPLINGS = 2
"""Stride-2 convs in the encoder (and ConvTs in the decoder): image sides must divide by 4."""


def _norm_relu(conv: nn.Module, ch: int) -> list[nn.Module]:
    return [conv, instance_norm(ch), nn.ReLU(inplace=True)]


def build_encoder(layout: Layout, in_ch: int, base: int) -> nn.Sequential:
    """in_ch -> base (stride 1) -> 2 base -> 4 base (stride 2 each)."""
    k = layout.first_kernel
    layers = _norm_relu(nn.Conv2d(in_ch, base, k, padding=k // 2, bias=False), base)
    ch = base
    for _ in range(DOWNSAMPLINGS):
        down = nn.Conv2d(ch, 2 * ch, layout.down_kernel, stride=2, padding=1, bias=False)
        layers += _norm_relu(down, 2 * ch)
        ch *= 2
    return nn.Sequential(*layers)


def build_decoder(layout: Layout, base: int) -> nn.Sequential:
    """4 base -> 2 base -> base, each a stride-2 ConvT doubling the size."""
    layers: list[nn.Module] = []
    ch = base * 2 ** DOWNSAMPLINGS
    for _ in range(DOWNSAMPLINGS):
        up = nn.ConvTranspose2d(ch, ch // 2, layout.up_kernel, stride=2, padding=1,
                                output_padding=layout.up_output_padding, bias=False)
        layers += _norm_relu(up, ch // 2)
        ch //= 2
    return nn.Sequential(*layers)


def build_output_conv(layout: Layout, base: int, out_ch: int) -> nn.Conv2d:
    """The last layer: base -> out_ch, stride 1, 'same' padding, with bias (no norm follows)."""
    k = layout.last_kernel
    return nn.Conv2d(base, out_ch, k, padding=k // 2)
