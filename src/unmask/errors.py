"""The one exception type users see: a single line naming the file or key at fault."""

import errno

# an OSError with one of these is the disk refusing a write ("cannot write <output>: ..."), never bad input
WRITE_ERRNOS = frozenset({errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class UnmaskError(Exception):
    """A user-facing error. ``str(err)`` is one line that names the offending file or key."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class BadImageError(UnmaskError):
    """An input image that cannot be used (corrupt, truncated, wrong mode, too small, ...)."""


class ConfigError(UnmaskError):
    """A bad key or value in params.yaml (the message names the dotted key)."""


class CheckpointError(UnmaskError):
    """A checkpoint that is missing, unreadable, or not one of ours (also one that cannot be fetched)."""


class DownloadError(UnmaskError):
    """A download that failed, was truncated or did not match its checksum."""
