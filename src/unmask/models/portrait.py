"""The networks of mask-guided portrait editing (seed 003: Gu et al., CVPR 2019, as re-trained by
Panday 2022), each family in the registry of its role:

* ``LOCAL_EMBEDDINGS`` ``local_embedding``: five autoencoders, one per face component
  (:data:`unmask.data.components.COMPONENTS`), each an encoder with a mean and a log-variance head and
  **two** decoders: the image decoder rebuilds the crop (the local loss), the feature decoder gives
  the block the generator is fed (eye and mouth blocks at 1/4 of their window, skin and hair maps of
  the whole image at 1/4);
* ``MASK_GUIDED_GENERATORS`` ``mask_guided``: E_m (the one-hot target map to features at 1/4; or one
  encoder per component, ``mask_encoder: per_component``, the thesis's Section 4.5.2), G_m (a 1x1
  conv, residual blocks, two up-samplings to a feature map at full size), E_b (the target photo's
  background to features) and G_b (fuses both into the image);
* ``CONDITIONAL_DISCRIMINATORS`` ``multiscale``: PatchGANs at ``n_scales`` scales (each half the
  last), conditioned on the one-hot target map; each returns its logits and its last intermediate
  features (Gu et al.'s code matches one layer per scale).

Layer sizes follow Gu et al.'s code, scaled to the side ``S`` (a multiple of 64) and the width
``channels`` (256 at paper scale, 64 by default): the eye window S/8 x 3S/16 encodes to 2 x 3,
the mouth window 5S/16 x 9S/16 to 5 x 9, skin and hair (S x S) to 2 x 2, by stride-2 4x4 convs with
BatchNorm and ReLU; the feature decoders up-sample to the blocks at S/4 (2 x 3, 5 x 9 and S/4 x S/4
at 64 px), the image decoders to the window, ending in a 5x5 conv and tanh. 7x7 convs in E_m and
E_b / G_b as in the code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from unmask.catalog.capabilities import Capability
from unmask.data.components import COMPONENTS, N_LABELS, Component, check_size, window
from unmask.errors import ConfigError
from unmask.models.choices import check_choice, check_int
from unmask.registry import Registry

LOCAL_EMBEDDINGS: Registry = Registry("local embedding", default="local_embedding")
MASK_GUIDED_GENERATORS: Registry = Registry("mask-guided generator", default="mask_guided")
CONDITIONAL_DISCRIMINATORS: Registry = Registry("conditional discriminator", default="multiscale")
MASK_ENCODERS = ("single", "per_component")


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))


def _log2(n: int) -> int:
    k = int(round(math.log2(n)))
    if 2 ** k != n:
        raise ValueError(f"{n} is not a power of two")
    return k


@dataclass
class LocalEmbeddingConfig:
    """The five component autoencoders. ``channels``: the widest encoder layer and the feature blocks'
    channels; ``latent``: the embedding length; ``hidden``: the heads' hidden width."""

    name: str = "local_embedding"
    channels: int = 64
    latent: int = 64
    hidden: int = 128
    image_size: int = 64          # set from train.image_size

    def __post_init__(self) -> None:
        for key in ("channels", "latent", "hidden"):
            check_int(f"local.{key}", getattr(self, key), 4)
        check_size(self.image_size)


