"""Mask-guided portrait editing (seed 003: Gu et al., CVPR 2019, as re-trained by Panday 2022).

A face is regenerated from its components' appearance and a target parsing map: five local
autoencoders embed the source's left eye, right eye, mouth, skin and hair (role ``local``); the eye
and mouth features are placed at the **target** map's component centres; the mask-guided generator
(role ``generator``: E_m, G_m, E_b, G_b) turns them, the target map and the target photo's background
into the image. Two conditional multiscale discriminators (role ``discriminator``, built twice: ``D``
judges the paired reconstruction, ``D2`` the swapped image) and a face parser (role ``parser``, ``P``)
used as a loss complete it.

Phases (:class:`~unmask.training.base.Phase`, with start and stop steps):

* ``parser`` (steps ``[0, parser_steps)``): the parser alone, cross-entropy on the logits of the
  training faces' true maps. After it, the parser is frozen: no phase updates it, and it runs in
  eval mode as the loss (the thesis's P_F, "trained first"; Gu et al.'s code never trains it);
* then ``g`` (the local embedding and the generator, every step), ``d`` (D, on paired steps) and
  ``d2`` (D2, on swapped steps). ``schedule: alternate`` (the thesis, Section 3.3): paired and swapped
  steps alternate, paired first; ``schedule: code`` (Gu et al.'s train.py): the swapped terms every
  step, the paired terms every other step.

Losses (weights: ``local`` 10, ``global`` 1, ``adv`` 1, ``fm`` 10, ``parsing`` 1, ``kl`` 0; the
thesis's Eq. 3.9 {10, 1, 1, 1}, feature matching 10 as pix2pixHD):

* paired (source = target): ``local`` (the image decoders' MSE to each crop, summed over the five
  components) + ``global`` (MSE of the output to the face) + ``adv`` (the adversarial loss,
  ``train.adv_loss``, summed over D's scales) + ``fm`` (L1 between D's last intermediate features of
  the output and of the real face, per scale) + ``parsing`` (cross-entropy of the frozen parser's
  logits on the output against the target map) + ``kl``;
* swapped (the source's components from another face of the batch, a derangement: the batch rolled by
  one, so no face is its own source; the target map, centres and background from the face itself):
  ``local`` + ``adv`` (D2) + ``parsing`` + ``kl`` (Eq. 3.10).

``kl`` is the KL divergence of the encoders' Gaussians from N(0, I), summed over batch and latent
dimensions as the thesis's VAE code does; Gu et al.'s code samples z = mu + eps sigma in training but
gives KL weight 0 (a noisy autoencoder); the thesis's VAE (Section 4.5.3) gives it 1000. At test time
z = mu. ``eye_crop: masked`` multiplies the eye windows by the eye label (Section 4.5.1); the mouth
window is always masked by the mouth labels, skin and hair are the whole image masked by theirs.

The model's input is the face and its label map (``model_input: image+parsing``); :meth:`translate`
is the self-reconstruction G(x, m, x, m).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unmask.catalog.capabilities import Capability
from unmask.data.components import (BY_NAME, COMPONENTS, GROUPS, centres, check_size, colour_map, component_mask, crop,
                                    edit_map, feature_centre, one_hot, paste)
from unmask.errors import ConfigError, UnmaskError
from unmask.metrics.portrait import portrait_metrics
from unmask.models import GENERATORS, build_generator
from unmask.models.portrait import (CONDITIONAL_DISCRIMINATORS, LOCAL_EMBEDDINGS, MASK_GUIDED_GENERATORS,
                                    kl_divergence)
from unmask.training.base import Batch, Phase, StepLosses, Trainer
from unmask.training.config import Role, TrainConfig
from unmask.training.parser import parse_logits
from unmask.training.registry import TRAINERS

SCHEDULES = ("alternate", "code")
EYE_CROPS = ("unmasked", "masked")

Sources = dict[str, tuple[Tensor, Tensor]]   # component name -> (source image, source label map)


@dataclass(frozen=True)
class PortraitOptions:
    schedule: str = "alternate"      # alternate (the thesis) | code (Gu et al.: swapped terms every step)
    eye_crop: str = "unmasked"       # unmasked (Gu et al.) | masked (the eye label only, thesis 4.5.1)
    parser_steps: int = 120          # steps of the parser phase before the generator's (0: no parser loss)
    parser_lr: float = 1e-3

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"train.schedule: unknown {self.schedule!r}; choose {' or '.join(SCHEDULES)}")
        if self.eye_crop not in EYE_CROPS:
            raise ConfigError(f"train.eye_crop: unknown {self.eye_crop!r}; choose {' or '.join(EYE_CROPS)}")
        if isinstance(self.parser_steps, bool) or not isinstance(self.parser_steps, int) or self.parser_steps < 0:
            raise ConfigError(f"train.parser_steps: must be an integer >= 0, got {self.parser_steps!r}")
        lr = self.parser_lr
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < 1:
            raise ConfigError(f"train.parser_lr: must be a number in (0, 1), got {lr!r}")


def derangement(n: int, device: torch.device | None = None) -> Tensor:
    """The batch rolled by one: every face's source is another face (n >= 2)."""
    if n < 2:
        raise UnmaskError("swapped training needs batches of at least 2 faces (train.batch_size >= 2)")
    return torch.roll(torch.arange(n, device=device), 1)


