"""VGG-19 perceptual loss (seed 004 eq. 6, seed 001's L_P) from local ImageNet weights only.

``L_p = sum_i w_i * mean |phi_i(pred) - phi_i(target)|`` where ``phi_i`` are activations of torchvision's
VGG-19 ``features`` at the chosen layers (default relu1_1, relu2_1, relu3_1, relu4_1, relu5_1, w_i = 1).
Neither seed names its layers (FD-StackGAN writes ``sum_i ||phi_i(I_o) - phi_i(I_gt)||``, seed 001 only
"VGG-19"); the first ReLU of each of the five blocks is the usual choice for a multi-scale perceptual
loss (Gatys et al.; pix2pixHD, DeepFill-style inpainting losses) and covers low-level to semantic
features. Each layer's term is a mean over its elements, so layers of different sizes weigh alike.

Inputs are generator images in [-1, 1]; they are mapped to [0, 1] and normalised with ImageNet's
mean/std, as torchvision's checkpoint expects. The network is built here with torchvision's module
indices (``features.<i>``), truncated after the deepest layer requested, so only ``features.<i>`` up to
that layer are read from the checkpoint (relu3_1 needs ``features.0``..``features.10``: 0.56 M
parameters, 2.2 MB; relu5_1 needs ``features.0``..``features.28``: 12.9 M parameters). Weights are
frozen (eval mode, no grad).

:func:`load_vgg19` never downloads: it reads torchvision's ``vgg19-dcbb9e9d.pth`` from the configured
folder, else from ``torch.hub.get_dir()/checkpoints``, with ``torch.load(weights_only=True)``; a missing,
unreadable or non-VGG-19 file gives a :class:`LossUnavailable` with a one-line reason, and a
configuration that needs the loss is reported ``not run: <reason>``. Never random weights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unmask.errors import ConfigError, UnmaskError

VGG19_FILE = "vgg19-dcbb9e9d.pth"   # torchvision's ImageNet VGG-19 (no batch norm) checkpoint
DEFAULT_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's VGG-19 ``features`` (configuration "E"): conv widths per block, max-pool after each block
_BLOCKS = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512))


def _layer_table() -> tuple[dict[str, int], list[tuple[str, int, int]]]:
    """(layer name -> index in ``features``, [(kind, in_ch, out_ch) per index])."""
    names: dict[str, int] = {}
    spec: list[tuple[str, int, int]] = []
    c_in = 3
    for b, widths in enumerate(_BLOCKS, 1):
        for j, c_out in enumerate(widths, 1):
            names[f"conv{b}_{j}"] = len(spec)
            spec.append(("conv", c_in, c_out))
            names[f"relu{b}_{j}"] = len(spec)
            spec.append(("relu", c_out, c_out))
            c_in = c_out
        names[f"pool{b}"] = len(spec)
        spec.append(("pool", c_in, c_in))
    return names, spec


VGG19_LAYERS, _SPEC = _layer_table()   # e.g. VGG19_LAYERS["relu3_1"] == 11


def vgg19_features(upto: int) -> nn.Sequential:
    """torchvision-compatible VGG-19 ``features[:upto + 1]`` (same indices, so same state-dict keys)."""
    layers: list[nn.Module] = []
    for kind, c_in, c_out in _SPEC[:upto + 1]:
        layers.append(nn.Conv2d(c_in, c_out, 3, padding=1) if kind == "conv"
                      else nn.ReLU(inplace=False) if kind == "relu" else nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


def _check_layers(layers: Sequence[str],
                  weights: Optional[Sequence[float]]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    layers = tuple(layers)
    if not layers:
        raise ConfigError("perceptual.layers: name at least one VGG-19 layer")
    bad = [n for n in layers if n not in VGG19_LAYERS]
    if bad:
        raise ConfigError(f"perceptual.layers: unknown VGG-19 layer {bad[0]!r} (valid: conv<b>_<j>, relu<b>_<j>, "
                          f"pool<b>, e.g. {', '.join(DEFAULT_LAYERS)})")
    w = tuple(float(x) for x in weights) if weights is not None else (1.0,) * len(layers)
    if len(w) != len(layers):
        raise ConfigError(f"perceptual.weights: {len(w)} weights for {len(layers)} layers")
    return layers, w


@dataclass(frozen=True)
class LossUnavailable:
    """A loss that cannot be computed here (its weights are missing or unusable); ``reason`` says why
    in one line. A configuration that needs it is reported :attr:`note` (``not run: <reason>``)."""

    name: str
    reason: str

    @property
    def note(self) -> str:
        return f"not run: {self.reason}"

    def __str__(self) -> str:
        return f"{self.name}: {self.note}"


class VGGPerceptual(nn.Module):
    """Frozen VGG-19 perceptual loss between images in [-1, 1]; ``forward(pred, target)`` -> scalar.

    Gradients flow to ``pred``; ``target`` features are computed without grad. The module follows
    ``pred``'s device. Images must be at least ``2 ** pools`` px on the shorter side, ``pools`` being the
    number of max-pools before the deepest layer (16 px for relu5_1).
    """

    def __init__(self, features: nn.Sequential, layers: Sequence[str] = DEFAULT_LAYERS,
                 weights: Optional[Sequence[float]] = None):
        super().__init__()
        self.layers, self.layer_weights = _check_layers(layers, weights)
        self.indices = tuple(VGG19_LAYERS[n] for n in self.layers)
        if len(features) <= max(self.indices):
            raise UnmaskError(f"VGGPerceptual: features have {len(features)} modules, layer "
                              f"{self.layers[self.indices.index(max(self.indices))]} needs {max(self.indices) + 1}")
        self.features = features[:max(self.indices) + 1]
        self.min_side = 2 ** sum(1 for kind, _, _ in _SPEC[:max(self.indices)] if kind == "pool")
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGGPerceptual":
        return super().train(False)   # always eval: a trainer's .train() must not change it

    def _taps(self, x: Tensor) -> list[Tensor]:
        x = ((x.float() + 1) / 2 - self.mean) / self.std
        wanted, out = set(self.indices), {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in wanted:
                out[i] = x
        return [out[i] for i in self.indices]

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if pred.dim() != 4 or pred.shape[1] != 3 or pred.shape != target.shape:
            raise UnmaskError(f"perceptual loss: need pred and target of shape (B, 3, H, W), got "
                              f"{tuple(pred.shape)} and {tuple(target.shape)}")
        if min(pred.shape[-2:]) < self.min_side:
            raise UnmaskError(f"perceptual loss: images of {tuple(pred.shape[-2:])} px are too small for "
                              f"{self.layers[-1]} (need >= {self.min_side} px)")
        if self.mean.device != pred.device:
            self.to(pred.device)
        with torch.no_grad():
            t_feats = self._taps(target)
        p_feats = self._taps(pred)
        return sum(w * F.l1_loss(p, t) for w, p, t in zip(self.layer_weights, p_feats, t_feats))


def _search_dirs(weights_dir: Optional[str]) -> list[Path]:
    return [Path(weights_dir)] if weights_dir else [Path(torch.hub.get_dir()) / "checkpoints"]


def _find(dirs: list[Path]) -> Optional[Path]:
    for d in dirs:
        if (d / VGG19_FILE).is_file():
            return d / VGG19_FILE
    for d in dirs:   # another torchvision VGG-19 checkpoint (different hash suffix; not vgg19_bn-*)
        found = sorted(d.glob("vgg19-*.pth")) if d.is_dir() else []
        if found:
            return found[0]
    return None


def load_error_line(e: BaseException) -> str:
    """A one-line summary of why ``torch.load`` failed (its weights_only errors span many lines)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    if "WeightsUnpickler error:" in text:   # keep the cause, drop torch's advice around it
        cause = text.split("WeightsUnpickler error:", 1)[1].strip().split("\n", 1)[0]
        return f"not loadable with weights_only=True: {cause.split('. Please use', 1)[0].strip()[:160]}"
    text = (text.strip().splitlines() or [""])[0].strip()
    if isinstance(e, EOFError) and not text:
        return "EOFError: empty or truncated file"
    return f"{type(e).__name__}: {text[:160]}" if text else type(e).__name__


