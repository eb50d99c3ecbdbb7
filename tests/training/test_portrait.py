"""Seed 003's trainer: the frozen parser, the swapped pairs, the KL term, its phases, and that the paired
phase learns to rebuild faces."""

import numpy as np
import pytest
import torch

from unmask.data.synthetic import render_face, sample_identity
from unmask.errors import ConfigError, UnmaskError
from unmask.metrics.image import compute_metrics
from unmask.models.portrait import kl_divergence, kl_per_face
from unmask.training import TrainConfig, build_trainer
from unmask.training.portrait import derangement

PARSER = {"name": "unet", "depth": 2, "base_channels": 4, "out_channels": 11}
SMALL = {"local": {"channels": 16, "latent": 16, "hidden": 32}, "generator": {"base_channels": 16, "n_blocks": 1},
         "discriminator": {"base_channels": 4, "n_layers": 1}, "parser": PARSER}


def _faces(n: int, seed: int = 3):
    faces = [render_face(sample_identity(i), seed, 64) for i in range(n)]
    x = torch.stack([torch.from_numpy(f.image).permute(2, 0, 1).float() / 127.5 - 1 for f in faces])
    lab = torch.stack([torch.from_numpy(f.parsing.astype(np.int64)) for f in faces])
    return {"clean": x, "parsing": lab}


def _trainer(**over):
    raw = {"framework": "portrait", "adv_loss": "minimax", "steps": 10, "batch_size": 4, "image_size": 64,
           "device": "cpu", "threads": 1, "parser_steps": 2, **SMALL, **over}
    return build_trainer(TrainConfig.from_dict(raw))


def test_swapped_pairs_are_a_derangement():
    for n in (2, 3, 8):
        perm = derangement(n)
        assert sorted(perm.tolist()) == list(range(n)) and all(perm[i] != i for i in range(n))
    with pytest.raises(UnmaskError, match="batch_size >= 2"):
        derangement(1)


def test_the_kl_is_zero_for_the_prior_and_positive_otherwise():
    mu, logvar = torch.zeros(3, 8), torch.zeros(3, 8)
    assert kl_divergence(mu, logvar) == 0
    assert (kl_per_face(mu + 0.5, logvar) > 0).all() and (kl_per_face(mu, logvar - 1) > 0).all()
    assert kl_divergence(mu + 0.5, logvar) == pytest.approx(float(kl_per_face(mu + 0.5, logvar).sum()))


def test_the_parser_trains_first_then_is_frozen_and_gets_no_gradient():
    t = _trainer()
    batch = _faces(4)
    names = [p.name for p in t.phases() if p.due(0)], [p.name for p in t.phases() if p.due(2)]
    assert names == (["parser"], ["g", "d"])
    before = {k: v.clone() for k, v in t.generators["P"].state_dict().items()}
    t.train_step(batch)
    assert any(not torch.equal(before[k], v) for k, v in t.generators["P"].state_dict().items())  # it trains
    t.train_step(batch)
    frozen = {k: v.clone() for k, v in t.generators["P"].state_dict().items()}   # running stats included
    grads = [p.grad.clone() for p in t.generators["P"].parameters()]            # its last own step's
    for _ in range(4):
        logs = t.train_step(batch)
    assert "g_paired_parsing" in logs or "g_swapped_parsing" in logs            # the parser is the loss ...
    assert all(torch.equal(frozen[k], v) for k, v in t.generators["P"].state_dict().items())   # ... unchanged
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, t.generators["P"].parameters()))  # no gradient reached it


def test_the_thesis_schedule_alternates_paired_and_swapped_steps_and_the_codes_swaps_every_step():
    t = _trainer(parser_steps=3, steps=20)
    due = [sorted(p.name for p in t.phases() if p.due(s)) for s in range(3, 7)]
    assert due == [["d", "g"], ["d2", "g"], ["d", "g"], ["d2", "g"]]
    t = _trainer(parser_steps=3, steps=20, schedule="code")
    due = [sorted(p.name for p in t.phases() if p.due(s)) for s in range(3, 7)]
    assert due == [["d", "d2", "g"], ["d2", "g"], ["d", "d2", "g"], ["d2", "g"]]


def test_a_parsing_loss_without_a_parser_phase_and_an_unknown_option_are_one_line_each():
    with pytest.raises(ConfigError, match="train.parser_steps: the parsing loss"):
        _trainer(parser_steps=0)
    _trainer(parser_steps=0, weights={"parsing": 0.0})
    with pytest.raises(ConfigError, match="train.eye_crop: unknown 'both'"):
        _trainer(eye_crop="both")
    with pytest.raises(ConfigError, match="train.image_size: .*multiple of 64"):
        _trainer(image_size=32)
    with pytest.raises(ConfigError, match=r"train.parser.name: .*outputs one logit per parsing label"):
        _trainer(parser={"name": "unet", "depth": 2, "base_channels": 4, "out_channels": 3})


def test_masked_eye_crops_hold_only_the_eye_label_and_unmasked_ones_the_skin_around_it():
    batch = _faces(2)
    sources = {n: (batch["clean"], batch["parsing"]) for n in ("left_eye", "right_eye", "skin", "hair", "mouth")}
    blank = {}
    for eye_crop in ("unmasked", "masked"):
        part = _trainer(eye_crop=eye_crop).embed(sources, sample=False)["left_eye"][3]
        blank[eye_crop] = float((part == 0).all(1).float().mean())    # share of the window zeroed
    assert blank["unmasked"] < 0.01 and blank["masked"] > 0.3        # the eye is a small part of its window


def test_the_paired_phase_rebuilds_four_faces():
    torch.manual_seed(0)
    batch = _faces(4)
    t = _trainer(steps=200, parser_steps=0, schedule="code", lr_g=2e-3,
                 weights={"adv": 0.0, "fm": 0.0, "parsing": 0.0},
                 local={"channels": 32, "latent": 32, "hidden": 64}, generator={"base_channels": 32, "n_blocks": 1})
    def psnr() -> float:
        out = t.translate(batch["clean"], batch["parsing"][:, None].float())
        return float(compute_metrics((out + 1) / 2, (batch["clean"] + 1) / 2)["psnr"].mean())
    start = psnr()
    for _ in range(120):
        t.train_step(batch)
    end = psnr()   # 12.3 -> 22.8 dB on an AMD EPYC (AVX-512), above 23 on others: floats differ by CPU
    assert start < 15 and end > 20 and end - start > 7
