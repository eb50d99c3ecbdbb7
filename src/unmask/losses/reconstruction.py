"""Reconstruction losses (seed 000 Section 4.4: L1 or L2 between original and recreated image) and the
StarGAN domain classification loss."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from unmask.errors import ConfigError, UnmaskError

RECON_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "l1": F.l1_loss,    # E|x - x_hat|
    "l2": F.mse_loss,   # E(x - x_hat)^2
}


def build_recon_loss(name: str, key: str = "recon") -> Callable[[Tensor, Tensor], Tensor]:
    """The reconstruction loss registered as ``name``; unknown names raise ConfigError naming ``key``."""
    try:
        return RECON_LOSSES[name]
    except KeyError:
        raise ConfigError(f"{key}: unknown reconstruction loss {name!r} "
                          f"(choose from {', '.join(sorted(RECON_LOSSES))})") from None


def domain_classification_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy of the discriminator's domain logits against the true domain.

    ``logits``: (B, n_classes) or a map (B, n_classes, h, w), averaged over positions.
    ``target``: class indices (B,) or one-hot labels (B, n_classes). Domains are mutually exclusive
    (unified StarGAN over two single-label domains), so this is softmax cross-entropy.
    """
    if logits.dim() > 2:
        logits = logits.flatten(2).mean(2)
    if target.dim() == 2:
        target = target.argmax(1)
    if target.shape != logits.shape[:1] or torch.is_floating_point(target):
        raise UnmaskError(f"domain_classification_loss: target {tuple(target.shape)} does not match "
                          f"logits {tuple(logits.shape)} (need class indices (B,) or one-hot (B, C))")
    return F.cross_entropy(logits.float(), target.long())
