"""Face-mask removal by parsing (seed 003 applied to seed 000-004's task): complete the face's label map
under the occluder, then regenerate the face on it with the mask-guided editor, inside the mask only.

A :class:`~unmask.training.portrait.PortraitTrainer` (the same editor, phases and losses, trained on the
clean training faces and their maps) with one more network and phase, and an inpainter's interface
(``model_input: image+mask``, ``output: image``):

* role ``completer`` (``C``): a network that takes the occluded face and the mask and outputs the 11
  label logits of the clean face's map, trained by cross-entropy against the true map in its own phase
  ``completer`` on every step (trained only where ``map_from`` is ``completer``);
* ``map_from`` says where the map under the mask comes from: ``completer`` (the network above; what
  ``unmask infer`` can use on a photo), ``landmarks`` (rasterised from the face's 68 landmarks,
  :func:`~unmask.data.components.rasterise_parsing`: no learning) or ``oracle`` (the true map: the
  ceiling of the map step). The whole map is the method's (the visible part too);
* the face is regenerated from what is visible: every component is embedded from the occluded face with
  the occluder's pixels set to zero and taken out of the component masks, the background too; the
  mouth, which the mask hides, gets the **mouth prior**: the running mean (momentum 0.05, over the
  generator's steps) of the training faces' mouth embeddings, kept in the checkpoint. No second photo of
  the person is used (a stated prior instead);
* the output is the generated face inside the mask, the input's pixels exactly elsewhere.

:meth:`inputs` gives the model what ``map_from`` needs: the mask, and for ``landmarks`` and ``oracle``
the map as a second condition channel (the exported model's fifth input channel).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unmask.catalog.capabilities import Capability
from unmask.data.components import COMPONENTS, one_hot, rasterise_parsing
from unmask.errors import ConfigError, UnmaskError
from unmask.metrics.parsing import parsing_metrics
from unmask.models import GENERATORS, build_generator
from unmask.training.base import Batch, Phase, StepLosses
from unmask.training.config import Role
from unmask.training.paired import composite
from unmask.training.portrait import PortraitOptions, PortraitTrainer
from unmask.training.registry import TRAINERS

MAP_SOURCES = ("completer", "landmarks", "oracle")
PRIOR_MOMENTUM = 0.05


@dataclass(frozen=True)
class ParsingUnmaskOptions(PortraitOptions):
    map_from: str = "completer"      # completer | landmarks | oracle: the map under the mask
    completer_lr: float = 1e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.map_from not in MAP_SOURCES:
            raise ConfigError(f"train.map_from: unknown {self.map_from!r}; choose {', '.join(MAP_SOURCES)}")
        lr = self.completer_lr
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < 1:
            raise ConfigError(f"train.completer_lr: must be a number in (0, 1), got {lr!r}")


class CodePrior(nn.Module):
    """A running mean of embeddings (a buffer, saved with the generators)."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, codes: Tensor) -> None:
        batch = codes.detach().float().mean(0)
        self.mean.copy_(batch if int(self.count) == 0 else (1 - PRIOR_MOMENTUM) * self.mean + PRIOR_MOMENTUM * batch)
        self.count += 1


class _ByCell:
    """``inputs``: on a trainer, what its ``map_from`` needs (the method); on the class, as every paired
    trainer's (the occluded face and its mask), for callers that only need the image a model is given."""

    def __init__(self, method):
        self.method = method

    def __get__(self, obj, cls):
        if obj is None:
            return lambda batch: (batch["occluded"], batch.get("mask"))
        return self.method.__get__(obj, cls)


