"""Convolution kinds (``CONVS``) and the norm / activation factories the U-Net family builds from.

A conv kind is a class registered in ``CONVS`` and built by :func:`make_conv` with ``nn.Conv2d``'s
arguments; params.yaml names it (``generator: {name: unet, conv: gated}``). Class attributes tell a
network how to wire it:

* ``needs_mask``: ``forward(x, known)`` takes the map of known pixels and returns ``(y, known')``
  (seed 001's imputed convolution, DeepPrivacy; mask convention 1 = known there). False for ``plain``
  and ``gated``, whose ``forward(x)`` returns ``y``. A network that does not thread a mask through
  its layers must reject such a kind (the U-Net does, in its config).
* ``fuses_activation``: the conv applies the layer's activation itself (the ``activation``
  argument of :func:`make_conv`), so the caller must not apply it again (:func:`conv_norm_act`).
* ``supports_transpose``: it can also be built as a transposed (up-sampling) conv.

Kinds:

* ``plain``: ``nn.Conv2d`` (``nn.ConvTranspose2d`` with ``transpose=True``).
* ``imputed`` (:class:`ImputedConv`): needs the mask; see its docstring.
* ``gated`` (DeepFill v2, Yu et al. 2019): one conv with ``2 * out_ch`` outputs split into features
  ``f`` (the first ``out_ch`` channels) and gate ``g`` (the rest); ``y = phi(f) * sigmoid(g)`` where
  ``phi`` is the ``activation`` (identity when None, so the bare conv is ``f * sigmoid(g)``).
  DeepFill v2 uses ELU / LeakyReLU for ``phi`` and no normalisation. For ReLU and LeakyReLU,
  ``phi(f) * s == phi(f * s)`` for any s > 0, so applying the activation inside or after the gate is
  the same function; for SiLU / ELU it is not, hence the activation is fused here.
"""

from __future__ import annotations

import torch
from torch import nn

from unmask.models.blocks import instance_norm
from unmask.models.choices import check_choice
from unmask.registry import Registry

CONVS: Registry = Registry("conv", default="plain")
"""Conv kind name -> class ``(in_ch, out_ch, kernel, stride, padding, dilation, bias, ...)``."""

NORMS = ("none", "batch", "instance")
ACTIVATIONS = ("relu", "swish", "leaky_relu")
LEAKY_SLOPE = 0.2
"""Slope of ``leaky_relu`` (pix2pix, DCGAN, seed 002's encoder)."""

__all__ = ["ACTIVATIONS", "CONVS", "NORMS", "GatedConv", "ImputedConv", "PlainConv", "conv_norm_act", "make_act",
           "make_conv", "make_norm"]


@CONVS.register("plain")
class PlainConv(nn.Conv2d):
    """``nn.Conv2d`` (the factory builds ``nn.ConvTranspose2d`` for ``transpose=True``)."""

    needs_mask = False
    fuses_activation = False
    supports_transpose = True


@CONVS.register("gated")
class GatedConv(nn.Module):
    """Gated convolution: ``phi(f) * sigmoid(g)`` with ``(f, g) = conv(x).chunk(2, dim=1)``.

    ``self.conv`` is the one conv with ``2 * out_ch`` outputs (a transposed conv with ``transpose``);
    ``activation`` is ``phi`` (None: identity). No normalisation inside (DeepFill v2 uses none).
    """

    needs_mask = False
    fuses_activation = True
    supports_transpose = True

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, bias: bool = True, *, transpose: bool = False,
                 activation: nn.Module | None = None):
        super().__init__()
        conv = nn.ConvTranspose2d if transpose else nn.Conv2d
        self.conv = conv(in_ch, 2 * out_ch, kernel, stride=stride, padding=padding, dilation=dilation,
                         bias=bias)
        self.activation = activation if activation is not None else nn.Identity()
        self.out_channels = out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, gate = self.conv(x).chunk(2, dim=1)
        return self.activation(features) * torch.sigmoid(gate)


