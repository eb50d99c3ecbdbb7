"""Atomic file and directory writes: readers never see a half-written output.

Everything a stage writes goes to a temporary sibling first and is renamed into place when complete,
so an interrupted or failed stage leaves the previous output (or nothing) -- never a truncated file.

Permissions follow the umask, as a plain ``open``/``mkdir`` would: files ``0o666 & ~umask``, folders
``0o777 & ~umask`` (``tempfile`` creates its temporaries private, 0600 / 0700, which would otherwise
be what lands in place).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


_PROC_STATUS = "/proc/self/status"


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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        _chmod_default(tmp_path)   # before the caller writes: a mode it sets itself is kept
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success it replaces ``path`` whole (old content removed).

    On failure the temporary directory is removed and ``path`` is left exactly as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        _chmod_default(tmp, directory=True)
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
