"""The download stage's library: turn ``data.source`` into RAW Parquet shards.

:data:`SOURCES` maps each ``data.source`` name to a row generator ``(cfg, seed, rejected) -> rows``;
:func:`download_source` runs one and writes ``part-*.parquet`` (schema RAW) and ``rejected.csv``
(image_id, path, reason: the photos that could not be used -- never fatal unless none is usable)
atomically into ``out_dir``.

``data.limit`` keeps the first ``limit`` usable images of a seeded permutation of the listing, so the
choice is deterministic for a given seed and spread over the whole dataset.
"""

from __future__ import annotations

import csv
import functools
import random
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Sequence

from tqdm import tqdm

from unmask.config import DataConfig, UrlSource
from unmask.data.datasets import DATASETS, Item, raw_row, walk_files
from unmask.data.fetch import archive_stem, download, extract, local_path, verify_sha256
from unmask.data.schema import RAW
from unmask.errors import BadImageError, ConfigError, UnmaskError
from unmask.io.atomic import atomic_dir
from unmask.io.images import load_rgb
from unmask.io.shards import write_rows

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
REJECTED_CSV = "rejected.csv"


class Rejected(NamedTuple):
    image_id: str
    path: str      # relative to the source's root
    reason: str


@dataclass
class SourceReport:
    """What a source produced; :meth:`to_dict` is the stage's ``data/raw/summary.json``."""
    source: str
    n_images: int
    n_identities: int
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def n_rejected(self) -> int:
        return len(self.rejected)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "n_images": self.n_images,
                "n_identities": self.n_identities, "n_rejected": self.n_rejected}


RowSource = Callable[[DataConfig, int, list[Rejected]], Iterator[dict[str, Any]]]


# --------------------------------------------------------------------------- item -> rows
def _reason(err: BadImageError, path: str) -> str:
    """The error's message without its leading ``<file>: `` (rejected.csv has a path column)."""
    head, sep, tail = str(err).partition(": ")
    return tail if sep and head.endswith(path) else str(err)


def rows_from_items(items: Sequence[Item], *, limit: int | None, seed: int, rejected: list[Rejected],
                    key: str, where: Path | str, desc: str) -> Iterator[dict[str, Any]]:
    """Decode ``items`` into RAW rows (a seeded choice of ``limit`` when set), collecting rejects.

    ``key`` is the params key blamed when there is nothing usable at ``where``.
    """
    if not items:
        raise UnmaskError(f"{key}: no photos ({', '.join(s[1:] for s in PHOTO_SUFFIXES)}) found in {where}")
    order: Sequence[int] = range(len(items))
    if limit is not None:
        order = random.Random(seed).sample(range(len(items)), len(items))
    n = 0
    first_reason = None
    with tqdm(total=min(limit or len(items), len(items)), desc=desc, unit="img", disable=None) as bar:
        for i in order:
            if limit is not None and n >= limit:
                break
            item = items[i]
            try:
                row = item.load()
            except BadImageError as e:
                rejected.append(Rejected(item.image_id, item.path, _reason(e, item.path)))
                first_reason = first_reason or str(e)
                continue
            n += 1
            bar.update(1)
            yield row
    if n == 0:
        raise UnmaskError(f"{key}: none of the {len(rejected)} images in {where} could be used "
                          f"(first: {first_reason})")


# --------------------------------------------------------------------------- folder
def _load_photo(path: Path, image_id: str, identity: str, source: str) -> dict[str, Any]:
    return raw_row(image_id, identity, source, load_rgb(path))


def folder_items(root: Path, identity_from_subfolders: bool, source: str) -> list[Item]:
    """Photos under ``root`` (recursive, sorted). image_id = path relative to ``root``; identity = the
    first-level sub-folder when ``identity_from_subfolders`` and the photo is in one, else the path
    without its suffix (the file stem for top-level photos)."""
    items = []
    for p in walk_files(root):
        if p.suffix.lower() not in PHOTO_SUFFIXES:
            continue
        rel = PurePosixPath(p.relative_to(root).as_posix())
        if identity_from_subfolders and len(rel.parts) > 1:
            identity = rel.parts[0]
        else:
            identity = rel.with_suffix("").as_posix()
        items.append(Item(str(rel), str(rel), functools.partial(_load_photo, p, str(rel), identity, source)))
    return items


def _folder_source_rows(root: Path, identity_from_subfolders: bool, cfg: DataConfig, seed: int,
                        rejected: list[Rejected], key: str) -> Iterator[dict[str, Any]]:
    items = folder_items(root, identity_from_subfolders, cfg.source)
    return rows_from_items(items, limit=cfg.limit, seed=seed, rejected=rejected, key=key, where=root,
                           desc=cfg.source)


def folder_rows(cfg: DataConfig, seed: int, rejected: list[Rejected]) -> Iterator[dict[str, Any]]:
    if not cfg.folder.path:
        raise ConfigError("data.folder.path: required when data.source is 'folder'")
    root = Path(cfg.folder.path)
    if not root.is_dir():
        raise UnmaskError(f"data.folder.path: {root} is not a directory")
    return _folder_source_rows(root, cfg.folder.identity_from_subfolders, cfg, seed, rejected,
                               "data.folder.path")


