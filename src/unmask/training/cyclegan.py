"""CycleGAN (seed 000 Section 3.3, the paper's main setup): two generators, two discriminators.

Domain A = masked faces, B = clean faces. ``G_AB`` (masked -> clean, the model evaluation uses) and
``G_BA`` (clean -> masked, only for training); ``D_A`` judges masked faces, ``D_B`` clean ones.

Generator loss (per direction, summed)::

    w.adv      * L_adv(D_B(G_AB(a))) + L_adv(D_A(G_BA(b)))
  + w.cycle    * |G_BA(G_AB(a)) - a| + |G_AB(G_BA(b)) - b|      (the paper's L_rec, Section 3.3)
  + w.identity * |G_AB(b) - b| + |G_BA(a) - a|                  (identity term; see config.py)

and the critics' gradient penalty ``w.gp`` (losses that use one).

The identity inputs ride in the same generator call as the translation (one batch of 2B), so each
generator runs twice per generator step (translate + cycle), never on the same input twice.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dataclasses import dataclass

from unmask.catalog.capabilities import Capability
from unmask.errors import ConfigError
from unmask.losses import RECON_LOSSES, build_recon_loss
from unmask.models import DISCRIMINATORS, GENERATORS, build_discriminator, build_generator
from unmask.training.base import Batch, StepLosses, Trainer
from unmask.training.config import Role
from unmask.training.registry import TRAINERS


@dataclass(frozen=True)
class CycleOptions:
    """The options of the cycle-consistent trainers (CycleGAN, StarGAN)."""

    recon: str = "l1"        # RECON_LOSSES name: the distance of the cycle and identity terms

    def __post_init__(self) -> None:
        if self.recon not in RECON_LOSSES:
            raise ConfigError(f"train.recon: unknown {self.recon!r}; choose one of {', '.join(sorted(RECON_LOSSES))}")


@TRAINERS.register("cyclegan")
class CycleGANTrainer(Trainer):
    framework = "cyclegan"
    pairing = "unpaired"
    FIELDS = ("occluded", "clean")       # a masked face and another person's clean face
    model_input = "image"
    WEIGHTS = {"adv": 1.0, "cycle": 10.0, "identity": 10.0, "gp": 10.0}   # CycleGAN code's defaults
    NETWORKS = {"generator": Role(GENERATORS, frozenset({Capability.RETURNS_MASK, Capability.IMAGE_ONLY})),
                "discriminator": Role(DISCRIMINATORS)}      # G(x, return_mask=True); G_AB, G_BA; D_A, D_B
    OPTIONS = CycleOptions

    def build_networks(self) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        self.recon = build_recon_loss(self.cfg.options.recon, key="train.recon")
        g_cfg, d_cfg = self.cfg.networks["generator"], self.cfg.networks["discriminator"]
        gens = {"G_AB": build_generator(g_cfg), "G_BA": build_generator(g_cfg)}
        discs = {"D_A": build_discriminator(d_cfg), "D_B": build_discriminator(d_cfg)}
        return gens, discs

    def losses(self, batch: Batch, update: frozenset[str]) -> StepLosses:
        w = self.w
        update_g = "g" in update
        g, d = self.generators, self.discriminators
        a, b = batch["occluded"], batch["clean"]
        n = a.shape[0]
        identity = update_g and w["identity"] > 0
        with torch.set_grad_enabled(update_g):
            out_ab, mask_ab = g["G_AB"](torch.cat([a, b]) if identity else a, return_mask=True)
            out_ba, mask_ba = g["G_BA"](torch.cat([b, a]) if identity else b, return_mask=True)
        fake_b, fake_a = out_ab[:n], out_ba[:n]
        crit_b = self.critique(d["D_B"], b, fake_b, update_g)
        crit_a = self.critique(d["D_A"], a, fake_a, update_g)
        logs: dict[str, Tensor] = {"d_adv_a": crit_a.d_adv, "d_adv_b": crit_b.d_adv}
        if crit_a.gp is not None:
            logs["d_gp"] = (crit_a.gp + crit_b.gp) / 2
        if mask_ab is not None:
            logs["mask_mean"] = mask_ab[:n].mean()
            logs["mask_mean_ba"] = mask_ba[:n].mean()
        totals = {"d": crit_a.d_loss + crit_b.d_loss}
        if update_g:
            adv = crit_a.g_loss + crit_b.g_loss
            cycle = self.recon(g["G_BA"](fake_b), a) + self.recon(g["G_AB"](fake_a), b)
            g_total = w["adv"] * adv + w["cycle"] * cycle
            logs.update(g_adv=adv, g_cycle=cycle)
            if identity:
                idt = self.recon(out_ab[n:], b) + self.recon(out_ba[n:], a)
                g_total = g_total + w["identity"] * idt
                logs["g_idt"] = idt
            totals["g"] = g_total
        return StepLosses(totals, logs)

    def _translate(self, occluded: Tensor, mask: Tensor | None) -> Tensor:
        return self.generators["G_AB"](occluded)
