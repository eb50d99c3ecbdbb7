"""`unmask infer`: a face found in a larger photo is aligned, unmasked and blended back; nothing
outside the (dilated) mask changes, and the alignment's inverse puts the crop back where it came from."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
import torch

from unmask.cli import main
from unmask.config import SynthesizeConfig
from unmask.data.align import align_image, ffhq_quad
from unmask.data.occlusions import OCCLUDERS
from unmask.data.synthetic import render_face, sample_identity
from unmask.errors import UnmaskError
from unmask.infer import crop_to_photo, infer, load_unmasker, unmask_face
from unmask.training import TrainConfig, build_trainer

SIZE = 32
CANVAS = (240, 320)
OFFSET = (150, 60)    # x, y of the 128 px face on the canvas


def _occluded_face(i: int, size: int = 128):
    face = render_face(sample_identity(1000 + i), i, size, glasses_prob=0.0)
    occ = OCCLUDERS["surgical"].from_config(SynthesizeConfig())(face.image, face.landmarks,
                                                               np.random.default_rng(i))
    return face, occ


@pytest.fixture(scope="module")
def aligned_data():
    """24 synthetic masked faces aligned at 32 px: occluded, clean, mask tensors."""
    occl, clean, masks = [], [], []
    for i in range(24):
        face, occ = _occluded_face(i)
        a = align_image(face.image, face.landmarks, SIZE, extra=occ.image)
        m = align_image(np.repeat(occ.mask[..., None].astype(np.uint8) * 255, 3, 2), face.landmarks, SIZE).image
        clean.append(a.image)
        occl.append(a.extra)
        masks.append(m[..., 0] > 127)
    to_t = lambda xs: torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 127.5 - 1  # noqa: E731
    return {"occluded": to_t(occl), "clean": to_t(clean), "mask": torch.from_numpy(np.stack(masks)).float()[:, None]}


def _train(data, cfg_dict, steps, path):
    cfg = TrainConfig.from_dict(dict(device="cpu", threads=1, batch_size=8, steps=steps, val_every=0,
                                     checkpoint_every=0, image_size=SIZE, **cfg_dict))
    torch.manual_seed(0)
    trainer = build_trainer(cfg)
    g = torch.Generator().manual_seed(0)

    def stream():
        while True:
            idx = torch.randperm(len(data["mask"]), generator=g)[:8]
            yield {k: v[idx] for k, v in data.items()}
    trainer.fit(itertools.islice(stream(), steps))
    trainer.save_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def segmenter(aligned_data, tmp_path_factory):
    """A tiny mask segmenter (seed 001) trained on the same faces."""
    return _train(aligned_data, dict(framework="segmenter", lr_g=2e-3, weights={"dice": 1.0},
                                     generator={"name": "unet", "depth": 3, "base_channels": 8, "norm": "batch",
                                                "out_channels": 1}),
                  200, tmp_path_factory.mktemp("seg") / "seg.pt")


@pytest.fixture(scope="module")
def checkpoint(aligned_data, tmp_path_factory):
    """A tiny paired U-Net trained for a few hundred steps on the aligned synthetic faces (32 px)."""
    return _train(aligned_data, dict(framework="paired", lr_g=2e-3, weights={"adv": 0.0, "l1": 1.0},
                                     generator={"name": "unet", "depth": 3, "base_channels": 8, "norm": "instance"}),
                  300, tmp_path_factory.mktemp("model") / "unet.pt")


def _photo():
    """A masked face off-centre on a larger canvas, its clean version, the mask and the landmarks."""
    face, occ = _occluded_face(101)    # one dlib finds through the mask (not every masked face is found)
    x, y = OFFSET
    canvas = np.full((*CANVAS, 3), 90, np.uint8)
    clean = canvas.copy()
    clean[y:y + 128, x:x + 128] = face.image
    photo = clean.copy()
    photo[y:y + 128, x:x + 128] = occ.image
    mask = np.zeros(CANVAS, bool)
    mask[y:y + 128, x:x + 128] = occ.mask
    return photo, clean, mask, face.landmarks + [x, y]


def test_the_inverse_warp_maps_the_crop_corners_onto_the_quad():
    _, _, _, lm = _photo()
    quad = ffhq_quad(lm)
    m = crop_to_photo(quad, SIZE)
    # pixel i spans [i - 0.5, i + 0.5] in index coordinates: the crop's outer corners
    corners = np.array([[-0.5, -0.5], [-0.5, SIZE - 0.5], [SIZE - 0.5, SIZE - 0.5], [SIZE - 0.5, -0.5]])
    mapped = corners @ m[:, :2].T + m[:, 2]
    assert np.abs(mapped - quad).max() < 0.5


def test_infer_restores_the_face_and_leaves_everything_outside_the_dilated_mask_identical(checkpoint, tmp_path):
    photo, clean, mask, lm = _photo()
    model = load_unmasker(str(checkpoint))
    assert model.takes_mask and model.size == SIZE
    res = unmask_face(photo, lm, model, user_mask=mask)
    out = res.output
    changed = np.any(out != photo, axis=2)
    scale = float(np.hypot(*(ffhq_quad(lm)[3] - ffhq_quad(lm)[0]))) / SIZE
    r = max(2, int(round(2 * scale)))
    dilated = cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2)) > 0
    assert changed.any() and not (changed & ~dilated).any()       # bit-identical outside the dilated mask
    err_in = np.abs(photo[mask].astype(float) - clean[mask]).mean()
    err_out = np.abs(out[mask].astype(float) - clean[mask]).mean()
    assert err_out < 0.6 * err_in, (err_in, err_out)               # the mask region is restored


def test_the_command_writes_photos_side_by_side_and_lists_photos_without_a_face(checkpoint, tmp_path, monkeypatch):
    photo, _, mask, _ = _photo()
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "face.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(src / "wall.png"), np.full((120, 160, 3), 200, np.uint8))
    (src / "broken.jpg").write_bytes(b"not a jpeg")
    model = load_unmasker(str(checkpoint))
    written, rejected = infer(src, tmp_path / "out", model, side=True, progress=False)
    assert written == 1, rejected
    assert sorted((p.rsplit("/", 1)[-1], why.split(" (")[0]) for p, why in rejected) == [
        ("broken.jpg", "not an image"), ("wall.png", "no face found")]
    sbs = cv2.imread(str(tmp_path / "out" / "face.png"))
    assert sbs.shape == (CANVAS[0], 3 * CANVAS[1], 3)
    assert (tmp_path / "out" / "rejected.csv").read_text().count("\n") == 3


def test_the_cli_needs_a_model_that_exists(tmp_path, capsys):
    (tmp_path / "p.png").write_bytes(b"")
    rc = main(["infer", str(tmp_path / "p.png"), "--out", str(tmp_path / "o"), "--model", str(tmp_path / "nope.pt")])
    assert rc == 2 and "no such checkpoint file" in capsys.readouterr().err


def test_without_a_mask_the_segmenter_finds_the_region(checkpoint, segmenter):
    photo, clean, mask, lm = _photo()
    res = unmask_face(photo, lm, load_unmasker(str(checkpoint)), segmenter=load_unmasker(str(segmenter), role="segmenter"))
    inter, union = (res.region & mask).sum(), (res.region | mask).sum()
    assert inter / union > 0.5, inter / union                       # the predicted region is the mask
    changed = np.any(res.output != photo, axis=2)
    grown = cv2.dilate(res.region.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    assert changed.any() and not (changed & ~grown).any()


def test_the_face_crop_fallback_only_applies_when_asked():
    from unmask.infer import find_faces_how

    blank = np.full((120, 120, 3), 200, np.uint8)
    assert find_faces_how(blank) == ([], "")
    faces, how = find_faces_how(blank, face_crop=True)
    assert how == "face crop" and len(faces) == 1 and faces[0].shape == (68, 2)
    assert (faces[0] >= 0).all() and (faces[0] < 120).all()


def test_the_default_model_is_the_best_champion_trained_on_face_masks(tmp_path):
    """Seed 002's centre-hole champion has the higher validation PSNR, but on other occlusions: the
    default for a masked photo is the best champion among studies trained on face masks."""
    import pandas as pd

    from unmask.infer import default_model

    cfg = TrainConfig.from_dict(dict(framework="cyclegan", threads=1, device="cpu", steps=1, image_size=16,
                                     generator={"base_channels": 4, "n_blocks": 1}, discriminator={"base_channels": 4}))
    ckpt = tmp_path / "g.pt"
    build_trainer(cfg).save_checkpoint(ckpt)
    for study, psnr in (("holes", 30.0), ("masks_a", 21.0), ("masks_b", 22.0)):
        (tmp_path / "results" / study).mkdir(parents=True)
        pd.DataFrame([{"trial_id": "t", "cell": "{}", "cell_label": "c", "seed": 0, "status": "TERMINATED",
                       "checkpoint": str(ckpt), "val_psnr": psnr}]).to_parquet(tmp_path / "results" / study / "trials.parquet")
    kinds = {"holes": ["centre_hole"], "masks_a": ["surgical", "n95"], "masks_b": ["template:KN95"], "absent": None}
    assert default_model(tmp_path, kinds, need_mask_free=True) == "masks_b:champion"
    with pytest.raises(UnmaskError, match="no trained model found"):
        default_model(tmp_path, {"holes": ["centre_hole"]}, need_mask_free=True)


# --------------------------------------------------------------------------- photo-resolution clean-up
def test_a_predicted_mask_is_cleaned_holes_filled_and_grown_over_its_rim():
    from unmask.infer import RIM_FRAC, clean_region

    region = np.zeros((200, 200), bool)
    region[80:160, 50:150] = True
    region[100:120, 80:100] = False        # print on the mask: a hole the segmenter left
    region[85, 60] = False
    cleaned = clean_region(region, crop_side=200.0)
    assert cleaned[100:120, 80:100].all() and cleaned[85, 60]       # holes filled
    rim = int(round(RIM_FRAC * 200))
    assert cleaned[80 - rim + 1, 100] and cleaned[100, 150 + rim - 2]   # grown by the rim on every side
    assert not cleaned[80 - rim - 3, 100] and not cleaned[20, 20]      # and no further


def test_the_restoration_takes_the_colour_of_the_skin_around_it():
    from unmask.infer import match_colour

    photo = np.full((100, 100, 3), (180, 130, 110), np.uint8)         # skin
    region = np.zeros((100, 100), bool)
    region[40:70, 30:70] = True
    restored = photo.copy()
    restored[region] = (120, 120, 160)                                # a blue-grey cast
    inside = np.ones((100, 100), bool)
    out = match_colour(restored, photo, region, inside, crop_side=100.0)
    assert np.abs(out[region].astype(int).mean(0) - (180, 130, 110)).max() < 42
    assert (np.abs(out[region].astype(int).mean(0) - (180, 130, 110))
            < np.abs(restored[region].astype(int).mean(0) - (180, 130, 110))).all()
    assert np.array_equal(out[~region], restored[~region])


def test_a_face_too_small_is_listed_with_its_size_and_the_others_restored(checkpoint, tmp_path, monkeypatch):
    import unmask.infer as inf

    photo, _, mask, lm = _photo()
    tiny = (lm - lm.mean(0)) * 0.1 + (30, 30)                        # a face a few pixels wide
    monkeypatch.setattr(inf, "find_faces", lambda p, face_crop=False: [lm, tiny])
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "two.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    written, rejected = infer(src, tmp_path / "out", load_unmasker(str(checkpoint)), progress=False)
    assert written == 1
    (name, why), = rejected
    assert name.endswith("two.png") and why.startswith("face 2 of 2 at (30, 30): face too small: its crop is")
    assert f"need {inf.MIN_FACE_PX}" in why and "rejected.csv" not in why
    assert "face too small" in (tmp_path / "out" / "rejected.csv").read_text()
    monkeypatch.setattr(inf, "find_faces", lambda p, face_crop=False: [tiny])
    written, rejected = infer(src, tmp_path / "out2", load_unmasker(str(checkpoint)), progress=False)
    assert written == 0 and "face too small" in rejected[0][1]


def test_the_default_model_is_the_leaderboard_leader_real_faces_first(tmp_path):
    import pandas as pd

    from unmask.evaluation.leaderboard import write_leaderboard
    from unmask.infer import default_model

    def board(where, means):
        rows = [{"method": m, "seed": 0, "face": 0, "psnr_masked": v} for m, v in means.items()]
        methods = [{"name": m, "kind": "baseline" if m == "telea" else "champion", "study": m,
                    "model_input": "image" if m == "cyc" else "image+mask"} for m in means]
        write_leaderboard(pd.DataFrame(rows), {"methods": methods}, tmp_path / where)

    board("results/leaderboard", {"inp": 25.0, "cyc": 20.0, "telea": 30.0})
    assert default_model(tmp_path, [], need_mask_free=False) == "inp:champion"     # a baseline is no model
    assert default_model(tmp_path, [], need_mask_free=True) == "cyc:champion"
    board("results/benchmark_real/leaderboard", {"inp": 18.0, "other": 19.0})
    assert default_model(tmp_path, [], need_mask_free=False) == "other:champion"