# --------------------------------------------------------------------------- url
def _only_subdir(root: Path) -> Path:
    """Descend through folders that are the only visible entry of their parent (``faces.zip`` holding
    just ``faces/``), so identities come from the sub-folders that actually name people."""
    while True:
        entries = [e for e in root.iterdir() if not e.name.startswith(".") and e.name != "__MACOSX"]
        if len(entries) != 1 or not entries[0].is_dir():
            return root
        root = entries[0]


def fetch_archive(url_cfg: UrlSource, cache_dir: str | Path, *, key: str = "data.url",
                  progress: bool = True) -> Path:
    """Download, verify and extract ``url_cfg.url`` under ``cache_dir``; return the photo folder."""
    url = url_cfg.url
    if not url:
        raise ConfigError(f"{key}.url: required (an http(s):// or file:// archive)")
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise ConfigError(f"{key}.url: {url!r} must be an http(s):// or file:// url")
    if url_cfg.sha256 is None and scheme != "file":
        raise ConfigError(f"{key}.sha256: required for {scheme} url {url} (the archive's sha256 hex digest)")
    if url_cfg.sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", url_cfg.sha256):
        raise ConfigError(f"{key}.sha256: {url_cfg.sha256!r} is not a 64-digit hex sha256")
    cache = Path(cache_dir)
    if scheme == "file":  # a local archive is extracted where it is: no copy into the cache
        archive = local_path(url)
        if not archive.is_file():
            raise UnmaskError(f"{key}.url: {archive} is not a file")
        verify_sha256(archive, url_cfg.sha256, url)
    else:
        name = PurePosixPath(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name or "download"
        archive = download(url, cache / "downloads" / name, url_cfg.sha256, progress=progress)
    root = extract(archive, cache / archive_stem(archive.name))
    if not url_cfg.subdir:
        return _only_subdir(root)
    sub = PurePosixPath(url_cfg.subdir)
    if sub.is_absolute() or ".." in sub.parts or not (root / sub).is_dir():
        raise UnmaskError(f"{key}.subdir: {url_cfg.subdir!r} is not a folder inside {root}")
    return root / sub


def url_rows(cfg: DataConfig, seed: int, rejected: list[Rejected]) -> Iterator[dict[str, Any]]:
    root = fetch_archive(cfg.url, cfg.cache_dir)
    return _folder_source_rows(root, cfg.url.identity_from_subfolders, cfg, seed, rejected, "data.url.url")


# --------------------------------------------------------------------------- synthetic and named
def synthetic_rows(cfg: DataConfig, seed: int, rejected: list[Rejected]) -> Iterator[dict[str, Any]]:
    from unmask.data.synthetic import generate_rows

    syn = cfg.synthetic
    total = syn.n_identities * syn.images_per_identity
    return iter(tqdm(generate_rows(syn, seed, cfg.limit), total=min(total, cfg.limit or total),
                     desc="synthetic faces", unit="img", disable=None))


def dataset_root(name: str, cfg: DataConfig) -> Path:
    """Where the named dataset's copy is: ``data.dataset_root``, else the archive at ``data.url``."""
    ds = DATASETS[name]
    if cfg.dataset_root:
        root = Path(cfg.dataset_root)
        if not root.is_dir():
            raise UnmaskError(f"data.dataset_root: {root} is not a directory")
        return root
    if cfg.url.url:
        return fetch_archive(cfg.url, cfg.cache_dir)
    raise ConfigError(f"data.dataset_root: required for data.source '{name}': {ds.title} has no direct "
                      f"download with a published sha256; download it from {ds.homepage} and point "
                      f"data.dataset_root at the copy (or give data.url.url + data.url.sha256 of an archive)")


def named_rows(name: str, cfg: DataConfig, seed: int, rejected: list[Rejected]) -> Iterator[dict[str, Any]]:
    ds = DATASETS[name]
    root = dataset_root(name, cfg)
    items = ds.items(root)
    if not items:
        raise UnmaskError(f"data.dataset_root: no {name} images in {root} (expected {ds.layout})")
    return rows_from_items(items, limit=cfg.limit, seed=seed, rejected=rejected,
                           key="data.dataset_root", where=root, desc=name)


SOURCES: dict[str, RowSource] = {
    "synthetic": synthetic_rows,
    "folder": folder_rows,
    "url": url_rows,
    **{name: functools.partial(named_rows, name) for name in DATASETS},
}


# --------------------------------------------------------------------------- the stage's entry
def _write_rejected(path: Path, rejected: Iterable[Rejected]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(Rejected._fields)
        w.writerows(rejected)


def download_source(cfg: DataConfig, seed: int, out_dir: Path) -> SourceReport:
    """Write ``cfg.source``'s RAW shards and ``rejected.csv`` into ``out_dir`` (replaced atomically)."""
    source = SOURCES.get(cfg.source)
    if source is None:
        raise ConfigError(f"data.source: unknown source {cfg.source!r} (known: {', '.join(SOURCES)})")
    rejected: list[Rejected] = []
    identities: set[str] = set()

    def counted(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            identities.add(row["identity"])
            yield row

    with atomic_dir(out_dir) as tmp:
        n = write_rows(tmp, RAW, counted(source(cfg, seed, rejected)))
        _write_rejected(tmp / REJECTED_CSV, rejected)
    return SourceReport(cfg.source, n, len(identities), rejected)
