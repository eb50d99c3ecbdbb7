"""The no-training baselines a study shows beside its trials, by what its trainer outputs
(``Trainer.output``): each kind names its baselines, the test fields their measurement needs, how one
test batch is measured, and what a report says under its table about each.

* ``image`` (an inpainter's or translator's clean face): :mod:`unmask.metrics.baselines` (input, telea,
  navier_stokes, biharmonic), measured by the study's image metrics against the clean face;
* ``mask`` (a segmenter's occluder mask): :mod:`unmask.metrics.mask_baselines` (lower_face), by
  pixel accuracy, IoU and Dice against the true mask;
* ``parsing`` (a face parser's label map): ``landmark_raster`` (labels drawn from the 68 landmarks,
  :func:`unmask.data.components.rasterise_parsing`), by parsing accuracy and IoU against the true map;
* ``portrait`` (mask-guided editing): :mod:`unmask.metrics.portrait_baselines`, by
  :func:`unmask.metrics.portrait.portrait_metrics`, like the trained model.

``measure(fn, batch, suite)`` returns the per-image metrics and a thunk of the images the report's
figure shows (in [-1, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import torch

from unmask.data.components import labels_to_image, rasterise_parsing
from unmask.errors import ConfigError
from unmask.metrics.baselines import BASELINES
from unmask.metrics.mask_baselines import MASK_BASELINES
from unmask.metrics.mask_baselines import NOTES as MASK_NOTES
from unmask.metrics.parsing import parsing_metrics
from unmask.metrics.portrait import portrait_metrics
from unmask.metrics.portrait_baselines import NOTES as PORTRAIT_NOTES
from unmask.metrics.portrait_baselines import PORTRAIT_BASELINES
from unmask.metrics.segmentation import segmentation_metrics


def landmark_raster(clean01: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
    """(B, H, W) int64 label maps drawn from each face's landmarks."""
    size = clean01.shape[-1]
    return torch.from_numpy(np.stack([rasterise_parsing(lm, size) for lm in landmarks.cpu().numpy()])).long()


PARSING_BASELINES = {"landmark_raster": landmark_raster}
PARSING_NOTES = {"landmark_raster": "labels drawn from the face's 68 landmarks without learning (the face hull as "
                                    "skin, brows, eyes, nose, lips and inner mouth as polygons, no hair); on the "
                                    "synthetic test split these are the renderer's own landmarks, so it is at its "
                                    "best here."}


def _image(fn, batch, suite):
    out = fn((batch["occluded"] + 1) / 2, batch["mask"])
    return suite(out, (batch["clean"].float() + 1) / 2, mask=batch["mask"]), lambda: out * 2 - 1


def _mask(fn, batch, suite):
    found = fn((batch["occluded"] + 1) / 2, batch["landmarks"])
    return segmentation_metrics(found, batch["mask"]), lambda: (found * 2 - 1).expand(-1, 3, -1, -1)


def _parsing(fn, batch, suite):
    labels = fn((batch["clean"] + 1) / 2, batch["landmarks"])
    return parsing_metrics(labels, batch["parsing"]), lambda: labels_to_image(labels)


def _portrait(factory, batch, suite):
    composer = factory()
    return (portrait_metrics(composer, batch["clean"], batch["parsing"]),
            lambda: composer.compose(batch["clean"], batch["parsing"]))


@dataclass(frozen=True)
class BaselineKind:
    output: str
    names: Mapping[str, Any]
    fields: tuple[str, ...]
    measure: Callable[[Any, dict, Any], tuple[dict, Callable[[], torch.Tensor]]]
    notes: Mapping[str, str] = field(default_factory=dict)
    what: str = ""
    per_kind: bool = True     # also measured per occlusion kind (an image baseline is not, as before)


BASELINE_KINDS: dict[str, BaselineKind] = {
    "image": BaselineKind("image", BASELINES, (), _image, {}, "an inpainting", per_kind=False),
    "mask": BaselineKind("mask", MASK_BASELINES, ("landmarks",), _mask, MASK_NOTES, "a segmentation"),
    "parsing": BaselineKind("parsing", PARSING_BASELINES, ("parsing", "landmarks"), _parsing, PARSING_NOTES,
                            "a face-parsing"),
    "portrait": BaselineKind("portrait", PORTRAIT_BASELINES, ("parsing",), _portrait, PORTRAIT_NOTES,
                             "a portrait-editing"),
}
NOTES = {name: note for kind in BASELINE_KINDS.values() for name, note in kind.notes.items()}


def baseline_kind(output: str) -> BaselineKind:
    """The baselines that stand beside a trainer whose output is ``output``."""
    return BASELINE_KINDS[output]


def check_baselines(names, output: str, key: str = "baselines") -> None:
    """ConfigError naming ``key`` for a name that is not a baseline of ``output``'s kind."""
    kind = BASELINE_KINDS[output]
    for name in names:
        if name not in kind.names:
            raise ConfigError(f"{key}: unknown baseline {name!r} for {kind.what} study; choose from "
                              f"{', '.join(kind.names)}")
