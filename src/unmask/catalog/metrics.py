"""Every metric a trial reports (as ``val_<name>`` and ``test_<name>``), declared once.

A :class:`MetricSpec` says how the metric is named in a report, which way is better, how its value is
printed, whether a report shows it unless its study lists ``metrics``, and the pretrained weights it
needs (None: none). The order of :data:`METRIC_SPECS` is the order trials report and tables list them.
A metric added by :func:`register_metric` (a contributor's module, or a test) joins every view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from unmask.catalog.parsing import PARSING_LABELS


@dataclass(frozen=True)
class MetricSpec:
    name: str
    label: str                      # a report's row / column name
    higher_is_better: bool
    fmt: str                        # format spec of a value in a report
    shown_by_default: bool = True   # a report's row unless its study lists ``metrics``
    needs_weights: Optional[str] = None   # the pretrained weights it is computed with
    kind: str = "image"             # "image": an image trainer's; "mask": a segmenter's
    reference: bool = True          # compares the output with the true face (False: scores the output alone)
    per_image: bool = True          # False: a distance between sets of images (FID), computed over a whole test set

    def format(self, value: float) -> str:
        return format(value, self.fmt)


METRIC_SPECS: list[MetricSpec] = [
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
    # no-reference naturalness of the output alone (seed 004's Tables 2-4), where a study lists them
    MetricSpec("niqe", "NIQE", False, ".3f", shown_by_default=False, reference=False,
               needs_weights="niqe_modelparameters.mat (NIQE pristine model)"),
    MetricSpec("brisque", "BRISQUE", False, ".2f", shown_by_default=False, reference=False,
               needs_weights="brisque_svm_weights.pth (BRISQUE SVR)"),
    MetricSpec("pixel_acc", "pixel accuracy", True, ".4f", kind="mask"),   # a segmenter's (seed 001)
    MetricSpec("iou", "IoU", True, ".4f", kind="mask"),
    MetricSpec("dice", "Dice", True, ".4f", kind="mask"),
    # a face parser's (seed 003): per face, then the mean over faces (unmask.metrics.parsing)
    MetricSpec("parse_acc", "parsing pixel accuracy", True, ".4f", kind="parsing"),
    MetricSpec("parse_miou", "parsing mIoU", True, ".4f", kind="parsing"),
    *(MetricSpec(f"parse_iou_{label}", f"IoU {label.replace('_', ' ')}", True, ".4f", kind="parsing",
                 shown_by_default=False) for label in PARSING_LABELS),
    # mask-guided portrait editing (seed 003; unmask.metrics.portrait says what each measures)
    MetricSpec("recon_l1", "recon L1", False, ".4f", kind="portrait"),
    MetricSpec("recon_psnr", "recon PSNR (dB)", True, ".2f", kind="portrait"),
    MetricSpec("recon_ssim", "recon SSIM", True, ".4f", kind="portrait"),
    *(MetricSpec(f"transfer_{g}", f"transfer error {g}", False, ".4f", kind="portrait")
      for g in ("eyes", "mouth", "skin", "hair")),
    MetricSpec("leak", "leak", False, ".4f", kind="portrait"),
    MetricSpec("locality", "locality (out/in)", False, ".3f", kind="portrait"),
    MetricSpec("periocular", "periocular skin error", False, ".4f", kind="portrait"),
    MetricSpec("kl", "KL (sum)", False, ".3g", kind="portrait", shown_by_default=False),
    MetricSpec("code_use", "embedding use (change, codes zeroed)", True, ".4f", kind="portrait", shown_by_default=False),
    # the outputs parsed by a held-out parser (a study's scored_by), against the map they were made on
    MetricSpec("parse_self_miou", "parsing mIoU, self-reconstruction", True, ".4f", kind="portrait",
               shown_by_default=False),
    MetricSpec("parse_swap_miou", "parsing mIoU, all components swapped", True, ".4f", kind="portrait",
               shown_by_default=False),
    MetricSpec("parse_edit_miou", "parsing mIoU, edited map", True, ".4f", kind="portrait", shown_by_default=False),
    # unmasking by parsing (seed003_unmask): the map completed under the mask against the true clean map,
    # inside the mask; and any restoration parsed by the held-out scorer (scored_by) against that map
    MetricSpec("map_hole_miou", "completed map mIoU in mask", True, ".4f", kind="parsing", shown_by_default=False),
    MetricSpec("parse_hole_miou", "semantic fidelity (scorer mIoU in mask)", True, ".4f", shown_by_default=False),
    # test faces against their self-reconstructions (the thesis's Table 4.1), over the whole test set
    MetricSpec("fid", "FID", False, ".2f", kind="portrait", shown_by_default=False, per_image=False,
               needs_weights="pt_inception-2015-12-05-6726825d.pth (pytorch-fid's Inception)"),
]
SPECS: dict[str, MetricSpec] = {s.name: s for s in METRIC_SPECS}


def register_metric(new: MetricSpec) -> MetricSpec:
    """Add a metric to the catalogue (after the built-in ones); every view below sees it. A metric that
    needs weights also registers its loader (:data:`unmask.metrics.suite.WEIGHTED`)."""
    if new.name in SPECS:
        raise TypeError(f"metric {new.name!r} registered twice")
    METRIC_SPECS.append(new)
    SPECS[new.name] = new
    return new


class _Names:
    """A live, ordered view of the catalogue's metric names that pass ``keep`` (registered ones included)."""

    def __init__(self, keep):
        self._keep = keep

    def _names(self) -> tuple[str, ...]:
        return tuple(s.name for s in METRIC_SPECS if self._keep(s))

    def __iter__(self):
        return iter(self._names())

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __len__(self) -> int:
        return len(self._names())

    def __getitem__(self, i):
        return self._names()[i]

    def __repr__(self) -> str:
        return repr(self._names())


METRICS = _Names(lambda s: True)                                           # every metric, in table order
DEFAULT_SHOWN = _Names(lambda s: s.shown_by_default and s.kind == "image")  # a report's rows by default
HIGHER_IS_BETTER = _Names(lambda s: s.higher_is_better)


def spec(metric: str) -> MetricSpec:
    """The spec of ``metric``, given bare (``psnr``) or as a split's column (``val_psnr``, ``test_psnr``)."""
    for prefix in ("val_", "test_"):
        if metric.startswith(prefix) and metric.removeprefix(prefix) in SPECS:
            return SPECS[metric.removeprefix(prefix)]
    return SPECS[metric]


def mode(metric: str) -> str:
    """``"max"`` or ``"min"``: the direction of ``metric`` (bare or ``val_``/``test_``)."""
    return "max" if spec(metric).higher_is_better else "min"
