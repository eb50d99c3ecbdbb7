"""Unmasking by parsing (seed003_unmask): the editor restores inside the mask only, from the visible
pixels only, on the map its ``map_from`` names; the mouth comes from a prior kept in the checkpoint."""

import numpy as np
import pytest
import torch

from unmask.config import SynthesizeConfig
from unmask.data.occlusions import OCCLUDERS
from unmask.data.synthetic import render_face, sample_identity
from unmask.errors import ConfigError, UnmaskError
from unmask.metrics import MetricSuite
from unmask.training import TrainConfig, build_trainer, load_trainer

UNET = {"name": "unet", "depth": 2, "base_channels": 4, "out_channels": 11}
SMALL = {"local": {"channels": 16, "latent": 16, "hidden": 32}, "generator": {"base_channels": 16, "n_blocks": 1},
         "discriminator": {"base_channels": 4, "n_layers": 1}, "parser": UNET, "completer": UNET}


def _batch(n: int = 4):
    faces, occ = [], []
    for i in range(n):
        f = render_face(sample_identity(i), 0, 64)
        faces.append(f)
        occ.append(OCCLUDERS["surgical"].from_config(SynthesizeConfig())(f.image, f.landmarks, np.random.default_rng(i)))
    img = lambda a: torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).float() / 127.5 - 1  # noqa: E731
    return {"clean": img([f.image for f in faces]), "occluded": img([o.image for o in occ]),
            "mask": torch.from_numpy(np.stack([o.mask for o in occ])).float()[:, None],
            "parsing": torch.from_numpy(np.stack([f.parsing for f in faces]).astype(np.int64)),
            "landmarks": torch.from_numpy(np.stack([f.landmarks for f in faces])).float()}


def _trainer(map_from: str, steps: int = 6):
    t = build_trainer(TrainConfig.from_dict({
        "framework": "parsing_unmask", "adv_loss": "minimax", "steps": 20, "batch_size": 4, "image_size": 64,
        "device": "cpu", "threads": 1, "parser_steps": 2, "map_from": map_from, **SMALL}))
    b = _batch()
    for _ in range(steps):
        t.train_step(b)
    return t, b


def test_the_restoration_keeps_every_pixel_outside_the_mask_and_ignores_the_occluders_pixels():
    t, b = _trainer("oracle")
    x, cond = t.inputs(b)
    out = t.translate(x, cond)
    outside = (b["mask"] < 0.5).expand_as(out)
    assert torch.equal(out[outside], b["occluded"][outside])
    assert not torch.equal(out, b["occluded"])                   # something was painted in the mask
    noisy = torch.where(b["mask"] > 0.5, torch.rand_like(x) * 2 - 1, x)
    assert torch.allclose(t.translate(noisy, cond)[~outside], out[~outside], atol=1e-6)   # what the mask hid is not used


def test_each_map_source_is_what_it_says_and_a_map_cell_needs_its_map():
    oracle, b = _trainer("oracle", steps=1)
    assert oracle.measure(b, MetricSuite.none())["map_hole_miou"].mean() == 1.0
    landmarks, _ = _trainer("landmarks", steps=1)
    assert 0.2 < float(landmarks.measure(b, MetricSuite.none())["map_hole_miou"].mean()) < 1.0
    with pytest.raises(UnmaskError, match="takes its map from landmarks"):
        landmarks.translate(b["occluded"], b["mask"])
    completer, _ = _trainer("completer")
    assert "completer" in [p.name for p in completer.phases()]
    assert "completer" not in [p.name for p in landmarks.phases()]
    x, cond = completer.inputs(b)
    assert cond.shape[1] == 1 and completer.translate(x, cond).shape == x.shape   # the mask alone suffices
    with pytest.raises(ConfigError, match="train.map_from: unknown 'guess'"):
        _trainer("guess")


def test_the_mouth_prior_follows_training_and_is_kept_in_the_checkpoint(tmp_path):
    t, b = _trainer("completer")
    prior = t.generators["M"]
    assert int(prior.count) == 4 and prior.mean.abs().sum() > 0     # updated on the editor's 4 steps
    t.save_checkpoint(tmp_path / "c.pt")
    again = load_trainer(tmp_path / "c.pt", device="cpu")
    assert torch.equal(again.generators["M"].mean, prior.mean)
    assert torch.equal(again.translate(b["occluded"], b["mask"]), t.translate(b["occluded"], b["mask"]))


def test_infer_takes_only_the_cell_that_runs_on_a_photo(tmp_path):
    from unmask.infer import load_unmasker

    for map_from in ("oracle", "completer"):
        t, _ = _trainer(map_from, steps=1)
        t.save_checkpoint(tmp_path / f"{map_from}.pt")
    with pytest.raises(UnmaskError, match="needs what only a test set has"):
        load_unmasker(str(tmp_path / "oracle.pt"))
    assert load_unmasker(str(tmp_path / "completer.pt")).takes_mask
