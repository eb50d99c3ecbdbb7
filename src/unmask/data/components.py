"""Face components of a parsing map (seed 003, Gu et al.'s mask-guided portrait editing): which labels
make each component, where its centre is, the window cropped around it, and where a feature block is
placed on a map of another size.

Labels are :data:`unmask.data.schema.PARSING_LABELS` (0 background ... 10 hair). The five components
(Gu et al.'s code): left eye {4}, right eye {5}, mouth {7, 8, 9}, skin {1, 2, 3, 6} (skin, both brows
and the nose share one embedding), hair {10}. "Left" is the person's: on the synthetic faces label 4
is on the image's right.

Window sizes scale with the image side ``S`` (multiples of 64): eye ``S/8 x 3S/16`` (32 x 48 at 256 px,
8 x 12 at 64), mouth ``5S/16 x 9S/16`` (80 x 144 / 20 x 36); skin and hair use the whole image.
A centre is the centre of the bounding box of the component's labels; a component missing from a
map falls back to its place on the mean aligned face. A window that would leave the image is shifted
inside it (the thesis, Section 4.2.1), never cut.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from unmask.data.schema import PARSING_LABELS

N_LABELS = len(PARSING_LABELS)


@dataclass(frozen=True)
class Component:
    name: str
    labels: tuple[int, ...]
    window: tuple[int, int] | None     # (h, w) at 64 px; None: the whole image
    fallback: tuple[float, float] | None   # centre (y, x) at 64 px where the map lacks the component


COMPONENTS: tuple[Component, ...] = (
    Component("left_eye", (4,), (8, 12), (30.0, 40.0)),
    Component("right_eye", (5,), (8, 12), (30.0, 24.0)),
    Component("skin", (1, 2, 3, 6), None, None),
    Component("hair", (10,), None, None),
    Component("mouth", (7, 8, 9), (20, 36), (47.0, 32.0)),
)
"""In the order Gu et al. concatenate their features (after the mask encoder's)."""
BY_NAME = {c.name: c for c in COMPONENTS}
LOCAL = tuple(c for c in COMPONENTS if c.window is not None)   # the placed ones: eyes and mouth
EDITABLE = ("eyes", "mouth", "skin", "hair")                   # what `unmask edit --component` names
GROUPS = {"eyes": ("left_eye", "right_eye"), "mouth": ("mouth",), "skin": ("skin",), "hair": ("hair",)}


def check_size(size: int, key: str = "train.image_size") -> None:
    """Windows scale by ``size / 64``: the side must be a multiple of 64."""
    if size % 64 or size < 64:
        from unmask.errors import ConfigError
        raise ConfigError(f"{key}: mask-guided portrait editing needs a multiple of 64 px (its eye window "
                          f"is 1/8 of the side, the mouth's 5/16), got {size}")


def window(comp: Component, size: int) -> tuple[int, int]:
    """``comp``'s window (h, w) at side ``size`` (the whole image for skin and hair)."""
    if comp.window is None:
        return size, size
    return comp.window[0] * size // 64, comp.window[1] * size // 64


def component_mask(labels: Tensor, comp: Component) -> Tensor:
    """(B, H, W) int labels -> (B, 1, H, W) float, 1 on ``comp``'s labels."""
    keep = torch.zeros_like(labels, dtype=torch.bool)
    for label in comp.labels:
        keep |= labels == label
    return keep.unsqueeze(1).float()


def labels_to_image(labels: Tensor) -> Tensor:
    """(B, H, W) labels -> (B, 3, H, W) grey image in [-1, 1] (label / 10 * 2 - 1): how a label map
    leaves a model that must output an image (a parser's exported model, a figure)."""
    return (labels.float() / 5 - 1)[:, None].expand(-1, 3, -1, -1)


def image_to_labels(image: Tensor) -> Tensor:
    """The inverse of :func:`labels_to_image`: (B, C, H, W) in [-1, 1] -> (B, H, W) int64 labels."""
    return ((image[:, 0] + 1) * 5).round().long()


def one_hot(labels: Tensor) -> Tensor:
    """(B, H, W) int labels -> (B, 11, H, W) float one-hot."""
    return F.one_hot(labels.long(), N_LABELS).permute(0, 3, 1, 2).float()


def centres(labels: Tensor, comp: Component) -> Tensor:
    """(B, 2) int64 centre (y, x) of ``comp`` in each map: the centre of its labels' bounding box,
    or its fallback (scaled to the map's side) where a map has none of them."""
    b, h, w = labels.shape
    inside = component_mask(labels, comp)[:, 0] > 0
    rows, cols = inside.any(2), inside.any(1)
    ys = torch.arange(h, device=labels.device)
    xs = torch.arange(w, device=labels.device)
    big = torch.iinfo(torch.int64).max
    y0 = torch.where(rows, ys, big).min(1).values
    y1 = torch.where(rows, ys, -1).max(1).values
    x0 = torch.where(cols, xs, big).min(1).values
    x1 = torch.where(cols, xs, -1).max(1).values
    found = rows.any(1)
    fy, fx = comp.fallback if comp.fallback is not None else (h / 2, w / 2)
    default = torch.tensor([round(fy * h / 64), round(fx * w / 64)], device=labels.device)
    box = torch.stack([(y0 + y1) // 2, (x0 + x1) // 2], 1)
    return torch.where(found[:, None], box, default)


def corner(centre: Tensor, shape: tuple[int, int], bound: tuple[int, int]) -> Tensor:
    """(B, 2) top-left corners of (h, w) blocks centred at ``centre`` ((B, 2) (y, x)), shifted to lie
    inside a ``bound`` (H, W) map: top = y - h // 2, clamped to [0, H - h] (and the same for x)."""
    h, w = shape
    top = (centre[:, 0] - h // 2).clamp(0, bound[0] - h)
    left = (centre[:, 1] - w // 2).clamp(0, bound[1] - w)
    return torch.stack([top, left], 1)


def crop(images: Tensor, centre: Tensor, shape: tuple[int, int]) -> Tensor:
    """(B, C, H, W) -> (B, C, h, w): each image's window of ``shape`` at its ``centre``, kept inside."""
    tl = corner(centre, shape, images.shape[-2:]).tolist()
    return torch.stack([img[:, t:t + shape[0], l:l + shape[1]] for img, (t, l) in zip(images, tl)])


def paste(canvas: Tensor, blocks: Tensor, centre: Tensor) -> Tensor:
    """``canvas`` (B, C, H, W) with each (C, h, w) block of ``blocks`` written at its ``centre``
    (kept inside); differentiable in ``blocks`` (a new tensor, ``canvas`` unchanged)."""
    h, w = blocks.shape[-2:]
    tl = corner(centre, (h, w), canvas.shape[-2:]).tolist()
    rows = []
    for img, block, (t, l) in zip(canvas, blocks, tl):
        rows.append(F.pad(block, (l, canvas.shape[-1] - l - w, t, canvas.shape[-2] - t - h))
                    + img * F.pad(torch.zeros_like(block[:1]), (l, canvas.shape[-1] - l - w,
                                                                t, canvas.shape[-2] - t - h), value=1.0))
    return torch.stack(rows)


def feature_centre(centre: Tensor, scale: int) -> Tensor:
    """A centre on the image, on a feature map ``scale`` times smaller: ``int(c / scale + 0.5)``."""
    return torch.div(centre * 2 + scale, 2 * scale, rounding_mode="floor")


def rasterise_parsing(landmarks, size: int):
    """A label map (size, size) uint8 drawn from 68 landmarks (iBUG order, pixel coordinates at ``size``),
    no learning: the face hull (jaw and brows) as skin, then the brows, eyes, nose, lips and the inner
    mouth as polygons; no hair, the rest background. Label 4 (the person's left eye) is landmarks 42-47,
    as on the synthetic faces."""
    import cv2
    import numpy as np

    lm = np.asarray(landmarks, np.float64).reshape(68, 2)
    out = np.zeros((size, size), np.uint8)

    def fill(points, label: int, hull: bool = False) -> None:
        pts = np.round(points).astype(np.int32)
        if hull:
            pts = cv2.convexHull(pts)
        cv2.fillPoly(out, [pts.reshape(-1, 1, 2)], int(label))

    fill(lm[0:27], 1, hull=True)                       # skin: jaw and brows
    fill(lm[22:27], 2, hull=True)                      # left brow (the person's)
    fill(lm[17:22], 3, hull=True)
    fill(lm[42:48], 4)                                 # left eye
    fill(lm[36:42], 5)
    fill(np.concatenate([lm[27:28], lm[31:36]]), 6, hull=True)   # nose: bridge top and the nostrils' base
    fill(np.concatenate([lm[48:55], lm[64:59:-1]]), 7)   # upper lip: outer top, inner top back
    fill(np.concatenate([lm[54:60], lm[48:49], lm[60:61], lm[67:63:-1]]), 9)   # lower lip
    fill(lm[60:68], 8)                                 # inner mouth
    return out


PALETTE = torch.tensor([[0, 0, 0], [230, 180, 150], [120, 70, 30], [150, 90, 40], [40, 120, 255], [0, 200, 255],
                        [255, 140, 0], [220, 30, 60], [90, 0, 40], [255, 90, 120], [110, 60, 160]],
                       dtype=torch.float32)
"""A colour per label for figures (background black, skin, brows brown, eyes blue, nose orange, lips red, hair purple)."""


def colour_map(labels: Tensor) -> Tensor:
    """(B, H, W) labels -> (B, 3, H, W) in [-1, 1], :data:`PALETTE` colours."""
    return (PALETTE[labels.long().clamp(0, N_LABELS - 1).cpu()].permute(0, 3, 1, 2) / 127.5 - 1)


def edit_map(target_map: Tensor, donor_map: Tensor, comp: Component) -> Tensor:
    """``target_map`` with ``comp``'s labels replaced by the donor's: the target's labels of the component
    become skin, and the donor's component (its window around the donor's centre) is written at the
    target's centre: another face's mouth or eyes on this face (Figs. 4.8-4.10)."""
    out = target_map.clone()
    inside = component_mask(target_map, comp)[:, 0] > 0
    out[inside] = 1
    size = target_map.shape[-1]
    shape = window(comp, size)
    donor = crop(donor_map[:, None].float(), centres(donor_map, comp), shape)[:, 0].long()
    tl = corner(centres(target_map, comp), shape, target_map.shape[-2:]).tolist()
    for i, (t, l) in enumerate(tl):
        region = out[i, t:t + shape[0], l:l + shape[1]]
        keep = torch.zeros_like(donor[i], dtype=torch.bool)
        for label in comp.labels:
            keep |= donor[i] == label
        region[keep] = donor[i][keep]
    return out
