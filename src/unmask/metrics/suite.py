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
its loader (``WEIGHTED["name"] = loader``), a function ``(weights_dir, image_size) -> callable |
MetricUnavailable`` whose callable maps (pred01, target01) -- or pred01 alone for a no-reference metric
(``reference=False``) -- to per-image values (B,).

Which weighted metrics a suite asks for: those its ``names`` list (a study's ``metrics``), else those a
report shows by default (LPIPS). A set-level metric (``per_image`` False: FID) is not computed per
batch; its loaded object is in :attr:`MetricSuite.set_level` for evaluation to apply to a whole test set. Each asked one that cannot be computed gets a ``note_<metric>`` with
its reason in every row measured with the suite (:meth:`MetricSuite.notes`), and NaN as its value.
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional

from torch import Tensor

from unmask.catalog.metrics import METRIC_SPECS, SPECS
from unmask.catalog.schemas import NOTE
from unmask.metrics.image import compute_metrics
from unmask.metrics.fid import load_fid
from unmask.metrics.lpips_metric import MetricUnavailable, load_lpips
from unmask.metrics.no_reference import load_no_reference

Loader = Callable[[Optional[str], Optional[int]], "Callable[..., Tensor] | MetricUnavailable"]
WEIGHTED: dict[str, Loader] = {   # metric name -> loader of its weights
    "lpips": lambda weights_dir, image_size: load_lpips(weights_dir),
    "niqe": lambda weights_dir, image_size: load_no_reference("niqe", weights_dir, image_size=image_size),
    "brisque": lambda weights_dir, image_size: load_no_reference("brisque", weights_dir, image_size=image_size),
    "fid": lambda weights_dir, image_size: load_fid(weights_dir),    # set-level (per_image False)
}


class MetricSuite:
    """Computes a batch's image metrics, each per image (B,): every reference metric that needs no
    weights, plus the weighted ones asked for (``names``; None: those shown by default) whose weights
    are found in ``weights_dir`` (or where their loader looks by default). ``image_size``: the side of
    the images it will score, when known (NIQE needs 96 px). ``MetricSuite.none()`` asks for no
    weighted metric."""

    def __init__(self, weights_dir: Optional[str] = None, names: Optional[Iterable[str]] = None,
                 image_size: Optional[int] = None):
        wanted = None if names is None else set(names)
        self.weights_dir = weights_dir
        self.asked: tuple[str, ...] = tuple(
            s.name for s in METRIC_SPECS if s.needs_weights is not None
            and (s.shown_by_default and s.kind == "image" if wanted is None else s.name in wanted))
        self.unavailable: dict[str, str] = {}             # metric -> why it is not computed ("n/a: ...")
        self._weighted: dict[str, Callable[..., Tensor]] = {}
        self.set_level: dict[str, Callable[[Tensor, Tensor], float]] = {}   # FID: over a whole test set
        for name in self.asked:
            loaded = WEIGHTED[name](weights_dir, image_size)
            if isinstance(loaded, MetricUnavailable):
                self.unavailable[name] = loaded.reason
            elif SPECS[name].per_image:
                self._weighted[name] = loaded
            else:
                self.set_level[name] = loaded

    @classmethod
    def none(cls) -> "MetricSuite":
        """The metrics that need no weights only (nothing is loaded)."""
        return cls(names=())

    def note(self, metric: str) -> str:
        """Why ``metric`` is not computed ("" when it is, or was not asked for)."""
        return self.unavailable.get(metric, "")

    def notes(self) -> dict[str, str]:
        """``note_<metric>`` -> why it is not computed ("" when it is), for each asked metric: the
        columns every row measured with this suite carries."""
        return {f"{NOTE}{m}": self.note(m) for m in self.asked}

    def __call__(self, pred01: Tensor, target01: Tensor, mask: Optional[Tensor] = None) -> dict[str, Tensor]:
        out = compute_metrics(pred01, target01, mask)
        pred = pred01.detach().float().clamp(0, 1)
        for name, fn in self._weighted.items():
            out[name] = fn(pred, target01.detach().float().clamp(0, 1)) if SPECS[name].reference else fn(pred)
        return out
