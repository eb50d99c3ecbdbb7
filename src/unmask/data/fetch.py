"""Fetch and unpack dataset archives: resumable, checksum-verified downloads and safe extraction.

:func:`download` streams ``http(s)://`` or ``file://`` to ``<dest>.part``, resuming from its size with an
HTTP Range request (a server that ignores Range and answers 200 restarts the file), verifies the
sha256 and only then renames to ``dest``. :func:`extract` unpacks zip / tar / tar.gz / tgz after
checking every member stays inside the destination, into a temporary directory renamed into place.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import stat
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterator

from tqdm import tqdm

from unmask.errors import DownloadError
from unmask.io.atomic import atomic_dir

CHUNK = 1 << 20
TIMEOUT_S = 60
EXTRACTED_MARKER = ".unmask-extracted"


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
    """Whether a link at directory ``base`` pointing to ``target`` stays inside the root."""
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


def _check_tar(archive: Path, tf: tarfile.TarFile) -> None:
    for m in tf.getmembers():
        rel = _member_target(archive, m.name)
        if m.issym() and not _link_inside(rel.parent, m.linkname):
            raise DownloadError(f"{archive}: unsafe member {m.name!r} "
                                f"(symlink to {m.linkname!r} points outside the destination)")
        if m.islnk() and not _link_inside(PurePosixPath("."), m.linkname):
            raise DownloadError(f"{archive}: unsafe member {m.name!r} "
                                f"(hard link to {m.linkname!r} points outside the destination)")
        if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
            raise DownloadError(f"{archive}: unsafe member {m.name!r} (device, fifo or other special file)")


def _zip_is_symlink(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def _extract_zip(archive: Path, zf: zipfile.ZipFile, root: Path) -> None:
    members = []
    for info in zf.infolist():  # check everything before writing anything
        rel = _member_target(archive, info.filename)
        link = zf.read(info).decode("utf-8", "replace") if _zip_is_symlink(info) else None
        if link is not None and not _link_inside(rel.parent, link):
            raise DownloadError(f"{archive}: unsafe member {info.filename!r} "
                                f"(symlink to {link!r} points outside the destination)")
        members.append((info, rel, link))
    for info, rel, link in members:
        out = root / rel
        if info.is_dir():
            out.mkdir(parents=True, exist_ok=True)
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        if link is not None:
            os.symlink(link, out)
            continue
        with zf.open(info) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK)


def extract(archive: Path, dest_dir: Path) -> Path:
    """Unpack ``archive`` (zip, tar, tar.gz, tgz) into ``dest_dir`` atomically; return ``dest_dir``.

    Every member is checked first: absolute paths, ``..`` and links leading outside ``dest_dir``
    raise :class:`DownloadError` naming the archive and member, and nothing is extracted. A marker
    file records which archive was unpacked so a re-run with the same archive does nothing.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    st = archive.stat()
    stamp = json.dumps({"archive": archive.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    marker = dest_dir / EXTRACTED_MARKER
    if marker.is_file() and marker.read_text() == stamp:
        return dest_dir
    with atomic_dir(dest_dir) as tmp:
        if zipfile.is_zipfile(archive):
            try:
                with zipfile.ZipFile(archive) as zf:
                    _extract_zip(archive, zf, tmp)
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise DownloadError(f"{archive}: corrupt zip archive ({e})") from None
        elif tarfile.is_tarfile(archive):
            try:
                with tarfile.open(archive, "r:*") as tf:
                    _check_tar(archive, tf)
                    tf.extractall(tmp, filter="data")
            except (tarfile.TarError, OSError, EOFError) as e:
                raise DownloadError(f"{archive}: corrupt tar archive ({e})") from None
        else:
            raise DownloadError(f"{archive}: not a zip or tar archive")
        (tmp / EXTRACTED_MARKER).write_text(stamp)
    return dest_dir
