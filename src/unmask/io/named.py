"""OSErrors that name the file: pyarrow and numpy raise ``No space left on device`` without one."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator


@contextlib.contextmanager
def naming(path: str | os.PathLike) -> Iterator[None]:
    """Re-raise an OSError without a file name from the block as one naming ``path`` (the output being
    written), so that it reads ``cannot write <path>: No space left on device``."""
    try:
        yield
    except OSError as err:
        if err.filename is not None or not err.errno:
            raise
        raise OSError(err.errno, os.strerror(err.errno), str(path)) from err
