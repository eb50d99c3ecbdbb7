"""Checkpoint files: written atomically, read with ``weights_only=True``."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from unmask.errors import UnmaskError
from unmask.io.atomic import atomic_path

FORMAT_VERSION = 1


class CheckpointError(UnmaskError):
    """A checkpoint that is missing, unreadable, or not one of ours."""


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` (tensors and plain data only) to ``path``; a crash leaves the old file."""
    with atomic_path(path) as tmp:
        torch.save({"format_version": FORMAT_VERSION, **state}, tmp)


def load_state(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_state` (never unpickles arbitrary objects)."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: checkpoint not found") from None
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({reason})") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not an unmask checkpoint (format_version "
                              f"{state.get('format_version') if isinstance(state, dict) else None!r}, "
                              f"expected {FORMAT_VERSION})")
    return state
