"""Receptive field measured from gradients: which input pixels can change one output unit."""

from __future__ import annotations

import torch
from torch import nn


def measure_receptive_field(model: nn.Module, image_size: int) -> int:
    """Side in pixels of the input region that influences the centre unit of ``model``'s output.

    Feeds a random (1, 3, image_size, image_size) image (in eval mode, so BatchNorm uses running
    statistics instead of coupling every pixel through the batch mean), takes the gradient of the
    centre output unit (summed over channels; a discriminator's source logits when it returns a
    tuple) and returns the larger extent of the nonzero gradient over rows and columns. Raises
    ValueError when that region touches the image border, where the true field would be cut off:
    measure again with a larger ``image_size`` (fully convolutional models accept any size).
    """
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        x = torch.randn(1, 3, image_size, image_size, dtype=param.dtype, device=param.device,
                        requires_grad=True)
        out = model(x)
        if isinstance(out, tuple):
            out = out[0]
        h, w = out.shape[-2:]
        (grad,) = torch.autograd.grad(out[..., h // 2, w // 2].sum(), x)
    finally:
        model.train(was_training)
    support = grad[0].abs().sum(dim=0) > 0
    extents = []
    for axis in (1, 0):  # rows, then columns
        idx = torch.nonzero(support.any(dim=axis)).flatten()
        lo, hi = int(idx.min()), int(idx.max())
        if lo == 0 or hi == image_size - 1:
            raise ValueError(f"receptive field reaches the border of a {image_size} px input; "
                             "measure with a larger image_size")
        extents.append(hi - lo + 1)
    return max(extents)
