"""LPIPS (Zhang et al. 2018, net='alex') built without ever touching the network.

The ``lpips`` wheel ships its linear-layer weights (``lpips/weights/v0.1/alex.pth``), but its AlexNet
trunk normally comes from torchvision's ImageNet checkpoint, which torchvision would download. We never
let it: the trunk is built randomly initialised and both state dicts are loaded from local files with
``torch.load(weights_only=True)``. Where the AlexNet checkpoint is missing, :func:`load_lpips` returns a
:class:`MetricUnavailable` carrying the reason, so reports show "n/a" instead of a made-up number.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from unmask.errors import UnmaskError

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"   # torchvision's ImageNet AlexNet checkpoint
MIN_SIDE = 32                                # AlexNet's stride-4 conv and two 3x3 max-pools need >= 31 px


@dataclass(frozen=True)
class MetricUnavailable:
    """A metric that cannot be computed here; ``reason`` starts with "n/a:" and says why."""

    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


class LPIPSMetric:
    """Per-image LPIPS distance between images in [0, 1] (lower = more similar).

    Images whose shorter side is below 32 px are bilinearly upsampled to 32 px first (AlexNet's
    pooling needs at least 31 px); the module follows the inputs' device.
    """

    def __init__(self, module: torch.nn.Module):
        self.module = module.eval().requires_grad_(False)

    @torch.no_grad()
    def __call__(self, pred01: Tensor, target01: Tensor) -> Tensor:
        h, w = pred01.shape[-2:]
        if min(h, w) < MIN_SIDE:
            scale = MIN_SIDE / min(h, w)
            size = (max(MIN_SIDE, round(h * scale)), max(MIN_SIDE, round(w * scale)))
            pred01 = F.interpolate(pred01, size=size, mode="bilinear", align_corners=False)
            target01 = F.interpolate(target01, size=size, mode="bilinear", align_corners=False)
        self.module.to(pred01.device)
        out = self.module(pred01.float().clamp(0, 1), target01.float().clamp(0, 1), normalize=True)
        return out.flatten()


def _find_alexnet(dirs: list[Path]) -> Optional[Path]:
    for d in dirs:
        if (d / ALEXNET_FILE).is_file():
            return d / ALEXNET_FILE
    for d in dirs:   # another torchvision AlexNet checkpoint (different hash suffix)
        found = sorted(d.glob("alexnet-owt-*.pth")) if d.is_dir() else []
        if found:
            return found[0]
    return None


def _load_state(path: Path) -> dict[str, Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same one-line error
        raise UnmaskError(f"{path}: cannot read weights ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict):
        raise UnmaskError(f"{path}: not a state dict (got {type(state).__name__})")
    return state


def load_lpips(weights_dir: Optional[str] = None) -> LPIPSMetric | MetricUnavailable:
    """LPIPS(net='alex') from local weights only; never downloads.

    The AlexNet backbone checkpoint is looked for in ``weights_dir`` (if given) and then in
    ``torch.hub.get_dir()/checkpoints``; the linear layers come from the lpips wheel. Returns
    :class:`MetricUnavailable` when either file is missing; an unreadable file raises UnmaskError.
    """
    import lpips  # deferred: importing lpips pulls in torchvision's model zoo

    dirs = ([Path(weights_dir)] if weights_dir else []) + [Path(torch.hub.get_dir()) / "checkpoints"]
    backbone = _find_alexnet(dirs)
    if backbone is None:
        return MetricUnavailable("lpips", f"n/a: weights missing (AlexNet backbone {ALEXNET_FILE} not in "
                                          f"{', '.join(map(str, dirs))}; no internet to fetch it)")
    linear = Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth"
    if not linear.is_file():
        return MetricUnavailable("lpips", f"n/a: weights missing (lpips linear layers {linear} absent)")

    trunk = _load_state(backbone)
    with warnings.catch_warnings():   # torchvision's "pretrained is deprecated" notices
        warnings.simplefilter("ignore", UserWarning)
        # pretrained=False, pnet_rand=True: nothing is loaded or fetched; we load both parts below
        module = lpips.LPIPS(net="alex", pretrained=False, pnet_rand=True, verbose=False)

    # lpips splits torchvision's ``features`` into slices that keep the original indices:
    # net.sliceK.<i>.weight  <-  features.<i>.weight
    wanted = {k: "features." + k.split(".", 1)[1] for k in module.net.state_dict()}
    missing = [src for src in wanted.values() if src not in trunk]
    if missing:
        raise UnmaskError(f"{backbone}: not an AlexNet checkpoint (missing {missing[0]})")
    try:
        module.net.load_state_dict({k: trunk[src] for k, src in wanted.items()})
    except RuntimeError:
        raise UnmaskError(f"{backbone}: not an AlexNet checkpoint (tensor shapes differ)") from None

    lin = _load_state(linear)
    for i, layer in enumerate(module.lins):
        layer.load_state_dict({k.split(".", 1)[1]: v for k, v in lin.items() if k.startswith(f"lin{i}.")})
    return LPIPSMetric(module)
