"""Checkpoint files: written atomically, read with ``weights_only=True``."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from unmask.errors import CheckpointError   # defined with the other error types: unmask.io.remote raises it too
from unmask.io.atomic import atomic_path

FORMAT_VERSION = 1


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
    except IsADirectoryError:
        raise CheckpointError(f"{path}: a folder, not a checkpoint file") from None
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable checkpoint ({_reason(err)})") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not an unmask checkpoint (format_version "
                              f"{state.get('format_version') if isinstance(state, dict) else None!r}, "
                              f"expected {FORMAT_VERSION})")
    return state


def _reason(err: BaseException) -> str:
    """What was wrong with a file torch could not load, in a few words. torch's own text for a file the
    safe loader refuses suggests ``weights_only=False``, which would run whatever code the file holds:
    never passed on."""
    text = str(err)
    if "weights_only" in text or "Weights only load failed" in text:
        detail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0] if "WeightsUnpickler error:" in text else ""
        return "the safe loader refuses it" + (f": {detail}" if detail else ": not a torch file of tensors")
    if "not a ZIP archive" in text or "failed reading zip archive" in text:
        return "not a torch zip archive: truncated or not a checkpoint"
    return text.strip().splitlines()[0][:200] if text.strip() else type(err).__name__