def _read_state(path: Path) -> dict | str:
    """The file's state dict, or a one-line reason why it cannot be used."""
    try:   # mmap: only the tensors we copy are read from the 550 MB file
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - legacy (non-zip) format, or a bad file: the plain load says which
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable file gives the same one-line reason
            return f"VGG-19 weights unreadable ({path}: {load_error_line(e)})"
    if not isinstance(state, dict):
        return f"VGG-19 weights unusable ({path}: not a state dict but {type(state).__name__})"
    return state


def load_vgg19(weights_dir: Optional[str] = None, layers: Sequence[str] = DEFAULT_LAYERS,
               weights: Optional[Sequence[float]] = None) -> VGGPerceptual | LossUnavailable:
    """The VGG-19 perceptual loss from local weights, or :class:`LossUnavailable` saying why not.

    Looks for ``vgg19-dcbb9e9d.pth`` (else another ``vgg19-*.pth``) in ``weights_dir`` when given, else
    in ``torch.hub.get_dir()/checkpoints``. Only the ``features.<i>`` tensors up to the deepest of
    ``layers`` are needed (a full torchvision checkpoint has more; the rest is ignored); each is checked
    against the network's key and shape. Bad ``layers``/``weights`` raise ConfigError.
    """
    layers, weights = _check_layers(layers, weights)
    dirs = _search_dirs(weights_dir)
    path = _find(dirs)
    if path is None:
        return LossUnavailable("vgg19_perceptual", f"VGG-19 weights missing (looked for {VGG19_FILE} in "
                                                   f"{', '.join(map(str, dirs))}; no internet to fetch it)")
    state = _read_state(path)
    if isinstance(state, str):
        return LossUnavailable("vgg19_perceptual", state)
    features = vgg19_features(max(VGG19_LAYERS[n] for n in layers))
    wanted = {}
    for key, param in features.state_dict().items():
        src = f"features.{key}"
        t = state.get(src)
        if not isinstance(t, Tensor):
            return LossUnavailable("vgg19_perceptual", f"VGG-19 weights unusable ({path}: no tensor {src}; "
                                                       f"not a torchvision VGG-19 checkpoint)")
        if t.shape != param.shape or not t.is_floating_point():
            return LossUnavailable("vgg19_perceptual", f"VGG-19 weights unusable ({path}: {src} is "
                                                       f"{t.dtype} {tuple(t.shape)}, expected {tuple(param.shape)})")
        if not torch.isfinite(t).all():
            return LossUnavailable("vgg19_perceptual", f"VGG-19 weights unusable ({path}: {src} has non-finite values)")
        wanted[key] = t.float()
    features.load_state_dict(wanted)
    return VGGPerceptual(features, layers, weights)
