"""Atomic file and directory writes: readers never see a half-written output.

Everything a stage writes goes to a temporary sibling first and is renamed into place when complete,
so an interrupted or failed stage leaves the previous output (or nothing) -- never a truncated file.

Permissions follow the umask, as a plain ``open``/``mkdir`` would: files ``0o666 & ~umask``, folders
``0o777 & ~umask`` (``tempfile`` creates its temporaries private, 0600 / 0700, which would otherwise
be what lands in place).

Temporaries are ``.<name>.<pid>-<random>.tmp`` siblings of the output, locked (``flock``) by their
writer while it writes; a folder being replaced is moved aside to ``.<name>.old`` for the swap. A
writer killed with SIGKILL leaves them behind: the next write of the same output removes the
temporaries no live process holds (:func:`clean_stale`) and puts back a ``.<name>.old`` whose swap
was cut short, so nothing is lost and nothing piles up. Only the output's own siblings are touched.

An output folder that is a symbolic link (``data/aligned -> /big/disk/aligned``) stays a link: the new
folder is written next to the link's target and swapped in there.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from unmask.errors import UnmaskError

_PROC_STATUS = "/proc/self/status"
# ".<name>.<pid>-<random8>.tmp" (``<random8>`` alone: written before temporaries carried their pid)
# and ".<name>.old"
_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.(?:(?:(?P<pid>\d+)-)?[A-Za-z0-9_]{8}\.tmp|old)")
_OLD_SUFFIX = ".old"


def output_name(name: str) -> str | None:
    """The output a temporary sibling called ``name`` is written for (``.aligned.123-ab_cd9xy.tmp`` ->
    ``aligned``), or None when ``name`` is not such a temporary."""
    m = _TEMP_NAME.fullmatch(name)
    return m["name"] if m else None


def current_umask() -> int:
    """The process umask, read without changing it: the ``Umask:`` line of /proc/self/status (Linux
    4.7+); elsewhere set and restored at once (``os.umask`` has no getter), which another thread
    creating a file in between could see."""
    try:
        with open(_PROC_STATUS, encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o077)
    os.umask(old)
    return old


def _chmod_default(path: Path, directory: bool = False) -> None:
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


def _lock(fd: int, block: bool = True) -> bool:
    """``flock`` ``fd`` exclusively; False if another process holds it (``block`` False). A file system
    without locks counts as locked by nobody."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:    # alive, another user's
        return True
    return True


def _held(path: Path) -> bool:
    """Whether a live process holds the lock of temporary ``path`` (a file or a folder)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        return not _lock(fd, block=False)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def clean_stale(path: str | os.PathLike) -> None:
    """Remove the temporaries of output ``path`` that no live process is writing (its writer was killed)
    and put back ``.<name>.old`` when ``path`` is missing (a swap cut short between its two renames),
    else remove it. A temporary is stale when its writer's pid is gone and nobody holds its lock."""
    path = Path(path)
    try:
        siblings = [e for e in os.scandir(path.parent) if e.name.startswith(f".{path.name}.")]
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in siblings:
        m = _TEMP_NAME.fullmatch(entry.name)
        if not m or m["name"] != path.name:
            continue
        p = Path(entry.path)
        if entry.name.endswith(_OLD_SUFFIX) and entry.name == f".{path.name}{_OLD_SUFFIX}":
            if os.path.lexists(path):
                _remove(p)
            else:
                os.replace(p, path)
        elif m["pid"] is None or not _pid_alive(int(m["pid"])):
            if not _held(p):
                _remove(p)


@contextlib.contextmanager
def _swap_lock(parent: Path) -> Iterator[None]:
    """Serialise the clean-up and the swap of the outputs of folder ``parent`` between processes."""
    try:
        fd = os.open(parent, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        _lock(fd)
        yield
    finally:
        os.close(fd)   # releases the lock


def _mkstemp(path: Path, directory: bool) -> tuple[int, Path]:
    """A locked temporary sibling of ``path`` (its fd holds the lock: keep it open while writing)."""
    prefix, suffix = f".{path.name}.{os.getpid()}-", ".tmp"
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=path.parent))
        fd = os.open(tmp, os.O_RDONLY)
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
        tmp = Path(name)
    _lock(fd)
    return fd, tmp


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    A symbolic link at ``path`` is replaced, not followed: the file lands where ``path`` says."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    fd, tmp_path = _mkstemp(path, directory=False)
    try:
        _chmod_default(tmp_path)   # before the caller writes: a mode it sets itself is kept
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        os.close(fd)
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def _link_target(path: Path) -> Path:
    """Where a folder output is written: ``path``, or the target of the symbolic link at ``path``."""
    if not path.is_symlink():
        return path
    target = Path(os.path.realpath(path))
    if not target.parent.is_dir():
        raise UnmaskError(f"{path}: a symbolic link to {target}, whose folder {target.parent} does not "
                          f"exist (not mounted?)")
    if target.exists() and not target.is_dir():
        raise UnmaskError(f"{path}: a symbolic link to {target}, which is not a folder")
    return target


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success it replaces ``path`` whole (old content removed).

    On failure the temporary directory is removed and ``path`` is left exactly as it was. A symbolic
    link at ``path`` is kept: its target is the folder replaced (atomically, next to the target).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path = _link_target(path)
    with _swap_lock(path.parent):
        clean_stale(path)
    fd, tmp = _mkstemp(path, directory=True)
    try:
        _chmod_default(tmp, directory=True)
        yield tmp
        old = path.with_name(f".{path.name}{_OLD_SUFFIX}")
        with _swap_lock(path.parent):
            moved = path.exists()
            if moved:
                _remove(old)
                os.replace(path, old)
            os.replace(tmp, path)
        if moved:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        os.close(fd)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
