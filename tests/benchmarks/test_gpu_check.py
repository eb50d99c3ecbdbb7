"""benchmarks/gpu_check.sh and the two modules it runs, on a machine without CUDA (CI).

The CUDA path itself (paper-scale step timings, the fractional-GPU sweep) can only run on a GPU
machine: ``bash benchmarks/gpu_check.sh`` there. Here: the script's no-CUDA exit, ``gpu_step.py`` at a
tiny size on the CPU, the micro study's params and verdict, and (slow) the micro study on the CPU.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"

requires_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present: "
                                      "the check would run for minutes (run it by hand)")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPU_CHECK_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    return {**env, **extra}


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _json_line(stdout: str, prefix: str) -> dict:
    line = next(ln for ln in reversed(stdout.splitlines()) if ln.startswith(prefix + ": {"))
    return json.loads(line.split(": ", 1)[1])


@requires_no_cuda
def test_gpu_check_without_cuda_says_so_and_passes():
    env = _env()
    if not (ROOT / ".venv" / ".unmask-installed").is_file():   # not set up by scripts/setup.sh: this python
        env["GPU_CHECK_PYTHON"] = sys.executable
    proc = subprocess.run(["bash", str(BENCH / "gpu_check.sh")], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == ("gpu_check: no CUDA device (torch.cuda.is_available() is False); "
                                   "nothing to check")


def test_gpu_step_on_cpu_prints_images_per_second():
    cmd = [sys.executable, str(BENCH / "gpu_step.py"), "--device", "cpu", "--size", "32", "--base", "8",
           "--blocks", "1", "--steps", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "images/s" in proc.stdout
    out = _json_line(proc.stdout, "gpu_step")
    assert out["ok"] and set(out["runs"]) == {"amp_off", "amp_on"}
    for run in out["runs"].values():
        assert run["images_per_s"] > 0 and run["finite"] and run["peak_mem_mib"] is None
        assert run["amp"] is False              # AMP acts on cuda only
    assert out["amp_speedup"] is None


@requires_no_cuda
def test_gpu_step_refuses_cuda_without_a_device():
    proc = subprocess.run([sys.executable, str(BENCH / "gpu_step.py")], capture_output=True, text=True,
                          env=_env(), timeout=120)
    assert proc.returncode == 2 and "torch.cuda.is_available() is False" in proc.stderr


def test_gpu_study_params_parse_with_fractional_gpus():
    from unmask.config import parse_params
    from unmask.studies import parse_study_params
    from unmask.studies.grid import expand_study

    study = _load("gpu_study")
    args = SimpleNamespace(size=64, steps=50, batch=4, device="cuda", base=64, blocks=6, cpu=2, gpu=0.25, trials=4)
    params = parse_study_params(parse_params(study.study_params(args)))
    assert params.sweep.resources.gpu == 0.25 and params.sweep.resources.cpu == 2
    assert params.sweep.max_concurrent == 4
    trials = expand_study(params, "gpu_micro")
    assert len(trials) == 4
    assert all(t["train"]["device"] == "cuda" and t["image_size"] == 64 for t in trials)
    assert trials[0]["train"]["generator"]["base_channels"] == 64


def test_gpu_study_verdict():
    study = _load("gpu_study")
    args = SimpleNamespace(trials=4, gpu=0.25)
    good = {"finished": 4, "ray_gpus": 1.0, "max_gpu_held": 1.0, "eval_finite": True, "error": None}
    assert study.verdict(good, args) == []
    assert study.verdict({**good, "ray_gpus": 0.0}, args) == ["Ray saw no GPU"]
    assert "trials never held" in study.verdict({**good, "max_gpu_held": 0.0}, args)[0]
    assert "3 of 4 trials" in study.verdict({**good, "finished": 3, "errors": ["x"]}, args)[0]
    assert "not finite" in study.verdict({**good, "eval_finite": False}, args)[0]
    aborted = {"error": "run_study: KeyboardInterrupt", "aborted": "Ray sees 0 GPUs"}
    assert study.verdict(aborted, args) == ["Ray sees 0 GPUs"]
    assert study.verdict({**good, "ray_gpus": 0.0, "max_gpu_held": 0.0}, SimpleNamespace(trials=4, gpu=0)) == []


@pytest.mark.slow
def test_gpu_study_on_cpu(tmp_path):
    """The micro study through Ray Tune and MLflow on the CPU (about a minute), in a loopback-only netns."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs unshare and ip for a loopback-only network namespace")
    if subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -rn not permitted here")
    args = ["--device", "cpu", "--gpu", "0", "--cpu", "1", "--trials", "2", "--size", "16", "--steps", "4",
            "--base", "4", "--blocks", "1", "--identities", "12", "--work", str(tmp_path)]
    cmd = f"ip link set lo up && exec {sys.executable} {BENCH / 'gpu_study.py'} " + " ".join(args)
    proc = subprocess.run(["unshare", "-rn", "sh", "-c", cmd], capture_output=True, text=True, env=_env(),
                          timeout=400)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    out = _json_line(proc.stdout, "gpu_study")
    assert out["ok"], out["problems"]
    assert out["finished"] == 2 and out["statuses"] == ["TERMINATED", "TERMINATED"]
    assert out["eval_finite"] and out["best_trial"]["test_psnr"] > 0
    assert (tmp_path / "eval" / "eval.parquet").is_file()
