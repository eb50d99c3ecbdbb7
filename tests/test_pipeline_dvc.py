"""`dvc repro` end to end on a tiny synthetic dataset, in a copy of the project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

STAGES = ("download", "align", "synthesize", "split")


def _dvc(cwd: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1"}
    r = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, f"dvc {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout + r.stderr


def _ran(output: str) -> set[str]:
    return {s for s in STAGES if f"Running stage '{s}'" in output}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    dst = tmp_path_factory.mktemp("proj")
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, dst / name)
    for name in ("stages", "src", ".dvc"):
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__", "tmp", "cache"))
    params = yaml.safe_load((dst / "params.yaml").read_text())
    params["data"]["synthetic"].update(n_identities=14, images_per_identity=2, size=96)
    params["align"]["size"] = 32
    (dst / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "init", "-q"], cwd=dst, check=True)
    return dst


def test_repro_runs_all_stages_then_is_a_noop_then_reruns_only_what_changed(project):
    out = _dvc(project, "repro")
    assert _ran(out) == set(STAGES)
    summary = (project / "data/splits/summary.json").read_text()
    assert '"train_masked_clean": 0' in summary
    for s in ("train", "val", "test"):
        assert list((project / "data/splits" / s).glob("part-*.parquet"))

    again = _dvc(project, "repro")
    assert _ran(again) == set()

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["synthesize"]["kinds"]["surgical"] = 0.9
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = _dvc(project, "repro")
    assert _ran(changed) == {"synthesize", "split"}