@CONVS.register("imputed")
class ImputedConv(nn.Module):
    """Imputed convolution (DeepPrivacy, Hukkelaas et al. 2020; seed 001). Mask convention: ``known`` is
    1 on known pixels (the opposite of the hole mask).

    * estimate of the unknown pixels from their known neighbours:
      ``E = depthwise_conv(x * m) / (avg_k(m) + eps)``, the depthwise kernel learnable and initialised
      to the window average ``1 / k^2`` (so E starts as the mean of the known pixels in the window);
    * input ``x * m + E * (1 - m)``, then the ordinary conv (any stride);
    * certainty update ``m' = clamp((sigmoid(conv_ones(m)) - 0.5) * 2, 0, 1)``, ``conv_ones`` a
      learnable one-channel conv with the layer's kernel, stride and dilation, initialised to ones.

    The extra parameters are ``in_ch * k^2 + k^2`` against the conv's ``in_ch * out_ch * k^2``: about
    ``1 / out_ch`` more (2 % at 64 channels), where a gated conv doubles them.
    """

    needs_mask = True
    fuses_activation = False
    supports_transpose = False
    EPS = 1e-6

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, bias: bool = True):
        super().__init__()
        same = dilation * (kernel - 1) // 2
        self.impute = nn.Conv2d(in_ch, in_ch, kernel, padding=same, dilation=dilation, groups=in_ch, bias=False)
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=padding, dilation=dilation, bias=bias)
        self.certainty = nn.Conv2d(1, 1, kernel, stride=stride, padding=padding, dilation=dilation, bias=False)
        self.register_buffer("window", torch.full((1, 1, kernel, kernel), 1.0 / kernel ** 2), persistent=False)
        self.same, self.dilation = same, dilation
        with torch.no_grad():
            self.impute.weight.fill_(1.0 / kernel ** 2)
            self.certainty.weight.fill_(1.0)
        self.out_channels = out_ch

    def estimate(self, x: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """The input with unknown pixels replaced by the estimate from their known neighbours."""
        avg = nn.functional.conv2d(known, self.window, padding=self.same, dilation=self.dilation)
        est = self.impute(x * known) / (avg + self.EPS)
        return x * known + est * (1 - known)

    def forward(self, x: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.conv(self.estimate(x, known))
        new = ((torch.sigmoid(self.certainty(known)) - 0.5) * 2).clamp(0.0, 1.0)
        return y, new


def make_conv(kind: str, in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int = 0,
              dilation: int = 1, bias: bool = True, *, transpose: bool = False,
              activation: nn.Module | None = None, key: str = "conv") -> nn.Module:
    """A conv of kind ``kind`` (a ``CONVS`` name; unknown: ConfigError naming ``key``).

    ``transpose`` builds the up-sampling (transposed) variant; ``activation`` is only accepted by kinds
    that fuse it (``fuses_activation``), others raise TypeError: apply it after the conv instead.
    """
    cls = CONVS.get(kind, key)
    if transpose and not cls.supports_transpose:
        raise ValueError(f"{key}: conv kind {kind!r} has no transposed variant")
    if activation is not None and not cls.fuses_activation:
        raise TypeError(f"conv kind {kind!r} does not take an activation; apply it after the conv")
    if cls is PlainConv:
        if transpose:
            return nn.ConvTranspose2d(in_ch, out_ch, kernel, stride=stride, padding=padding,
                                      dilation=dilation, bias=bias)
        return PlainConv(in_ch, out_ch, kernel, stride=stride, padding=padding, dilation=dilation,
                         bias=bias)
    kwargs = {}
    if transpose:
        kwargs["transpose"] = True
    if activation is not None:
        kwargs["activation"] = activation
    return cls(in_ch, out_ch, kernel, stride, padding, dilation, bias, **kwargs)


def make_norm(kind: str, ch: int, key: str = "norm") -> nn.Module:
    """``none`` (identity), ``batch`` (BatchNorm2d) or ``instance`` (the project's affine
    InstanceNorm, :func:`unmask.models.blocks.instance_norm`) over ``ch`` channels."""
    check_choice(key, kind, NORMS)
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "instance":
        return instance_norm(ch)
    return nn.Identity()


def make_act(kind: str, key: str = "act") -> nn.Module:
    """``relu``, ``swish`` (SiLU, x * sigmoid(x)) or ``leaky_relu`` (slope :data:`LEAKY_SLOPE`)."""
    check_choice(key, kind, ACTIVATIONS)
    if kind == "relu":
        return nn.ReLU()
    if kind == "swish":
        return nn.SiLU()
    return nn.LeakyReLU(LEAKY_SLOPE)


def conv_norm_act(kind: str, in_ch: int, out_ch: int, kernel: int, stride: int = 1,
                  padding: int = 0, dilation: int = 1, *, norm: str = "none", act: str | None = None,
                  transpose: bool = False) -> nn.Sequential:
    """One layer: conv, norm, activation (``act`` None: none).

    A plain conv has a bias only without a norm (a norm's mean subtraction cancels it). With a kind that
    fuses the activation (``gated``) the activation goes into the conv (``phi(f) * sigmoid(g)``, as
    DeepFill v2) and the norm, if any, follows the gated output: the layer never activates twice.
    """
    cls = CONVS.get(kind, "conv")
    if cls.needs_mask:
        raise ValueError(f"conv kind {kind!r} needs the mask threaded through the network; "
                         "conv_norm_act builds mask-free layers")
    check_choice("norm", norm, NORMS)
    # a norm cancels a plain conv's bias; a gated conv keeps it (it acts before the gate's sigmoid)
    bias = norm == "none" or cls.fuses_activation
    activation = make_act(act) if act is not None else None
    if cls.fuses_activation:
        layers = [make_conv(kind, in_ch, out_ch, kernel, stride, padding, dilation, bias,
                            transpose=transpose, activation=activation)]
        activation = None
    else:
        layers = [make_conv(kind, in_ch, out_ch, kernel, stride, padding, dilation, bias,
                            transpose=transpose)]
    if norm != "none":
        layers.append(make_norm(norm, out_ch))
    if activation is not None:
        layers.append(activation)
    return nn.Sequential(*layers)
