"""The mask segmenter of seed 001: a network that finds the occluder in the occluded photo.

Trained on paired batches with the true mask as target and the paper's Dice loss (eq. 1); an optional
binary cross-entropy term (``weights.bce``) is off by default. The generator family is any that
outputs one channel (``generator: {name: unet, out_channels: 1}``): its tanh output ``y`` is read as
the probability ``p = (y + 1) / 2`` (a sigmoid of ``2 logit``). It is measured by pixel accuracy, IoU
and Dice of ``p > 0.5`` (:func:`unmask.metrics.segmentation.segmentation_metrics`), and the champion is
the trial with the best validation Dice.

``translate`` returns the predicted mask as a grey image in [-1, 1] (white = occluded), which is what
the exported model outputs and the report's figure shows; :meth:`predict_mask` gives the probability.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unmask.catalog.capabilities import Capability
from unmask.errors import ConfigError, UnmaskError
from unmask.losses.segmentation import dice_loss
from unmask.metrics.segmentation import segmentation_metrics
from unmask.models import GENERATORS, build_generator
from unmask.training.base import Batch, StepLosses, Trainer
from unmask.training.config import Role
from unmask.training.registry import TRAINERS


@TRAINERS.register("segmenter")
class SegmenterTrainer(Trainer):
    framework = "segmenter"
    pairing = "paired"
    model_input = "image"
    output = "mask"
    WEIGHTS = {"dice": 1.0, "bce": 0.0}
    REQUIRED_METRICS = ("pixel_acc", "iou", "dice")
    SELECT_BY = "val_dice"
    NETWORKS = {"generator": Role(GENERATORS, frozenset({Capability.IMAGE_ONLY, Capability.ONE_CHANNEL}))}

    @classmethod
    def check_networks(cls, cfg) -> None:
        if getattr(cfg.networks["generator"], "out_channels", 1) != 1:   # a family that could output one channel
            raise ConfigError("train.generator.out_channels: the segmenter needs a one-channel output "
                              "(generator: {name: unet, out_channels: 1})")
        super().check_networks(cfg)

    def build_networks(self) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        return {"G": build_generator(self.cfg.networks["generator"], cond_channels=0)}, {}

    def _prob(self, occluded: Tensor) -> Tensor:
        return (self.generators["G"](occluded) + 1) / 2

    def losses(self, batch: Batch, update: frozenset[str]) -> StepLosses:
        if "mask" not in batch:
            raise UnmaskError("segmenter training needs batches with a 'mask' (use the paired dataset)")
        prob = self._prob(batch["occluded"])
        target = batch["mask"]
        dice = dice_loss(prob, target)
        total = self.w["dice"] * dice
        logs = {"g_dice": dice}
        if self.w["bce"] > 0:
            bce = F.binary_cross_entropy(prob.float().clamp(1e-6, 1 - 1e-6), target.float())
            total = total + self.w["bce"] * bce
            logs["g_bce"] = bce
        return StepLosses({"g": total}, logs)

    @torch.no_grad()
    def predict_mask(self, occluded: Tensor) -> Tensor:
        """The probability that each pixel is occluded, (B, 1, H, W) in [0, 1]."""
        return (self.translate(occluded)[:, :1] + 1) / 2

    def _translate(self, occluded: Tensor, mask: Tensor | None) -> Tensor:
        return (self._prob(occluded) * 2 - 1).expand(-1, 3, -1, -1)

    def measure(self, batch: Batch, metrics=None, model_mask: Tensor | None = None) -> dict[str, Tensor]:
        return segmentation_metrics(self.predict_mask(batch["occluded"]), batch["mask"])
