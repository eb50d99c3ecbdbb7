"""torch Datasets over the split shards: what the trainers consume.

Items are dicts of tensors, one per field (:data:`FIELDS`) the consumer asks for: images in [-1, 1]
(C, H, W); ``mask`` in {0, 1} (1, H, W), 1 where occluded; ``parsing`` the face's label map (H, W) int64
in 0..10 (:data:`unmask.data.schema.PARSING_LABELS`), resized nearest so labels stay labels;
``landmarks`` the 68 points (68, 2) in the item's pixel coordinates. :class:`PairedDataset` yields the
fields of one face (val, test, and paired training; a trainer asks for those it declares,
``Trainer.FIELDS``); :class:`UnpairedDataset` yields an ``occluded`` face from the masked domain and a
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
from torch.utils.data import DataLoader, Dataset, Subset

from unmask.errors import UnmaskError
from unmask.io.images import decode_png
from unmask.io.shards import read_table

DEFAULT_PRELOAD_LIMIT_MB = 2048
IMAGE_FIELDS = ("occluded", "clean", "mask", "parsing")   # PNG columns of the split shards
FIELDS = (*IMAGE_FIELDS, "landmarks")
PAIRED_FIELDS = ("occluded", "clean", "mask")              # what every test and validation pass measures
UNPAIRED_FIELDS = ("occluded", "clean")                    # a masked face, another person's clean face


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


def _to_labels(img_hwc: torch.Tensor, size: int | None) -> torch.Tensor:
    x = img_hwc[..., 0].long()
    if size is not None and x.shape[-1] != size:
        x = F.interpolate(x[None, None].float(), size=(size, size), mode="nearest")[0, 0].long()
    return x


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
    """The ``fields`` of each face (default: occluded, clean, mask); ``split_dir`` is e.g.
    ``data/splits/test``. A field the data lacks (parsing maps from a source without them) is one
    UnmaskError naming the folder, when the dataset is built."""

    def __init__(self, split_dir: str | Path, kinds: Sequence[str] | None = None, size: int | None = None,
                 preload_limit_mb: float = DEFAULT_PRELOAD_LIMIT_MB, fields: Sequence[str] = PAIRED_FIELDS):
        self.split_dir = Path(split_dir)
        unknown = [f for f in fields if f not in FIELDS]
        if unknown:
            raise UnmaskError(f"no dataset field {unknown[0]!r} (fields: {', '.join(FIELDS)})")
        self.fields = tuple(dict.fromkeys(fields))
        images = [f for f in self.fields if f in IMAGE_FIELDS]
        table = _load(self.split_dir, [*dict.fromkeys([*images, "clean", *self.fields])], kinds, None)
        if table.num_rows == 0:
            raise UnmaskError(f"{self.split_dir}: no rows{f' of kinds {list(kinds)}' if kinds else ''}")
        for f in self.fields:
            missing = table.column(f).null_count
            if missing:
                raise UnmaskError(f"{self.split_dir}: {missing} of {table.num_rows} faces have no {f!r} "
                                  f"(the data source gives none), and this model needs it")
        pre = _preload(table, images, preload_limit_mb)
        self.columns = {c: _ImageColumn(table.column(c).to_pylist(), pre) for c in dict.fromkeys([*images, "clean"])}
        self.image_ids = table.column("image_id").to_pylist()
        self.identities = table.column("identity").to_pylist()
        self.kinds = table.column("kind").to_pylist()
        self.size = size
        self.landmarks = (np.asarray(table.column("landmarks").to_pylist(), np.float32).reshape(-1, 68, 2)
                          if "landmarks" in self.fields else None)

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item: dict[str, torch.Tensor] = {}
        for f in self.fields:
            if f == "mask":
                item[f] = _to_float(self.columns[f].get(i), self.size, is_mask=True)
            elif f == "parsing":
                item[f] = _to_labels(self.columns[f].get(i), self.size)
            elif f == "landmarks":   # (68, 2) in the pixel coordinates of the item's images
                native = self.columns["clean"].get(i).shape[1]
                item[f] = torch.from_numpy(self.landmarks[i] * ((self.size or native) / native))
            else:
                item[f] = _to_float(self.columns[f].get(i), self.size)
        return item


class UnpairedDataset(Dataset):
    """Masked-domain faces and clean-domain faces of disjoint identities (train split only).

    Item ``i`` pairs masked face ``i % n_masked`` with a clean face drawn by a generator seeded with
    ``(seed, i)``: random pairing, yet reproducible. The clean domain holds each source image once,
    however many occluded variants (of any kind) the synthesize stage made of it.
    """

    def __init__(self, split_dir: str | Path, kinds: Sequence[str] | None = None, size: int | None = None,
                 seed: int = 0, preload_limit_mb: float = DEFAULT_PRELOAD_LIMIT_MB,
                 fields: Sequence[str] = UNPAIRED_FIELDS):
        self.split_dir = Path(split_dir)
        extra = [f for f in fields if f not in UNPAIRED_FIELDS]
        if extra:
            raise UnmaskError(f"{self.split_dir}: unpaired training yields {' and '.join(UNPAIRED_FIELDS)} of "
                              f"different faces, not {extra[0]!r}")
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


def test_set(split_dir: str | Path, kinds: Sequence[str] | None = None, size: int | None = None,
             fields: Sequence[str] = PAIRED_FIELDS) -> Subset:
    """The test faces every measurement uses (a trial's test metrics, evaluate, other studies'
    champions, end to end): the paired split's ``fields`` at ``size`` px, ordered by
    :func:`round_robin_by_identity` so the first faces (a figure's samples) are different people.
    ``.dataset`` is the :class:`PairedDataset`, ``.indices`` the order."""
    ds = PairedDataset(split_dir, kinds=list(kinds) if kinds else None, size=size, fields=fields)
    return Subset(ds, round_robin_by_identity(ds.identities))


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
