"""Paired inpainting: the occluded face, its mask and the true clean face are one training example.

One trainer serves every paired family: seed 000's segment-then-inpaint reference (its generator
with the mask as a fourth input channel), seed 002's U-Net autoencoder (no discriminator: ``adv`` 0)
and cGAN (a DCGAN discriminator), seed 004's FD-StackGAN (a two-stage U-Net) and seed 001's
coarse-to-fine inpainter (``inpainter``). What differs is data in params.yaml: the generator family, the
discriminator, and the loss weights below.

The generator sees the occluded image with the hole blanked (0, mid-grey in [-1, 1]) plus the mask;
the known pixels are pasted back into its output, ``out * m + x * (1 - m)``, for the discriminator
and for evaluation. A multi-stage generator (``forward_stages``, e.g. :class:`~unmask.models.two_stage.TwoStage`)
gets the reconstruction and perceptual terms on every stage's output; the terms on a stage before the
last are scaled by ``stage1`` (FD-StackGAN: stage I alpha 100 / beta 33 against stage II 10 / 3.3, i.e. 10).
Each stage is its own GAN (FD-StackGAN's G1 + D1, G2 + D2): one discriminator per stage judges that
stage's composite, and its adversarial term is not scaled by ``stage1`` (the paper's L_a has no weight).
FD-StackGAN's discriminators also see the occluded input (conditional, eq. 7); ours see the image only.

By default only the adversarial term is on (seed 002's GAN as published); a study names the terms it
trains with. Generator loss: ``sum_term w[term] * term(out, clean, mask)`` over the reconstruction terms
(:data:`unmask.losses.LOSS_TERMS`: l1, mse, dssim, ssim, l1_hole, l1_valid) + ``w.perceptual`` *
VGG-19 feature L1 + ``w.adv`` * L_adv(D(composite)). The reconstruction terms cover the whole raw
output, so every pixel gives a gradient.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from unmask.catalog.capabilities import Capability
from unmask.errors import ConfigError, UnmaskError
from unmask.losses import LOSS_TERMS
from unmask.losses.perceptual import load_vgg19
from unmask.models import DISCRIMINATORS, GENERATORS, build_discriminator, build_generator
from unmask.training.base import Batch, StepLosses, Trainer
from unmask.training.config import Role, TrainConfig
from unmask.training.registry import TRAINERS


@dataclass(frozen=True)
class PairedOptions:
    # folder with pretrained weights (vgg19-dcbb9e9d.pth) for the perceptual term; None: torch hub cache
    pretrained_dir: str | None = field(default=None, metadata={"location": True})

    def __post_init__(self) -> None:
        if self.pretrained_dir is not None and not isinstance(self.pretrained_dir, str):
            raise ConfigError(f"train.pretrained_dir: must be null or a folder path, got {self.pretrained_dir!r}")


def composite(out: Tensor, occluded: Tensor, mask: Tensor) -> Tensor:
    """``out`` inside the hole (m = 1), the input's known pixels (m = 0) exactly elsewhere."""
    return torch.where(mask > 0.5, out, occluded)


