"""SSIM-based losses, the mask-weighted L1/L2 and the LOSS_TERMS registry, on hand-checkable cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

from unmask.errors import ConfigError, UnmaskError
from unmask.losses import LOSS_TERMS, dssim, ssim_index, ssim_loss, weighted_recon

C1 = 0.01 ** 2   # SSIM's (K1 * data_range)^2 with data_range 1


def _smooth(size: int = 32) -> np.ndarray:
    """An (H, W, 3) image in [0, 1] with structure in every channel."""
    y, x = np.mgrid[0:size, 0:size] / size
    return np.stack([0.5 + 0.4 * np.sin(7 * x), 0.3 + 0.5 * y * x, 0.6 - 0.3 * np.cos(5 * y)], -1)


def _pm1(img01: np.ndarray) -> torch.Tensor:
    """(H, W, 3) in [0, 1] -> (1, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(img01).permute(2, 0, 1)[None].float() * 2 - 1


def test_identical_images_give_zero():
    x = _pm1(_smooth())
    assert dssim(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert ssim_loss(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert ssim_index(x, x).item() == pytest.approx(1.0, abs=1e-6)


def test_constant_images_reduce_to_the_luminance_term():
    # flat images have zero variance, so SSIM = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1) exactly
    # (float64: in float32 the window's variance E[x^2] - mu^2 leaves ~1e-8, i.e. ~1e-4 of SSIM via C2)
    a, b = 0.5, 0.6
    shape = (2, 3, 16, 16)
    pred = torch.full(shape, 2 * a - 1, dtype=torch.float64)
    target = torch.full(shape, 2 * b - 1, dtype=torch.float64)
    want = (2 * a * b + C1) / (a * a + b * b + C1)           # 0.98361...
    assert ssim_index(pred, target).item() == pytest.approx(want, abs=1e-5)
    assert dssim(pred, target).item() == pytest.approx((1 - want) / 2, abs=1e-5)
    assert ssim_loss(pred, target).item() == pytest.approx(1 - want, abs=1e-5)
    assert dssim(pred.float(), target.float()).item() == pytest.approx((1 - want) / 2, abs=2e-4)


def test_dssim_matches_scikit_image():
    rng = np.random.default_rng(0)
    a = _smooth()
    b = np.clip(a + rng.normal(0, 0.08, a.shape), 0, 1)
    sk = structural_similarity(a, b, channel_axis=-1, data_range=1, gaussian_weights=True, sigma=1.5,
                               use_sample_covariance=False)
    assert 0.2 < sk < 0.95
    assert dssim(_pm1(a), _pm1(b)).item() == pytest.approx((1 - sk) / 2, abs=2e-5)
    assert LOSS_TERMS.get("ssim", "t")(_pm1(a), _pm1(b), None).item() == pytest.approx(1 - sk, abs=4e-5)


def test_dssim_is_differentiable_and_works_on_small_images():
    torch.manual_seed(0)
    target = torch.rand(2, 3, 8, 8) * 2 - 1              # 8 px: 7-px window, as the ssim metric
    pred = (torch.rand(2, 3, 8, 8) * 2 - 1).requires_grad_()
    loss = dssim(pred, target)
    loss.backward()
    assert loss.dim() == 0 and 0 < loss.item() < 1
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_weighted_recon_hand_case():
    pred = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])   # top-left pixel is the hole
    # mean over all 4 pixels of loss * (2 in the hole, 0.5 outside)
    assert weighted_recon(pred, target, mask, hole=2, valid=0.5).item() == pytest.approx((2 * 1 + 0.5 * 9) / 4)
    assert weighted_recon(pred, target, mask, hole=2, valid=0.5, kind="l2").item() == \
        pytest.approx((2 * 1 + 0.5 * (4 + 9 + 16)) / 4)
    assert weighted_recon(pred, target, mask).item() == pytest.approx(F.l1_loss(pred, target).item())
    assert weighted_recon(pred, target, mask, kind="l2").item() == pytest.approx(F.mse_loss(pred, target).item())


def test_weighted_recon_broadcasts_the_mask_and_splits_into_hole_and_valid():
    torch.manual_seed(1)
    pred, target = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    mask = (torch.rand(2, 1, 8, 8) > 0.7).float()
    h = weighted_recon(pred, target, mask, hole=1, valid=0)
    v = weighted_recon(pred, target, mask, hole=0, valid=1)
    assert weighted_recon(pred, target, mask, hole=6, valid=1).item() == pytest.approx(6 * h.item() + v.item())
    assert weighted_recon(pred, target, mask.expand(2, 3, 8, 8), hole=1, valid=0).item() == pytest.approx(h.item())
    m3 = mask.expand_as(pred).bool()
    assert h.item() == pytest.approx((pred - target).abs()[m3].sum().item() / pred.numel())


def test_weighted_recon_rejects_bad_input():
    x = torch.zeros(2, 3, 8, 8)
    with pytest.raises(UnmaskError, match="mask must be"):
        weighted_recon(x, x, torch.zeros(2, 2, 8, 8))
    with pytest.raises(ConfigError, match="unknown kind 'l3'"):
        weighted_recon(x, x, torch.zeros(2, 1, 8, 8), kind="l3")
    with pytest.raises(UnmaskError, match="one shape"):
        dssim(x, torch.zeros(2, 3, 4, 4))


def test_loss_term_registry():
    assert LOSS_TERMS.names() == ["dssim", "l1", "l1_hole", "l1_valid", "mse", "ssim"]
    torch.manual_seed(2)
    pred, target = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    mask = torch.zeros(2, 1, 16, 16)
    mask[:, :, 4:10, 3:12] = 1
    terms = {name: LOSS_TERMS.get(name, "train.recon_terms")(pred, target, mask) for name in LOSS_TERMS}
    assert all(t.dim() == 0 and math.isfinite(t.item()) for t in terms.values())
    assert terms["l1"].item() == pytest.approx(F.l1_loss(pred, target).item())
    assert terms["mse"].item() == pytest.approx(F.mse_loss(pred, target).item())
    assert terms["l1_hole"].item() + terms["l1_valid"].item() == pytest.approx(terms["l1"].item())
    assert terms["ssim"].item() == pytest.approx(2 * terms["dssim"].item())
    for name in ("l1", "mse", "dssim", "ssim"):   # these ignore the mask
        assert LOSS_TERMS.get(name, "k")(pred, target, None).item() == pytest.approx(terms[name].item())
    with pytest.raises(UnmaskError, match="'l1_hole' needs a mask"):
        LOSS_TERMS.get("l1_hole", "k")(pred, target, None)
    with pytest.raises(ConfigError, match=r"train\.recon_terms: unknown loss term 'l3'"):
        LOSS_TERMS.get("l3", "train.recon_terms")
