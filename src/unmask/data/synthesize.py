"""The ``synthesize`` stage's library: ALIGNED rows in, SYNTH rows (occluded, clean, exact mask) out.

Each aligned image gets ``cfg.variants_per_image`` occluded versions ``"<image_id>#<k>"``; each
variant's kind is drawn with the ``cfg.kinds`` weights from a generator seeded by ``(seed,
crc32(image_id))``, so a row's output depends only on the seed and the row itself -- not on row order
or on the other rows. Each kind in ``cfg.every_image`` (e.g. seed 002's centre hole) adds one more
variant ``"<image_id>#<kind>"`` of every image, from its own generator (seeded by the image id and the
kind), so the drawn mix is the same with or without it. Rows whose ALIGNED ``occluded`` column is set (a source's own occluded photo,
e.g. CMFD) pass through once as kind ``"source"`` with a mask estimated by :func:`estimate_source_mask`.
"""

from __future__ import annotations

import json
import os
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator

import cv2
import numpy as np
from tqdm import tqdm

from unmask.config import SynthesizeConfig
from unmask.data.occlusions import OCCLUDERS, Occluder, build_occluders
from unmask.data.schema import N_LANDMARKS, SYNTH
from unmask.errors import UnmaskError
from unmask.io.atomic import atomic_dir
from unmask.io.images import encode_png, load_rgb
from unmask.io.shards import ShardWriter, count_rows, iter_rows

SOURCE_KIND = "source"
SOURCE_DIFF_THRESHOLD = 24   # max |occluded - clean| over RGB above which a pixel counts as occluded
SOURCE_CLOSE_FRACTION = 0.04  # closing kernel side as a fraction of the image side


@dataclass(frozen=True)
class SynthReport:
    """What a run wrote: ``counts`` per occluder name (plus ``"source"``), ``kinds`` per row kind."""

    n_images: int
    n_rows: int
    counts: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"n_images": self.n_images, "n_rows": self.n_rows, "counts": self.counts, "kinds": self.kinds}


def image_rng(seed: int, image_id: str) -> np.random.Generator:
    """The generator for one source image: a function of the stage seed and the image id only."""
    return np.random.default_rng([seed % 2**63, zlib.crc32(image_id.encode("utf-8"))])


def estimate_source_mask(occluded: np.ndarray, clean: np.ndarray,
                         threshold: int = SOURCE_DIFF_THRESHOLD,
                         close_fraction: float = SOURCE_CLOSE_FRACTION) -> np.ndarray:
    """Where a source's own occluded photo differs from its clean one (HxW bool).

    ``max_rgb |occluded - clean| > threshold``, then a 3x3 opening (drops isolated noise pixels,
    e.g. compression artefacts), a closing with an elliptical kernel of ``close_fraction`` of the
    image side (joins the occluder's flat, clean-like patches), and hole filling. Outside this mask
    the source photo is kept as it is, so it may differ from the clean image by up to ``threshold``.
    """
    diff = np.abs(occluded.astype(np.int16) - clean.astype(np.int16)).max(axis=2) > threshold
    m = cv2.morphologyEx(diff.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    k = max(3, 2 * int(round(close_fraction * min(m.shape) / 2)) + 1)
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    framed = np.pad(m, 1)  # a clear border, so one flood fill from a corner reaches all the outside
    cv2.floodFill(framed, np.zeros((framed.shape[0] + 2, framed.shape[1] + 2), np.uint8), (0, 0), 2)
    return framed[1:-1, 1:-1] != 2  # holes were never reached: they stay in the mask


def _landmarks(row: dict[str, Any], where: str) -> np.ndarray:
    values = row.get("landmarks")
    if values is None or len(values) != 2 * N_LANDMARKS:
        got = "none" if values is None else f"{len(values)} values"
        raise UnmaskError(f"{where}: landmarks must be {2 * N_LANDMARKS} values (ALIGNED rows always have them), "
                          f"got {got}")
    return np.asarray(values, np.float32).reshape(N_LANDMARKS, 2)


def synthesize_row(row: dict[str, Any], names: list[str], probs: np.ndarray, occluders: list[Occluder],
                   seed: int, variants: int, where: str = "<row>",
                   every: dict[str, Occluder] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(occluder name, SYNTH row)`` for each variant of one ALIGNED ``row``."""
    image_id = row["image_id"]
    here = f"{where}: {image_id}"
    clean = load_rgb(row["image"], name=f"{here} image")
    common = {"source_id": image_id, "identity": row["identity"], "clean": encode_png(clean),
              "parsing": row.get("parsing")}
    source_attrs = json.loads(row["attrs"]) if row.get("attrs") else {}
    lm = _landmarks(row, here)
    if row.get("occluded") is not None:
        occluded = load_rgb(row["occluded"], name=f"{here} occluded")
        if occluded.shape != clean.shape:
            raise UnmaskError(f"{here}: occluded image is {occluded.shape[:2]}, clean is {clean.shape[:2]}")
        mask = estimate_source_mask(occluded, clean)
        attrs = {"occluder": SOURCE_KIND, "mask": "estimated", "threshold": SOURCE_DIFF_THRESHOLD}
        yield SOURCE_KIND, _row(f"{image_id}#0", SOURCE_KIND, occluded, mask, lm, attrs, source_attrs, common)
        return
    rng = image_rng(seed, image_id)
    for k in range(variants):
        i = int(rng.choice(len(names), p=probs))
        occ = occluders[i](clean, lm, rng)
        attrs = {"occluder": names[i], **occ.attrs}
        yield names[i], _row(f"{image_id}#{k}", occ.kind, occ.image, occ.mask, lm, attrs, source_attrs, common)
    for name, occluder in (every or {}).items():
        occ = occluder(clean, lm, image_rng(seed, f"{image_id}#{name}"))
        attrs = {"occluder": name, **occ.attrs}
        yield name, _row(f"{image_id}#{name}", occ.kind, occ.image, occ.mask, lm, attrs, source_attrs, common)


def _row(image_id: str, kind: str, occluded: np.ndarray, mask: np.ndarray, lm: np.ndarray, attrs: dict,
         source_attrs: dict, common: dict) -> dict[str, Any]:
    if source_attrs:
        attrs = {**attrs, "source": source_attrs}
    return {"image_id": image_id, "kind": kind, "occluded": encode_png(occluded),
            "mask": encode_png(mask.astype(np.uint8) * 255), "landmarks": lm.reshape(-1).tolist(),
            "attrs": json.dumps(attrs, sort_keys=True), **common}


def synthesize_dataset(in_dir: str | os.PathLike, out_dir: str | os.PathLike, cfg: SynthesizeConfig,
                       seed: int, progress: bool = True) -> SynthReport:
    """Occlude every ALIGNED row of ``in_dir``; write SYNTH shards to ``out_dir`` atomically."""
    names, probs, occluders = build_occluders(cfg)
    every = {k: OCCLUDERS[k].from_config(cfg) for k in cfg.every_image}
    counts: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    n_images = 0
    total = count_rows(in_dir)
    with atomic_dir(out_dir) as tmp, ShardWriter(tmp, SYNTH) as writer:
        rows = iter_rows(in_dir)
        for row in tqdm(rows, total=total, desc="synthesize", unit="img", disable=None if progress else True):
            n_images += 1
            for name, out in synthesize_row(row, names, probs, occluders, seed, cfg.variants_per_image,
                                            str(in_dir), every):
                writer.write(out)
                counts[name] += 1
                kinds[out["kind"]] += 1
    return SynthReport(n_images, sum(counts.values()), dict(sorted(counts.items())), dict(sorted(kinds.items())))
