"""Adversarial losses: signs, minima, relativistic behaviour, gradient penalty."""

from __future__ import annotations

import math

import pytest
import torch

from unmask.errors import ConfigError, UnmaskError
from unmask.losses import ADV_LOSSES, build_adv_loss, gradient_penalty

NAMES = ["minimax", "hinge", "wgan_gp", "lsgan", "ralsgan", "rahinge"]
RELATIVISTIC = {"ralsgan", "rahinge"}


def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_registry_holds_the_six_losses_of_seed_000():
    assert sorted(ADV_LOSSES) == sorted(NAMES)
    for name in NAMES:
        loss = build_adv_loss(name)
        assert loss.uses_gradient_penalty == (name == "wgan_gp")
        assert loss.default_n_critic == (5 if name == "wgan_gp" else 1)


def test_unknown_loss_is_a_config_error_naming_key_and_choices():
    with pytest.raises(ConfigError, match=r"train\.adv_loss: unknown adversarial loss 'wgan'.*lsgan"):
        build_adv_loss("wgan", key="train.adv_loss")


# points where the discriminator is confused (real logits low, fake logits high)
CONFUSED = [(_t(0.2, -0.3, 0.1), _t(0.8, 0.4, 0.6)), (_t(-1.0, 0.0), _t(0.5, 1.5)), (_t(0.5,), _t(0.7,))]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("real, fake", CONFUSED)
def test_d_loss_falls_as_real_rises_and_fake_falls(name, real, fake):
    loss = build_adv_loss(name)
    real, fake = real.clone().requires_grad_(True), fake.clone().requires_grad_(True)
    loss.d_loss(real, fake).backward()
    assert (real.grad < 0).all(), real.grad
    assert (fake.grad > 0).all(), fake.grad


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("real, fake", CONFUSED)
def test_g_loss_falls_as_fake_rises(name, real, fake):
    # the generator is "losing" here: fake logits are below the ideal values
    loss = build_adv_loss(name)
    fake = (fake - 1.0).requires_grad_(True)
    loss.g_loss(real, fake).backward()
    assert (fake.grad < 0).all(), fake.grad


def test_minimax_values_and_minimum():
    loss = build_adv_loss("minimax")
    zero = _t(0.0, 0.0)
    assert loss.d_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert loss.g_loss(None, zero).item() == pytest.approx(math.log(2))
    assert loss.d_loss(_t(40.0), _t(-40.0)).item() < 1e-12          # ideal D: loss -> 0
    assert loss.g_loss(None, _t(40.0)).item() < 1e-12
    # huge logits stay finite (log-sigmoid through softplus)
    assert math.isfinite(loss.d_loss(_t(-1e4), _t(1e4)).item())
    logits = torch.randn(64, dtype=torch.float64) * 3
    assert loss.d_loss(logits, logits.flip(0)).item() > 0


def test_hinge_values_and_minimum():
    loss = build_adv_loss("hinge")
    assert loss.d_loss(_t(1.0, 3.0), _t(-1.0, -2.5)).item() == 0.0   # beyond the margins
    assert loss.d_loss(_t(0.0), _t(0.0)).item() == pytest.approx(2.0)
    assert loss.d_loss(_t(0.5), _t(-0.5)).item() == pytest.approx(1.0)
    assert loss.g_loss(None, _t(1.0, 3.0)).item() == pytest.approx(-2.0)


def test_lsgan_values_and_minimum():
    loss = build_adv_loss("lsgan")
    assert loss.d_loss(_t(1.0, 1.0), _t(0.0, 0.0)).item() == 0.0
    assert loss.g_loss(None, _t(1.0)).item() == 0.0
    assert loss.d_loss(_t(0.0), _t(1.0)).item() == pytest.approx(2.0)
    assert loss.d_loss(_t(1.5), _t(0.0)).item() == pytest.approx(0.25)   # overshooting costs too


def test_wgan_values():
    loss = build_adv_loss("wgan_gp")
    real, fake = _t(3.0, 1.0), _t(-1.0, 0.0)
    assert loss.d_loss(real, fake).item() == pytest.approx(-0.5 - 2.0)
    assert loss.g_loss(None, fake).item() == pytest.approx(0.5)


