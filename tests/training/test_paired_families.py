"""The paired trainer serves every paired family by data: a U-Net autoencoder, a cGAN, a two-stage
inpainter; what it needs (pairing, model input, weights, phases) is declared and asked, not named."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from tests.training.helpers import SIZE, make_batch
from unmask.errors import ConfigError, UnmaskError
from unmask.studies.trial import Unmasker, model_input
from unmask.training import TRAINERS, TrainConfig, build_trainer, trainer_class
from unmask.training.base import MODEL_INPUTS, OUTPUTS

UNET = {"name": "unet", "depth": 3, "base_channels": 8, "norm": "batch"}


def paired(**kw) -> TrainConfig:
    base = dict(framework="paired", device="cpu", threads=1, batch_size=4, steps=4, val_every=0,
                checkpoint_every=0, log_every=1, image_size=SIZE, generator=UNET,
                discriminator={"name": "dcgan", "base_channels": 8})
    return TrainConfig.from_dict({**base, **kw})


def test_every_trainer_declares_what_the_pipeline_asks():
    for name in TRAINERS:
        cls = trainer_class(name)
        assert cls.pairing in ("paired", "unpaired")
        assert cls.model_input in MODEL_INPUTS and cls.output in OUTPUTS
        assert cls.WEIGHTS and all(isinstance(v, float) for v in cls.WEIGHTS.values())
    assert trainer_class("paired").pairing == "paired" and trainer_class("cyclegan").pairing == "unpaired"


def test_unknown_loss_term_names_the_key_and_the_trainers_terms():
    with pytest.raises(ConfigError, match=r"train\.weights\.cycle: not a loss term of framework 'paired'.*mse"):
        build_trainer(paired(weights={"cycle": 1.0}))


def test_an_autoencoder_has_no_discriminator_phase_and_a_cgan_has_one():
    ae = build_trainer(paired(weights={"adv": 0.0, "mse": 1.0}))
    gan = build_trainer(paired(weights={"adv": 0.01, "mse": 1.0}, adv_loss="minimax", n_critic=1))
    assert [p.name for p in ae.phases()] == ["g"] and len(ae.discriminators) == 0
    assert [p.name for p in gan.phases()] == ["g", "d"]
    logs = gan.train_step(make_batch(0))
    assert {"g_mse", "g_adv", "d_adv", "g_total", "d_total"} <= logs.keys()
    assert "d_total" not in ae.train_step(make_batch(0))


def test_the_exported_model_takes_what_the_trainer_declares():
    trainer = build_trainer(paired(weights={"adv": 0.0, "l1": 1.0}))
    batch = make_batch(0)
    x = model_input(batch, trainer)
    assert x.shape == (4, 4, SIZE, SIZE)                     # image + mask
    out = Unmasker(trainer)(x)
    known = batch["mask"].expand_as(out) < 0.5
    assert torch.equal(out[known], batch["occluded"][known])  # known pixels pasted back exactly


def test_a_tiny_paired_unet_overfits_four_images():
    torch.manual_seed(0)
    trainer = build_trainer(paired(generator={**UNET, "norm": "instance"}, weights={"adv": 0.0, "mse": 1.0},
                                   lr_g=2e-3, steps=300))
    batch = make_batch(3)
    before = trainer.evaluate([batch])["psnr_masked"]
    trainer.fit(itertools.repeat(batch, 300))
    after = trainer.evaluate([batch])["psnr_masked"]
    assert after > before + 10 and after > 25, (before, after)


def test_a_two_stage_unet_trains_both_stages_and_weighs_stage_one():
    trainer = build_trainer(paired(generator={**UNET, "stages": 2}, weights={"adv": 0.0, "l1": 1.0, "stage1": 10.0}))
    logs = trainer.train_step(make_batch(0))
    assert {"g_s1_l1", "g_s2_l1"} <= logs.keys()
    assert logs["g_total"] == pytest.approx(10 * logs["g_s1_l1"] + logs["g_s2_l1"], rel=1e-5)


def test_a_configuration_needing_missing_vgg_weights_is_not_run(tmp_path):
    cfg = paired(weights={"adv": 0.0, "l1": 1.0, "perceptual": 0.1}, pretrained_dir=str(tmp_path))
    reasons = trainer_class(cfg).requirements(cfg)
    assert len(reasons) == 1 and "VGG-19 weights missing" in reasons[0] and str(tmp_path) in reasons[0]
    with pytest.raises(UnmaskError, match="not run: VGG-19 weights missing"):
        build_trainer(cfg)
    assert trainer_class(cfg).requirements(paired(weights={"adv": 0.0, "l1": 1.0})) == []


def test_each_stage_of_a_two_stage_gan_has_its_own_discriminator():
    trainer = build_trainer(paired(generator={**UNET, "stages": 2}, adv_loss="minimax", n_critic=1,
                                   discriminator={"name": "patchgan", "image_size": SIZE, "base_channels": 8,
                                                  "n_layers": 2},
                                   weights={"adv": 1.0, "l1": 10.0, "ssim": 10.0, "stage1": 10.0}))
    assert sorted(trainer.discriminators) == ["D1", "D2"]
    logs = trainer.train_step(make_batch(0))
    assert {"d_adv_s1", "d_adv_s2", "g_s1_ssim", "g_s2_ssim", "g_adv"} <= logs.keys()


def test_a_sweep_plans_configurations_needing_missing_weights_as_not_run(tmp_path):
    from unmask.studies.results import not_run_reasons, not_run_rows

    trials = [{"study": "s", "cell": {"weights.perceptual": p}, "cell_label": f"p={p}", "seed": 0, "image_size": SIZE,
               "kinds": None, "train": paired(weights={"adv": 0.0, "l1": 1.0, "perceptual": p},
                                              pretrained_dir=str(tmp_path)).to_dict()} for p in (0.0, 0.5)]
    reasons = not_run_reasons(trials)
    assert list(reasons) == [("p=0.5", 0)] and reasons[("p=0.5", 0)].startswith("not run: VGG-19 weights missing")
    rows = not_run_rows("s", trials, reasons, "synthetic")
    assert rows["status"].tolist() == ["NOT_RUN"] and math.isnan(rows["test_psnr"].iloc[0])
