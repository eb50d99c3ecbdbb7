"""NIQE / BRISQUE: n/a with a reason unless their parameters (and an implementation) are present locally."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import scipy.io
import torch

from unmask.errors import ConfigError, UnmaskError
from unmask.metrics.lpips_metric import MetricUnavailable
from unmask.metrics.no_reference import NoReferenceMetric, load_no_reference


@pytest.fixture
def offline(offline, monkeypatch):
    """The shared ``offline`` (tests/conftest.py), and no pyiqa."""
    for mod in ("pyiqa", "pyiqa.archs", "pyiqa.archs.niqe_arch", "pyiqa.archs.brisque_arch"):
        monkeypatch.setitem(sys.modules, mod, None)   # import fails even where pyiqa is installed
    return offline


def _niqe_params(folder):
    folder.mkdir(exist_ok=True)
    scipy.io.savemat(folder / "niqe_modelparameters.mat", {"mu_prisparam": np.zeros((1, 36)),
                                                           "cov_prisparam": np.eye(36)})


@pytest.mark.parametrize("name, label", [("niqe", "NIQE"), ("brisque", "BRISQUE")])
def test_missing_parameters_are_unavailable_naming_where_it_looked(offline, tmp_path, name, label):
    got = load_no_reference(name, None)
    assert isinstance(got, MetricUnavailable) and got.name == name
    assert got.reason.startswith(f"n/a: {label} parameters missing (")
    assert str(offline / "pyiqa") in got.reason and str(offline / "checkpoints") in got.reason
    assert "\n" not in got.reason
    empty = tmp_path / "params"
    empty.mkdir()
    got = load_no_reference(name, str(empty))
    assert isinstance(got, MetricUnavailable) and str(empty) in got.reason and str(offline) not in got.reason


def test_niqe_on_small_images_is_unavailable(offline, tmp_path):
    _niqe_params(tmp_path / "p")
    got = load_no_reference("niqe", str(tmp_path / "p"), image_size=64)
    assert isinstance(got, MetricUnavailable) and "at least 96 px (got 64)" in got.reason


def test_unknown_name_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown 'fid'"):
        load_no_reference("fid", None)


def test_unusable_parameter_files(offline, tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "niqe_modelparameters.mat").write_bytes(b"garbage")
    got = load_no_reference("niqe", str(folder))
    assert isinstance(got, MetricUnavailable) and got.reason.startswith("n/a: NIQE parameters unusable")
    torch.save({"not": "a pair"}, folder / "brisque_svm_weights.pth")
    got = load_no_reference("brisque", str(folder))
    assert isinstance(got, MetricUnavailable) and "not a (sv_coef, sv) pair" in got.reason
    torch.save(torch.nn.Linear(2, 2), folder / "brisque_svm_weights.pth")   # pickled code: refused
    got = load_no_reference("brisque", str(folder))
    assert isinstance(got, MetricUnavailable) and "weights_only" in got.reason and "\n" not in got.reason


def test_parameters_without_an_implementation_are_unavailable(offline, tmp_path):
    _niqe_params(tmp_path / "p")
    got = load_no_reference("niqe", str(tmp_path / "p"))
    assert isinstance(got, MetricUnavailable) and got.reason.startswith("n/a: NIQE implementation missing")
    assert "niqe_modelparameters.mat" in got.reason


def test_parameters_and_implementation_give_per_image_scores(offline, monkeypatch, tmp_path):
    seen = {}

    class FakeNIQE(torch.nn.Module):   # stands in for pyiqa's NIQE: checks the plumbing, not the algorithm
        def __init__(self, pretrained_model_path):
            super().__init__()
            seen["path"] = pretrained_model_path

        def forward(self, x):
            seen["range"] = (x.min().item(), x.max().item())
            return x.flatten(1).mean(1, keepdim=True)

    module = types.ModuleType("pyiqa.archs.niqe_arch")
    module.NIQE = FakeNIQE
    monkeypatch.setitem(sys.modules, "pyiqa.archs.niqe_arch", module)
    _niqe_params(tmp_path / "p")
    metric = load_no_reference("niqe", str(tmp_path / "p"))
    assert isinstance(metric, NoReferenceMetric)
    assert seen["path"] == str(tmp_path / "p" / "niqe_modelparameters.mat")
    scores = metric(torch.rand(3, 3, 96, 96) * 1.2 - 0.1)
    assert scores.shape == (3,) and seen["range"][0] >= 0 and seen["range"][1] <= 1
    with pytest.raises(UnmaskError, match="too small"):
        metric(torch.rand(1, 3, 64, 64))
