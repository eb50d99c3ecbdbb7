"""Coarse-to-fine inpainting with two generators (FD-StackGAN's Base-Net / Refine-Net, seed 004; seed
001's coarse and refine nets reuse it).

Stage I maps the input ``x`` (+ conditions ``c``) to a first image ``y1``; the known pixels of ``x`` are
pasted back into it (``k1``); stage II sees the stage-I input and that result concatenated,
``cat([x, k1])`` (FD-StackGAN Section 3.4: "we feed I_o (Stage-I input) again with I_o^i (Stage-I
output) as a concatenated input"), so it has 3 more input channels than stage I, and the same ``c``.
"""

from __future__ import annotations

import torch
from torch import nn


def paste_known(x: torch.Tensor, y: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """``x * (1 - hole) + y * hole`` computed as ``lerp(x, y, hole)``: exactly ``x`` (bit for bit)
    where ``hole`` is 0, exactly ``y`` where it is 1, a blend for a soft mask in between."""
    return torch.lerp(x, y, hole.to(y.dtype).expand_as(y))


class TwoStage(nn.Module):
    """Two generators in sequence; ``c[:, :1]`` is the hole mask (1 = hole, 0 = known pixel).

    ``stage1(x, c)`` and ``stage2(cat([x, k1], 1), c)`` each return an image like ``x``;
    :meth:`forward` returns the composite of stage II's output with the known pixels of ``x``, while
    :meth:`forward_stages` returns every stage's raw output for per-stage losses.
    """

    n_stages = 2

    def __init__(self, stage1: nn.Module, stage2: nn.Module):
        super().__init__()
        self.stage1 = stage1
        self.stage2 = stage2

    @staticmethod
    def _hole(x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        if c is None or c.dim() != 4 or c.shape[1] < 1 or c.shape[0] != x.shape[0] \
                or c.shape[2:] != x.shape[2:]:
            got = None if c is None else tuple(c.shape)
            raise ValueError(f"a two-stage generator needs conditions c of shape (B, k >= 1, H, W) whose "
                             f"first map is the hole mask, matching x {tuple(x.shape)}; got {got}")
        return c[:, :1]

    def forward_stages(self, x: torch.Tensor, c: torch.Tensor) -> list[torch.Tensor]:
        """``[y1, y2]``: the raw (not pasted) output of each stage."""
        hole = self._hole(x, c)
        y1 = self.stage1(x, c)
        k1 = paste_known(x, y1, hole)
        y2 = self.stage2(torch.cat([x, k1], dim=1), c)
        return [y1, y2]

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """The composite ``x * (1 - m) + y2 * m``: known pixels are exactly those of ``x``."""
        y2 = self.forward_stages(x, c)[-1]
        return paste_known(x, y2, self._hole(x, c))
