"""Squeeze-and-Excitation (Hu et al. 2018) and FD-StackGAN's dilated-conv + SE middle block (seed 004).

FD-StackGAN (Section 3.2) puts "a combination of dilated convolution (DC) and Squeeze-and-Excitation
(SE) blocks" between its U-Net encoder and decoder: the dilated conv widens the receptive field at no
extra cost, the SE block re-weights the feature channels. The paper gives no further detail (kernel,
dilation, residual or not); :class:`SEDilatedBlock` is our reading of it, documented there.
"""

from __future__ import annotations

import torch
from torch import nn

from unmask.models.convs import conv_norm_act


class SqueezeExcitation(nn.Module):
    """``x * w`` with channel weights ``w = sigmoid(FC(ReLU(FC(avgpool(x)))))`` in (0, 1).

    The first FC reduces ``ch`` to ``max(1, ch // reduction)`` (SENet's reduction ratio 16), the second
    restores ``ch``; both with bias, as in SENet.
    """

    def __init__(self, ch: int, reduction: int = 16):
        super().__init__()
        if reduction < 1:
            raise ValueError(f"SE reduction must be >= 1, got {reduction}")
        hidden = max(1, ch // reduction)
        self.reduce = nn.Linear(ch, hidden)
        self.expand = nn.Linear(hidden, ch)

    def channel_weights(self, x: torch.Tensor) -> torch.Tensor:
        """The excitation ``w`` (B, C, 1, 1), each in (0, 1)."""
        s = x.mean(dim=(2, 3))                                   # squeeze: global average pool
        w = torch.sigmoid(self.expand(torch.relu(self.reduce(s))))
        return w[:, :, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.channel_weights(x)


class SEDilatedBlock(nn.Module):
    """``x + SE(act(norm(dilated conv3(x))))``: FD-StackGAN's DC + SE middle block, keeping ``ch``.

    A 3x3 conv with ``dilation`` (padding = dilation keeps the size), the norm and activation of the
    network, then SE re-weighting. The residual connection is our choice (the paper does not say): it
    makes a stack of ``n_middle`` blocks start near the identity, so depth in the middle is cheap to try.
    ``conv`` is a :data:`~unmask.models.convs.CONVS` kind.
    """

    def __init__(self, ch: int, dilation: int = 2, reduction: int = 16, norm: str = "instance",
                 act: str = "relu", conv: str = "plain"):
        super().__init__()
        self.body = conv_norm_act(conv, ch, ch, 3, padding=dilation, dilation=dilation, norm=norm, act=act)
        self.se = SqueezeExcitation(ch, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.se(self.body(x))
