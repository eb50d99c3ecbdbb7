"""fit: the callback schedule, validation metrics, checkpoints, and a tiny CycleGAN that learns."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from unmask.training import build_trainer

from tests.training.helpers import batch_stream, make_batch, tiny_config


def _val_batches():
    return [make_batch(1000), make_batch(1001)]


def test_callback_gets_train_means_and_validation_metrics(tmp_path) -> None:
    cfg = tiny_config(framework="cyclegan", generator={"approach": "mask"}, steps=6, log_every=2,
                      val_every=3, checkpoint_every=4)
    calls: list[tuple[int, dict[str, float]]] = []
    result = build_trainer(cfg).fit(batch_stream(paired=False), val_batches=_val_batches,
                                    callback=lambda step, m: calls.append((step, m)), checkpoint_dir=tmp_path)
    train = [(s, m) for s, m in calls if "g_total" in m]
    val = [(s, m) for s, m in calls if "val_psnr" in m]
    assert [s for s, _ in train] == [2, 4, 6]
    assert [s for s, _ in val] == [3, 6]
    assert len(calls) == 5
    assert {"d_total", "g_adv", "g_cycle", "g_idt", "mask_mean"} <= train[0][1].keys()
    want = {"val_l1", "val_l2", "val_psnr", "val_ssim", "val_l1_masked", "val_l2_masked", "val_psnr_masked"}
    assert want <= val[-1][1].keys()
    assert all(isinstance(v, float) for _, m in calls for v in m.values())
    assert result["step"] == 6
    assert result["val_psnr"] == val[-1][1]["val_psnr"] and result["g_total"] == train[-1][1]["g_total"]
    assert torch.load(tmp_path / "last.pt", weights_only=True)["step"] == 6


def test_validation_does_not_change_training() -> None:
    cfg = tiny_config(steps=4, val_every=2)
    with_val, without = build_trainer(cfg), build_trainer(cfg)
    with_val.fit(batch_stream(paired=False), val_batches=_val_batches)
    without.fit(batch_stream(paired=False))
    for a, b in zip(with_val.generators.parameters(), without.generators.parameters()):
        assert torch.equal(a, b)


def test_fit_stops_when_the_batches_run_out(tmp_path) -> None:
    trainer = build_trainer(tiny_config(steps=10))
    result = trainer.fit([make_batch(i, paired=False) for i in range(3)], checkpoint_dir=tmp_path)
    assert trainer.step == 3 and result["step"] == 3
    assert torch.load(tmp_path / "last.pt", weights_only=True)["step"] == 3


def test_evaluate_scores_the_paired_model_on_its_composite() -> None:
    trainer = build_trainer(tiny_config(framework="paired"))
    metrics = trainer.evaluate(_val_batches())
    assert metrics["l1"] == pytest.approx(metrics["l1_masked"] / 2, rel=1e-4), \
        "half the image is masked and the other half is pasted back unchanged"
    assert 0 < metrics["ssim"] < 1 and metrics["psnr"] > 0


def test_tiny_cyclegan_overfits_a_batch() -> None:
    """Four 32 px images, 8 base channels, one block: the cycle loss falls >= 3x in 100 steps
    (measured 0.94 -> 0.19, 4.9x, with 1 thread)."""
    cfg = dataclasses.replace(tiny_config(), lr_g=2e-3, lr_d=2e-3)
    trainer = build_trainer(cfg)
    batch = make_batch(0, paired=False)
    cycle = [trainer.train_step(batch)["g_cycle"] for _ in range(100)]
    assert sum(cycle[-5:]) / 5 <= cycle[0] / 3, (cycle[0], cycle[-5:])
