"""LPIPS is built from local files only: n/a with a reason when the AlexNet weights are missing."""

from __future__ import annotations


from pathlib import Path

import lpips
import pytest
import torch
import torchvision

from unmask.errors import UnmaskError
from unmask.metrics import LPIPSMetric, MetricSuite, MetricUnavailable, load_lpips
from unmask.metrics.lpips_metric import ALEXNET_FILE


@pytest.fixture(scope="module")
def fake_alexnet(tmp_path_factory):
    """A randomly initialised torchvision AlexNet state dict saved under the checkpoint's file name."""
    torch.manual_seed(0)
    state = torchvision.models.alexnet().state_dict()
    path = tmp_path_factory.mktemp("weights") / ALEXNET_FILE
    torch.save(state, path)
    yield path, state
    path.unlink()   # 240 MB: do not leave it in pytest's temp folders


def test_missing_backbone_is_unavailable_with_reason_and_no_download(offline, tmp_path):
    empty = tmp_path / "weights"
    empty.mkdir()
    result = load_lpips(str(empty))
    assert isinstance(result, MetricUnavailable) and result.name == "lpips"
    assert result.reason.startswith(f"n/a: weights missing (AlexNet backbone {ALEXNET_FILE} not in {empty}, ")
    assert str(offline / "checkpoints") in result.reason and "no internet" in result.reason
    suite = MetricSuite(str(empty))
    assert suite.note("lpips") == result.reason
    assert "lpips" not in suite(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


def test_loads_backbone_from_weights_dir(offline, fake_alexnet):
    """Checks only the loading path: the fake (random) AlexNet gives meaningless distances, so this
    asserts that its tensors are the ones used and that LPIPS behaves like a distance, nothing more."""
    path, state = fake_alexnet
    metric = load_lpips(str(path.parent))
    assert isinstance(metric, LPIPSMetric)
    net = metric.module.net.state_dict()
    assert torch.equal(net["slice1.0.weight"], state["features.0.weight"])
    assert torch.equal(net["slice5.10.bias"], state["features.10.bias"])
    shipped = torch.load(Path(lpips.__file__).parent / "weights/v0.1/alex.pth", map_location="cpu",
                         weights_only=True)
    assert torch.equal(metric.module.lins[3].model[1].weight, shipped["lin3.model.1.weight"])
    torch.manual_seed(1)
    a, b = torch.rand(3, 3, 48, 48), torch.rand(3, 3, 48, 48)
    same, diff = metric(a, a), metric(a, b)
    assert same.shape == diff.shape == (3,)
    assert torch.allclose(same, torch.zeros(3), atol=1e-6) and (diff > 0).all()
    small = metric(a[..., :16, :16], b[..., :16, :16])   # upsampled to AlexNet's 32 px minimum
    assert (small > 0).all()
    suite = MetricSuite(str(path.parent))
    assert suite.unavailable == {} and torch.allclose(suite(a, b)["lpips"], diff)


def test_finds_backbone_in_the_torch_hub_cache(offline, fake_alexnet):
    """Loading path only (see above): the hub cache is searched when no weights_dir is given."""
    path, _ = fake_alexnet
    (offline / "checkpoints").mkdir(parents=True)
    (offline / "checkpoints" / ALEXNET_FILE).symlink_to(path)
    assert isinstance(load_lpips(None), LPIPSMetric)


def test_unreadable_backbone_is_a_one_line_error(offline, tmp_path):
    (tmp_path / ALEXNET_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(UnmaskError, match=ALEXNET_FILE):
        load_lpips(str(tmp_path))
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / ALEXNET_FILE)
    with pytest.raises(UnmaskError, match="not an AlexNet checkpoint"):
        load_lpips(str(tmp_path))
