"""Reconstruction losses and the StarGAN domain classification loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from unmask.errors import ConfigError, UnmaskError
from unmask.losses import RECON_LOSSES, build_recon_loss, domain_classification_loss


def test_l1_and_l2_values():
    pred, target = torch.tensor([[0.0, 1.0, -1.0, 2.0]]), torch.zeros(1, 4)
    assert sorted(RECON_LOSSES) == ["l1", "l2"]
    assert build_recon_loss("l1")(pred, target).item() == pytest.approx(1.0)
    assert build_recon_loss("l2")(pred, target).item() == pytest.approx(1.5)


def test_unknown_recon_loss_is_a_config_error():
    with pytest.raises(ConfigError, match=r"train\.recon: unknown reconstruction loss 'l3'.*l1, l2"):
        build_recon_loss("l3", key="train.recon")


def test_domain_classification_accepts_indices_one_hot_and_maps():
    logits = torch.tensor([[2.0, -1.0], [0.5, 1.5], [0.0, 0.0]])
    idx = torch.tensor([0, 1, 1])
    expected = F.cross_entropy(logits, idx)
    assert domain_classification_loss(logits, idx).item() == pytest.approx(expected.item())
    assert domain_classification_loss(logits, F.one_hot(idx, 2).float()).item() == pytest.approx(expected.item())
    as_map = logits[:, :, None, None].expand(3, 2, 2, 2)
    assert domain_classification_loss(as_map, idx).item() == pytest.approx(expected.item())
    uniform = domain_classification_loss(torch.tensor([[0.0, 0.0]]), torch.tensor([1]))
    assert uniform.item() == pytest.approx(math.log(2))
    # confident and right is cheaper than confident and wrong
    assert domain_classification_loss(logits, idx).item() < domain_classification_loss(logits, 1 - idx).item()


def test_domain_classification_rejects_bad_targets():
    with pytest.raises(UnmaskError, match="domain_classification_loss"):
        domain_classification_loss(torch.zeros(3, 2), torch.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(UnmaskError, match="domain_classification_loss"):
        domain_classification_loss(torch.zeros(3, 2), torch.tensor([0, 1]))
