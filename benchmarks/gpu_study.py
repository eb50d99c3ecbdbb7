"""A micro study swept through Ray Tune with fractional GPUs per trial, then evaluated from its checkpoints.

    PYTHONPATH=src python benchmarks/gpu_study.py                         # 4 trials x 0.25 GPU, 64 px, 50 steps
    PYTHONPATH=src python benchmarks/gpu_study.py --device cpu --gpu 0 --cpu 1 --trials 2 \\
        --size 16 --steps 4 --base 4 --blocks 1                             # the same path on a CPU

Built like ``tests/studies/micro_study.py``: synthetic split data (``tests/helpers.write_synth``) in a
temporary work dir, params parsed by ``unmask.config.parse_params`` and
``unmask.studies.parse_study_params``, the sweep run in-process by ``unmask.studies.sweep.run_study``
(its local Ray cluster binds 127.0.0.1; the ``unshare -rn`` isolation of ``unmask sweep`` is the CLI's,
not run_study's), then ``unmask.evaluation.evaluate.evaluate_study`` on the study's ``trials.parquet``.
The grid is CycleGAN over ``--trials`` adversarial losses, each trial asking Ray for ``--cpu`` CPUs and
``--gpu`` GPUs (fractions share one GPU).

While the sweep runs a thread polls Ray (GPUs it sees, GPUs and CPUs the trials hold) and
``nvidia-smi`` (device memory used, utilisation); if Ray sees fewer GPUs than a trial asks for, the
sweep is interrupted instead of waiting for resources forever. It passes when every trial finished,
with ``--gpu`` > 0 Ray saw a GPU and the trials held a share of it, and evaluate measured a finite
PSNR for every trial. The last line is ``gpu_study: {json}``; exit status 0 when it passed, else 1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))     # runs without PYTHONPATH too

LOSSES = ["lsgan", "wgan_gp", "hinge", "ralsgan", "rahinge", "minimax"]
ABORT_AFTER_S = 20.0     # Ray up, but without the GPUs a trial asks for, for this long: interrupt


def study_params(args: argparse.Namespace) -> dict:
    return {
        "train": {"image_size": args.size, "steps": args.steps, "batch_size": args.batch,
                  "val_every": max(1, args.steps // 2), "log_every": max(1, min(10, args.steps)),
                  "checkpoint_every": 0, "device": args.device,
                  "generator": {"base_channels": args.base, "n_blocks": args.blocks},
                  "discriminator": {"base_channels": args.base}},
        "sweep": {"storage_path": "ray", "resources": {"cpu": args.cpu, "gpu": args.gpu},
                  "max_concurrent": args.trials, "max_failures": 0, "isolate_network": False},
        "tracking": {"uri": "sqlite:///mlflow.db", "artifact_root": "mlartifacts"},
        "studies": {"gpu_micro": {"title": "GPU micro study", "train": {"framework": "cyclegan"},
                                  "grid": {"adv_loss": LOSSES[:args.trials]}, "seeds": [0]}},
    }


class Monitor(threading.Thread):
    """Polls Ray's resources and nvidia-smi while the sweep runs; interrupts a sweep that cannot get a GPU."""

    def __init__(self, gpu_per_trial: float, cpu_per_trial: float):
        super().__init__(daemon=True)
        self.gpu, self.cpu = gpu_per_trial, cpu_per_trial
        self.stop = threading.Event()
        self.ray_gpus = self.ray_cpus = None
        self.max_gpu_held = self.max_cpu_held = 0.0
        self.max_mem_used_mib = self.max_util = self.max_gpu_procs = None
        self.no_gpu_since: float | None = None
        self.aborted = ""
        self.smi = shutil.which("nvidia-smi")

    def _ray(self) -> None:
        import ray

        if not ray.is_initialized():
            return
        try:
            total, free = ray.cluster_resources(), ray.available_resources()
        except Exception:   # shutting down
            return
        self.ray_gpus, self.ray_cpus = total.get("GPU", 0.0), total.get("CPU", 0.0)
        self.max_gpu_held = max(self.max_gpu_held, self.ray_gpus - free.get("GPU", 0.0))
        self.max_cpu_held = max(self.max_cpu_held, self.ray_cpus - free.get("CPU", 0.0))
        if self.gpu > 0 and self.ray_gpus < self.gpu:
            self.no_gpu_since = self.no_gpu_since or time.monotonic()
            if time.monotonic() - self.no_gpu_since > ABORT_AFTER_S and not self.aborted:
                self.aborted = (f"Ray sees {self.ray_gpus:g} GPUs, a trial asks for {self.gpu:g}: "
                                f"interrupted the sweep after {ABORT_AFTER_S:.0f} s")
                os.kill(os.getpid(), signal.SIGINT)     # Tune stops on SIGINT; run_study then raises

    def _smi(self) -> None:
        if not self.smi:
            return
        q = subprocess.run([self.smi, "--query-gpu=memory.used,utilization.gpu", "--format=csv,noheader,nounits"],
                           capture_output=True, text=True, timeout=10)
        if q.returncode == 0 and q.stdout.strip():
            mem, util = (float(x) for x in q.stdout.splitlines()[0].split(","))
            self.max_mem_used_mib = max(self.max_mem_used_mib or 0.0, mem)
            self.max_util = max(self.max_util or 0.0, util)
        p = subprocess.run([self.smi, "--query-compute-apps=pid", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=10)
        if p.returncode == 0:   # often empty inside containers (another PID namespace)
            self.max_gpu_procs = max(self.max_gpu_procs or 0, len([ln for ln in p.stdout.splitlines() if ln.strip()]))

    def run(self) -> None:
        while not self.stop.wait(1.0):
            for poll in (self._ray, self._smi):
                try:
                    poll()
                except Exception:
                    pass

    def report(self) -> dict:
        def concurrent(held: float, per: float) -> float | None:
            return round(held / per, 2) if per > 0 else None

        return {"ray_gpus": self.ray_gpus, "ray_cpus": self.ray_cpus, "max_gpu_held": self.max_gpu_held,
                "max_cpu_held": self.max_cpu_held,
                "max_concurrent_trials": concurrent(self.max_gpu_held, self.gpu) if self.gpu > 0
                else concurrent(self.max_cpu_held, self.cpu),
                "smi_max_mem_used_mib": self.max_mem_used_mib, "smi_max_util_pct": self.max_util,
                "smi_max_gpu_procs": self.max_gpu_procs, "aborted": self.aborted}


def run(args: argparse.Namespace, work: Path) -> dict:
    import importlib.util

    import pandas as pd

    spec = importlib.util.spec_from_file_location("unmask_test_helpers", ROOT / "tests" / "helpers.py")
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)      # tests/helpers.py by path: tests/ holds packages named data, io, ...

    from unmask.config import SplitConfig, parse_params
    from unmask.data.split import split_dataset
    from unmask.evaluation.evaluate import evaluate_study
    from unmask.studies import parse_study_params
    from unmask.studies.sweep import run_study

    out: dict = {"work": str(work), "trials": args.trials, "gpu_per_trial": args.gpu, "cpu_per_trial": args.cpu,
                 "device": args.device, "size": args.size, "steps": args.steps}
    t0 = time.perf_counter()
    helpers.write_synth(work / "synth", n_identities=args.identities, per_identity=2, size=args.size)
    split_dataset(work / "synth", work / "splits", SplitConfig(val=0.1, test=0.15), seed=0, progress=False)
    params = parse_study_params(parse_params(study_params(args)))
    out["data_s"] = time.perf_counter() - t0

    monitor = Monitor(args.gpu, args.cpu)
    monitor.start()
    t1 = time.perf_counter()
    try:
        study_dir = run_study("gpu_micro", params, work / "splits", work / "results", progress=args.progress,
                              root=work, data_source="synthetic")
    except BaseException as e:   # noqa: BLE001 -- reported, then the check fails
        monitor.stop.set()
        out.update(monitor.report(), sweep_s=time.perf_counter() - t1,
                   error=f"run_study: {type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}")
        return out
    finally:
        monitor.stop.set()
    out.update(monitor.report(), sweep_s=time.perf_counter() - t1)
    trials = pd.read_parquet(study_dir / "trials.parquet")
    out["finished"] = int((trials["status"] == "TERMINATED").sum())
    out["statuses"] = trials["status"].tolist()
    out["errors"] = [e for e in trials["error"].tolist() if e]
    out["train_time_s"] = [round(float(x), 2) for x in trials["train_time_s"]]
    out["sweep_test_psnr"] = [float(x) for x in trials["test_psnr"]]

    t2 = time.perf_counter()
    ev = evaluate_study(trials, work / "splits" / "test", None, ["input"], None, work / "eval", n_samples=4,
                        device=args.device, progress=False, root=work)   # checkpoints: relative to the root
    out["evaluate_s"] = time.perf_counter() - t2
    rows = ev[ev["role"] == "trial"]
    psnr = [float(x) for x in rows["test_psnr"]]
    out["eval_psnr"] = dict(zip(rows["cell_label"], psnr))
    out["eval_psnr_input_baseline"] = float(ev.loc[ev["role"] == "baseline", "test_psnr"].iloc[0])
    best = rows.loc[rows["test_psnr"].idxmax()] if rows["test_psnr"].notna().any() else None
    out["best_trial"] = None if best is None else {"cell": best["cell_label"], "test_psnr": float(best["test_psnr"]),
                                                   "test_ssim": float(best["test_ssim"])}
    out["eval_finite"] = bool(psnr) and all(math.isfinite(p) for p in psnr)
    return out


