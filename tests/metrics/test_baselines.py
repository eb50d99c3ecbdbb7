"""Classical inpainting baselines: shapes, untouched known pixels, and better than doing nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unmask.errors import ConfigError, UnmaskError
from unmask.metrics import BASELINES, build_baseline, compute_metrics

FILLERS = ["telea", "navier_stokes", "biharmonic"]


def _smooth_with_hole(size: int = 32):
    y, x = np.mgrid[0:size, 0:size] / size
    clean = np.stack([0.5 + 0.4 * np.sin(3 * x), 0.2 + 0.6 * x * y, 0.7 - 0.3 * np.cos(2 * y)], 0)
    clean = torch.from_numpy(clean).float()[None].repeat(2, 1, 1, 1)
    mask = torch.zeros(2, 1, size, size)
    mask[0, :, 12:22, 10:20] = 1
    mask[1, :, size // 2:, 6:26] = 1             # lower-face-like region
    occluded = torch.where(mask.bool(), torch.ones_like(clean), clean)   # hole filled white
    return clean, occluded, mask


def test_registry():
    assert sorted(BASELINES) == sorted(["input", *FILLERS])
    with pytest.raises(ConfigError, match=r"eval\.baselines: unknown baseline 'deepfill'"):
        build_baseline("deepfill", key="eval.baselines")


@pytest.mark.parametrize("name", ["input", *FILLERS])
def test_shape_range_and_known_pixels_unchanged(name):
    _, occluded, mask = _smooth_with_hole()
    out = build_baseline(name)(occluded, mask)
    assert out.shape == occluded.shape and out.dtype == occluded.dtype
    assert out.min() >= 0 and out.max() <= 1
    known = ~mask.bool().expand_as(occluded)
    assert torch.equal(out[known], occluded[known])


@pytest.mark.parametrize("name", FILLERS)
def test_fillers_beat_the_input_baseline_in_the_hole(name):
    clean, occluded, mask = _smooth_with_hole()
    floor = compute_metrics(BASELINES["input"](occluded, mask), clean, mask)["l1_masked"]
    filled = compute_metrics(build_baseline(name)(occluded, mask), clean, mask)["l1_masked"]
    assert (filled < 0.5 * floor).all(), (filled, floor)


@pytest.mark.parametrize("name", FILLERS)
def test_empty_and_full_masks(name):
    _, occluded, _ = _smooth_with_hole(16)
    empty = torch.zeros(2, 1, 16, 16)
    assert torch.equal(build_baseline(name)(occluded, empty), occluded)
    with pytest.raises(UnmaskError, match="masked entirely"):
        build_baseline(name)(occluded, torch.ones(2, 1, 16, 16))
    with pytest.raises(UnmaskError, match="baseline"):
        build_baseline(name)(occluded, empty[:, :, :8])