@pytest.mark.parametrize("name", sorted(RELATIVISTIC))
def test_relativistic_losses_depend_only_on_the_gap(name):
    loss = build_adv_loss(name)
    real, fake = torch.randn(8, dtype=torch.float64), torch.randn(8, dtype=torch.float64)
    for shift in (-5.0, 2.5, 100.0):
        assert loss.d_loss(real + shift, fake + shift).item() == pytest.approx(loss.d_loss(real, fake).item())
        assert loss.g_loss(real + shift, fake + shift).item() == pytest.approx(loss.g_loss(real, fake).item())
    # equal logits: both terms sit at the margin / target distance 1
    same = _t(0.3, 0.3)
    assert loss.d_loss(same, same).item() == pytest.approx(2.0)
    # ideal gap: D_ra(r, f) = 1 and D_ra(f, r) = -1 for D; swapped for G
    assert loss.d_loss(_t(1.0), _t(0.0)).item() == pytest.approx(0.0)
    assert loss.g_loss(_t(0.0), _t(1.0)).item() == pytest.approx(0.0)


def test_non_relativistic_losses_do_not_depend_only_on_the_gap():
    loss = build_adv_loss("hinge")   # control for the test above: a shift changes it
    assert loss.d_loss(_t(0.0), _t(0.0)).item() != loss.d_loss(_t(5.0), _t(5.0)).item()


@pytest.mark.parametrize("name", sorted(RELATIVISTIC))
def test_relativistic_g_loss_needs_real_logits_and_does_not_train_d(name):
    loss = build_adv_loss(name)
    with pytest.raises(UnmaskError, match=name):
        loss.g_loss(None, _t(0.0))
    real = _t(0.5, 0.1).requires_grad_(True)
    fake = _t(-0.2, 0.0).requires_grad_(True)
    loss.g_loss(real, fake).backward()
    assert real.grad is None and fake.grad is not None


@pytest.mark.parametrize("name", NAMES)
def test_patch_maps_are_averaged(name):
    loss = build_adv_loss(name)
    real, fake = torch.randn(4, 1, dtype=torch.float64), torch.randn(4, 1, dtype=torch.float64)
    real_map, fake_map = real[..., None, None].expand(4, 1, 3, 5), fake[..., None, None].expand(4, 1, 3, 5)
    assert loss.d_loss(real_map, fake_map).item() == pytest.approx(loss.d_loss(real, fake).item())
    assert loss.g_loss(real_map, fake_map).item() == pytest.approx(loss.g_loss(real, fake).item())


# --------------------------------------------------------------------------- gradient penalty
def test_gradient_penalty_of_a_linear_critic_is_exact_and_trains_the_critic():
    torch.manual_seed(0)
    w = torch.randn(3, 4, 4, dtype=torch.float64, requires_grad=True)   # ||grad|| = ||w|| everywhere
    real, fake = torch.rand(5, 3, 4, 4, dtype=torch.float64), torch.rand(5, 3, 4, 4, dtype=torch.float64)
    gp = gradient_penalty(lambda x: (x * w).flatten(1).sum(1), real, fake)
    norm = w.detach().norm()
    assert gp.item() == pytest.approx(((norm - 1) ** 2).item(), rel=1e-9)
    gp.backward()   # create_graph=True: d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    assert torch.allclose(w.grad, 2 * (norm - 1) * w.detach() / norm)


def test_gradient_penalty_is_zero_for_a_unit_norm_critic_with_patch_output():
    w = torch.zeros(1, 2, 2, dtype=torch.float64)
    w[0, 0, 0] = 1.0
    real, fake = torch.rand(3, 1, 2, 2, dtype=torch.float64), torch.rand(3, 1, 2, 2, dtype=torch.float64)
    gp = gradient_penalty(lambda x: (x * w)[:, :, :1, :1], real, fake)   # (B, 1, 1, 1) "patch map"
    assert gp.item() == pytest.approx(0.0, abs=1e-10)


def test_gradient_penalty_uses_per_sample_interpolates():
    torch.manual_seed(1)
    real, fake = torch.ones(16, 3, 2, 2), torch.zeros(16, 3, 2, 2)
    seen = []

    def critic(x):
        seen.append(x.detach())
        return 0.5 * x.pow(2).flatten(1).sum(1)   # grad = x, so ||grad|| = eps_i * sqrt(12)

    gp = gradient_penalty(critic, real, fake)
    x = seen[0]
    eps = x[:, 0, 0, 0]
    assert torch.allclose(x, eps[:, None, None, None].expand_as(x))   # each sample on its segment
    assert ((eps >= 0) & (eps <= 1)).all() and eps.unique().numel() == 16
    assert gp.item() == pytest.approx(((eps * math.sqrt(12) - 1) ** 2).mean().item(), rel=1e-5)


def test_gradient_penalty_rejects_mismatched_shapes():
    with pytest.raises(UnmaskError, match="gradient_penalty"):
        gradient_penalty(lambda x: x.sum(), torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 5))
