"""Seed 003's measurements: parsing IoU, and the swap metrics on the no-training baselines, whose values
are known by construction."""

import numpy as np
import pytest
import torch

from unmask.data.synthetic import render_face, sample_identity
from unmask.errors import ConfigError
from unmask.metrics.baseline_kinds import BASELINE_KINDS, check_baselines, landmark_raster
from unmask.metrics.parsing import parsing_metrics
from unmask.metrics.portrait import portrait_metrics
from unmask.metrics.portrait_baselines import CopyTarget, CutPaste, RegionMean


def _faces(n: int = 4):
    faces = [render_face(sample_identity(10 + i), 1, 64) for i in range(n)]
    x = torch.stack([torch.from_numpy(f.image).permute(2, 0, 1).float() / 127.5 - 1 for f in faces])
    lab = torch.stack([torch.from_numpy(f.parsing.astype(np.int64)) for f in faces])
    lm = torch.stack([torch.from_numpy(f.landmarks) for f in faces])
    return x, lab, lm


def test_parsing_metrics_count_each_label_present_and_skip_absent_ones():
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, :2] = 1
    pred = target.clone()
    pred[0, 0, 0] = 10                                 # one skin pixel called hair
    m = parsing_metrics(pred, target)
    assert m["parse_acc"].item() == pytest.approx(15 / 16)
    assert m["parse_iou_skin"].item() == pytest.approx(7 / 8) and m["parse_iou_hair"].item() == 0
    assert torch.isnan(m["parse_iou_nose"]).all()        # in neither map: not counted
    assert m["parse_miou"].item() == pytest.approx((1 + 7 / 8 + 0) / 3)
    inside = torch.zeros(1, 4, 4)
    inside[0, 2:] = 1
    assert parsing_metrics(pred, target, region=inside)["parse_acc"].item() == 1.0


def test_copying_the_target_reconstructs_exactly_moves_no_colour_and_leaks_nothing():
    x, lab, _ = _faces()
    m = portrait_metrics(CopyTarget(), x, lab)
    assert (m["recon_l1"] == 0).all() and (m["leak"] == 0).all()
    assert (m["transfer_skin"] > 0.02).all()            # the source's skin is another colour: not moved
    assert torch.isnan(m["locality"]).all() and "kl" not in m


def test_region_colours_move_every_swapped_component_to_the_source_and_cut_paste_only_where_pasted():
    x, lab, _ = _faces()
    copy, region, paste = (portrait_metrics(b, x, lab) for b in (CopyTarget(), RegionMean(), CutPaste()))
    for g in ("skin", "hair", "mouth"):
        assert float(region[f"transfer_{g}"].nanmean()) < 0.5 * float(copy[f"transfer_{g}"].nanmean())
    assert float(region["recon_psnr"].mean()) < 40 and float(region["recon_psnr"].mean()) > 15   # a floor, not a copy
    assert float(paste["transfer_skin"].nanmean()) < float(copy["transfer_skin"].nanmean())
    assert float(paste["locality"].nanmean()) < 1                 # a pasted window changes little outside it


def test_the_landmark_raster_finds_the_face_and_no_hair():
    x, lab, lm = _faces()
    labels = landmark_raster((x + 1) / 2, lm)
    m = parsing_metrics(labels, lab)
    assert float(m["parse_iou_skin"].mean()) > 0.5 and float(m["parse_iou_nose"].mean()) > 0.4
    assert (labels != 10).all()


def test_a_baseline_of_another_output_is_refused_naming_the_key():
    check_baselines(["copy_target", "region_mean"], "portrait")
    with pytest.raises(ConfigError, match="studies.s.baselines: unknown baseline 'telea' for a portrait-editing"):
        check_baselines(["telea"], "portrait", key="studies.s.baselines")
    assert set(BASELINE_KINDS) == {"image", "mask", "parsing", "portrait"}


def test_fid_without_its_inception_weights_is_na_and_a_damaged_file_is_one_line(tmp_path, monkeypatch):
    from unmask.errors import UnmaskError
    from unmask.metrics import MetricSuite
    from unmask.metrics.fid import INCEPTION_FILE, load_fid

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    suite = MetricSuite(str(tmp_path), names=["fid"])
    assert suite.asked == ("fid",) and not suite.set_level
    assert suite.notes() == {"note_fid": suite.unavailable["fid"]}
    assert suite.unavailable["fid"].startswith("n/a: Inception weights missing")
    (tmp_path / INCEPTION_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(UnmaskError, match=f"{INCEPTION_FILE}: not a readable Inception checkpoint"):
        load_fid(str(tmp_path))


def test_embedding_use_is_zero_for_a_generator_that_ignores_its_embeddings():
    from unmask.training import TrainConfig, build_trainer

    trainer = build_trainer(TrainConfig.from_dict({
        "framework": "portrait", "device": "cpu", "threads": 1, "batch_size": 4, "steps": 4, "image_size": 64,
        "parser_steps": 1, "parser": {"name": "unet", "depth": 2, "base_channels": 4, "out_channels": 11},
        "local": {"channels": 8, "latent": 8, "hidden": 8}, "generator": {"base_channels": 8, "n_blocks": 1},
        "discriminator": {"base_channels": 4}}))
    x, lab, _ = _faces()
    assert (portrait_metrics(trainer, x, lab)["code_use"] > 0).all()       # its codes change its output

    class Ignoring:            # the same generator with every embedding replaced by zero (a collapsed encoder)
        def compose(self, target, target_map, sources=None, codes=None):
            post = trainer.posterior(target, target_map)
            return trainer.compose(target, target_map, codes={k: torch.zeros_like(mu) for k, (mu, _) in post.items()})

        def posterior(self, image, labels):
            return trainer.posterior(image, labels)
    assert portrait_metrics(Ignoring(), x, lab)["code_use"].abs().max() == 0
