"""Losses: adversarial (registry ADV_LOSSES), reconstruction (RECON_LOSSES), domain classification."""

from unmask.losses.adversarial import ADV_LOSSES, AdversarialLoss, build_adv_loss, gradient_penalty
from unmask.losses.reconstruction import RECON_LOSSES, build_recon_loss, domain_classification_loss

__all__ = ["ADV_LOSSES", "AdversarialLoss", "build_adv_loss", "gradient_penalty",
           "RECON_LOSSES", "build_recon_loss", "domain_classification_loss"]
