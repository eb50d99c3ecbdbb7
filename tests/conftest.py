"""Shared test fixtures and paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def shared_dir(*parts: str) -> Path:
    """A folder under ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.is_dir():
        pytest.skip(f"{path} not present (only the development checkout has ../shared/data)")
    return path


@pytest.fixture
def real_faces_dir() -> Path:
    return shared_dir("faces", "unmasked-crops")


@pytest.fixture
def masktheface_dir() -> Path:
    return shared_dir("masktheface")


def _refuse(*args, **kwargs):
    raise AssertionError("network access attempted")


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No way out to the network, and an empty torch hub cache (returned): for the loaders of
    pretrained weights, which must never download."""
    import socket
    import urllib.request

    import torch

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", _refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _refuse)
    monkeypatch.setattr(urllib.request, "urlopen", _refuse)
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    return hub
