"""Fetch and unpack dataset archives: resumable, checksum-verified downloads and safe extraction.

:func:`download` streams ``http(s)://`` or ``file://`` to ``<dest>.part``, resuming from its size with an
HTTP Range request (a server that ignores Range and answers 200 restarts the file), verifies the
sha256 and only then renames to ``dest``. :func:`extract` unpacks zip / tar / tar.gz / tgz after
checking every member stays inside the destination (zip links are refused; tar links are followed)
and that the total unpacked size fits a cap, into a temporary directory renamed into place.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import json
import math
import os
import re
import stat
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterator

from tqdm import tqdm

from unmask.errors import DownloadError
from unmask.io.atomic import atomic_dir

CHUNK = 1 << 20
TIMEOUT_S = 60
EXTRACTED_MARKER = ".unmask-extracted"
DEFAULT_MAX_EXTRACT_GB = 20.0  # data.url.max_extract_gb: total unpacked size allowed per archive (GiB)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def download(url: str, dest: Path, sha256: str | None, *, progress: bool = True) -> Path:
    """Fetch ``url`` to ``dest`` (verified against ``sha256`` when given) and return ``dest``.

    A complete ``dest`` whose checksum matches is returned without touching the network. An
    interrupted transfer keeps ``<dest>.part`` so the next call resumes it; a checksum mismatch
    deletes the download and raises :class:`DownloadError` naming the url and both hashes.
    """
    dest = Path(dest)
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise DownloadError(f"{url}: unsupported url scheme {scheme!r} (use http(s):// or file://)")
    expected = sha256.lower() if sha256 else None
    if dest.is_file():
        if expected is None or sha256_file(dest) == expected:
            return dest
        dest.unlink()  # stale or corrupt copy: fetch again
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _part_path(dest)
    _fetch_to_part(url, part, progress)
    try:
        verify_sha256(part, expected, url)
    except DownloadError:
        part.unlink()
        raise
    os.replace(part, dest)
    return dest


def verify_sha256(path: Path, expected: str | None, url: str) -> None:
    """Raise DownloadError naming ``url`` and both hashes unless ``path`` hashes to ``expected``."""
    if expected is None:
        return
    got = sha256_file(path)
    if got != expected.lower():
        raise DownloadError(f"{url}: sha256 mismatch: expected {expected.lower()}, got {got}")


def local_path(url: str) -> Path:
    """The file a ``file://`` url names."""
    return Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))


def _fetch_to_part(url: str, part: Path, progress: bool) -> None:
    """Append the rest of ``url`` to ``part``; raises DownloadError if the transfer stops short."""
    offset = part.stat().st_size if part.is_file() else 0
    stream, total, offset = _open(url, offset)
    written = offset
    with stream, open(part, "r+b" if part.exists() else "wb") as out, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=part.name.removesuffix(".part"), disable=None if progress else True) as bar:
        out.seek(offset)
        out.truncate()
        try:
            for block in _blocks(stream):
                out.write(block)
                written += len(block)
                bar.update(len(block))
        except (OSError, urllib.error.URLError, ConnectionError) as e:
            raise DownloadError(f"{url}: transfer interrupted at {written} of {total or '?'} bytes "
                                f"({e}); re-run to resume from {part}") from None
    if total is not None and written < total:
        raise DownloadError(f"{url}: transfer truncated at {written} of {total} bytes; "
                            f"re-run to resume from {part}")


def _blocks(stream: BinaryIO) -> Iterator[bytes]:
    while True:
        try:
            block = stream.read(CHUNK)
        except http.client.IncompleteRead as e:  # chunked body cut short
            if e.partial:
                yield e.partial
            raise ConnectionError("connection closed mid-body") from None
        if not block:
            return
        yield block


