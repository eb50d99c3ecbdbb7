"""`dvc repro` end to end on a tiny synthetic dataset, in a copy of the project: the data stages
(fast), and the whole pipeline with two micro studies (slow: real Ray Tune and MLflow)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from unmask.pipeline import DATA_STAGES as STAGES

MICRO_TRAIN = {"image_size": 16, "steps": 4, "batch_size": 2, "val_every": 2, "log_every": 2,
               "checkpoint_every": 2, "generator": {"base_channels": 4, "n_blocks": 1},
               "discriminator": {"base_channels": 4}}


def _dvc(cwd: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1"}
    r = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, f"dvc {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout + r.stderr


def _ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def _copy_project(dst: Path) -> dict:
    for name in ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, dst / name)
    for name in ("stages", "src", ".dvc"):
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__", "tmp", "cache"))
    params = yaml.safe_load((dst / "params.yaml").read_text())
    params["data"]["synthetic"].update(n_identities=14, images_per_identity=2, size=96)
    params["align"]["size"] = 32
    subprocess.run(["git", "init", "-q"], cwd=dst, check=True)
    return params


def _write_params(dst: Path, params: dict) -> None:
    (dst / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    dst = tmp_path_factory.mktemp("proj")
    _write_params(dst, _copy_project(dst))
    return dst


def test_repro_runs_all_stages_then_is_a_noop_then_reruns_only_what_changed(project):
    out = _dvc(project, "repro", "split")
    assert _ran(out) == set(STAGES)
    summary = (project / "data/splits/summary.json").read_text()
    assert '"train_masked_clean": 0' in summary
    for s in ("train", "val", "test"):
        assert list((project / "data/splits" / s).glob("part-*.parquet"))

    again = _dvc(project, "repro", "split")
    assert _ran(again) == set()

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["synthesize"]["kinds"]["surgical"] = 0.9
    _write_params(project, params)
    changed = _dvc(project, "repro", "split")
    assert _ran(changed) == {"synthesize", "split"}


def _parent_report_artifacts(project: Path, study: str) -> set[str]:
    """The report files attached to the study's MLflow parent run."""
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    exp = client.get_experiment_by_name(study)
    parents = [r for r in client.search_runs([exp.experiment_id])
               if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    return {a.path for a in client.list_artifacts(parents[0].info.run_id, "report")}


@pytest.mark.slow
def test_full_repro_with_micro_studies_then_one_grid_change_reruns_that_study_only(tmp_path):
    params = _copy_project(tmp_path)
    params["train"] = MICRO_TRAIN
    params["studies"] = {
        "micro_loss": {"title": "micro: loss", "train": {"framework": "cyclegan"},
                       "grid": {"adv_loss": ["lsgan", "hinge"]}, "seeds": [0],
                       "baselines": ["input"], "reference": "paper_table3"},
        "micro_disc": {"title": "micro: critic", "train": {"framework": "cyclegan"},
                       "grid": {"discriminator.name": ["patchgan"]}, "seeds": [0, 1],
                       "baselines": ["input"], "reference": "paper_table7", "champions": ["micro_loss"]},
    }
    params["studies"]["micro_seg"] = {
        "title": "micro: segmenter", "kinds": ["surgical", "cloth", "n95", "kn95"], "metrics": ["dice"],
        "train": {"framework": "segmenter", "generator": {"name": "unet", "depth": 2, "base_channels": 4,
                                                          "norm": "batch", "out_channels": 1}},
        "grid": {"weights": [{"dice": 1.0}]}, "seeds": [0], "baselines": ["lower_face"]}
    params["across"] = [{"study": "micro_disc", "reads": "micro_loss"}]
    params["leaderboard"] = {"champions": ["micro_loss"], "mask_from": "micro_seg", "baselines": ["input", "telea"],
                             "end_to_end_baselines": ["telea"], "kinds": ["surgical", "cloth", "n95", "kn95"],
                             "image_size": 32}
    _write_params(tmp_path, params)
    out = _dvc(tmp_path, "repro")
    assert _ran(out) == {*STAGES, "sweep@micro_loss", "sweep@micro_disc", "sweep@micro_seg", "evaluate@micro_loss",
                         "evaluate@micro_disc", "evaluate@micro_seg", "evaluate_across@0",
                         "leaderboard@micro_loss", "leaderboard_baselines", "report"}
    board = (tmp_path / "reports" / "leaderboard.md").read_text()
    assert "Scoring size: **32 px**" in board and "`micro_loss`" in board and "`telea mask=predicted`" in board
    assert (tmp_path / "results" / "across" / "micro_disc" / "micro_loss" / "champion.parquet").is_file()
    assert "## Against other studies' champions" in (tmp_path / "reports" / "micro_disc.md").read_text()
    for study in ("micro_loss", "micro_disc"):
        page = (tmp_path / "reports" / f"{study}.md").read_text()
        assert "Data source: synthetic" in page and "Image size: 16 px" in page
        assert "- CPU: " in page and "## Against the baselines" in page and "## Differences above seed noise" in page
        metrics = json.loads((tmp_path / "results" / study / "metrics.json").read_text())
        assert metrics["study"] == study and set(metrics["baselines"]) == {"input"}
        assert all(isinstance(c["test_psnr"]["mean"], float) for c in metrics["cells"].values())
        assert (tmp_path / "reports" / f"{study}.png").stat().st_size > 0
    assert "micro_loss" in (tmp_path / "reports" / "README.md").read_text()
    assert _parent_report_artifacts(tmp_path, "micro_loss") == {
        "report/micro_loss.md", "report/micro_loss.png", "report/micro_loss_curves.png",
        "report/eval_table.json"}
    assert _ran(_dvc(tmp_path, "repro")) == set()
    assert "results/micro_disc/metrics.json" in _dvc(tmp_path, "metrics", "show")   # declared by evaluate

    params["studies"]["micro_loss"]["grid"]["adv_loss"] = ["lsgan", "minimax"]
    _write_params(tmp_path, params)
    # micro_disc reads micro_loss's champion: measured again by its evaluate_across stage alone
    assert _ran(_dvc(tmp_path, "repro")) == {"sweep@micro_loss", "evaluate@micro_loss", "evaluate_across@0",
                                             "leaderboard@micro_loss", "report"}
