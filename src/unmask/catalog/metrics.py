"""Every metric a trial reports (as ``val_<name>`` and ``test_<name>``), declared once.

A :class:`MetricSpec` says how the metric is named in a report, which way is better, how its value is
printed, whether a report shows it unless its study lists ``metrics``, and the pretrained weights it
needs (None: none). The order of :data:`METRIC_SPECS` is the order trials report and tables list them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class MetricSpec:
    name: str
    label: str                      # a report's row / column name
    higher_is_better: bool
    fmt: str                        # format spec of a value in a report
    shown_by_default: bool = True   # a report's row unless its study lists ``metrics``
    needs_weights: Optional[str] = None   # the pretrained weights it is computed with
    kind: str = "image"             # "image": an image trainer's; "mask": a segmenter's

    def format(self, value: float) -> str:
        return format(value, self.fmt)


METRIC_SPECS: tuple[MetricSpec, ...] = (
    MetricSpec("l1", "L1", False, ".4f"),
    MetricSpec("l2", "L2", False, ".4f"),
    MetricSpec("psnr", "PSNR (dB)", True, ".2f"),
    MetricSpec("ssim", "SSIM", True, ".4f"),
    MetricSpec("lpips", "LPIPS", False, ".4f", needs_weights="alexnet-owt-7be5be79.pth (LPIPS v0.1 AlexNet)"),
    MetricSpec("l1_masked", "L1 masked", False, ".4f"),
    MetricSpec("l2_masked", "L2 masked", False, ".4f"),
    MetricSpec("psnr_masked", "PSNR masked (dB)", True, ".2f"),
    # 255^2 * l2: FD-StackGAN's (seed 004) MSE on 0-255 pixels, shown where a study asks for it
    MetricSpec("mse255", "MSE (0–255)", False, ".2f", shown_by_default=False),
    MetricSpec("pixel_acc", "pixel accuracy", True, ".4f", kind="mask"),   # a segmenter's (seed 001)
    MetricSpec("iou", "IoU", True, ".4f", kind="mask"),
    MetricSpec("dice", "Dice", True, ".4f", kind="mask"),
)
SPECS: dict[str, MetricSpec] = {s.name: s for s in METRIC_SPECS}

METRICS: tuple[str, ...] = tuple(SPECS)
IMAGE_METRICS: tuple[str, ...] = tuple(s.name for s in METRIC_SPECS if s.kind == "image")
MASK_METRICS: tuple[str, ...] = tuple(s.name for s in METRIC_SPECS if s.kind == "mask")
DEFAULT_SHOWN: tuple[str, ...] = tuple(s.name for s in METRIC_SPECS if s.shown_by_default and s.kind == "image")
HIGHER_IS_BETTER: frozenset[str] = frozenset(s.name for s in METRIC_SPECS if s.higher_is_better)


def spec(metric: str) -> MetricSpec:
    """The spec of ``metric``, given bare (``psnr``) or as a split's column (``val_psnr``, ``test_psnr``)."""
    for prefix in ("val_", "test_"):
        if metric.startswith(prefix) and metric.removeprefix(prefix) in SPECS:
            return SPECS[metric.removeprefix(prefix)]
    return SPECS[metric]


def mode(metric: str) -> str:
    """``"max"`` or ``"min"``: the direction of ``metric`` (bare or ``val_``/``test_``)."""
    return "max" if spec(metric).higher_is_better else "min"