@TRAINERS.register("parsing_unmask")
class ParsingUnmaskTrainer(PortraitTrainer):
    framework = "parsing_unmask"
    FIELDS = ("occluded", "clean", "mask", "parsing", "landmarks")
    model_input = "image+mask"
    output = "image"
    REQUIRED_METRICS = ("l1", "psnr", "ssim")
    SELECT_BY = "val_psnr"
    NETWORKS = {**PortraitTrainer.NETWORKS,
                "completer": Role(GENERATORS, frozenset({Capability.PARSES}))}
    OPTIONS = ParsingUnmaskOptions

    @classmethod
    def deployable(cls, cfg) -> bool:
        """Only the completer cell restores a photo from the image and the mask alone."""
        return cfg.options.map_from == "completer"

    def build_networks(self) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        gens, discs = super().build_networks()
        gens["C"] = build_generator(self.cfg.networks["completer"], cond_channels=1)
        gens["M"] = CodePrior(int(gens["E"].cfg.latent))
        return gens, discs

    def phases(self) -> list[Phase]:
        extra = [Phase("completer", ("C",), self.cfg.options.completer_lr)] \
            if self.cfg.options.map_from == "completer" else []
        return [*super().phases(), *extra]

    def losses(self, batch: Batch, update: frozenset[str]) -> StepLosses:
        rest = frozenset(update) - {"completer"}
        out = super().losses(batch, rest) if rest else StepLosses({}, {})
        if "g" in rest:         # the mouth prior follows the editor's current mouth encoder
            with torch.no_grad():
                emb = self.embed({c.name: (batch["clean"], batch["parsing"]) for c in COMPONENTS}, sample=False)
                self.generators["M"].update(emb["mouth"][0])
        if "completer" in update:
            ce = F.cross_entropy(self.generators["C"].logits(batch["occluded"], batch["mask"]).float(), batch["parsing"])
            out.totals["completer"] = ce
            out.logs["c_ce"] = ce
        return out

    # ------------------------------------------------------------------ using it
    def _inputs(self, batch: Batch, mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """(the occluded face, the condition): the mask (``mask`` where given, else the batch's), and for
        ``map_from`` landmarks or oracle the map as a second channel."""
        m = batch["mask"] if mask is None else mask
        source = self.cfg.options.map_from
        if source == "completer":
            return batch["occluded"], m
        if source == "oracle":
            lab = batch["parsing"]
        else:
            size = batch["occluded"].shape[-1]
            lab = torch.stack([torch.from_numpy(rasterise_parsing(lm, size).astype(np.int64))
                               for lm in batch["landmarks"].cpu().numpy()]).to(m.device)
        return batch["occluded"], torch.cat([m, lab[:, None].to(m.dtype)], 1)

    inputs = _ByCell(_inputs)

    def complete(self, occluded: Tensor, mask: Tensor) -> Tensor:
        """The completer's label map (B, H, W) of the occluded faces."""
        return parse_logits_cond(self.generators["C"], occluded, mask).argmax(1)

    def _split(self, occluded: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor]:
        if cond is None:
            raise UnmaskError("unmasking by parsing needs the mask: translate(occluded, mask)")
        mask = cond[:, :1]
        if cond.shape[1] > 1:
            return mask, cond[:, 1].round().long().clamp(0, 10)
        if self.cfg.options.map_from != "completer":
            raise UnmaskError(f"this model takes its map from {self.cfg.options.map_from}: give the map as the "
                              f"condition's second channel (train.map_from: completer works from the mask alone)")
        return mask, self.complete(occluded, mask)

    def restore(self, occluded: Tensor, mask: Tensor, labels: Tensor) -> Tensor:
        """The face generated on ``labels`` from the visible pixels, composited inside ``mask``."""
        hidden = mask[:, 0] > 0.5
        visible = occluded * (1 - (mask > 0.5).to(occluded.dtype))
        seen = labels.clone()
        seen[hidden] = 0                       # the occluder's pixels belong to no component
        emb = self.embed({c.name: (visible, seen) for c in COMPONENTS}, sample=False)
        z = {k: v[2] for k, v in emb.items()}
        z["mouth"] = self.generators["M"].mean.to(z["mouth"].dtype).expand_as(z["mouth"])
        out = self.generators["G"](one_hot(labels), self.features(z, labels), visible)
        return composite(out, occluded, mask)

    def _translate(self, occluded: Tensor, cond: Tensor | None) -> Tensor:
        mask, labels = self._split(occluded, cond)
        return self.restore(occluded, mask, labels)

    @torch.no_grad()
    def completed_map(self, batch: Batch, mask: Tensor | None = None) -> Tensor:
        """The map the model restores on, for the faces of ``batch`` (eval mode)."""
        x, cond = self._inputs(batch, mask)
        modes = [(m, m.training) for m in self.generators.modules()]
        self.generators.eval()
        try:
            return self._split(x.to(self.device), cond.to(self.device))[1].cpu()
        finally:
            for module, training in modes:
                module.training = training

    def measure(self, batch: Batch, metrics=None, model_mask: Tensor | None = None) -> dict[str, Tensor]:
        from unmask.metrics import MetricSuite

        true_mask = batch["mask"]
        x, cond = self._inputs(batch, model_mask)
        pred = self.translate(x, cond)
        suite = metrics if metrics is not None else MetricSuite.none()
        out = suite((pred + 1) / 2, (batch["clean"].float() + 1) / 2, mask=true_mask)
        hole = parsing_metrics(self.completed_map(batch, model_mask), batch["parsing"], region=true_mask,
                               prefix="map_hole")
        return {**out, "map_hole_miou": hole["map_hole_miou"]}

    def figure_columns(self, batch: Batch, n: int = 6) -> list[tuple[str, str, Tensor]]:
        """``unmask`` (the issue's figure): input, the true map, the completed map, the restoration."""
        from unmask.data.components import colour_map

        b = {k: v[:n] for k, v in batch.items()}
        x, cond = self.inputs(b)
        return [("unmask", "input", b["occluded"]), ("unmask", "true map", colour_map(b["parsing"])),
                ("unmask", f"map ({self.cfg.options.map_from})", colour_map(self.completed_map(b))),
                ("unmask", "restored", self.translate(x, cond)), ("unmask", "target", b["clean"])]


def parse_logits_cond(net: nn.Module, image: Tensor, cond: Tensor) -> Tensor:
    """Per-label logits of a network that takes a condition (the completer: the mask)."""
    return net.logits(image, cond) if hasattr(net, "logits") else net(image, cond)
