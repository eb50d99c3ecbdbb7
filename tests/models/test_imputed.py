"""Seed 001's imputed convolution: the estimate of unknown pixels, the certainty update, its size."""

from __future__ import annotations

import math

import pytest
import torch

from unmask.models.convs import ImputedConv, make_conv


def _case():
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0],
                      [5.0, 6.0, 7.0, 8.0],
                      [9.0, 10.0, 11.0, 12.0],
                      [13.0, 14.0, 15.0, 16.0]])[None, None]
    known = torch.ones(1, 1, 4, 4)
    known[0, 0, 1:3, 1:3] = 0          # a 2x2 hole in the middle
    return x, known


def test_the_estimate_is_the_mean_of_the_known_neighbours_on_a_hand_case():
    x, known = _case()
    conv = ImputedConv(1, 1, 3, padding=1)
    est = conv.estimate(x, known)[0, 0]
    # pixel (1, 1): its 3x3 window holds known 1, 2, 3, 5, 9 -> mean 4
    assert est[1, 1].item() == pytest.approx((1 + 2 + 3 + 5 + 9) / 5, rel=1e-5)
    # pixel (2, 2): known 8, 12, 14, 15, 16 -> 13
    assert est[2, 2].item() == pytest.approx((8 + 12 + 14 + 15 + 16) / 5, rel=1e-5)
    # pixel (1, 2): known 2, 3, 4, 8, 12 -> 5.8
    assert est[1, 2].item() == pytest.approx((2 + 3 + 4 + 8 + 12) / 5, rel=1e-5)
    known_px = known[0, 0] > 0
    assert torch.equal(est[known_px], x[0, 0][known_px])     # known pixels pass unchanged


def test_the_certainty_update_on_a_hand_case():
    x, known = _case()
    conv = ImputedConv(1, 1, 3, padding=1)
    _, new = conv(x, known)
    count = lambda n: (1 / (1 + math.exp(-n)) - 0.5) * 2   # noqa: E731  (kernel of ones: count of known)
    # (1, 1): 5 known in its window; corner (0, 0): 3 of its 4 in-image neighbours are known
    assert new[0, 0, 1, 1].item() == pytest.approx(count(5), rel=1e-5)
    assert new[0, 0, 0, 0].item() == pytest.approx(count(3), rel=1e-5)
    empty = torch.zeros(1, 1, 4, 4)
    assert torch.equal(conv(x, empty)[1], torch.zeros(1, 1, 4, 4))   # no known pixel: no certainty


def test_the_output_is_the_conv_of_the_imputed_input():
    x, known = _case()
    conv = ImputedConv(1, 2, 3, stride=2, padding=1)
    y, new = conv(x, known)
    assert y.shape == (1, 2, 2, 2) and new.shape == (1, 1, 2, 2)
    torch.testing.assert_close(y, conv.conv(conv.estimate(x, known)))


def _params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_parameter_counts_imputed_about_two_percent_more_gated_double():
    plain = _params(make_conv("plain", 64, 64, 3, padding=1))
    imputed = _params(make_conv("imputed", 64, 64, 3, padding=1))
    gated = _params(make_conv("gated", 64, 64, 3, padding=1))
    assert 1.0 < imputed / plain < 1.03          # + in_ch*k^2 + k^2 against in*out*k^2: 1/64 ~ 1.6 %
    assert gated / plain == pytest.approx(2.0, rel=1e-3)