def _open(url: str, offset: int) -> tuple[BinaryIO, int | None, int]:
    """Open ``url`` at byte ``offset`` if possible: (stream, total size or None, actual offset)."""
    if urllib.parse.urlsplit(url).scheme.lower() == "file":
        path = local_path(url)
        try:
            f = open(path, "rb")
        except OSError as e:
            raise DownloadError(f"{url}: cannot open ({e.strerror})") from None
        total = os.fstat(f.fileno()).st_size
        offset = offset if offset <= total else 0
        f.seek(offset)
        return f, total, offset
    req = urllib.request.Request(url, headers={"User-Agent": "unmask"})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    try:
        resp = urllib.request.urlopen(req, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:  # nothing past our offset: .part is complete or bogus
            m = re.fullmatch(r"bytes \*/(\d+)", e.headers.get("Content-Range", ""))
            if m and int(m.group(1)) == offset:
                return _Empty(), offset, offset
            return _open(url, 0)
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"{url}: cannot connect ({reason}); partial data, if any, is kept") from None
    length = resp.headers.get("Content-Length")
    length = int(length) if length is not None and length.isdigit() else None
    if offset and resp.status == 206:
        m = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
        if m and int(m.group(1)) == offset:
            return resp, (offset + length if length is not None else None), offset
        resp.close()  # a range we did not ask for: start over
        return _open(url, 0)
    return resp, length, 0  # 200: full body (the server ignored Range, if we sent one)


class _Empty:
    def read(self, n: int = -1) -> bytes:
        return b""

    def __enter__(self) -> "_Empty":
        return self

    def __exit__(self, *exc) -> None:
        return None


# --------------------------------------------------------------------------- extraction
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip")


def archive_stem(name: str) -> str:
    """``faces.tar.gz`` -> ``faces``: the folder name an archive extracts to."""
    low = name.lower()
    for suf in ARCHIVE_SUFFIXES:
        if low.endswith(suf):
            return name[: -len(suf)]
    return name


