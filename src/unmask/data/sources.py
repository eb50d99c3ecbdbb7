"""The download stage's library: turn ``data.source`` into RAW Parquet shards.

:data:`SOURCES` maps each ``data.source`` name to a row generator ``(cfg, seed, rejected) -> rows``;
:func:`download_source` runs one and writes ``part-*.parquet`` (schema RAW) and ``rejected.csv``
(image_id, path, reason: the photos that could not be used -- never fatal unless none is usable)
atomically into ``out_dir``.

``data.limit`` keeps the first ``limit`` usable images of a seeded permutation of the listing, so the
choice is deterministic for a given seed and spread over the whole dataset.

Folder sources (``folder``, ``url``) account for every entry under the root: a file is a photo when
its content decodes as one (whatever its name), and every file not used is in ``rejected.csv`` with
its reason -- not an image, empty, corrupt, hidden, a symlink leading outside the folder, a linked
folder, or a copy of a photo kept (same bytes, or a perceptual hash within a few bits). The summary
counts them: ``n_seen == n_images + n_rejected + n_beyond_limit``.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import os
import random
import re
import stat
import urllib.parse
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Optional, Sequence

from PIL import Image
from tqdm import tqdm

from unmask.config import DataConfig, UrlSource
from unmask.data.datasets import DATASETS, Item, raw_row
from unmask.data.fetch import EXTRACTED_MARKER, archive_stem, download, extract, local_path, verify_sha256
from unmask.data.identities import (FROM_FILE, FROM_SUBFOLDER, IDENTITY_FROM_KEY, DuplicateIndex,
                                    perceptual_hash)
from unmask.data.schema import RAW
from unmask.errors import BadImageError, ConfigError, UnmaskError
from unmask.io.atomic import atomic_dir
from unmask.io.images import load_rgb
from unmask.io.shards import write_rows

REJECTED_CSV = "rejected.csv"
_PHASH = "_phash"  # a folder row's perceptual hash, popped before the row is written


class Rejected(NamedTuple):
    image_id: str
    path: str      # relative to the source's root
    reason: str


@dataclass
class SourceReport:
    """What a source produced; :meth:`to_dict` is the stage's ``data/raw/summary.json``.

    Folder sources also say how many entries they saw (``n_seen``) and how many ``data.limit`` left
    unread (``n_beyond_limit``): ``n_seen == n_images + n_rejected + n_beyond_limit``.
    """
    source: str
    n_images: int
    n_identities: int
    rejected: list[Rejected] = field(default_factory=list)
    n_seen: Optional[int] = None
    n_beyond_limit: int = 0

    @property
    def n_rejected(self) -> int:
        return len(self.rejected)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "n_images": self.n_images,
                               "n_identities": self.n_identities, "n_rejected": self.n_rejected}
        if self.n_seen is not None:
            out["n_seen"] = self.n_seen
            out["n_beyond_limit"] = self.n_beyond_limit
        if self.rejected:
            out["rejected_reasons"] = dict(Counter(reason_kind(r.reason) for r in self.rejected).most_common())
        return out


RowSource = Callable[..., Iterator[dict[str, Any]]]  # (cfg, seed, rejected[, tally]) -> rows


# --------------------------------------------------------------------------- item -> rows
def _reason(err: BadImageError, path: str) -> str:
    """The error's message without its leading ``<file>: `` (rejected.csv has a path column)."""
    head, sep, tail = str(err).partition(": ")
    return tail if sep and head.endswith(path) else str(err)


def reason_kind(reason: str) -> str:
    """The kind of a rejection reason, for counts: ``"not an image (format ...)"`` -> ``"not an image"``."""
    if reason.startswith("duplicate of"):
        return "duplicate"
    for sep in (" (", ": ", ", "):
        reason = reason.split(sep, 1)[0]
    return reason


def _reason_counts(rejected: Iterable[Rejected]) -> str:
    counts = Counter(reason_kind(r.reason) for r in rejected)
    return ", ".join(f"{k}: {n}" for k, n in counts.most_common())


