"""What a network family can do, declared where it is registered and checked by the trainer that uses it.

A family registers its capabilities with its config (``GENERATORS.register("unet", UNetConfig,
capabilities=...)``); a config whose abilities depend on its own fields (a two-stage U-Net needs the
hole mask) narrows them in a ``capabilities(declared)`` method. A trainer lists what it needs of each
network role (``Trainer.NETWORKS``); a family without one of them is refused when params are read,
naming the key (``train.generator.name``), instead of failing inside a worker at step 1.
"""

from __future__ import annotations

from enum import StrEnum


class Capability(StrEnum):
    RETURNS_MASK = "returns_mask"    # forward(..., return_mask=True) -> (image, blend mask or None)
    IMAGE_ONLY = "image_only"        # runs on the image alone (built with no condition maps)
    CONDITIONS = "conditions"        # takes condition maps beside the image (the hole mask, domain labels)
    ONE_CHANNEL = "one_channel"      # outputs one channel (a mask), as a segmenter needs
    CLASS_HEAD = "class_head"        # a discriminator with a domain classification head (n_classes > 0)
    PARSES = "parses"                # outputs one logit per face-parsing label (logits(x)), as a face parser


WHAT = {
    Capability.RETURNS_MASK: "returns the mask it blends with",
    Capability.IMAGE_ONLY: "runs on the image alone",
    Capability.CONDITIONS: "takes condition maps beside the image",
    Capability.ONE_CHANNEL: "outputs one channel",
    Capability.CLASS_HEAD: "has a domain classification head",
    Capability.PARSES: "outputs one logit per parsing label",
}
