"""torch Datasets over the split shards: what the trainers consume.

Items are dicts of float tensors: images in [-1, 1] (C, H, W) and ``mask`` in {0, 1} (1, H, W), 1 where
occluded. :class:`PairedDataset` yields ``occluded``/``clean``/``mask`` of the same face (val, test, and
paired training); :class:`UnpairedDataset` yields an ``occluded`` face from the masked domain and a
``clean`` face from the clean domain -- different people (seed 000, Section 4.1).

Small datasets are decoded once into uint8 tensors (fast to index, ~12 KB per 64 px image); datasets
larger than ``preload_limit_mb`` decode PNG bytes per item instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pyarrow.compute as pc
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from unmask.errors import UnmaskError
from unmask.io.images import decode_png
from unmask.io.shards import read_table

DEFAULT_PRELOAD_LIMIT_MB = 2048


class _ImageColumn:
    """One PNG column, decoded up front into a uint8 tensor or on demand."""

    def __init__(self, blobs: list[bytes], preload: bool):
        self.blobs = blobs
        self.tensor: torch.Tensor | None = None
        if preload and blobs:
            first = decode_png(blobs[0])
            out = np.empty((len(blobs), *first.shape), dtype=np.uint8)
            for i, b in enumerate(blobs):
                out[i] = decode_png(b)
            self.tensor = torch.from_numpy(out)

    def __len__(self) -> int:
        return len(self.blobs)

    def get(self, i: int) -> torch.Tensor:
        arr = self.tensor[i] if self.tensor is not None else torch.from_numpy(decode_png(self.blobs[i]))
        return arr if arr.ndim == 3 else arr.unsqueeze(-1)


def _to_float(img_hwc: torch.Tensor, size: int | None, is_mask: bool = False) -> torch.Tensor:
    x = img_hwc.permute(2, 0, 1).float()
    if size is not None and x.shape[-1] != size:
        x = F.interpolate(x[None], size=(size, size), mode="nearest" if is_mask else "bilinear",
                          antialias=not is_mask, align_corners=None if is_mask else False)[0]
    if is_mask:
        return (x >= 127.5).float()
    return x / 127.5 - 1.0


def _load(split_dir: Path, columns: Sequence[str], kinds: Sequence[str] | None, domain: str | None):
    table = read_table(split_dir, columns=[*columns, "kind", "domain", "image_id", "identity"])
    if kinds:
        # a kind may be given as its family ("template" matches "template:KN95")
        fam = pc.list_element(pc.split_pattern(table.column("kind"), ":"), 0)
        keep = pc.or_(pc.is_in(table.column("kind"), value_set=_arr(kinds)), pc.is_in(fam, value_set=_arr(kinds)))
        table = table.filter(keep)
    if domain:
        table = table.filter(pc.equal(table.column("domain"), domain))
    return table


def _first_per_source(table):
    """The first row of each ``source_id`` (the clean image is the same in every variant of a source)."""
    seen: set[str] = set()
    keep = []
    for i, sid in enumerate(table.column("source_id").to_pylist()):
        keep.append(sid not in seen)
        seen.add(sid)
    return table.filter(keep) if not all(keep) else table


def _arr(values):
    import pyarrow as pa

    return pa.array(list(values), type=pa.string())


def _preload(table, columns, limit_mb: float) -> bool:
    est = sum(table.column(c).nbytes for c in columns) * 4 / 2**20  # PNG ~4x smaller than raw
    return est <= limit_mb


class PairedDataset(Dataset):
    """(occluded, clean, mask) of the same face; ``split_dir`` is e.g. ``data/splits/test``."""

    def __init__(self, split_dir: str | Path, kinds: Sequence[str] | None = None, size: int | None = None,
                 preload_limit_mb: float = DEFAULT_PRELOAD_LIMIT_MB, with_landmarks: bool = False):
        self.split_dir = Path(split_dir)
        cols = ("occluded", "clean", "mask")
        table = _load(self.split_dir, cols + (("landmarks",) if with_landmarks else ()), kinds, None)
        if table.num_rows == 0:
            raise UnmaskError(f"{self.split_dir}: no rows{f' of kinds {list(kinds)}' if kinds else ''}")
        pre = _preload(table, cols, preload_limit_mb)
        self.columns = {c: _ImageColumn(table.column(c).to_pylist(), pre) for c in cols}
        self.image_ids = table.column("image_id").to_pylist()
        self.identities = table.column("identity").to_pylist()
        self.kinds = table.column("kind").to_pylist()
        self.size = size
        self.landmarks = (np.asarray(table.column("landmarks").to_pylist(), np.float32).reshape(-1, 68, 2)
                          if with_landmarks else None)

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {"occluded": _to_float(self.columns["occluded"].get(i), self.size),
                "clean": _to_float(self.columns["clean"].get(i), self.size),
                "mask": _to_float(self.columns["mask"].get(i), self.size, is_mask=True)}
        if self.landmarks is not None:   # (68, 2) in the pixel coordinates of the item's images
            native = self.columns["clean"].get(i).shape[1]
            scale = (self.size or native) / native
            item["landmarks"] = torch.from_numpy(self.landmarks[i] * scale)
        return item


class UnpairedDataset(Dataset):
    """Masked-domain faces and clean-domain faces of disjoint identities (train split only).

    Item ``i`` pairs masked face ``i % n_masked`` with a clean face drawn by a generator seeded with
    ``(seed, i)``: random pairing, yet reproducible. The clean domain holds each source image once,
    however many occluded variants (of any kind) the synthesize stage made of it.
    """

    def __init__(self, split_dir: str | Path, kinds: Sequence[str] | None = None, size: int | None = None,
                 seed: int = 0, preload_limit_mb: float = DEFAULT_PRELOAD_LIMIT_MB):
        self.split_dir = Path(split_dir)
        masked = _load(self.split_dir, ("occluded",), kinds, "masked")
        clean = _first_per_source(_load(self.split_dir, ("clean", "source_id"), None, "clean"))
        for name, t in (("masked", masked), ("clean", clean)):
            if t.num_rows == 0:
                raise UnmaskError(f"{self.split_dir}: the {name} training domain is empty")
        pre = _preload(masked, ("occluded",), preload_limit_mb / 2)
        self.occluded = _ImageColumn(masked.column("occluded").to_pylist(), pre)
        self.clean = _ImageColumn(clean.column("clean").to_pylist(), pre)
        self.masked_identities = set(masked.column("identity").to_pylist())
        self.clean_identities = set(clean.column("identity").to_pylist())
        self.size = size
        self.seed = seed

    def __len__(self) -> int:
        return max(len(self.occluded), len(self.clean))

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        j = int(np.random.default_rng([self.seed, i]).integers(len(self.clean)))
        return {"occluded": _to_float(self.occluded.get(i % len(self.occluded)), self.size),
                "clean": _to_float(self.clean.get(j), self.size)}


def round_robin_by_identity(identities: Sequence[str]) -> list[int]:
    """Indices ordered so that the first ones show different people: each identity's first image
    (in order of appearance), then each identity's second, and so on."""
    per: dict[str, list[int]] = {}
    for i, ident in enumerate(identities):
        per.setdefault(ident, []).append(i)
    queues = list(per.values())
    return [q[k] for k in range(max(map(len, queues), default=0)) for q in queues if k < len(q)]


def infinite_batches(dataset: Dataset, batch_size: int, seed: int = 0,
                     num_workers: int = 0) -> Iterator[dict[str, torch.Tensor]]:
    """Endless shuffled batches (reshuffled each epoch, reproducibly by ``seed``); last partial batch dropped."""
    if len(dataset) < batch_size:
        raise UnmaskError(f"dataset has {len(dataset)} items, fewer than batch_size={batch_size}")
    epoch = 0
    while True:
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True, generator=g,
                            num_workers=num_workers)
        yield from loader
        epoch += 1


def batches(dataset: Dataset, batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
    """One ordered pass (validation / test)."""
    yield from DataLoader(dataset, batch_size=batch_size, shuffle=False)