@TRAINERS.register("portrait")
class PortraitTrainer(Trainer):
    framework = "portrait"
    pairing = "paired"
    FIELDS = ("clean", "parsing")
    model_input = "image+parsing"
    output = "portrait"
    WEIGHTS = {"local": 10.0, "global": 1.0, "adv": 1.0, "fm": 10.0, "parsing": 1.0, "kl": 0.0}
    REQUIRED_METRICS = ("recon_l1", "recon_psnr", "recon_ssim")
    SELECT_BY = "val_recon_psnr"
    NETWORKS = {"local": Role(LOCAL_EMBEDDINGS),
                "generator": Role(MASK_GUIDED_GENERATORS),
                "discriminator": Role(CONDITIONAL_DISCRIMINATORS, frozenset({Capability.CONDITIONS})),
                "parser": Role(GENERATORS, frozenset({Capability.IMAGE_ONLY, Capability.PARSES}))}
    OPTIONS = PortraitOptions

    @classmethod
    def check_networks(cls, cfg: TrainConfig) -> None:
        super().check_networks(cfg)
        check_size(cfg.image_size)
        if cfg.weights.get("parsing", cls.WEIGHTS["parsing"]) > 0 and cfg.options.parser_steps == 0:
            raise ConfigError("train.parser_steps: the parsing loss (weights.parsing > 0) needs a trained "
                              "parser: give parser_steps > 0, or set weights.parsing to 0")
        if cfg.options.parser_steps >= cfg.steps:
            raise ConfigError(f"train.parser_steps: {cfg.options.parser_steps} leaves no step of train.steps "
                              f"({cfg.steps}) for the generator")

    def build_networks(self) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        nets = self.cfg.networks
        local = LOCAL_EMBEDDINGS.build(nets["local"])
        gens = {"E": local, "G": MASK_GUIDED_GENERATORS.build(nets["generator"], feature_channels=local.cfg.channels),
                "P": build_generator(nets["parser"], cond_channels=0)}
        discs = {"D": CONDITIONAL_DISCRIMINATORS.build(nets["discriminator"]),
                 "D2": CONDITIONAL_DISCRIMINATORS.build(nets["discriminator"])}
        return gens, discs

    def phases(self) -> list[Phase]:
        o, start = self.cfg.options, self.cfg.options.parser_steps
        parser = [Phase("parser", ("P",), o.parser_lr, stop=start)] if start else []
        alternate = o.schedule == "alternate"
        return [*parser,
                Phase("g", ("E", "G"), self.cfg.lr_g, start=start),
                Phase("d", ("D",), self.cfg.lr_d, interval=2, start=start, at=0),
                Phase("d2", ("D2",), self.cfg.lr_d, interval=2 if alternate else 1, start=start,
                      at=1 if alternate else 0)]

    # ------------------------------------------------------------------ the model
    def embed(self, sources: Sources, sample: bool) -> dict[str, tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None]]:
        """Per component: (mu, logvar, z, the crop it encoded, the mask that crop was multiplied by
        or None)."""
        local = self.generators["E"]
        out = {}
        for comp in COMPONENTS:
            image, labels = sources[comp.name]
            ae = local.parts[comp.name]
            inside = component_mask(labels, comp)
            if comp.window is None:
                keep = inside
                part = image * keep
            else:
                c = centres(labels, comp)
                part = crop(image, c, ae.window)
                keep = crop(inside, c, ae.window) if comp.name == "mouth" or self.cfg.options.eye_crop == "masked" \
                    else None
                if keep is not None:
                    part = part * keep
            mu, logvar = ae.encode(part)
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if sample else mu
            out[comp.name] = (mu, logvar, z, part, keep)
        return out

    def features(self, codes: dict[str, Tensor], target_map: Tensor) -> list[Tensor]:
        """The feature decoders' blocks, the eyes' and mouth's placed at ``target_map``'s centres."""
        local = self.generators["E"]
        size = target_map.shape[-1]
        feats = []
        for comp in COMPONENTS:
            f = local.parts[comp.name].decode_feature(codes[comp.name])
            if comp.window is not None:
                canvas = f.new_zeros(f.shape[0], f.shape[1], size // 4, size // 4)
                f = paste(canvas, f, feature_centre(centres(target_map, comp), 4))
            feats.append(f)
        return feats

    def _generate(self, sources: Sources, target: Tensor, target_map: Tensor, sample: bool):
        emb = self.embed(sources, sample)
        out = self.generators["G"](one_hot(target_map), self.features({k: v[2] for k, v in emb.items()}, target_map),
                                   target)
        return out, emb

    def _local_loss(self, emb) -> Tensor:
        """The image decoders' MSE to the crops they encoded (masked as the crop was), summed over components."""
        local = self.generators["E"]
        total = 0.0
        for comp in COMPONENTS:
            _, _, z, part, keep = emb[comp.name]
            rec = local.parts[comp.name].decode_image(z)
            if keep is not None:
                rec = rec * keep
            total = total + F.mse_loss(rec.float(), part.float())
        return total

    @staticmethod
    def _kl(emb) -> Tensor:
        return sum(kl_divergence(mu.float(), logvar.float()) for mu, logvar, *_ in emb.values())

    def _gan(self, d: nn.Module, real: Tensor, fake: Tensor, cond: Tensor, fm: bool):
        """(D loss, G adversarial loss, feature matching) summed over ``d``'s scales; the fakes carry
        the generator's graph (each phase backpropagates into its own networks only)."""
        d_loss = g_adv = feat = 0.0
        for (r_logit, r_feat), (f_logit, f_feat) in zip(d(real, cond), d(fake, cond)):
            d_loss = d_loss + self.adv.d_loss(r_logit, f_logit)
            g_adv = g_adv + self.adv.g_loss(r_logit, f_logit)
            if fm:
                feat = feat + F.l1_loss(f_feat, r_feat.detach())
        return d_loss, g_adv, feat

    def losses(self, batch: Batch, update: frozenset[str]) -> StepLosses:
        if "parsing" not in batch:
            raise UnmaskError("portrait training needs batches with a 'parsing' map (the face's labels)")
        x, lab = batch["clean"], batch["parsing"]
        parser = self.generators["P"]
        if "parser" in update:
            parser.train()
            ce = F.cross_entropy(parse_logits(parser, x).float(), lab)
            return StepLosses({"parser": ce}, {"p_ce": ce})
        parser.eval()          # frozen: in no phase from here on, and its BatchNorm statistics fixed
        w = self.w
        oh = one_hot(lab)
        g_total = torch.zeros((), device=x.device)
        totals: dict[str, Tensor] = {}
        logs: dict[str, Tensor] = {}
        for phase, d_name in (("d", "D"), ("d2", "D2")):
            if phase not in update:
                continue
            paired = phase == "d"
            if paired:
                sources = {c.name: (x, lab) for c in COMPONENTS}
            else:
                perm = derangement(x.shape[0], x.device)
                sources = {c.name: (x[perm], lab[perm]) for c in COMPONENTS}
            out, emb = self._generate(sources, x, lab, sample=True)
            d_loss, g_adv, fm = self._gan(self.discriminators[d_name], x, out, oh, fm=paired and w["fm"] > 0)
            totals[phase] = d_loss
            tag = "paired" if paired else "swapped"
            local, kl = self._local_loss(emb), self._kl(emb)
            terms = {"local": local, "adv": g_adv, "kl": kl}
            if paired:
                terms["global"] = F.mse_loss(out.float(), x.float())
                if w["fm"] > 0:
                    terms["fm"] = fm
            if w["parsing"] > 0:
                terms["parsing"] = F.cross_entropy(parse_logits(parser, out).float(), lab)
            for name, value in terms.items():
                g_total = g_total + w[name] * value
                logs[f"g_{tag}_{name}"] = value
            logs[f"d_{tag}"] = d_loss
        if "g" in update:
            totals["g"] = g_total
        return StepLosses(totals, logs)

    # ------------------------------------------------------------------ using it
    @classmethod
    def inputs(cls, batch: Batch) -> tuple[Tensor, Tensor | None]:
        return batch["clean"], batch["parsing"]

    @staticmethod
    def _labels(cond: Tensor | None) -> Tensor:
        if cond is None:
            raise UnmaskError("the portrait model needs the face's label map: translate(image, parsing)")
        return (cond[:, 0] if cond.dim() == 4 else cond).round().long().clamp(0, 10)

    def _translate(self, occluded: Tensor, mask: Tensor | None) -> Tensor:
        lab = self._labels(mask)
        return self._generate({c.name: (occluded, lab) for c in COMPONENTS}, occluded, lab, sample=False)[0]

    @torch.no_grad()
    def compose(self, target: Tensor, target_map: Tensor, sources: Sources | None = None,
                codes: dict[str, Tensor] | None = None) -> Tensor:
        """The face generated on ``target_map`` with ``target``'s background, each component's
        appearance from ``sources[name]`` (image, map) where given, else from the target itself;
        ``codes[name]`` replaces a component's embedding (e.g. zeros). Eval mode, z = mu, in [-1, 1]."""
        def run(x: Tensor, m: Tensor | None) -> Tensor:
            lab = self._labels(m)
            own = {c.name: (x, lab) for c in COMPONENTS}
            given = {k: (img.to(x.device), mp.to(x.device).long()) for k, (img, mp) in (sources or {}).items()}
            emb = self.embed({**own, **given}, sample=False)
            z = {k: v[2] for k, v in emb.items()}
            z.update({k: v.to(x.device) for k, v in (codes or {}).items()})
            return self.generators["G"](one_hot(lab), self.features(z, lab), x)
        return self._in_eval_mode(run, target, target_map[:, None].float())[0]

    @torch.no_grad()
    def posterior(self, image: Tensor, labels: Tensor) -> dict[str, tuple[Tensor, Tensor]]:
        """Per component (mu, logvar) of each face's embedding (eval mode)."""
        modes = [(m, m.training) for m in self.generators.modules()]
        self.generators.eval()
        try:
            emb = self.embed({c.name: (image.to(self.device), labels.to(self.device)) for c in COMPONENTS}, False)
        finally:
            for module, training in modes:
                module.training = training
        return {k: (v[0].float().cpu(), v[1].float().cpu()) for k, v in emb.items()}

    @torch.no_grad()
    def figure_columns(self, batch: Batch, n: int = 6) -> list[tuple[str, str, Tensor]]:
        """The thesis's figures on the first ``n`` test faces, as (figure, column, images in [-1, 1]):

        * ``swaps`` (Figs. 4.11, 4.13): target, source (the next face), the self-reconstruction, every
          component from the source (mask-to-face), then one component group at a time;
        * ``mask_to_face`` (Fig. 4.7): the first face's map and background with each other face as source;
        * ``edited`` (Figs. 4.8-4.10): the target map with the source's mouth, then eyes, put at the
          target's centres, and the faces generated on them.
        """
        x, lab = batch["clean"][:n].cpu(), batch["parsing"][:n].cpu()
        k = x.shape[0]
        src = torch.roll(torch.arange(k), 1)
        xs, ls = x[src], lab[src]
        cols = [("swaps", "target", x), ("swaps", "source", xs), ("swaps", "self", self.compose(x, lab)),
                ("swaps", "all from source", self.compose(x, lab, {c.name: (xs, ls) for c in COMPONENTS}))]
        for group, names in GROUPS.items():
            cols.append(("swaps", f"{group} from source", self.compose(x, lab, {c: (xs, ls) for c in names})))
        first, first_map = x[:1].expand(k, -1, -1, -1), lab[:1].expand(k, -1, -1)
        cols += [("mask_to_face", "source", x), ("mask_to_face", "target map", colour_map(first_map)),
                 ("mask_to_face", "output", self.compose(first, first_map, {c.name: (x, lab) for c in COMPONENTS}))]
        cols += [("edited", "target", x)]
        for name in ("mouth", "left_eye"):
            edited = edit_map(lab, ls, BY_NAME[name])
            if name == "left_eye":
                edited = edit_map(edited, ls, BY_NAME["right_eye"])
            what = "mouth" if name == "mouth" else "eyes"
            cols += [("edited", f"map, source's {what}", colour_map(edited)),
                     ("edited", f"output, source's {what}", self.compose(x, edited))]
        return cols

    def measure(self, batch: Batch, metrics=None, model_mask: Tensor | None = None) -> dict[str, Tensor]:
        return portrait_metrics(self, batch["clean"], batch["parsing"])

