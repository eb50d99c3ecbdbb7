"""Face-parsing metrics (seed 003): how well a label map matches the true one.

Per face: ``parse_acc`` (share of pixels with the right label), ``parse_miou`` (the mean IoU over the
labels present in the true or the predicted map of that face) and ``parse_iou_<label>`` per label
(nan where the label is in neither map, so a face without it does not count for it). A table's value
is the mean over faces (:func:`unmask.metrics.image.aggregate` skips nan), not an IoU pooled over the
whole test set. ``region`` restricts every count to its pixels (inside an occluder's mask: what a
restoration put where the mask was).
"""

from __future__ import annotations

import torch
from torch import Tensor

from unmask.data.schema import PARSING_LABELS

N_LABELS = len(PARSING_LABELS)
PER_LABEL = tuple(f"parse_iou_{name}" for name in PARSING_LABELS)


@torch.no_grad()
def parsing_metrics(pred: Tensor, target: Tensor, region: Tensor | None = None,
                    prefix: str = "parse") -> dict[str, Tensor]:
    """``pred`` and ``target`` (B, H, W) int labels (``region`` (B, H, W) or (B, 1, H, W), nonzero where
    counted) -> per face (B,) metrics named ``<prefix>_acc``, ``<prefix>_miou`` and, with the default
    prefix, ``parse_iou_<label>``."""
    if pred.shape != target.shape:
        raise ValueError(f"parsing_metrics: prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    b = pred.shape[0]
    p, t = pred.reshape(b, -1).long(), target.reshape(b, -1).long()
    keep = torch.ones_like(p, dtype=torch.bool) if region is None else region.reshape(b, -1) > 0
    n = keep.sum(1).float()
    acc = torch.where(n > 0, ((p == t) & keep).sum(1).float() / n.clamp_min(1), torch.full_like(n, float("nan")))
    ious = []
    for label in range(N_LABELS):
        pl, tl = (p == label) & keep, (t == label) & keep
        union = (pl | tl).sum(1).float()
        inter = (pl & tl).sum(1).float()
        ious.append(torch.where(union > 0, inter / union.clamp_min(1), torch.full_like(union, float("nan"))))
    iou = torch.stack(ious, 1)
    out = {f"{prefix}_acc": acc, f"{prefix}_miou": iou.nanmean(1)}
    if prefix == "parse":
        out.update({name: iou[:, i] for i, name in enumerate(PER_LABEL)})
    return out