def verdict(out: dict, args: argparse.Namespace) -> list[str]:
    """What failed (empty when the check passed)."""
    problems = []
    if out.get("error"):
        problems.append(out["aborted"] or out["error"])
        return problems
    if out.get("finished") != args.trials:
        problems.append(f"{out.get('finished')} of {args.trials} trials finished ({out.get('errors')})")
    if args.gpu > 0:
        if not out.get("ray_gpus"):
            problems.append("Ray saw no GPU")
        elif out.get("max_gpu_held", 0) < args.gpu - 1e-9:
            problems.append(f"trials never held a GPU share (max GPU held {out.get('max_gpu_held')})")
    if not out.get("eval_finite"):
        problems.append(f"evaluate: PSNR not finite for every trial ({out.get('eval_psnr')})")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="the trials' train.device and evaluate's device")
    ap.add_argument("--gpu", type=float, default=0.25, help="GPUs per trial (sweep.resources.gpu)")
    ap.add_argument("--cpu", type=float, default=2, help="CPUs per trial (sweep.resources.cpu)")
    ap.add_argument("--trials", type=int, default=4, choices=range(1, len(LOSSES) + 1),
                    help=f"trials, one per adversarial loss ({', '.join(LOSSES)})")
    ap.add_argument("--size", type=int, default=64, help="image side (px)")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--base", type=int, default=64, help="generator and critic base channels")
    ap.add_argument("--blocks", type=int, default=6, help="generator middle blocks")
    ap.add_argument("--identities", type=int, default=32, help="synthetic identities (2 images each)")
    ap.add_argument("--work", type=Path, help="work dir (default: a temporary one, removed after)")
    ap.add_argument("--progress", action="store_true", help="Tune's progress table")
    args = ap.parse_args(argv)
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print("gpu_study: torch.cuda.is_available() is False; use --device cpu --gpu 0", file=sys.stderr)
            return 2
    t0 = time.perf_counter()
    work = args.work or Path(tempfile.mkdtemp(prefix="unmask-gpu-study-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        out = run(args, work.resolve())
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    out["wall_s"] = time.perf_counter() - t0
    problems = verdict(out, args)
    out["ok"], out["problems"] = not problems, problems
    print("gpu_study: " + json.dumps(out, default=str), flush=True)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
