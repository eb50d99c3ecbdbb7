"""VGG-19 perceptual loss: local weights only; unavailable with a one-line reason otherwise.

The stand-in checkpoint is written by the tests: torchvision's own VGG-19 ``features`` (random init)
truncated after conv3_1, saved under torchvision's file name, so the layers relu1_1, relu2_1, relu3_1
can be loaded without the 550 MB ImageNet file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from unmask.errors import ConfigError, UnmaskError
from unmask.losses import LossUnavailable, VGGPerceptual, load_vgg19
from unmask.losses.perceptual import VGG19_FILE, VGG19_LAYERS, vgg19_features

SMALL = ("relu1_1", "relu2_1", "relu3_1")


def _torchvision_features() -> nn.Sequential:
    torch.manual_seed(0)
    return make_layers(cfgs["E"])   # torchvision's vgg19().features, without the 120 M-parameter classifier


@pytest.fixture
def stand_in(tmp_path) -> tuple[Path, dict[str, torch.Tensor]]:
    """torchvision VGG-19 features up to conv3_1 (index 10), keyed ``features.<i>.*`` as in the checkpoint."""
    state = {f"features.{k}": v for k, v in _torchvision_features()[:VGG19_LAYERS["relu3_1"]].state_dict().items()}
    folder = tmp_path / "weights"
    folder.mkdir()
    torch.save(state, folder / VGG19_FILE)
    return folder, state


def test_network_matches_torchvisions_indices_and_shapes():
    ours = vgg19_features(len(cfgs["E"]) * 2)       # past pool5: the whole ``features``
    theirs = _torchvision_features()
    assert len(ours) == len(theirs) == 37
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    for name, i in VGG19_LAYERS.items():
        kind = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d}[name[:4].rstrip("0123456789_")]
        assert isinstance(theirs[i], kind), name
    assert [VGG19_LAYERS[f"relu{b}_1"] for b in range(1, 6)] == [1, 6, 11, 20, 29]


def test_missing_weights_are_unavailable_naming_where_it_looked(offline, tmp_path):
    got = load_vgg19(None)
    assert isinstance(got, LossUnavailable)
    assert got.reason.startswith("VGG-19 weights missing") and VGG19_FILE in got.reason
    assert str(offline / "checkpoints") in got.reason and "\n" not in got.reason
    assert got.note == f"not run: {got.reason}"
    empty = tmp_path / "empty"
    empty.mkdir()
    got = load_vgg19(str(empty))
    assert isinstance(got, LossUnavailable) and str(empty) in got.reason


def test_stand_in_loads_frozen_and_gives_a_differentiable_scalar(offline, stand_in):
    folder, state = stand_in
    loss = load_vgg19(str(folder), layers=SMALL)
    assert isinstance(loss, VGGPerceptual), loss
    assert len(loss.features) == VGG19_LAYERS["relu3_1"] + 1
    assert all(not p.requires_grad for p in loss.parameters()) and not loss.training
    assert torch.equal(loss.features[10].weight, state["features.10.weight"])
    loss.train()                                    # a trainer's .train() leaves it in eval mode
    assert not loss.training

    torch.manual_seed(1)
    target = torch.rand(2, 3, 16, 16) * 2 - 1
    pred = (torch.rand(2, 3, 16, 16) * 2 - 1).requires_grad_()
    value = loss(pred, target)
    assert value.dim() == 0 and torch.isfinite(value) and value.item() > 0
    value.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())
    assert loss(target, target).item() == pytest.approx(0.0, abs=1e-7)


def test_found_in_the_torch_hub_cache(offline, stand_in):
    folder, _ = stand_in
    (offline / "checkpoints").mkdir(parents=True)
    (folder / VGG19_FILE).rename(offline / "checkpoints" / VGG19_FILE)
    assert isinstance(load_vgg19(None, layers=SMALL), VGGPerceptual)


def test_layer_weights_scale_the_terms(offline, stand_in):
    folder, _ = stand_in
    torch.manual_seed(2)
    pred, target = torch.rand(1, 3, 8, 8) * 2 - 1, torch.rand(1, 3, 8, 8) * 2 - 1
    a = load_vgg19(str(folder), layers=("relu1_1",))(pred, target)
    b = load_vgg19(str(folder), layers=("relu2_1",))(pred, target)
    both = load_vgg19(str(folder), layers=("relu1_1", "relu2_1"), weights=(2.0, 0.5))(pred, target)
    assert both.item() == pytest.approx(2 * a.item() + 0.5 * b.item(), rel=1e-5)


def test_checkpoint_without_the_deeper_layers_is_unavailable(offline, stand_in):
    folder, _ = stand_in
    got = load_vgg19(str(folder))                   # default layers go to relu5_1
    assert isinstance(got, LossUnavailable)
    assert str(folder / VGG19_FILE) in got.reason and "features.12.weight" in got.reason


def test_corrupt_file_is_unavailable_with_a_one_line_reason(offline, stand_in):
    folder, _ = stand_in
    path = folder / VGG19_FILE
    whole = path.read_bytes()
    for data in (whole[:len(whole) // 2], b"\x80\x02 this is not a checkpoint\n" * 10, b""):
        path.write_bytes(data)
        got = load_vgg19(str(folder), layers=SMALL)
        assert isinstance(got, LossUnavailable), data[:20]
        assert got.reason.startswith("VGG-19 weights unreadable") and str(path) in got.reason
        assert "\n" not in got.reason and len(got.reason) < 400


def test_wrong_shapes_and_non_state_dicts_are_unavailable(offline, stand_in):
    folder, state = stand_in
    bad = dict(state)
    bad["features.5.weight"] = torch.zeros(128, 32, 3, 3)
    torch.save(bad, folder / VGG19_FILE)
    got = load_vgg19(str(folder), layers=SMALL)
    assert isinstance(got, LossUnavailable) and "features.5.weight" in got.reason and VGG19_FILE in got.reason
    torch.save([torch.zeros(3)], folder / VGG19_FILE)
    got = load_vgg19(str(folder), layers=SMALL)
    assert isinstance(got, LossUnavailable) and "not a state dict" in got.reason


def test_pickled_code_is_refused(offline, tmp_path):
    folder = tmp_path / "w"
    folder.mkdir()
    torch.save({"features.0.weight": torch.nn.Conv2d(3, 64, 3)}, folder / VGG19_FILE)   # a module, not a tensor
    got = load_vgg19(str(folder), layers=SMALL)
    assert isinstance(got, LossUnavailable) and "unreadable" in got.reason and "\n" not in got.reason


def test_bad_layer_names_and_small_images(offline, stand_in):
    folder, _ = stand_in
    with pytest.raises(ConfigError, match="unknown VGG-19 layer 'relu6_1'"):
        load_vgg19(str(folder), layers=("relu6_1",))
    with pytest.raises(ConfigError, match="2 weights for 1 layers"):
        load_vgg19(str(folder), layers=("relu1_1",), weights=(1, 2))
    loss = load_vgg19(str(folder), layers=SMALL)     # two pools before relu3_1: needs 4 px
    with pytest.raises(UnmaskError, match="too small"):
        loss(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2))
    assert torch.isfinite(loss(torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)))
