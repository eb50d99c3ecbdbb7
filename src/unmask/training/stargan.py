"""Unified StarGAN (seed 000 Sections 3.3 and 4.6): one generator for both directions.

The generator gets the one-hot target domain tiled over the image (``n_classes = 2``; label 0 =
masked, 1 = clean); it translates to the target label and cycles back with the source label.

``n_discriminators`` (Table 5's n_disc):

* 1: one unified discriminator with StarGAN's Dsrc + Dcls heads. D learns the domain of real
  images (``weights.cls`` * cross-entropy); G is pushed to make fakes D classifies as the target.
* 2: one discriminator per domain, as in CycleGAN; no classification head or loss (each
  discriminator already knows its domain).

Every term is the sum over the two directions (as in :mod:`unmask.training.cyclegan`), so the same
weights (``adv``, ``cycle``, ``identity``, ``gp``; plus ``cls`` for Dcls) weigh the terms alike in both
frameworks. The identity term is
``|G(x, source label) - x|``; its inputs ride in the translation call (one batch of 4B).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dataclasses import dataclass

from unmask.catalog.capabilities import Capability
from unmask.errors import ConfigError
from unmask.losses import build_recon_loss, domain_classification_loss
from unmask.models import DISCRIMINATORS, GENERATORS, build_discriminator, build_generator
from unmask.training.base import Batch, StepLosses, Trainer
from unmask.training.config import Role
from unmask.training.cyclegan import CycleOptions
from unmask.training.registry import TRAINERS

MASKED, CLEAN = 0, 1
N_DOMAINS = 2


def _per_domain_cls(logits: Tensor, labels: Tensor) -> Tensor:
    return sum(domain_classification_loss(lg, lb) for lg, lb in zip(logits.chunk(N_DOMAINS),
                                                                    labels.chunk(N_DOMAINS)))


@dataclass(frozen=True)
class StarGANOptions(CycleOptions):
    n_discriminators: int = 1     # 1: unified, with Dcls; 2: one per domain

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_discriminators not in (1, 2) or isinstance(self.n_discriminators, bool):
            raise ConfigError(f"train.n_discriminators: must be 1 or 2, got {self.n_discriminators!r}")


@TRAINERS.register("stargan")
class StarGANTrainer(Trainer):
    framework = "stargan"
    pairing = "unpaired"
    FIELDS = ("occluded", "clean")       # a masked face and another person's clean face
    model_input = "image"
    WEIGHTS = {"adv": 1.0, "cycle": 10.0, "identity": 10.0, "gp": 10.0, "cls": 1.0}
    NETWORKS = {"generator": Role(GENERATORS, frozenset({Capability.RETURNS_MASK, Capability.CONDITIONS})),
                "discriminator": Role(DISCRIMINATORS)}   # G(x, domain labels, return_mask=True)
    OPTIONS = StarGANOptions

    @classmethod
    def needs(cls, cfg):
        """One unified discriminator classifies the domain too."""
        needs = super().needs(cfg)
        if cfg.options.n_discriminators == 1:
            needs["discriminator"] = frozenset({Capability.CLASS_HEAD})
        return needs

    def build_networks(self) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        self.recon = build_recon_loss(self.cfg.options.recon, key="train.recon")
        gens = {"G": build_generator(self.cfg.networks["generator"], cond_channels=N_DOMAINS)}
        d_cfg = self.cfg.networks["discriminator"]
        if self.cfg.options.n_discriminators == 1:
            discs = {"D": build_discriminator(d_cfg, n_classes=N_DOMAINS)}
        else:
            discs = {"D_A": build_discriminator(d_cfg), "D_B": build_discriminator(d_cfg)}
        return gens, discs

    def losses(self, batch: Batch, update: frozenset[str]) -> StepLosses:
        cfg, w = self.cfg, self.w
        update_g = "g" in update
        G = self.generators["G"]
        a, b = batch["occluded"], batch["clean"]
        n = a.shape[0]
        x = torch.cat([a, b])
        src = torch.cat([torch.full((n,), MASKED), torch.full((n,), CLEAN)]).to(self.device)
        trg = 1 - src
        c_src = F.one_hot(src, N_DOMAINS).to(x.dtype)
        c_trg = F.one_hot(trg, N_DOMAINS).to(x.dtype)
        identity = update_g and w["identity"] > 0
        with torch.set_grad_enabled(update_g):
            if identity:
                out, mask = G(torch.cat([x, x]), torch.cat([c_trg, c_src]), return_mask=True)
            else:
                out, mask = G(x, c_trg, return_mask=True)
        fake = out[:2 * n]                       # [a -> clean, b -> masked]
        logs: dict[str, Tensor] = {}
        if mask is not None:
            logs["mask_mean"] = mask[:n].mean()
        if cfg.options.n_discriminators == 1:
            fake_by_domain = torch.cat([fake[n:], fake[:n]])   # aligned with x: [masked, clean]
            crit = self.critique(self.discriminators["D"], x, fake_by_domain, update_g, domains=N_DOMAINS)
            d_cls = _per_domain_cls(crit.real_cls, src)
            d_total = crit.d_loss + w["cls"] * d_cls
            logs.update(d_adv=crit.d_adv, d_cls=d_cls)
            gps = [crit.gp]
        else:
            crit_a = self.critique(self.discriminators["D_A"], a, fake[n:], update_g)
            crit_b = self.critique(self.discriminators["D_B"], b, fake[:n], update_g)
            d_total = crit_a.d_loss + crit_b.d_loss
            logs.update(d_adv_a=crit_a.d_adv, d_adv_b=crit_b.d_adv)
            gps = [crit_a.gp, crit_b.gp]
        if gps[0] is not None:
            logs["d_gp"] = sum(gps) / len(gps)
        totals = {"d": d_total}
        if update_g:
            if cfg.options.n_discriminators == 1:
                adv = crit.g_loss
                g_cls = _per_domain_cls(crit.fake_cls, src)   # fakes posing as domain src[i]
                g_total = w["adv"] * adv + w["cls"] * g_cls
                logs["g_cls"] = g_cls
            else:
                adv = crit_a.g_loss + crit_b.g_loss
                g_total = w["adv"] * adv
            rec = G(fake, c_src)
            cycle = self.recon(rec[:n], a) + self.recon(rec[n:], b)
            g_total = g_total + w["cycle"] * cycle
            logs.update(g_adv=adv, g_cycle=cycle)
            if identity:
                idt = self.recon(out[2 * n:3 * n], a) + self.recon(out[3 * n:], b)
                g_total = g_total + w["identity"] * idt
                logs["g_idt"] = idt
            totals["g"] = g_total
        return StepLosses(totals, logs)

    def _translate(self, occluded: Tensor, mask: Tensor | None) -> Tensor:
        c = F.one_hot(torch.full((occluded.shape[0],), CLEAN, device=occluded.device), N_DOMAINS)
        return self.generators["G"](occluded, c.to(occluded.dtype))
