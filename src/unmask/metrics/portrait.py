"""What seed 003's claims are measured by, on aligned test faces and their true label maps.

Every metric is per face, computed from a *composer*: anything with ``compose(target, target_map,
sources=None)`` that generates a face on ``target_map`` with ``target``'s background and each named
component's appearance from ``sources[name] = (image, map)`` (the trained model,
:class:`~unmask.training.portrait.PortraitTrainer`, or a no-training baseline,
:mod:`unmask.metrics.portrait_baselines`). Images are compared in [0, 1]. The source of every swap is
the next face of the test batch (the batch rolled by one: never the face itself).

* ``recon_l1`` / ``recon_psnr`` / ``recon_ssim``: the self-reconstruction G(x, m, x, m) against x
  (the nearest counterpart of the thesis's FID of test faces against their reconstructions);
* ``transfer_<group>`` (eyes, mouth, skin, hair): after swapping only that group's embedding, the
  distance (RGB, L2) between the median colour of the group's region in the output and in the source;
  lower: the swap moved the component's colour to the source's (Section 4.4.3);
* ``leak``: after each one-group swap, the distance between the other groups' median colours in the
  output and in the target, averaged over the groups and the four swaps; lower: a swap changes only
  its component;
* ``locality``: for the eye and mouth swaps, the mean change (against the self-reconstruction) outside
  the component's region dilated by 2 px divided by the mean change inside; lower: more local;
* ``periocular``: after a skin-only swap, the distance between the median colour of the skin inside
  the two eye windows in the output and the source's skin median (Section 4.5.1: unmasked eye crops
  carry the skin around the eyes, so it stays the target's);
* ``code_use``: the mean change (RGB in [0, 1], over the face's non-background pixels) of the
  self-reconstruction when every component's embedding is replaced by zero, the prior's mean; near 0:
  the generator ignores its embeddings (the other half of 4.5.3's collapse); a trained model only;
* ``kl``: the KL divergence of the face's embeddings from N(0, I), summed over components and latent
  dimensions (Section 4.5.3's collapse: near 0 when the encoders output the prior); a trained model only.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from unmask.data.components import BY_NAME, GROUPS, centres, component_mask, corner, window
from unmask.metrics.image import compute_metrics
from unmask.models.portrait import kl_per_face

NAN = float("nan")


def region(labels: Tensor, group: str) -> Tensor:
    """(B, 1, H, W) float, 1 on the labels of ``group``'s components."""
    return sum(component_mask(labels, BY_NAME[name]) for name in GROUPS[group]).clamp(max=1)


def median_colour(image01: Tensor, where: Tensor) -> Tensor:
    """(B, 3) median RGB of each image over ``where`` (B, 1, H, W) > 0; nan where it is empty."""
    out = []
    for img, keep in zip(image01, where):
        px = img.flatten(1)[:, keep.flatten() > 0]
        out.append(px.median(1).values if px.shape[1] else torch.full((3,), NAN))
    return torch.stack(out)


def _distance(a: Tensor, b: Tensor) -> Tensor:
    return (a - b).norm(dim=1)


def eye_windows(labels: Tensor) -> Tensor:
    """(B, 1, H, W): 1 inside the two eye windows at each map's eye centres."""
    b, h, w = labels.shape
    out = torch.zeros(b, 1, h, w)
    for name in GROUPS["eyes"]:
        comp = BY_NAME[name]
        wh, ww = window(comp, w)
        for i, (t, l) in enumerate(corner(centres(labels, comp), (wh, ww), (h, w)).tolist()):
            out[i, :, t:t + wh, l:l + ww] = 1
    return out


def _dilate(mask: Tensor, px: int) -> Tensor:
    return F.max_pool2d(mask, 2 * px + 1, 1, px)


@torch.no_grad()
def portrait_metrics(model: Any, image: Tensor, labels: Tensor) -> dict[str, Tensor]:
    """Per face (B,) metrics of ``model`` (a composer, above) on faces (B, 3, H, W) in [-1, 1] and
    their maps (B, H, W)."""
    x, lab = image.float().cpu(), labels.long().cpu()
    b = x.shape[0]
    to01 = lambda t: (t.float().cpu() + 1) / 2   # noqa: E731
    src = torch.roll(torch.arange(b), 1)
    xs, ls = x[src], lab[src]
    self_rec = to01(model.compose(x, lab))
    x01, xs01 = to01(x), to01(xs)
    rec = compute_metrics(self_rec, x01)
    out = {"recon_l1": rec["l1"], "recon_psnr": rec["psnr"], "recon_ssim": rec["ssim"]}
    if b < 2:   # a swap needs another face: a batch of one (the last of a pass) gives reconstruction only
        return out
    leaks, local = [], []
    groups = {g: region(lab, g) for g in GROUPS}
    for g, names in GROUPS.items():
        swapped = to01(model.compose(x, lab, sources={n: (xs, ls) for n in names}))
        out[f"transfer_{g}"] = _distance(median_colour(swapped, groups[g]), median_colour(xs01, region(ls, g)))
        others = [_distance(median_colour(swapped, groups[h]), median_colour(x01, groups[h]))
                  for h in GROUPS if h != g]
        leaks.append(torch.stack(others, 1).nanmean(1))
        if g in ("eyes", "mouth"):
            near = _dilate(groups[g], 2)
            change = (swapped - self_rec).abs().mean(1, keepdim=True)
            inside = (change * near).flatten(1).sum(1) / near.flatten(1).sum(1).clamp_min(1)
            outside = (change * (1 - near)).flatten(1).sum(1) / (1 - near).flatten(1).sum(1).clamp_min(1)
            local.append(torch.where(inside > 0, outside / inside.clamp_min(1e-12), torch.full_like(inside, NAN)))
        if g == "skin":
            periocular = groups["skin"] * eye_windows(lab)
            out["periocular"] = _distance(median_colour(swapped, periocular),
                                          median_colour(xs01, region(ls, "skin")))
    out["leak"] = torch.stack(leaks, 1).nanmean(1)
    out["locality"] = torch.stack(local, 1).nanmean(1)
    posterior = getattr(model, "posterior", None)
    if posterior is not None:
        post = posterior(x, lab)
        out["kl"] = sum(kl_per_face(mu, logvar) for mu, logvar in post.values())
        zeroed = to01(model.compose(x, lab, codes={k: torch.zeros_like(mu) for k, (mu, _) in post.items()}))
        face = (lab > 0).float()[:, None]
        change = (zeroed - self_rec).abs().mean(1, keepdim=True)
        out["code_use"] = (change * face).flatten(1).sum(1) / face.flatten(1).sum(1).clamp_min(1)
    return out
