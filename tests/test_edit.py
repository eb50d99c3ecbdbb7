"""`unmask edit`: seed 003's editor on a test face. A component swap changes nothing farther than
GROW_PX from the edited component's region; painted maps of the wrong size or with unknown labels are
refused in one line; no input is written over."""

from __future__ import annotations

import itertools
import json

import cv2
import numpy as np
import pytest
import torch

from unmask.cli import main
from unmask.config import SplitConfig
from unmask.data.schema import SYNTH
from unmask.data.split import split_dataset
from unmask.data.synthetic import render_face, sample_identity
from unmask.edit import GROW_PX, map_image, region_of, split_face
from unmask.io.images import encode_png
from unmask.io.shards import write_rows
from unmask.training import TrainConfig, build_trainer

SIZE = 64
SMALL = {"local": {"channels": 16, "latent": 16, "hidden": 32}, "generator": {"base_channels": 16, "n_blocks": 1},
         "discriminator": {"base_channels": 4, "n_layers": 1},
         "parser": {"name": "unet", "depth": 2, "base_channels": 4, "out_channels": 11}}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project root with a test split of synthetic 64 px faces (and their maps) and a small editor
    trained for 30 steps on them."""
    root = tmp_path_factory.mktemp("edit")
    rows, faces = [], []
    for i in range(12):
        for k in range(2):
            f = render_face(sample_identity(i), k, SIZE)
            faces.append(f)
            img = encode_png(f.image)
            rows.append({"image_id": f"id{i:03d}-{k}#0", "source_id": f"id{i:03d}-{k}", "identity": f"id{i:03d}",
                         "kind": "surgical", "occluded": img, "clean": img,
                         "mask": encode_png(np.zeros((SIZE, SIZE), np.uint8)), "landmarks": [0.0] * 136,
                         "parsing": encode_png(f.parsing.astype(np.uint8)), "attrs": json.dumps({})})
    write_rows(root / "synth", SYNTH, rows)
    split_dataset(root / "synth", root / "data" / "splits", SplitConfig(val=0.1, test=0.3), seed=0, progress=False)
    cfg = TrainConfig.from_dict({"framework": "portrait", "adv_loss": "minimax", "steps": 30, "batch_size": 4,
                                 "image_size": SIZE, "device": "cpu", "threads": 1, "parser_steps": 4,
                                 "val_every": 0, "checkpoint_every": 0, **SMALL})
    torch.manual_seed(0)
    trainer = build_trainer(cfg)
    x = torch.stack([torch.from_numpy(f.image).permute(2, 0, 1).float() / 127.5 - 1 for f in faces])
    lab = torch.stack([torch.from_numpy(f.parsing.astype(np.int64)) for f in faces])
    g = torch.Generator().manual_seed(0)

    def stream():
        while True:
            idx = torch.randperm(len(x), generator=g)[:4]
            yield {"clean": x[idx], "parsing": lab[idx]}
    trainer.fit(itertools.islice(stream(), 30))
    trainer.save_checkpoint(root / "editor.pt")
    return root


def _read(path):
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _edit(project, *args):
    return main(["--root", str(project), "edit", *args, "--model", str(project / "editor.pt")])


@pytest.mark.parametrize("component", ["mouth", "eyes", "hair"])
def test_a_component_swap_keeps_every_pixel_beyond_the_grown_component_region(project, tmp_path, component):
    out = tmp_path / "out.png"
    assert _edit(project, "test:0", "--component", component, "--from", "test:1", "--out", str(out)) == 0
    face = split_face("test:0", SIZE, project)
    edited = _read(out)
    region = region_of(face.labels, component)
    assert region.any()
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * GROW_PX + 1,) * 2)
    grown = cv2.dilate(region.astype(np.uint8), k).astype(bool)
    changed = np.any(edited != face.image, axis=2)
    assert changed.any()                                    # the component did change ...
    assert not (changed & ~grown).any()                     # ... and nothing beyond its grown region did


def test_swap_mask_and_a_painted_map_write_faces_and_save_map_gives_a_map_edit_reads_back(project, tmp_path):
    whole = tmp_path / "swap.png"
    assert _edit(project, "test:0", "--swap-mask", "test:2", "--out", str(whole), "--side-by-side") == 0
    assert _read(whole).shape[1] == 5 * SIZE + 4 * 2       # face, its map, other, its map, output
    saved, out = tmp_path / "map.png", tmp_path / "same.png"
    assert _edit(project, "test:0", "--out", str(out), "--save-map", str(saved)) == 0
    face = split_face("test:0", SIZE, project)
    assert np.array_equal(_read(saved), map_image(face.labels))
    painted = face.labels.copy()
    painted[np.isin(painted, [7, 8, 9])] = 1              # paint the mouth over with skin
    cv2.imwrite(str(tmp_path / "painted.png"), cv2.cvtColor(map_image(painted), cv2.COLOR_RGB2BGR))
    assert _edit(project, "test:0", "--edit-map", str(tmp_path / "painted.png"), "--out", str(out)) == 0
    changed = np.any(_read(out) != face.image, axis=2)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * GROW_PX + 1,) * 2)
    grown = cv2.dilate((painted != face.labels).astype(np.uint8), k).astype(bool)
    assert changed.any() and not (changed & ~grown).any()


def test_maps_of_the_wrong_size_or_with_unknown_labels_and_outputs_over_inputs_are_refused(project, tmp_path, capsys):
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((32, 32, 3), np.uint8))
    assert _edit(project, "test:0", "--edit-map", str(small), "--out", str(tmp_path / "o.png")) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "small.png: the map is 32x32 px, the face 64x64" in err, err
    odd = np.zeros((SIZE, SIZE, 3), np.uint8)
    odd[5, 7] = (1, 2, 3)
    cv2.imwrite(str(tmp_path / "odd.png"), odd)
    before = (tmp_path / "odd.png").read_bytes()
    assert _edit(project, "test:0", "--edit-map", str(tmp_path / "odd.png"), "--out", str(tmp_path / "odd.png")) == 2
    assert "is the input" in capsys.readouterr().err and (tmp_path / "odd.png").read_bytes() == before
    assert _edit(project, "test:0", "--edit-map", str(tmp_path / "odd.png"), "--out", str(tmp_path / "o.png")) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "1 pixels hold no parsing label (first at x=7, y=5: RGB (3, 2, 1))" in err   # cv2 wrote (1, 2, 3) as BGR, err
    assert not (tmp_path / "o.png").exists()
    assert _edit(project, "test:99", "--out", str(tmp_path / "o.png")) == 2
    assert "test:99: the test split holds" in capsys.readouterr().err
