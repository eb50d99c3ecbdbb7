"""Tiny configs and synthetic batches for the trainer tests (32 px, 8 base channels, 1 block)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from unmask.training import TrainConfig

SIZE = 32


SEGMENTER_NET = {"name": "unet", "depth": 3, "base_channels": 8, "norm": "batch", "out_channels": 1}


def tiny_config(**overrides) -> TrainConfig:
    """A TrainConfig (as ``train:`` keys) at SIZE px; ``generator``/``discriminator`` entries merge into
    small networks (the segmenter: a one-channel U-Net and no discriminator)."""
    gen = overrides.pop("generator", {})
    disc = overrides.pop("discriminator", {})
    segmenter = overrides.get("framework") == "segmenter"
    kw = dict(threads=1, device="cpu", batch_size=4, steps=4, val_every=0, checkpoint_every=0, log_every=1,
              image_size=SIZE, generator=({**SEGMENTER_NET, **gen} if segmenter
                                          else {"base_channels": 8, "n_blocks": 1, **gen}))
    if not segmenter:
        kw["discriminator"] = {"base_channels": 8, **disc}
    kw.update(overrides)
    return TrainConfig.from_dict(kw)


def smooth_images(n: int, generator: torch.Generator) -> torch.Tensor:
    """Face-sized blobs of colour in [-1, 1]: random 8x8 images upsampled to SIZE."""
    low = torch.rand(n, 3, 8, 8, generator=generator) * 2 - 1
    return F.interpolate(low, size=SIZE, mode="bilinear", align_corners=False)


def make_batch(seed: int, n: int = 4, paired: bool = True) -> dict[str, torch.Tensor]:
    """A batch with ``occluded``/``clean`` (and ``mask`` with its lower half occluded when paired)."""
    g = torch.Generator().manual_seed(seed)
    clean = smooth_images(n, g)
    mask = torch.zeros(n, 1, SIZE, SIZE)
    mask[:, :, SIZE // 2:] = 1
    occluded = torch.lerp(clean, torch.tensor([0.6, 0.6, 1.0]).view(1, 3, 1, 1), mask)
    if not paired:   # unpaired: the clean faces are other images
        return {"occluded": occluded, "clean": smooth_images(n, g)}
    return {"occluded": occluded, "clean": clean, "mask": mask}


def batch_stream(start: int = 0, paired: bool = True):
    """Batch i is ``make_batch(i)``: a stream that can resume at any step."""
    i = start
    while True:
        yield make_batch(i, paired=paired)
        i += 1
