"""Steps to quality of seed 003's mask-guided portrait editor on this CPU, to plan its study's budget.

    PYTHONPATH=src python benchmarks/portrait_convergence.py [--data data/splits] [--steps 480]
        [--eval-every 120] [--configs base lr1e-3 ...] [--jobs 2] [--out benchmarks/out]

Needs the split data of the pipeline (``dvc repro split``). Each configuration (an override of the
``seed003_variants`` study's ``train`` in params.yaml) trains on one thread, ``--jobs`` at a time (the
sweep's load on 2 cores). Every ``--eval-every`` steps the clock stops and the test faces are measured
(self-reconstruction PSNR, the transfer errors of one-component swaps), beside the ``copy_target``
and ``region_mean`` baselines on the same faces. The study's goal: reconstruction above
``region_mean`` and every transfer error below ``copy_target`` (a swap that moved colour).

Writes ``<out>/portrait_convergence.md`` (the table, the CPU, the command) and ``.json`` (every point).
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SHOWN = ("recon_psnr", "transfer_skin", "transfer_hair", "transfer_eyes", "transfer_mouth", "leak")
CONFIGS: dict[str, dict] = {   # overrides of studies.seed003_variants.train (measured: see params.yaml)
    "base": {},                                   # params.yaml as it is: global 10, Adam 1e-3
    "thesis_weights": {"lr_g": 5.0e-4, "lr_d": 5.0e-4,   # the thesis's Eq. 3.9 weights, Adam 5e-4
                       "weights": {"local": 10.0, "global": 1.0, "adv": 1.0, "fm": 10.0, "parsing": 1.0, "kl": 0.0}},
    "lr5e-4": {"lr_g": 5.0e-4, "lr_d": 5.0e-4},
    "code_schedule": {"schedule": "code"},
}


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _train_config(over: dict) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    study = params["studies"]["seed003_variants"]["train"]
    return _merge({**study, "device": "cpu", "threads": 1, "seed": 0, "val_every": 0, "checkpoint_every": 0}, over)


def _measure(model, test) -> dict[str, float]:
    from unmask.data.torch_datasets import batches
    from unmask.metrics import aggregate
    from unmask.metrics.portrait import portrait_metrics

    return aggregate([portrait_metrics(model, b["clean"], b["parsing"]) for b in batches(test, 16)])


def _run(name: str, data: str, steps: int, every: int) -> dict:
    import itertools

    import torch

    from unmask.data.torch_datasets import PairedDataset, infinite_batches, test_set
    from unmask.training import TrainConfig, build_trainer

    torch.set_num_threads(1)
    raw = _train_config(CONFIGS[name])
    raw["steps"] = steps
    cfg = TrainConfig.from_dict(raw)
    train = PairedDataset(Path(data) / "train", kinds=["surgical", "cloth", "n95", "kn95"], size=cfg.image_size,
                          fields=("clean", "parsing"))
    test = test_set(Path(data) / "test", ["surgical", "cloth", "n95", "kn95"], cfg.image_size, ("clean", "parsing"))
    trainer = build_trainer(cfg)
    stream = infinite_batches(train, cfg.batch_size, seed=0)
    points, seconds = [], 0.0
    while trainer.step < steps:
        start = time.perf_counter()
        for batch in itertools.islice(stream, every):
            trainer.train_step(batch)
        seconds += time.perf_counter() - start
        points.append({"step": trainer.step, "seconds": round(seconds, 1), **_measure(trainer, test)})
        print(name, points[-1], flush=True)
    return {"config": name, "points": points}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/splits")
    ap.add_argument("--steps", type=int, default=480)
    ap.add_argument("--eval-every", type=int, default=120)
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/out")
    args = ap.parse_args(argv)

    from unmask.data.torch_datasets import test_set
    from unmask.metrics.portrait_baselines import CopyTarget, RegionMean
    from unmask.sysinfo import cpu_description

    test = test_set(Path(args.data) / "test", ["surgical", "cloth", "n95", "kn95"], 64, ("clean", "parsing"))
    floors = {"copy_target": _measure(CopyTarget(), test), "region_mean": _measure(RegionMean(), test)}
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        runs = pool.starmap(_run, [(c, args.data, args.steps, args.eval_every) for c in args.configs])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Seed 003 steps to quality ({cpu_description()}, one thread per run, {args.jobs} at a time)", "",
             f"`{' '.join(['python', 'benchmarks/portrait_convergence.py', *(argv or sys.argv[1:])])}`; "
             f"test faces: {len(test)}, 64 px. Goal: recon PSNR above region_mean, every transfer error "
             "below copy_target.", "",
             "| run | step | train s | " + " | ".join(SHOWN) + " |", "|---|---|---|" + "---|" * len(SHOWN)]
    for name, m in floors.items():
        lines.append(f"| {name} | – | – | " + " | ".join(f"{m.get(k, float('nan')):.4f}" for k in SHOWN) + " |")
    for run in runs:
        for p in run["points"]:
            lines.append(f"| {run['config']} | {p['step']} | {p['seconds']} | "
                         + " | ".join(f"{p.get(k, float('nan')):.4f}" for k in SHOWN) + " |")
    (out / "portrait_convergence.md").write_text("\n".join(lines) + "\n")
    (out / "portrait_convergence.json").write_text(json.dumps({"floors": floors, "runs": runs}, indent=1))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
