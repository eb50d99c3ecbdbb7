"""Occluders: ``occluder(face, landmarks, rng) -> Occlusion(image, mask, kind, attrs)``.

:data:`OCCLUDERS` maps each ``synthesize.kinds`` name (``OcclusionKind`` in :mod:`unmask.config`) to its
class; :func:`build_occluders` instantiates the ones a config weights above zero.
"""

from __future__ import annotations

import numpy as np

from unmask.config import SynthesizeConfig
from unmask.data.occlusions.base import Occluder, Occlusion
from unmask.data.occlusions.centre_hole import CentreHole
from unmask.data.occlusions.freeform import FreeForm
from unmask.data.occlusions.procedural import ClothMask, KN95Mask, N95Mask, SurgicalMask
from unmask.data.occlusions.templates import TemplateLibrary, TemplateMask

OCCLUDERS: dict[str, type[Occluder]] = {c.name: c for c in (
    SurgicalMask, ClothMask, N95Mask, KN95Mask, TemplateMask, CentreHole, FreeForm)}


def build_occluders(cfg: SynthesizeConfig) -> tuple[list[str], np.ndarray, list[Occluder]]:
    """``(names, probabilities, occluders)`` for the kinds ``cfg.kinds`` weights above zero."""
    names = [k for k, w in cfg.kinds.items() if w > 0]
    weights = np.array([cfg.kinds[k] for k in names], np.float64)
    return names, weights / weights.sum(), [OCCLUDERS[k].from_config(cfg) for k in names]


__all__ = ["OCCLUDERS", "Occluder", "Occlusion", "TemplateLibrary", "build_occluders",
           "CentreHole", "ClothMask", "FreeForm", "KN95Mask", "N95Mask", "SurgicalMask", "TemplateMask"]