class ComponentAutoencoder(nn.Module):
    """One component's encoder (mean and log-variance heads) and its two decoders."""

    def __init__(self, comp: Component, cfg: LocalEmbeddingConfig):
        super().__init__()
        s, c = cfg.image_size, cfg.channels
        self.comp = comp
        self.window = window(comp, s)
        whole = comp.window is None
        n_down = _log2(s // 2) if whole else _log2(s // 16)
        widths = [min(c, max(c // 4, c >> (n_down - 1 - i))) for i in range(n_down)]
        layers, cin = [], 3
        for w in widths:
            layers.append(_down(cin, w))
            cin = w
        self.encoder = nn.Sequential(*layers)
        self.code = (widths[-1], self.window[0] >> n_down, self.window[1] >> n_down)
        flat = math.prod(self.code)
        self.mu = nn.Sequential(nn.Linear(flat, cfg.hidden), nn.ReLU(True), nn.Linear(cfg.hidden, cfg.latent))
        self.logvar = nn.Sequential(nn.Linear(flat, cfg.hidden), nn.ReLU(True), nn.Linear(cfg.hidden, cfg.latent))
        # feature decoder: to the block the generator gets, at 1/4 of the window
        self.block = (self.window[0] // 4, self.window[1] // 4)
        n_feat_up = _log2(self.block[0] // self.code[1])
        self.feature_fc = nn.Linear(cfg.latent, c * self.code[1] * self.code[2])
        self.feature = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(True), *(_up(c, c) for _ in range(n_feat_up)))
        # image decoder: back to the window
        self.image_fc = nn.Linear(cfg.latent, c * self.code[1] * self.code[2])
        ups, cin = [], c
        for w in reversed(widths):
            ups.append(_up(cin, w))
            cin = w
        self.image = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(True), *ups, nn.ReflectionPad2d(2),
                                   nn.Conv2d(cin, 3, 5), nn.Tanh())
        self.channels = c

    def encode(self, crop: Tensor) -> tuple[Tensor, Tensor]:
        h = self.encoder(crop).flatten(1)
        return self.mu(h), self.logvar(h)

    def decode_feature(self, z: Tensor) -> Tensor:
        return self.feature(self.feature_fc(z).view(-1, self.channels, *self.code[1:]))

    def decode_image(self, z: Tensor) -> Tensor:
        return self.image(self.image_fc(z).view(-1, self.channels, *self.code[1:]))


class LocalEmbedding(nn.Module):
    """The five autoencoders by component name (``left_eye``, ``right_eye``, ``skin``, ``hair``, ``mouth``)."""

    def __init__(self, cfg: LocalEmbeddingConfig):
        super().__init__()
        self.cfg = cfg
        self.parts = nn.ModuleDict({c.name: ComponentAutoencoder(c, cfg) for c in COMPONENTS})


LOCAL_EMBEDDINGS.register("local_embedding", LocalEmbeddingConfig)(LocalEmbedding)


def kl_per_face(mu: Tensor, logvar: Tensor) -> Tensor:
    """(B,) KL(N(mu, exp(logvar)) || N(0, I)) of each face, summed over the latent dimensions: 0 exactly
    for the prior (mu 0, logvar 0), positive otherwise."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    """:func:`kl_per_face` summed over the batch too (as the thesis's VAE code)."""
    return kl_per_face(mu, logvar).sum()


@dataclass
class MaskGuidedConfig:
    """E_m, G_m, E_b and G_b. ``base_channels``: the features at 1/4 (E_m's and G_m's); ``n_blocks``:
    G_m's residual blocks (9 in Gu et al.'s code); ``mask_encoder``: ``single`` (one E_m over the
    one-hot map) or ``per_component`` (one per component over its labels, Section 4.5.2)."""

    name: str = "mask_guided"
    base_channels: int = 64
    n_blocks: int = 2
    mask_encoder: str = "single"
    image_size: int = 64          # set from train.image_size

    def __post_init__(self) -> None:
        check_int("generator.base_channels", self.base_channels, 4)
        check_int("generator.n_blocks", self.n_blocks, 0)
        check_choice("generator.mask_encoder", self.mask_encoder, MASK_ENCODERS)
        check_size(self.image_size)
        if self.base_channels % 4:
            raise ConfigError(f"generator.base_channels: must be a multiple of 4, got {self.base_channels}")


def _mask_encoder(cin: int, c: int) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(cin, c // 4, 7, bias=False), nn.BatchNorm2d(c // 4),
                         nn.ReLU(True),
                         nn.Conv2d(c // 4, c // 2, 3, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(True),
                         nn.Conv2d(c // 2, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(True))


class _Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3, bias=False), nn.BatchNorm2d(c),
                                  nn.ReLU(True), nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3, bias=False),
                                  nn.BatchNorm2d(c))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class MaskGuidedGenerator(nn.Module):
    """``forward(target_map, features, target_image)``: the one-hot target map (B, 11, S, S), the five
    placed component features in :data:`COMPONENTS` order (each (B, feature_channels, S/4, S/4): the
    local embedding's width) and the target
    photo (B, 3, S, S) -> the image (B, 3, S, S) in [-1, 1]. Only the target's background (label 0)
    of the photo reaches the output, through E_b."""

    def __init__(self, cfg: MaskGuidedConfig, feature_channels: int = 64):
        super().__init__()
        c = cfg.base_channels
        self.cfg = cfg
        if cfg.mask_encoder == "single":
            self.mask_encoders = nn.ModuleList([_mask_encoder(N_LABELS, c)])
            self.mask_labels = [tuple(range(N_LABELS))]
        else:
            self.mask_encoders = nn.ModuleList([_mask_encoder(len(comp.labels), c) for comp in COMPONENTS])
            self.mask_labels = [comp.labels for comp in COMPONENTS]
        c_in = c * len(self.mask_encoders) + feature_channels * len(COMPONENTS)
        self.g_m = nn.Sequential(nn.Conv2d(c_in, c, 1), *(_Residual(c) for _ in range(cfg.n_blocks)),
                                 _up(c, c // 2), _up(c // 2, c // 4))
        self.e_b = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(3, c // 4, 7, bias=False),
                                 nn.BatchNorm2d(c // 4), nn.ReLU(True))
        self.g_b = nn.Sequential(nn.Conv2d(c // 2, c // 4, 1), nn.ReflectionPad2d(3), nn.Conv2d(c // 4, 3, 7),
                                 nn.Tanh())

    def forward(self, target_map: Tensor, features: list[Tensor], target_image: Tensor) -> Tensor:
        encoded = [enc(target_map[:, list(labels)]) for enc, labels in zip(self.mask_encoders, self.mask_labels)]
        fg = self.g_m(torch.cat([*encoded, *features], 1))
        background = target_map[:, :1]
        bg = self.e_b(target_image) * background
        return self.g_b(torch.cat([fg, bg], 1))


MASK_GUIDED_GENERATORS.register("mask_guided", MaskGuidedConfig)(MaskGuidedGenerator)


@dataclass
class MultiscaleConfig:
    """PatchGANs at ``n_scales`` scales with ``n_layers`` stride-2 convs and width ``base_channels``
    (Gu et al.: 2 scales, 3 layers, 64), BatchNorm, LeakyReLU 0.2."""

    name: str = "multiscale"
    base_channels: int = 16
    n_layers: int = 2
    n_scales: int = 2

    def __post_init__(self) -> None:
        check_int("discriminator.base_channels", self.base_channels, 1)
        check_int("discriminator.n_layers", self.n_layers, 1)
        check_int("discriminator.n_scales", self.n_scales, 1)


class _Patch(nn.Module):
    def __init__(self, cin: int, cfg: MultiscaleConfig):
        super().__init__()
        ndf = cfg.base_channels
        body = [nn.Sequential(nn.Conv2d(cin, ndf, 4, 2, 2), nn.LeakyReLU(0.2, True))]
        ch = ndf
        for i in range(1, cfg.n_layers):
            nxt = ndf * 2 ** i
            body.append(nn.Sequential(nn.Conv2d(ch, nxt, 4, 2, 2, bias=False), nn.BatchNorm2d(nxt),
                                      nn.LeakyReLU(0.2, True)))
            ch = nxt
        nxt = ndf * 2 ** cfg.n_layers
        body.append(nn.Sequential(nn.Conv2d(ch, nxt, 4, 1, 2, bias=False), nn.BatchNorm2d(nxt),
                                  nn.LeakyReLU(0.2, True)))
        self.body = nn.Sequential(*body)
        self.head = nn.Conv2d(nxt, 1, 4, 1, 2)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feat = self.body(x)
        return self.head(feat), feat


class MultiscaleDiscriminator(nn.Module):
    """``forward(image, condition)`` -> per scale (logits, features), full scale first."""

    def __init__(self, cfg: MultiscaleConfig, cond_channels: int = N_LABELS):
        super().__init__()
        self.scales = nn.ModuleList([_Patch(3 + cond_channels, cfg) for _ in range(cfg.n_scales)])
        self.down = nn.AvgPool2d(3, 2, 1, count_include_pad=False)

    def forward(self, image: Tensor, condition: Tensor) -> list[tuple[Tensor, Tensor]]:
        x = torch.cat([condition, image], 1)
        out = []
        for i, d in enumerate(self.scales):
            if i:
                x = self.down(x)
            out.append(d(x))
        return out


CONDITIONAL_DISCRIMINATORS.register("multiscale", MultiscaleConfig, capabilities=(Capability.CONDITIONS,))(
    MultiscaleDiscriminator)
