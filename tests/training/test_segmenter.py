"""Seed 001's mask segmenter: a one-channel U-Net trained with Dice loss, measured by pixel accuracy,
IoU and Dice, its champion chosen on validation Dice."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest
import torch

from tests.training.helpers import make_batch, tiny_config
from unmask.errors import UnmaskError
from unmask.studies.store import required_test, select_by, storable
from unmask.training import build_trainer, trainer_class


def test_the_segmenter_overfits_four_masks():
    torch.manual_seed(0)
    trainer = build_trainer(tiny_config(framework="segmenter", lr_g=2e-3, steps=150))
    batch = make_batch(5)
    before = trainer.evaluate([batch])
    trainer.fit(itertools.repeat(batch, 150))
    after = trainer.evaluate([batch])
    assert set(after) == {"pixel_acc", "iou", "dice"}
    assert after["dice"] > 0.95 and after["pixel_acc"] > 0.97 and after["dice"] > before["dice"], (before, after)


def test_it_outputs_the_mask_as_a_grey_image_and_declares_what_the_pipeline_asks():
    trainer = build_trainer(tiny_config(framework="segmenter"))
    out = trainer.translate(make_batch(0)["occluded"])
    assert out.shape == (4, 3, 32, 32) and torch.equal(out[:, 0], out[:, 1])
    cls = trainer_class("segmenter")
    assert (cls.pairing, cls.model_input, cls.output, cls.SELECT_BY) == ("paired", "image", "mask", "val_dice")
    with pytest.raises(UnmaskError, match="out_channels"):
        build_trainer(tiny_config(framework="segmenter", generator={"out_channels": 3}))


def test_stored_and_champion_rules_follow_the_trainer():
    seg = {"status": "TERMINATED", "checkpoint": "x.pt", "framework": "segmenter",
           "test_pixel_acc": 0.98, "test_iou": 0.9, "test_dice": 0.95}
    assert required_test(seg) == ("test_pixel_acc", "test_iou", "test_dice")
    assert storable(seg)                                         # no image metrics or LPIPS asked of it
    assert not storable({**seg, "test_dice": float("nan")})
    img = {"status": "TERMINATED", "checkpoint": "x.pt", "framework": "paired", "test_psnr": 20.0}
    assert "test_psnr" in required_test(img) and not storable(img)
    assert select_by(pd.DataFrame({"framework": ["segmenter", "segmenter"]})) == "val_dice"
    assert select_by(pd.DataFrame({"framework": ["cyclegan", "paired"]})) == "val_psnr"
