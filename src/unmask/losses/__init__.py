"""Losses: adversarial (registry ADV_LOSSES), reconstruction (RECON_LOSSES; SSIM/DSSIM; mask-weighted),
the paired trainers' reconstruction terms by name (LOSS_TERMS), VGG-19 perceptual, domain classification."""

from unmask.losses.adversarial import ADV_LOSSES, AdversarialLoss, build_adv_loss, gradient_penalty
from unmask.losses.perceptual import LossUnavailable, VGGPerceptual, load_vgg19
from unmask.losses.reconstruction import (RECON_LOSSES, build_recon_loss, domain_classification_loss, dssim,
                                          ssim_index, ssim_loss, weighted_recon)
from unmask.losses.terms import LOSS_TERMS

__all__ = ["ADV_LOSSES", "AdversarialLoss", "build_adv_loss", "gradient_penalty",
           "RECON_LOSSES", "build_recon_loss", "domain_classification_loss", "dssim", "ssim_index", "ssim_loss",
           "weighted_recon", "LOSS_TERMS", "LossUnavailable", "VGGPerceptual", "load_vgg19"]
