"""A face parser (seed 003's P_F and its held-out scorer): a network that labels every pixel of a face
with one of the 11 parsing labels (:data:`unmask.data.schema.PARSING_LABELS`).

Trained on the clean faces and their label maps with pixel-wise cross-entropy on the logits (Gu et
al.'s code applies CrossEntropyLoss to a softmax output, a double softmax; we do not). The generator
family is any that outputs one logit per label (``generator: {name: unet, out_channels: 11}``). Measured
by pixel accuracy and the mean IoU over the labels present in the true or the predicted map of each
face (then averaged over faces); the champion is the trial with the best validation mIoU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unmask.catalog.capabilities import Capability
from unmask.data.components import image_to_labels, labels_to_image
from unmask.errors import UnmaskError
from unmask.metrics.parsing import parsing_metrics
from unmask.models import GENERATORS, build_generator
from unmask.training.base import Batch, StepLosses, Trainer
from unmask.training.config import Role
from unmask.training.registry import TRAINERS


def parse_logits(net: nn.Module, image: Tensor) -> Tensor:
    """Per-label logits (B, 11, H, W) of a parser network (one that declares ``parses``)."""
    return net.logits(image) if hasattr(net, "logits") else net(image)


@TRAINERS.register("parser")
class ParserTrainer(Trainer):
    framework = "parser"
    pairing = "paired"
    FIELDS = ("clean", "parsing")
    model_input = "image"
    output = "parsing"
    WEIGHTS = {"ce": 1.0}
    REQUIRED_METRICS = ("parse_acc", "parse_miou")
    SELECT_BY = "val_parse_miou"
    NETWORKS = {"generator": Role(GENERATORS, frozenset({Capability.IMAGE_ONLY, Capability.PARSES}))}

    def build_networks(self) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        return {"G": build_generator(self.cfg.networks["generator"], cond_channels=0)}, {}

    def losses(self, batch: Batch, update: frozenset[str]) -> StepLosses:
        if "parsing" not in batch:
            raise UnmaskError("parser training needs batches with a 'parsing' map")
        ce = F.cross_entropy(parse_logits(self.generators["G"], batch["clean"]).float(), batch["parsing"])
        return StepLosses({"g": self.w["ce"] * ce}, {"g_ce": ce})

    @classmethod
    def inputs(cls, batch: Batch) -> tuple[Tensor, Tensor | None]:
        return batch["clean"], None

    @torch.no_grad()
    def predict(self, image: Tensor) -> Tensor:
        """The label map (B, H, W) int64 of faces (B, 3, H, W) in [-1, 1]."""
        return image_to_labels(self.translate(image))

    def _translate(self, occluded: Tensor, mask: Tensor | None) -> Tensor:
        """The label map as a grey image (:func:`~unmask.data.components.labels_to_image`), what the
        exported model returns."""
        return labels_to_image(parse_logits(self.generators["G"], occluded).argmax(1))

    def measure(self, batch: Batch, metrics=None, model_mask: Tensor | None = None) -> dict[str, Tensor]:
        return parsing_metrics(self.predict(batch["clean"]), batch["parsing"])
