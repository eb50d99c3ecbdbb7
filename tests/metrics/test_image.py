"""Image metrics agree with scikit-image and look only where they should."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from unmask.errors import UnmaskError
from unmask.metrics import aggregate, compute_metrics
from unmask.metrics.image import ssim_window


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)[None].float()


def _sk_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return structural_similarity(a, b, channel_axis=-1, data_range=1, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False)


def _smooth(size: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] / size
    return np.stack([0.5 + 0.4 * np.sin(3 * x), 0.3 + 0.5 * y * x, 0.6 - 0.3 * np.cos(2 * y)], -1)


def _real_pairs(real_faces_dir, n: int = 4, size: int = 96) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    pairs = []
    for path in sorted(real_faces_dir.glob("*.png"))[:n]:
        img = Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR)
        clean = np.asarray(img, dtype=np.float64) / 255
        blurred = np.asarray(img.resize((size // 4, size // 4)).resize((size, size), Image.BILINEAR)) / 255
        noisy = np.clip(clean + rng.normal(0, 0.05, clean.shape), 0, 1)
        pairs += [(blurred.astype(np.float64), clean), (noisy, clean)]
    return pairs


def _random_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(1)
    base = rng.random((48, 40, 3))
    return [(rng.random((48, 40, 3)), base), (np.clip(base + rng.normal(0, 0.1, base.shape), 0, 1), base),
            (np.clip(base + 0.002, 0, 1), base)]


def _smooth_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(2)
    img = _smooth()
    return [(np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1), img), (img[::-1].copy(), img)]


def _check_against_skimage(pairs):
    for pred, target in pairs:
        got = compute_metrics(_to_tensor(pred), _to_tensor(target))
        assert got["psnr"].item() == pytest.approx(peak_signal_noise_ratio(target, pred, data_range=1), abs=1e-4)
        assert got["ssim"].item() == pytest.approx(_sk_ssim(pred, target), abs=1e-3)   # contract: 0.01
        assert got["l1"].item() == pytest.approx(np.abs(pred - target).mean(), rel=1e-5)
        assert got["l2"].item() == pytest.approx(((pred - target) ** 2).mean(), rel=1e-5)


def test_psnr_and_ssim_match_skimage_on_random_images():
    _check_against_skimage(_random_pairs())


def test_psnr_and_ssim_match_skimage_on_a_smooth_image():
    _check_against_skimage(_smooth_pairs())


def test_psnr_and_ssim_match_skimage_on_real_photos(real_faces_dir):
    _check_against_skimage(_real_pairs(real_faces_dir))


def test_batch_values_are_per_image():
    pairs = _random_pairs()
    pred = torch.cat([_to_tensor(p) for p, _ in pairs])
    target = torch.cat([_to_tensor(t) for _, t in pairs])
    batch = compute_metrics(pred, target)
    for i, (p, t) in enumerate(pairs):
        single = compute_metrics(_to_tensor(p), _to_tensor(t))
        for key in ("l1", "l2", "psnr", "ssim"):
            assert batch[key].shape == (len(pairs),)
            assert batch[key][i].item() == pytest.approx(single[key].item(), rel=1e-5)


def test_identical_images_hit_the_mse_floor_and_inputs_are_clamped():
    img = _to_tensor(_smooth(32))
    same = compute_metrics(img, img)
    assert same["psnr"].item() == pytest.approx(100.0)          # MSE floored at 1e-10, not inf
    assert same["ssim"].item() == pytest.approx(1.0, abs=1e-5)
    over = img.clone()
    over[..., :4, :4] = 1.7                                        # out of range -> clamped to 1
    clamped = over.clamp(0, 1)
    assert compute_metrics(over, img)["psnr"].item() == pytest.approx(compute_metrics(clamped, img)["psnr"].item())


def test_mse255_is_mse_on_the_0_255_scale():
    # one grey level off everywhere: (255 * 1/255)^2 = 1
    pred, target = torch.zeros(2, 3, 8, 8), torch.full((2, 3, 8, 8), 1 / 255)
    got = compute_metrics(pred, target)["mse255"]
    assert got.shape == (2,) and got.tolist() == pytest.approx([1.0, 1.0], rel=1e-5)
    # per image, averaged over pixels and channels: image 1 has 10 levels off in one channel only
    target[1] = 0
    target[1, 0] = 10 / 255
    got = compute_metrics(pred, target)
    assert got["mse255"].tolist() == pytest.approx([1.0, 100 / 3], rel=1e-5)
    assert torch.allclose(got["mse255"], got["l2"] * 255 ** 2, rtol=1e-5)


def test_small_images_shrink_the_ssim_window():
    assert ssim_window(256, 256) == 11 and ssim_window(10, 12) == 9 and ssim_window(8, 64) == 7
    rng = np.random.default_rng(3)
    a, b = rng.random((8, 8, 3)), rng.random((8, 8, 3))
    got = compute_metrics(_to_tensor(a), _to_tensor(b))["ssim"].item()
    assert math.isfinite(got) and got < 0.5
    assert compute_metrics(_to_tensor(a), _to_tensor(a))["ssim"].item() == pytest.approx(1.0, abs=1e-5)


def _masked_case():
    rng = np.random.default_rng(4)
    target = torch.from_numpy(rng.random((2, 3, 16, 16))).float()
    pred = torch.from_numpy(rng.random((2, 3, 16, 16))).float()
    mask = torch.zeros(2, 1, 16, 16)
    mask[0, :, 8:, 4:12] = 1
    mask[1, :, :3, :] = 1
    return pred, target, mask


def test_masked_metrics_average_over_masked_pixels_only():
    pred, target, mask = _masked_case()
    got = compute_metrics(pred, target, mask)
    m = mask.bool().expand_as(pred)
    for i in range(2):
        d = (pred[i] - target[i])[m[i]]
        assert got["l1_masked"][i].item() == pytest.approx(d.abs().mean().item(), rel=1e-5)
        assert got["l2_masked"][i].item() == pytest.approx(d.pow(2).mean().item(), rel=1e-5)
        assert got["psnr_masked"][i].item() == pytest.approx(-10 * math.log10(d.pow(2).mean().item()), rel=1e-5)
    # scribbling outside the mask changes the global metrics but not the masked ones
    scribbled = torch.where(mask.bool(), pred, torch.rand_like(pred))
    again = compute_metrics(scribbled, target, mask)
    for key in ("l1_masked", "l2_masked", "psnr_masked"):
        assert torch.equal(again[key], got[key])
    assert not torch.allclose(again["l1"], got["l1"])
    # and changing pixels inside does change them
    inside = torch.where(mask.bool(), target, pred)
    assert (compute_metrics(inside, target, mask)["l1_masked"] < 1e-7).all()


def test_empty_mask_gives_nan_and_aggregate_skips_it():
    pred, target, mask = _masked_case()
    mask[1] = 0
    got = compute_metrics(pred, target, mask)
    assert math.isnan(got["l1_masked"][1].item()) and math.isfinite(got["l1_masked"][0].item())
    agg = aggregate([got])
    assert agg["l1_masked"] == pytest.approx(got["l1_masked"][0].item())
    assert agg["l1"] == pytest.approx(got["l1"].mean().item())


def test_aggregate_weights_every_image_equally_across_batches():
    batches = [{"psnr": torch.tensor([10.0, 20.0])}, {"psnr": torch.tensor([30.0])}]
    assert aggregate(batches) == {"psnr": pytest.approx(20.0)}
    assert math.isnan(aggregate([{"l1_masked": torch.tensor([math.nan])}])["l1_masked"])
    assert aggregate([]) == {}


def test_lpips_is_left_out_when_unavailable(offline, tmp_path):
    from unmask.metrics import MetricSuite

    pred, target, mask = _masked_case()
    suite = MetricSuite(str(tmp_path), names=["lpips"])
    got = suite(pred, target, mask)
    assert set(got) == {"l1", "l2", "mse255", "psnr", "ssim", "l1_masked", "l2_masked", "psnr_masked"}
    assert got.keys() == compute_metrics(pred, target, mask).keys()
    assert suite.note("lpips").startswith("n/a: weights missing")


def test_bad_shapes_are_one_line_errors():
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(UnmaskError, match="compute_metrics"):
        compute_metrics(x, torch.rand(2, 3, 8, 9))
    with pytest.raises(UnmaskError, match="mask must be"):
        compute_metrics(x, x, torch.ones(2, 3, 8, 8))