def rows_from_items(items: Sequence[Item], *, limit: int | None, seed: int, rejected: list[Rejected],
                    key: str, where: Path | str, desc: str,
                    tally: dict[str, int] | None = None) -> Iterator[dict[str, Any]]:
    """Decode ``items`` into RAW rows (a seeded choice of ``limit`` when set), collecting rejects.

    A row that carries a perceptual hash (folder photos) is dropped as a duplicate when it is within
    :data:`~unmask.data.identities.NEAR_DUPLICATE_BITS` of a photo already kept. ``key`` is the params
    key blamed when there is nothing usable at ``where``; ``tally["n_beyond_limit"]`` counts the items
    never read because ``limit`` was reached.
    """
    if not items:
        raise UnmaskError(f"{key}: no images found in {where}")
    order: Sequence[int] = range(len(items))
    if limit is not None:
        order = random.Random(seed).sample(range(len(items)), len(items))
    n = 0
    n_read = 0
    n_rejected_before = len(rejected)
    first_reason = None
    kept = DuplicateIndex()
    with tqdm(total=min(limit or len(items), len(items)), desc=desc, unit="img", disable=None) as bar:
        for i in order:
            if limit is not None and n >= limit:
                break
            n_read += 1
            item = items[i]
            try:
                row = item.load()
            except BadImageError as e:
                rejected.append(Rejected(item.image_id, item.path, _reason(e, item.path)))
                first_reason = first_reason or str(e)
                continue
            phash = row.pop(_PHASH, None)
            if phash is not None:
                near = kept.near(phash)
                if near is not None:
                    rejected.append(Rejected(item.image_id, item.path, f"duplicate of {near[0]} "
                                             f"(near: perceptual hashes {near[1]}/64 bits apart)"))
                    continue
                kept.add(phash, item.path)
            n += 1
            bar.update(1)
            yield row
    if tally is not None:
        tally["n_beyond_limit"] = len(items) - n_read
    if n == 0:
        mine = rejected[n_rejected_before:]
        raise UnmaskError(f"{key}: none of the {len(mine)} files in {where} could be used "
                          f"({_reason_counts(mine)}; first: {first_reason})")


