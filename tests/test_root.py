"""``unmask --root DIR``: every relative path in params is under DIR, whatever the working folder."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from tests.data.test_occlusions import BOX_CFG, _write_template_folder
from tests.data.test_synthesize import aligned_rows, make_aligned
from unmask.cli import main


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _project(tmp_path: Path, monkeypatch, **sections) -> tuple[Path, Path]:
    """A project folder with its params file, and an empty working folder elsewhere made the cwd."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    raw = {"data": {}, "align": {}, "synthesize": {}, "split": {}, "train": {}, "studies": {}, **sections}
    (project / "params.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(elsewhere)
    return project, elsewhere


def _run(project: Path, command: str) -> int:
    return main(["--root", str(project), "--params", str(project / "params.yaml"), "-q", command])


@pytest.mark.parametrize("cache_dir", ["data/external", "absolute"])
def test_root_elsewhere_download_of_a_zip_extracts_under_root_not_the_working_folder(tmp_path, monkeypatch,
                                                                                    cache_dir):
    archive = tmp_path / "faces.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ann/1.png", _png(1))
        zf.writestr("bob/1.png", _png(2))
    cache = str(tmp_path / "cache") if cache_dir == "absolute" else cache_dir   # a user's absolute path is kept
    project, elsewhere = _project(tmp_path, monkeypatch,
                                  data={"source": "url", "cache_dir": cache, "url": {"url": archive.as_uri()}})
    assert _run(project, "download") == 0
    assert (Path(cache) if cache_dir == "absolute" else project / cache).joinpath("faces", "ann", "1.png").is_file()
    assert json.loads((project / "data" / "raw" / "summary.json").read_text())["n_images"] == 2
    assert list(elsewhere.iterdir()) == []


def test_root_elsewhere_relative_data_folder_path_is_read_under_root(tmp_path, monkeypatch):
    project, elsewhere = _project(tmp_path, monkeypatch, data={"source": "folder", "folder": {"path": "photos"}})
    for who, seed in (("ann", 1), ("bob", 2)):
        (project / "photos" / who).mkdir(parents=True)
        (project / "photos" / who / "1.png").write_bytes(_png(seed))
    assert _run(project, "download") == 0
    assert json.loads((project / "data" / "raw" / "summary.json").read_text())["n_images"] == 2
    assert list(elsewhere.iterdir()) == []


def test_root_elsewhere_relative_synthesize_templates_is_read_under_root(tmp_path, monkeypatch):
    project, elsewhere = _project(tmp_path, monkeypatch,
                                  synthesize={"kinds": {"template": 1.0}, "templates": "masks"})
    box = Image.new("RGBA", (100, 60), (10, 200, 30, 255))
    _write_template_folder(project / "masks", BOX_CFG, box)
    make_aligned(project / "data" / "aligned", aligned_rows(2))
    assert _run(project, "synthesize") == 0
    summary = json.loads((project / "data" / "synth" / "summary.json").read_text())
    assert summary["kinds"] == {"template:box": 2}
    assert list(elsewhere.iterdir()) == []
