"""Adversarial losses of seed 000 Section 3.1, all written on raw logits (numerically stable).

Every loss takes the discriminator's raw outputs. Patch discriminators return maps (B, 1, h, w):
each loss averages over batch and positions. Relativistic average variants (RaGAN) compare each real
logit with the mean fake logit and vice versa, ``D_ra(r, f) = C(r) - mean(C(f))``; the mean is taken
over the whole batch and all positions.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from unmask.errors import ConfigError, UnmaskError


class AdversarialLoss:
    """Base class: ``d_loss`` is minimised by the discriminator, ``g_loss`` by the generator.

    ``real_logits`` may be None for the non-relativistic losses, which ignore it in ``g_loss``.
    """

    name: str = ""
    uses_gradient_penalty: bool = False   # the trainer adds lambda_gp * gradient_penalty(...) to d_loss
    default_n_critic: int = 1             # discriminator steps per generator step

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError

    def g_loss(self, real_logits: Optional[Tensor], fake_logits: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MinimaxLoss(AdversarialLoss):
    """Goodfellow's GAN as binary cross-entropy on logits; the generator uses the non-saturating
    form -log D(G(z)). softplus(-x) = -log sigmoid(x) and softplus(x) = -log(1 - sigmoid(x))."""

    name = "minimax"

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def g_loss(self, real_logits: Optional[Tensor], fake_logits: Tensor) -> Tensor:
        return F.softplus(-fake_logits).mean()


class HingeLoss(AdversarialLoss):
    """D: E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]; G: -E[D(G(z))]."""

    name = "hinge"

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()

    def g_loss(self, real_logits: Optional[Tensor], fake_logits: Tensor) -> Tensor:
        return -fake_logits.mean()


class WGANGPLoss(AdversarialLoss):
    """Wasserstein critic: D: E[C(f)] - E[C(r)]; G: -E[C(f)]. The Lipschitz constraint comes from
    :func:`gradient_penalty`, which the trainer adds with weight lambda_gp; n_critic = 5 (StarGAN)."""

    name = "wgan_gp"
    uses_gradient_penalty = True
    default_n_critic = 5

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return fake_logits.mean() - real_logits.mean()

    def g_loss(self, real_logits: Optional[Tensor], fake_logits: Tensor) -> Tensor:
        return -fake_logits.mean()


class LSGANLoss(AdversarialLoss):
    """Least squares with targets a = 0 (fake), b = 1 (real), as written in seed 000:
    D: E[(D(x) - 1)^2] + E[D(G(z))^2]; G: E[(D(G(z)) - 1)^2]."""

    name = "lsgan"

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return (real_logits - 1).pow(2).mean() + fake_logits.pow(2).mean()

    def g_loss(self, real_logits: Optional[Tensor], fake_logits: Tensor) -> Tensor:
        return (fake_logits - 1).pow(2).mean()


def _relativistic(real_logits: Optional[Tensor], fake_logits: Tensor, name: str) -> tuple[Tensor, Tensor]:
    """(D_ra(r, f), D_ra(f, r)) = (C(r) - mean C(f), C(f) - mean C(r))."""
    if real_logits is None:
        raise UnmaskError(f"adv_loss {name}: relativistic loss needs the real logits (got None)")
    return real_logits - fake_logits.mean(), fake_logits - real_logits.mean()


class RaLSGANLoss(AdversarialLoss):
    """Relativistic average least squares: D: E[(D_ra(r,f) - 1)^2] + E[(D_ra(f,r) + 1)^2]; G swaps the
    roles of real and fake. In ``g_loss`` the real logits are constants (no gradient reaches D)."""

    name = "ralsgan"

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        rf, fr = _relativistic(real_logits, fake_logits, self.name)
        return (rf - 1).pow(2).mean() + (fr + 1).pow(2).mean()

    def g_loss(self, real_logits: Optional[Tensor], fake_logits: Tensor) -> Tensor:
        real = None if real_logits is None else real_logits.detach()
        rf, fr = _relativistic(real, fake_logits, self.name)
        return (fr - 1).pow(2).mean() + (rf + 1).pow(2).mean()


class RaHingeLoss(AdversarialLoss):
    """Relativistic average hinge: D: E[relu(1 - D_ra(r,f))] + E[relu(1 + D_ra(f,r))]; G swaps the
    roles of real and fake. In ``g_loss`` the real logits are constants (no gradient reaches D)."""

    name = "rahinge"

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        rf, fr = _relativistic(real_logits, fake_logits, self.name)
        return F.relu(1 - rf).mean() + F.relu(1 + fr).mean()

    def g_loss(self, real_logits: Optional[Tensor], fake_logits: Tensor) -> Tensor:
        real = None if real_logits is None else real_logits.detach()
        rf, fr = _relativistic(real, fake_logits, self.name)
        return F.relu(1 - fr).mean() + F.relu(1 + rf).mean()


ADV_LOSSES: dict[str, type[AdversarialLoss]] = {
    cls.name: cls for cls in (MinimaxLoss, HingeLoss, WGANGPLoss, LSGANLoss, RaLSGANLoss, RaHingeLoss)
}


def build_adv_loss(name: str, key: str = "adv_loss") -> AdversarialLoss:
    """The adversarial loss registered as ``name``; unknown names raise ConfigError naming ``key``."""
    try:
        return ADV_LOSSES[name]()
    except KeyError:
        raise ConfigError(f"{key}: unknown adversarial loss {name!r} "
                          f"(choose from {', '.join(sorted(ADV_LOSSES))})") from None


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP penalty E[(||grad_x C(x)||_2 - 1)^2] on per-sample random interpolates
    x = eps * real + (1 - eps) * fake, eps ~ U[0, 1] per sample.

    The graph is kept (create_graph=True) so the penalty backpropagates into the critic's weights.
    ``critic`` returns a tensor (e.g. ``lambda x: D(x)[0]``); patch outputs are summed, so each
    sample's gradient is that of the sum of its own outputs.
    """
    if real.shape != fake.shape:
        raise UnmaskError(f"gradient_penalty: real {tuple(real.shape)} and fake {tuple(fake.shape)} differ")
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    x = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = critic(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    grad = grad.flatten(1).to(torch.promote_types(grad.dtype, torch.float32))   # half -> float32
    norm = torch.sqrt(grad.pow(2).sum(1) + 1e-12)   # + 1e-12: finite gradient where grad = 0

    return (norm - 1).pow(2).mean()
