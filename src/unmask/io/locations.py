"""Where a path the project's records or params name is read: relative paths from the project root."""

from __future__ import annotations

import os


def resolve_location(location: str, root: str | os.PathLike | None) -> str:
    """Where to read a file the project's records or params name, e.g. a trials table's ``checkpoint`` or
    ``data.cache_dir``: a path relative to the project root (what a sweep records,
    ``results/<study>/checkpoints/<key>.pt``; what params.yaml writes, ``data/external``) is joined to
    ``root``, so it does not depend on the working directory; an absolute path, a URI (``s3://``,
    ``file://``: see :func:`unmask.io.remote.local_copy`), "" or ``root`` None are returned as they are."""
    location = str(location)
    if not location or root is None or "://" in location or os.path.isabs(location):
        return location
    return os.path.join(os.fspath(root), location)