@TRAINERS.register("paired")
class PairedInpaintingTrainer(Trainer):
    framework = "paired"
    pairing = "paired"
    model_input = "image+mask"
    WEIGHTS = {"adv": 1.0, "gp": 10.0, "l1": 0.0, "mse": 0.0, "dssim": 0.0, "ssim": 0.0,
               "l1_hole": 0.0, "l1_valid": 0.0, "perceptual": 0.0, "stage1": 1.0}
    NETWORKS = {"generator": Role(GENERATORS, frozenset({Capability.CONDITIONS})),   # the hole mask as c
                "discriminator": Role(DISCRIMINATORS)}    # one per stage, when weights.adv > 0
    OPTIONS = PairedOptions

    @classmethod
    def requirements(cls, cfg: TrainConfig) -> list[str]:
        w = {**cls.WEIGHTS, **cfg.weights}
        if w["perceptual"] > 0:
            vgg = load_vgg19(cfg.options.pretrained_dir)
            if not isinstance(vgg, nn.Module):
                return [vgg.reason]
        return []

    def build_networks(self) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        gen = build_generator(self.cfg.networks["generator"], cond_channels=1)   # the mask map as c (B, 1, H, W)
        gens = {"G": gen}
        self.n_stages = getattr(gen, "n_stages", 1)
        names = ["D"] if self.n_stages == 1 else [f"D{i + 1}" for i in range(self.n_stages)]
        d_cfg = self.cfg.networks["discriminator"]
        discs = {n: build_discriminator(d_cfg) for n in names} if self.w["adv"] > 0 else {}
        self.terms = {name: LOSS_TERMS.get(name, f"train.weights.{name}")
                      for name in LOSS_TERMS if self.w.get(name, 0.0) > 0}
        self.vgg = None
        if self.w["perceptual"] > 0:
            vgg = load_vgg19(self.cfg.options.pretrained_dir)
            if not isinstance(vgg, nn.Module):
                raise UnmaskError(f"train.weights.perceptual: not run: {vgg.reason}")
            self.vgg = vgg.to(self.device)
        return gens, discs

    def _stages(self, occluded: Tensor, mask: Tensor) -> list[Tensor]:
        """Every stage's raw output (one for a single-stage generator)."""
        g = self.generators["G"]
        x = occluded * (1 - mask)
        if hasattr(g, "forward_stages"):
            return list(g.forward_stages(x, mask))
        return [g(x, mask)]

    def losses(self, batch: Batch, update: frozenset[str]) -> StepLosses:
        w = self.w
        if "mask" not in batch:
            raise UnmaskError("paired training needs batches with a 'mask' (use the paired dataset)")
        x, y, m = batch["occluded"], batch["clean"], batch["mask"]
        update_g = "g" in update
        with torch.set_grad_enabled(update_g):
            outs = self._stages(x, m)
        logs: dict[str, Tensor] = {}
        totals: dict[str, Tensor] = {}
        crits = []
        for d, out in zip(self.discriminators.values(), outs):   # one per stage (none without adv)
            crits.append(self.critique(d, y, composite(out, x, m), update_g))
        if crits:
            tag = [""] if len(crits) == 1 else [f"_s{i + 1}" for i in range(len(crits))]
            for t, crit in zip(tag, crits):
                logs[f"d_adv{t}"] = crit.d_adv
                if crit.gp is not None:
                    logs[f"d_gp{t}"] = crit.gp
            totals["d"] = sum(c.d_loss for c in crits)
        if update_g:
            g_total = torch.zeros((), device=x.device)
            for i, out in enumerate(outs):
                scale = w["stage1"] if i < len(outs) - 1 else 1.0
                tag = f"s{i + 1}_" if len(outs) > 1 else ""
                for name, term in self.terms.items():
                    value = term(out, y, m)
                    g_total = g_total + scale * w[name] * value
                    logs[f"g_{tag}{name}"] = value
                if self.vgg is not None:
                    value = self.vgg(out, y)
                    g_total = g_total + scale * w["perceptual"] * value
                    logs[f"g_{tag}perceptual"] = value
            if crits:
                adv = sum(c.g_loss for c in crits)
                g_total = g_total + w["adv"] * adv
                logs["g_adv"] = adv
            totals["g"] = g_total
        return StepLosses(totals, logs)

    def _translate(self, occluded: Tensor, mask: Tensor | None) -> Tensor:
        if mask is None:
            raise UnmaskError("the paired inpainting model needs the mask: translate(occluded, mask)")
        return composite(self._stages(occluded, mask)[-1], occluded, mask)

    def translate_stages(self, occluded: Tensor, mask: Tensor) -> list[Tensor]:
        """Each stage's raw output (seed 001's coarse, refined), then the composite :meth:`translate`
        returns; eval mode, no gradients, in [-1, 1] (seed 001's Figs. 7-11 show these)."""
        def run(x: Tensor, m: Tensor | None) -> list[Tensor]:
            if m is None:
                raise UnmaskError("the paired inpainting model needs the mask: translate_stages(occluded, mask)")
            outs = self._stages(x, m)
            return [*outs, composite(outs[-1], x, m)]
        return self._in_eval_mode(run, occluded, mask)
