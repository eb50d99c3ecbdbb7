"""No-reference quality metrics of seed 004 (FD-StackGAN): NIQE and BRISQUE, from local parameters only.

Both need model parameters fitted on natural images (NIQE: the multivariate Gaussian of pristine
patches, ``niqe_modelparameters.mat``; BRISQUE: an RBF support-vector regressor,
``brisque_svm_weights.pth``). No installable package ships them: pyiqa (0.1.16) downloads both at run
time from its model hub, and piq (0.8.0) has no NIQE and downloads BRISQUE's SVR on first use. So they
are looked for on disk, in ``params_dir`` when given, else in ``torch.hub.get_dir()/pyiqa`` (pyiqa's
cache) and ``torch.hub.get_dir()/checkpoints``; when absent the metric is a :class:`MetricUnavailable`
("n/a: NIQE parameters missing (...)") and reports show n/a with that reason. We do not implement the
algorithms ourselves: with the parameters present, pyiqa's implementation is used if it is installed
(it is not a project dependency: PolyForm Noncommercial licence), otherwise the metric is again
unavailable, saying so. Nothing is ever downloaded.

The callable returned takes images in [0, 1], (B, 3, H, W), and returns per-image scores (B,), lower =
more natural. NIQE needs images of at least 96 px (its 96-px blocks); for BRISQUE we require 16 px (a
guard of ours: it filters with a 7-px window at full and half scale); smaller images raise UnmaskError.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable, Literal, Optional

import torch
from torch import Tensor

from unmask.errors import ConfigError, UnmaskError
from unmask.metrics.lpips_metric import MetricUnavailable

NoReferenceName = Literal["niqe", "brisque"]

# name -> (display name, parameter files accepted (first = preferred), pyiqa module, pyiqa class, min side)
_SPECS = {
    "niqe": ("NIQE", ("niqe_modelparameters.mat",), "pyiqa.archs.niqe_arch", "NIQE", 96),
    "brisque": ("BRISQUE", ("brisque_svm_weights.pth", "brisque_svm_weights.pt"),
                "pyiqa.archs.brisque_arch", "BRISQUE", 16),
}


class NoReferenceMetric:
    """Per-image no-reference score of images in [0, 1] (lower = better); follows the inputs' device."""

    def __init__(self, name: str, module: torch.nn.Module, min_side: int):
        self.name = name
        self.module = module.eval().requires_grad_(False)
        self.min_side = min_side

    @torch.no_grad()
    def __call__(self, img01: Tensor) -> Tensor:
        if img01.dim() != 4 or img01.shape[1] != 3:
            raise UnmaskError(f"{self.name}: need images of shape (B, 3, H, W), got {tuple(img01.shape)}")
        if min(img01.shape[-2:]) < self.min_side:
            raise UnmaskError(f"{self.name}: images of {tuple(img01.shape[-2:])} px are too small "
                              f"(need >= {self.min_side} px)")
        self.module.to(img01.device)
        return self.module(img01.float().clamp(0, 1)).flatten()


def _search_dirs(params_dir: Optional[str]) -> list[Path]:
    if params_dir:
        return [Path(params_dir)]
    hub = Path(torch.hub.get_dir())
    return [hub / "pyiqa", hub / "checkpoints"]


def _find(dirs: list[Path], files: tuple[str, ...]) -> Optional[Path]:
    for f in files:
        for d in dirs:
            if (d / f).is_file():
                return d / f
    return None


def _check_params(name: str, path: Path) -> Optional[str]:
    """A one-line reason why the parameter file is unusable, or None. BRISQUE's .pt/.pth is loaded with
    ``weights_only=True`` first: pyiqa reads it with ``weights_only=False``, which is only safe for a
    file that already loaded as plain tensors."""
    try:
        if path.suffix == ".mat":
            import scipy.io
            keys = set(scipy.io.loadmat(path))
            if not {"mu_prisparam", "cov_prisparam"} <= keys:
                return f"{path}: no mu_prisparam/cov_prisparam"
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
            if not (isinstance(obj, (tuple, list)) and len(obj) == 2 and all(isinstance(t, Tensor) for t in obj)):
                return f"{path}: not a (sv_coef, sv) pair of tensors"
    except Exception as e:  # noqa: BLE001 - any unreadable file gives the same one-line reason
        from unmask.losses.perceptual import load_error_line
        return f"{path}: unreadable ({load_error_line(e)})"
    return None


def load_no_reference(name: NoReferenceName, params_dir: Optional[str] = None, *,
                      image_size: Optional[int] = None) -> Callable[[Tensor], Tensor] | MetricUnavailable:
    """NIQE or BRISQUE from local parameters, or :class:`MetricUnavailable` with the reason.

    ``image_size`` (optional): the side of the images it will score; NIQE below 96 px is unavailable.
    An unknown ``name`` raises ConfigError.
    """
    if name not in _SPECS:
        raise ConfigError(f"no-reference metric: unknown {name!r} (choose from {', '.join(sorted(_SPECS))})")
    label, files, module_name, cls_name, min_side = _SPECS[name]
    if image_size is not None and image_size < min_side:
        return MetricUnavailable(name, f"n/a: {label} needs images of at least {min_side} px (got {image_size})")
    dirs = _search_dirs(params_dir)
    path = _find(dirs, files)
    if path is None:
        return MetricUnavailable(name, f"n/a: {label} parameters missing (looked for {' or '.join(files)} in "
                                       f"{', '.join(map(str, dirs))}; no package ships them and nothing is "
                                       f"downloaded)")
    problem = _check_params(name, path)
    if problem:
        return MetricUnavailable(name, f"n/a: {label} parameters unusable ({problem})")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except Exception as e:  # noqa: BLE001 - ImportError, or pyiqa failing on import
        return MetricUnavailable(name, f"n/a: {label} implementation missing (parameters at {path}, but "
                                       f"{module_name} cannot be imported: {type(e).__name__}; pyiqa is not a "
                                       f"project dependency)")
    return NoReferenceMetric(name, cls(pretrained_model_path=str(path)), min_side)
