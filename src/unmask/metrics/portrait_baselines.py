"""No-training baselines for mask-guided portrait editing (seed 003), as *composers*
(:mod:`unmask.metrics.portrait`): ``compose(target, target_map, sources=None)`` -> (B, 3, H, W) in
[-1, 1], the components named in ``sources`` taken from ``sources[name] = (image, map)``.

* ``copy_target``: the target unchanged: perfect self-reconstruction and locality, no transfer (the
  transfer error every swap must beat);
* ``region_mean``: every label region of the target map painted with the median colour of that label
  in the face its component comes from (the target's own for components not swapped; the target's
  where the source lacks the label), the background the target's: a mask-to-face floor for
  reconstruction and a colour-transfer ceiling;
* ``cut_paste``: the source's eye and mouth windows pasted at the target map's centres, skin and hair
  pixels copied where both maps hold the component: Gu et al.'s strawman with boundary artefacts.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from unmask.data.components import COMPONENTS, LOCAL, centres, component_mask, corner, crop, window

Sources = dict[str, tuple[Tensor, Tensor]]


def _donor(name: str, target: Tensor, target_map: Tensor, sources: Sources | None) -> tuple[Tensor, Tensor]:
    return (sources or {}).get(name, (target, target_map))


class CopyTarget:
    def compose(self, target: Tensor, target_map: Tensor, sources: Sources | None = None) -> Tensor:
        return target.clone()


class RegionMean:
    def compose(self, target: Tensor, target_map: Tensor, sources: Sources | None = None) -> Tensor:
        out = target.clone()
        for comp in COMPONENTS:
            image, labels = _donor(comp.name, target, target_map, sources)
            for label in comp.labels:
                for i in range(target.shape[0]):
                    where_t = target_map[i] == label
                    if not where_t.any():
                        continue
                    where_s = labels[i] == label
                    src = image[i] if where_s.any() else target[i]
                    keep = where_s if where_s.any() else where_t
                    colour = src[:, keep].median(1).values
                    out[i][:, where_t] = colour[:, None]
        return out


class CutPaste:
    def compose(self, target: Tensor, target_map: Tensor, sources: Sources | None = None) -> Tensor:
        out = target.clone()
        size = target.shape[-1]
        for comp in COMPONENTS:
            if comp.name not in (sources or {}):
                continue
            image, labels = sources[comp.name]
            if comp in LOCAL:
                shape = window(comp, size)
                patch = crop(image, centres(labels, comp), shape)
                for i, (t, l) in enumerate(corner(centres(target_map, comp), shape, (size, size)).tolist()):
                    out[i, :, t:t + shape[0], l:l + shape[1]] = patch[i]
            else:
                both = (component_mask(labels, comp) * component_mask(target_map, comp)) > 0
                out = torch.where(both.expand_as(out), image, out)
        return out


PORTRAIT_BASELINES: dict[str, Callable[[], object]] = {
    "copy_target": CopyTarget,
    "region_mean": RegionMean,
    "cut_paste": CutPaste,
}

NOTES = {
    "copy_target": "the target face unchanged: perfect self-reconstruction, no transfer; a swap's transfer "
                   "error must be below its value to have moved any colour.",
    "region_mean": "each label region of the target map painted with the median colour of that label in the "
                   "face its component comes from; background the target's. A floor for self-reconstruction.",
    "cut_paste": "the source's eye and mouth windows pasted at the target's centres, skin and hair pixels "
                 "copied where both maps hold them (Gu et al.'s boundary-artefact strawman).",
}