# --------------------------------------------------------------------------- folder
def display_name(name: str) -> str:
    """A file name as text that can always be written (CSV, Parquet, a terminal): bytes that are not
    UTF-8 (Linux names are bytes; Python carries them as surrogates) appear as ``\\xNN``."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


class FolderListing(NamedTuple):
    """Every entry under a folder: the files to try, and what was set aside (with the reason)."""
    files: list[tuple[Path, str]]   # (path, display name relative to the root), sorted
    rejected: list[Rejected]        # hidden entries, symlinks leading out, linked folders, ...
    n_seen: int                     # files (and set-aside entries) seen: len(files) + len(rejected)


def list_folder(root: Path, own_files: Iterable[str] = ()) -> FolderListing:
    """Walk ``root`` (sorted, not following links) and account for every entry: a file is tried unless
    it is hidden or a symlink that leads outside ``root`` or nowhere; a hidden or ``__MACOSX`` folder is
    not searched and a linked folder is not followed -- each listed once with its reason.
    ``own_files`` are top-level names the pipeline wrote itself (an extraction marker): left out."""
    own = set(own_files)
    real_root = root.resolve()
    files: list[tuple[Path, str]] = []
    rejected: list[Rejected] = []

    def reject(path: Path, reason: str, folder: bool = False) -> None:
        rel = display_name(path.relative_to(root).as_posix()) + ("/" if folder else "")
        rejected.append(Rejected(rel, rel, reason))

    def link_target(path: Path) -> tuple[Path, str]:
        target = Path(os.path.realpath(path))
        shown = (display_name(target.relative_to(real_root).as_posix()) if _inside(target, real_root)
                 else display_name(str(target)))
        return target, shown

    def unreadable(e: OSError) -> None:  # os.walk would skip a folder it cannot list without a word
        reject(Path(e.filename), f"cannot read folder ({e.strerror or e})", folder=True)

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            p = here / d
            if p.is_symlink():
                target, shown = link_target(p)
                if _inside(target, real_root):
                    reject(p, f"linked folder (-> {shown}) not followed: its files are read where they are",
                           folder=True)
                else:
                    reject(p, f"symlink outside the folder (-> {shown})", folder=True)
            elif d.startswith(".") or d == "__MACOSX":
                reject(p, "hidden folder, not searched", folder=True)
            else:
                keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            p = here / name
            if here == root and name in own:
                continue
            if name.startswith("."):
                reject(p, "hidden file")
                continue
            if p.is_symlink():
                target, shown = link_target(p)
                if not target.exists():
                    reject(p, f"broken symlink (-> {shown})")
                    continue
                if not _inside(target, real_root):
                    reject(p, f"symlink outside the folder (-> {shown})")
                    continue
            files.append((p, display_name(p.relative_to(root).as_posix())))
    return FolderListing(files, rejected, len(files) + len(rejected))


def _exact_duplicates(files: Sequence[tuple[Path, str]]) -> dict[str, str]:
    """Display name -> the name of the byte-identical file kept instead (the shortest name, then the
    first in sorted order). Only files sharing a non-zero size are read."""
    by_size: dict[int, list[tuple[Path, str]]] = {}
    for p, rel in files:
        try:
            st = p.stat()
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_size > 0:
            by_size.setdefault(st.st_size, []).append((p, rel))
    dup_of: dict[str, str] = {}
    for group in by_size.values():
        if len(group) < 2:
            continue
        by_hash: dict[str, list[str]] = {}
        for p, rel in group:
            try:
                with open(p, "rb") as f:
                    digest = hashlib.file_digest(f, "sha256").hexdigest()
            except OSError:
                continue  # the load reports it
            by_hash.setdefault(digest, []).append(rel)
        for names in by_hash.values():
            keep = min(names, key=lambda n: (len(n), n))
            dup_of.update({n: keep for n in names if n != keep})
    return dup_of


def _sniff(path: Path, label: str) -> None:
    """Reject what cannot be a photo from its first bytes, before reading a whole file: the image
    format is found from the content (Pillow's magic-byte detection), never from the name."""
    try:
        st = path.stat()
    except OSError as e:
        raise BadImageError(f"{label}: cannot read file ({e.strerror or e})") from None
    if not stat.S_ISREG(st.st_mode):
        raise BadImageError(f"{label}: not a regular file")
    if st.st_size == 0:
        raise BadImageError(f"{label}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Image.open(path).close()
    except Image.UnidentifiedImageError:
        raise BadImageError(f"{label}: not an image (format not recognised)") from None
    except Exception:  # noqa: BLE001 - a damaged header: load_rgb names the problem precisely
        pass


def _load_photo(path: Path, image_id: str, identity: str, source: str, identity_from: str) -> dict[str, Any]:
    _sniff(path, image_id)
    image = load_rgb(path, name=image_id)
    row = raw_row(image_id, identity, source, image, attrs={IDENTITY_FROM_KEY: identity_from})
    row[_PHASH] = perceptual_hash(image)
    return row


def _identity(rel: str, identity_from_subfolders: bool) -> tuple[str, str]:
    parts = PurePosixPath(rel).parts
    if identity_from_subfolders and len(parts) > 1:
        return parts[0], FROM_SUBFOLDER
    try:
        return PurePosixPath(rel).with_suffix("").as_posix(), FROM_FILE
    except ValueError:  # a name like "photo." has no usable suffix
        return rel, FROM_FILE


def folder_items(root: Path, identity_from_subfolders: bool, source: str,
                 files: Sequence[tuple[Path, str]] | None = None) -> list[Item]:
    """Every file under ``root`` (recursive, sorted; or ``files`` from :func:`list_folder`) as an item,
    whatever its name: whether it is a photo is decided from its content when it is loaded.
    image_id = path relative to ``root`` (``\\xNN`` for bytes that are not UTF-8); identity = the
    first-level sub-folder when ``identity_from_subfolders`` and the photo is in one, else the path
    without its suffix (the file stem for top-level photos). attrs say which (:data:`IDENTITY_FROM_KEY`)."""
    if files is None:
        files = list_folder(root).files
    items = []
    for p, rel in files:
        identity, identity_from = _identity(rel, identity_from_subfolders)
        items.append(Item(rel, rel, functools.partial(_load_photo, p, rel, identity, source, identity_from)))
    return items


def _folder_source_rows(root: Path, identity_from_subfolders: bool, cfg: DataConfig, seed: int,
                        rejected: list[Rejected], key: str, tally: dict[str, int] | None = None,
                        own_files: Iterable[str] = ()) -> Iterator[dict[str, Any]]:
    listing = list_folder(root, own_files)
    rejected.extend(listing.rejected)
    dup_of = _exact_duplicates(listing.files)
    files = [(p, rel) for p, rel in listing.files if rel not in dup_of]
    rejected.extend(Rejected(rel, rel, f"duplicate of {dup_of[rel]} (same bytes)")
                    for _, rel in listing.files if rel in dup_of)
    if tally is not None:
        tally["n_seen"] = listing.n_seen
    if not files:
        what = f"no files in {root}" if not listing.n_seen else (
            f"none of the {listing.n_seen} entries in {root} is a file to read ({_reason_counts(rejected)})")
        raise UnmaskError(f"{key}: {what}")
    items = folder_items(root, identity_from_subfolders, cfg.source, files)
    return rows_from_items(items, limit=cfg.limit, seed=seed, rejected=rejected, key=key, where=root,
                           desc=cfg.source, tally=tally)


def folder_rows(cfg: DataConfig, seed: int, rejected: list[Rejected],
                tally: dict[str, int] | None = None) -> Iterator[dict[str, Any]]:
    if not cfg.folder.path:
        raise ConfigError("data.folder.path: required when data.source is 'folder'")
    root = Path(cfg.folder.path)
    if not root.is_dir():
        raise UnmaskError(f"data.folder.path: {root} is not a directory")
    return _folder_source_rows(root, cfg.folder.identity_from_subfolders, cfg, seed, rejected,
                               "data.folder.path", tally)


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
    root = extract(archive, cache / archive_stem(archive.name), max_extract_gb=url_cfg.max_extract_gb)
    if not url_cfg.subdir:
        return _only_subdir(root)
    sub = PurePosixPath(url_cfg.subdir)
    if sub.is_absolute() or ".." in sub.parts or not (root / sub).is_dir():
        raise UnmaskError(f"{key}.subdir: {url_cfg.subdir!r} is not a folder inside {root}")
    return root / sub


def url_rows(cfg: DataConfig, seed: int, rejected: list[Rejected],
             tally: dict[str, int] | None = None) -> Iterator[dict[str, Any]]:
    root = fetch_archive(cfg.url, cfg.cache_dir)
    return _folder_source_rows(root, cfg.url.identity_from_subfolders, cfg, seed, rejected, "data.url.url",
                               tally, own_files=(EXTRACTED_MARKER,))


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
FOLDER_SOURCES = ("folder", "url")  # sources that list a folder: they count what they saw


def _write_rejected(path: Path, rejected: Iterable[Rejected]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
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
    tally: dict[str, int] = {}

    def counted(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            identities.add(row["identity"])
            yield row

    with atomic_dir(out_dir) as tmp:
        rows = source(cfg, seed, rejected, tally) if cfg.source in FOLDER_SOURCES else source(cfg, seed, rejected)
        n = write_rows(tmp, RAW, counted(rows))
        report = SourceReport(cfg.source, n, len(identities), rejected, tally.get("n_seen"),
                              tally.get("n_beyond_limit", 0))
        if report.n_seen is not None and report.n_seen != n + report.n_rejected + report.n_beyond_limit:
            raise UnmaskError(f"{out_dir}: {report.n_seen} files seen but {n} used + {report.n_rejected} "
                              f"rejected + {report.n_beyond_limit} beyond data.limit (a bug: please report)")
        _write_rejected(tmp / REJECTED_CSV, rejected)
    return report