def _member_target(archive: Path, name: str) -> PurePosixPath:
    """The member's path relative to the destination, or DownloadError if it would escape."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise DownloadError(f"{archive}: unsafe member {name!r} (absolute path)")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DownloadError(f"{archive}: unsafe member {name!r} (escapes the destination with '..')")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _link_inside(base: PurePosixPath, target: str) -> bool:
    """Whether a link at directory ``base`` pointing to ``target`` stays inside the root (lexically)."""
    if target.startswith("/") or re.match(r"^[A-Za-z]:", target):
        return False
    depth = 0
    for p in (base / target.replace("\\", "/")).parts:
        if p == "..":
            depth -= 1
            if depth < 0:
                return False
        elif p not in ("", "."):
            depth += 1
    return True


_MAX_LINK_HOPS = 40


def _resolve_inside(links: dict[tuple[str, ...], str], rel: PurePosixPath) -> tuple[str, ...] | None:
    """Where ``rel`` really lands once the symlinks in ``links`` (path parts -> target) that the
    archive has created so far are followed, as parts under the root; None if it leaves the root
    (through ``..`` or an absolute target) or the links loop."""
    todo = [p for p in rel.parts if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while todo:
        p = todo.pop(0)
        if p in ("", "."):
            continue
        if p == "..":
            if not done:
                return None
            done.pop()
            continue
        here = (*done, p)
        if here in links:
            hops += 1
            target = links[here].replace("\\", "/")
            if hops > _MAX_LINK_HOPS or target.startswith("/") or re.match(r"^[A-Za-z]:", target):
                return None
            todo = list(PurePosixPath(target).parts) + todo
            continue
        done.append(p)
    return tuple(done)


def _human(n: float) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{int(n)} bytes"


class _Budget:
    """The extraction cap: checked against the declared sizes up front and charged as data is written."""

    def __init__(self, archive: Path, max_gb: float):
        if not (max_gb > 0 and math.isfinite(max_gb)):
            raise ValueError(f"max_extract_gb must be a finite number > 0, got {max_gb!r}")
        self.archive, self.max_gb = archive, max_gb
        self.cap = int(max_gb * (1 << 30))
        self.used = 0

    def _error(self, what: str) -> DownloadError:
        return DownloadError(f"{self.archive}: {what}, over the {_human(self.cap)} extraction cap "
                             f"(data.url.max_extract_gb = {self.max_gb:g})")

    def check_declared(self, total: int) -> None:
        if total > self.cap:
            raise self._error(f"members declare {_human(total)} uncompressed")

    def charge(self, n: int, member: str) -> None:
        self.used += n
        if self.used > self.cap:
            raise self._error(f"unpacks to more than the cap at member {member!r}")


def _check_tar(archive: Path, tf: tarfile.TarFile, budget: _Budget) -> None:
    """Refuse the archive unless every member, followed through the links the archive creates before
    it, stays inside the destination; and unless the files it declares fit the cap."""
    links: dict[tuple[str, ...], str] = {}     # symlinks made so far: resolved location -> target
    sizes: dict[tuple[str, ...], int] = {}
    seen: dict[PurePosixPath, str] = {}
    declared = 0
    for m in tf.getmembers():
        rel = _member_target(archive, m.name)
        if m.isfile() or m.islnk():
            _once(archive, seen, rel, m.name)
        if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
            raise DownloadError(f"{archive}: unsafe member {m.name!r} (device, fifo or other special file)")
        if m.issym():  # tarfile replaces whatever is at the link's own path, so only its folder is followed
            where = _resolve_inside(links, rel.parent)
            if where is None or not rel.name:
                raise DownloadError(f"{archive}: unsafe member {m.name!r} (its folder leads outside "
                                    f"the destination through a symbolic link)")
            target = m.linkname.replace("\\", "/")
            if not _link_inside(rel.parent, target) or \
                    _resolve_inside(links, PurePosixPath(*where, target)) is None:
                raise DownloadError(f"{archive}: unsafe member {m.name!r} "
                                    f"(symlink to {m.linkname!r} points outside the destination)")
            links[(*where, rel.name)] = target
            continue
        real = _resolve_inside(links, rel)  # files and folders are written through an existing link
        if real is None:
            raise DownloadError(f"{archive}: unsafe member {m.name!r} (leads outside the destination "
                                f"through a symbolic link)")
        if m.islnk():
            target = m.linkname.replace("\\", "/")
            linked = _resolve_inside(links, PurePosixPath(target)) if _link_inside(PurePosixPath("."), target) \
                else None
            if linked is None:
                raise DownloadError(f"{archive}: unsafe member {m.name!r} "
                                    f"(hard link to {m.linkname!r} points outside the destination)")
            sizes[real] = sizes.get(linked, 0)  # tarfile copies the target when it cannot link
            declared += sizes[real]
        elif m.isfile():
            sizes[real] = m.size
            declared += m.size
    for key, target in links.items():  # ``x -> s/t/../..`` then ``s -> .``: x ends up outside
        if _resolve_inside(links, PurePosixPath(*key)) is None:
            raise DownloadError(f"{archive}: unsafe member {'/'.join(key)!r} "
                                f"(symlink to {target!r} points outside the destination)")
    budget.check_declared(declared)


def _extract_tar(archive: Path, tf: tarfile.TarFile, root: Path, budget: _Budget) -> None:
    _check_tar(archive, tf, budget)
    sizes: dict[str, int] = {}

    def data_filter_with_cap(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
        try:
            member = tarfile.data_filter(member, dest)
        except tarfile.FilterError as e:  # the stdlib's own real-path check, as a second line
            raise DownloadError(f"{archive}: unsafe member {member.name!r} ({e})") from None
        if member.isfile():
            sizes[member.name] = member.size
            budget.charge(member.size, member.name)  # tarfile writes exactly ``size`` bytes per file
        elif member.islnk():
            budget.charge(sizes.get(member.linkname, 0), member.name)
        return member

    tf.extractall(root, filter=data_filter_with_cap)


def _zip_mode(info: zipfile.ZipInfo) -> int:
    return info.external_attr >> 16


def _once(archive: Path, seen: dict[PurePosixPath, str], rel: PurePosixPath, name: str) -> None:
    """Refuse a second file member at the same path: unpacking it would silently drop the first."""
    if rel in seen:
        first = seen[rel]
        also = "" if first == name else f" (also as {first!r})"
        raise DownloadError(f"{archive}: duplicate member {name!r}{also}: two files at one path, "
                            f"unpacking would keep only the last")
    seen[rel] = name


def _check_zip(archive: Path, zf: zipfile.ZipFile,
               budget: _Budget) -> list[tuple[zipfile.ZipInfo, PurePosixPath, bool]]:
    """Every member's (info, relative path, is a folder); refuses links, special files, encrypted
    members and archives that declare more than the cap, before anything is written."""
    members = []
    declared = 0
    seen: dict[PurePosixPath, str] = {}
    for info in zf.infolist():
        rel = _member_target(archive, info.filename)
        mode = _zip_mode(info)
        kind = stat.S_IFMT(mode)
        if stat.S_ISLNK(mode):  # whatever system made it: zip links are never extracted
            raise DownloadError(f"{archive}: unsafe member {info.filename!r} (symbolic link)")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise DownloadError(f"{archive}: unsafe member {info.filename!r} "
                                f"(device, fifo or other special file)")
        if info.flag_bits & 0x1:
            raise DownloadError(f"{archive}: member {info.filename!r} is encrypted (unsupported)")
        is_dir = info.is_dir() or kind == stat.S_IFDIR
        if not is_dir:
            _once(archive, seen, rel, info.filename)
            declared += info.file_size
        members.append((info, rel, is_dir))
    budget.check_declared(declared)
    return members


def _inside(root_real: str, path: Path, archive: Path, name: str) -> None:
    """Refuse ``path`` unless its real path (links on disk followed) is inside ``root_real``."""
    real = os.path.realpath(path)
    if os.path.commonpath([root_real, real]) != root_real:
        raise DownloadError(f"{archive}: unsafe member {name!r} (resolves to {real}, outside the destination)")


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _extract_zip(archive: Path, zf: zipfile.ZipFile, root: Path, budget: _Budget) -> None:
    members = _check_zip(archive, zf, budget)
    root_real = os.path.realpath(root)
    for info, rel, is_dir in members:
        out = root / rel
        _inside(root_real, out, archive, info.filename)
        if is_dir:
            out.mkdir(parents=True, exist_ok=True)
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        _inside(root_real, out, archive, info.filename)
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW | getattr(os, "O_BINARY", 0), 0o644)
        with zf.open(info) as src, open(fd, "wb") as dst:
            for block in iter(lambda: src.read(CHUNK), b""):
                budget.charge(len(block), info.filename)  # sizes in the headers may lie
                dst.write(block)


_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def _write_failure(e: OSError, archive: Path, dest_dir: Path) -> DownloadError | None:
    """An error writing the unpacked files (full disk, quota, read-only) as what it is, not a corrupt archive."""
    if e.errno not in _WRITE_ERRNOS:
        return None
    return DownloadError(f"cannot unpack {archive} into {dest_dir}: {e.strerror or e} "
                         f"(nothing was replaced)")


def extract(archive: Path, dest_dir: Path, *, max_extract_gb: float = DEFAULT_MAX_EXTRACT_GB) -> Path:
    """Unpack ``archive`` (zip, tar, tar.gz, tgz) into ``dest_dir`` atomically; return ``dest_dir``.

    Every member is checked first: absolute paths, ``..``, zip links and special files, tar links
    leading outside ``dest_dir`` (followed through the links the archive makes) raise
    :class:`DownloadError` naming the archive and member, and nothing is extracted. So does an archive
    whose members declare more than ``max_extract_gb`` GiB, or that writes more while extracting.
    Everything is unpacked into a temporary sibling renamed onto ``dest_dir`` only on success. A marker
    file records which archive was unpacked so a re-run with the same archive does nothing.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    budget = _Budget(archive, max_extract_gb)
    st = archive.stat()
    stamp = json.dumps({"archive": archive.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    marker = dest_dir / EXTRACTED_MARKER
    if marker.is_file() and marker.read_text() == stamp:
        return dest_dir
    with atomic_dir(dest_dir) as tmp:
        if zipfile.is_zipfile(archive):
            try:
                with zipfile.ZipFile(archive) as zf:
                    _extract_zip(archive, zf, tmp, budget)
            except OSError as e:
                raise _write_failure(e, archive, dest_dir) or DownloadError(
                    f"{archive}: corrupt zip archive ({e})") from None
            except (zipfile.BadZipFile, EOFError, zlib.error) as e:
                raise DownloadError(f"{archive}: corrupt zip archive ({e})") from None
            except NotImplementedError as e:  # e.g. deflate64 or AES entries
                raise DownloadError(f"{archive}: unsupported zip archive ({e})") from None
        elif tarfile.is_tarfile(archive):
            try:
                with tarfile.open(archive, "r:*") as tf:
                    _extract_tar(archive, tf, tmp, budget)
            except OSError as e:
                raise _write_failure(e, archive, dest_dir) or DownloadError(
                    f"{archive}: corrupt tar archive ({e})") from None
            except (tarfile.TarError, EOFError, zlib.error) as e:
                raise DownloadError(f"{archive}: corrupt tar archive ({e})") from None
        else:
            raise DownloadError(f"{archive}: not a zip or tar archive")
        (tmp / EXTRACTED_MARKER).write_text(stamp)
    return dest_dir
