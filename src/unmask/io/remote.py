"""Files a sweep recorded as a local path or as a URI (``s3://``, ``gs://``, ``file://``: Tune's storage
on a remote filesystem), fetched to a local path for the stage that reads them."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator

from unmask.errors import CheckpointError


@contextlib.contextmanager
def local_copy(location: str) -> Iterator[str]:
    """A local path to the checkpoint at ``location``: the path itself, or for a URI (``s3://``,
    ``gs://``, ``file://``, as a sweep on shared storage records it) a temporary copy.
    Raises :class:`~unmask.errors.CheckpointError` when it cannot be fetched."""
    if "://" not in location:
        yield location
        return
    import pyarrow as pa
    import pyarrow.fs as pafs

    with tempfile.TemporaryDirectory() as d:
        try:
            fs, path = pafs.FileSystem.from_uri(location)
            local = os.path.join(d, os.path.basename(path))
            pafs.copy_files(path, local, source_filesystem=fs)
        except (OSError, ValueError, pa.ArrowException) as err:
            raise CheckpointError(f"{location}: cannot fetch the checkpoint ({str(err).splitlines()[0]})") from None
        yield local
