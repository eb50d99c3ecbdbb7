"""FID (Heusel et al. 2017) with pytorch-fid's Inception network (the implementation the thesis of seed
003 used, pytorch-fid 0.2.1; 0.3.0 computes the same pool3 features), from local weights only.

FID is a distance between two *sets* of images (the Gaussians of their 2048-d pool3 features), not a
per-image value: :class:`FID` gives ``features(images01)`` and ``distance(a, b)``; evaluation computes
it over a study's whole test set (real faces against the model's outputs). The Inception weights
(``pt_inception-2015-12-05-6726825d.pth``) are looked for in ``weights_dir`` and the torch hub cache;
pytorch-fid would download them, which is never allowed here: without them :func:`load_fid` returns
:class:`MetricUnavailable` ("n/a: Inception weights missing"), and no number from random weights exists.
With fewer images than feature dimensions the covariance is singular and FID is biased high; a report
states the number of images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from unmask.errors import UnmaskError
from unmask.metrics.lpips_metric import MetricUnavailable

INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"


class FID:
    """Set-level FID on images in [0, 1] (any size: resized to 299 by the network)."""

    per_image = False

    def __init__(self, network: torch.nn.Module):
        self.network = network.eval()

    @torch.no_grad()
    def features(self, images01: Tensor, batch: int = 32) -> np.ndarray:
        out = []
        for i in range(0, len(images01), batch):
            x = images01[i:i + batch].float().clamp(0, 1)
            out.append(self.network(x)[0].flatten(1).cpu().double().numpy())
        return np.concatenate(out)

    @staticmethod
    def distance(a: np.ndarray, b: np.ndarray) -> float:
        from pytorch_fid.fid_score import calculate_frechet_distance

        return float(calculate_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)))

    def __call__(self, fake01: Tensor, real01: Tensor) -> float:
        return self.distance(self.features(real01), self.features(fake01))


def _find(dirs: list[Path]) -> Path | None:
    return next((d / INCEPTION_FILE for d in dirs if (d / INCEPTION_FILE).is_file()), None)


def load_fid(weights_dir: Optional[str] = None) -> FID | MetricUnavailable:
    """pytorch-fid's Inception from a local weights file; never downloads."""
    dirs = ([Path(weights_dir)] if weights_dir else []) + [Path(torch.hub.get_dir()) / "checkpoints"]
    path = _find(dirs)
    if path is None:
        return MetricUnavailable("fid", f"n/a: Inception weights missing ({INCEPTION_FILE} not in "
                                        f"{', '.join(map(str, dirs))}; no internet to fetch it)")
    try:
        from pytorch_fid import inception
    except ImportError:
        return MetricUnavailable("fid", "n/a: pytorch-fid is not installed")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:   # noqa: BLE001  (a damaged or foreign file)
        raise UnmaskError(f"{path}: not a readable Inception checkpoint ({str(err).splitlines()[0]})") from None
    original = inception.load_state_dict_from_url
    inception.load_state_dict_from_url = lambda *a, **k: state     # the local file, never the URL
    try:
        net = inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]], use_fid_inception=True)
    except (RuntimeError, KeyError) as err:
        raise UnmaskError(f"{path}: does not fit pytorch-fid's Inception ({str(err).splitlines()[0]})") from None
    finally:
        inception.load_state_dict_from_url = original
    return FID(net)

