"""The metrics a run computes, as one object built once: :class:`MetricSuite`.

The catalogue (:mod:`unmask.catalog.metrics`) declares every metric: its name, direction, format and
the weights it needs. A suite is built from a study's metric names and the folder to look for weights
in; the reference metrics that need nothing (L1, L2, PSNR, SSIM, their masked variants, MSE on 0-255)
are always computed, and each metric that needs weights is loaded here, once, through the loader
registered for it below. One whose weights are absent is left out of every batch and listed in
:attr:`MetricSuite.unavailable` with its reason ("n/a: weights missing (...)"), which tables print.
Trainers (validation, test), trials, evaluation and reports take a suite; none of them knows which
metric needs which weights.

Adding a metric that needs weights: declare it in the catalogue with ``needs_weights`` and register
its loader (``WEIGHTED["name"] = loader``), a function ``(weights_dir) -> callable | MetricUnavailable``
whose callable maps (pred01, target01) to per-image values (B,).
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional

from torch import Tensor

from unmask.catalog.metrics import METRIC_SPECS
from unmask.metrics.image import compute_metrics
from unmask.metrics.lpips_metric import MetricUnavailable, load_lpips

Loader = Callable[[Optional[str]], "Callable[[Tensor, Tensor], Tensor] | MetricUnavailable"]
WEIGHTED: dict[str, Loader] = {"lpips": load_lpips}   # metric name -> loader of its weights


class MetricSuite:
    """Computes a batch's image metrics, each per image (B,): every reference metric that needs no
    weights, plus those of ``names`` (default: every catalogue metric) whose weights are found in
    ``weights_dir`` (or where their loader looks by default). ``MetricSuite.none()`` asks for no weighted metric."""

    def __init__(self, weights_dir: Optional[str] = None, names: Optional[Iterable[str]] = None):
        wanted = None if names is None else set(names)
        self.weights_dir = weights_dir
        self.unavailable: dict[str, str] = {}             # metric -> why it is not computed ("n/a: ...")
        self._weighted: dict[str, Callable[[Tensor, Tensor], Tensor]] = {}
        for spec in METRIC_SPECS:
            if spec.needs_weights is None or spec.kind != "image" or (wanted is not None and spec.name not in wanted):
                continue
            loaded = WEIGHTED[spec.name](weights_dir)
            if isinstance(loaded, MetricUnavailable):
                self.unavailable[spec.name] = loaded.reason
            else:
                self._weighted[spec.name] = loaded

    @classmethod
    def none(cls) -> "MetricSuite":
        """The metrics that need no weights only (nothing is loaded)."""
        return cls(names=())

    def note(self, metric: str) -> str:
        """Why ``metric`` is not computed ("" when it is, or was not asked for)."""
        return self.unavailable.get(metric, "")

    def __call__(self, pred01: Tensor, target01: Tensor, mask: Optional[Tensor] = None) -> dict[str, Tensor]:
        out = compute_metrics(pred01, target01, mask)
        for name, fn in self._weighted.items():
            out[name] = fn(pred01.detach().float().clamp(0, 1), target01.detach().float().clamp(0, 1))
        return out
