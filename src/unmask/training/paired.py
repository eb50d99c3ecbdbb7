"""Paired inpainting with the true mask: the stand-in for seed 000's segment-then-inpaint reference.

The paper pairs a segmentation mask with a pretrained DMFN (unavailable here); this trainer learns
the inpainting half on synthetic pairs instead. The generator sees the occluded image with the hole
blanked (0, mid-grey in [-1, 1]) plus the mask as a fourth input channel; its output is pasted into
the hole, ``out * m + x * (1 - m)``, for the discriminator and for evaluation.

Generator loss: ``lambda_rec * recon(out, clean) + lambda_adv * L_adv(D(composite))`` (the
reconstruction covers the whole raw output, so every pixel gives a gradient).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from unmask.errors import UnmaskError
from unmask.models import Generator, build_discriminator
from unmask.training.base import Batch, StepLosses, Trainer, with_classes


def _composite(out: Tensor, occluded: Tensor, mask: Tensor) -> Tensor:
    return torch.lerp(occluded, out, mask)   # out where m = 1, the input where m = 0


class PairedInpaintingTrainer(Trainer):
    framework = "paired"

    def build_networks(self) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        gens = {"G": Generator(with_classes(self.cfg.generator, 1))}  # the mask map as c (B, 1, H, W)
        discs = {"D": build_discriminator(with_classes(self.cfg.discriminator, 0))}
        return gens, discs

    def _inpaint(self, occluded: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """(raw output, composite, generator's own mask or None)."""
        out, own_mask = self.generators["G"](occluded * (1 - mask), mask, return_mask=True)
        return out, _composite(out, occluded, mask), own_mask

    def losses(self, batch: Batch, update_g: bool) -> StepLosses:
        cfg = self.cfg
        if "mask" not in batch:
            raise UnmaskError("paired training needs batches with a 'mask' (use the paired dataset)")
        x, y, m = batch["occluded"], batch["clean"], batch["mask"]
        with torch.set_grad_enabled(update_g):
            out, comp, own_mask = self._inpaint(x, m)
        crit = self.critique(self.discriminators["D"], y, comp, update_g)
        logs: dict[str, Tensor] = {"d_adv": crit.d_adv}
        if crit.gp is not None:
            logs["d_gp"] = crit.gp
        if own_mask is not None:
            logs["mask_mean"] = own_mask.mean()
        g_total = None
        if update_g:
            rec = self.recon(out, y)
            g_total = cfg.lambda_rec * rec + cfg.lambda_adv * crit.g_loss
            logs.update(g_rec=rec, g_adv=crit.g_loss)
        return StepLosses(g_total, crit.d_loss, logs)

    def _translate(self, occluded: Tensor, mask: Tensor | None) -> Tensor:
        if mask is None:
            raise UnmaskError("the paired inpainting model needs the mask: translate(occluded, mask)")
        return self._inpaint(occluded, mask)[1]
