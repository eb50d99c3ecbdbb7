"""Time-to-quality of seed 000's CycleGAN on this CPU: test metrics against single-thread wall seconds.

    PYTHONPATH=src python benchmarks/convergence.py [--data data/splits] [--budget 120] [--eval-every 10]
        [--configs before_normal before_mask ...] [--jobs 2] [--out reports]

Needs the split data of the pipeline (``dvc repro split``). Each configuration trains on one thread
(``torch.set_num_threads(1)``) as a sweep trial does, ``--jobs`` configurations at a time (2 on a
2-core machine: the sweep's load). Every ``--eval-every`` seconds of training the clock stops and the
whole test split is measured (PSNR, SSIM, masked PSNR), beside the classical baselines on the same
images. Time-to-quality is the training time until a configuration first beats what it must beat:

* mask approach (and the paired reference): every classical baseline (telea, navier_stokes,
  biharmonic) and the input, on whole-image PSNR and SSIM and on masked PSNR;
* normal approach: the input on whole-image PSNR and SSIM, and every classical baseline on masked PSNR.

Writes ``<out>/convergence.md`` (the table, the CPU, the command) and ``<out>/convergence.png`` (the
curves against seconds and against generator updates, baselines as horizontal lines), and
``<out>/convergence.json`` (every point). The configurations are defined in ``CONFIGS`` below as
overrides of the embedded default's ``train`` section of params.yaml.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import multiprocessing as mp
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

METRICS = ("psnr", "ssim", "psnr_masked")
CLASSICAL = ("telea", "navier_stokes", "biharmonic")
REFERENCE = {"framework": "cyclegan", "adv_loss": "wgan_gp", "weights": {"adv": 0.1, "cycle": 1.0, "identity": 0.0}}
# What the embedded default trained with before it was re-planned on these measurements (it ran 300
# steps of these settings per trial); "after_*" are the params.yaml train section as it is now.
BEFORE = {**REFERENCE, "batch_size": 4, "lr_g": 1.0e-3, "lr_d": 2.0e-3, "n_critic": 5,
          "generator": {"base_channels": 16, "n_blocks": 2}, "discriminator": {"base_channels": 16}}
CONFIGS: dict[str, dict] = {
    "before_normal": {**BEFORE},
    "before_mask": {**BEFORE, "generator": {**BEFORE["generator"], "approach": "mask"}},
    "after_normal": {},       # the params.yaml train section as it is now
    "after_mask": {"generator": {"approach": "mask"}},
    "after_paired": {"framework": "paired", "weights": {"adv": 0.1, "l1": 1.0}},
}


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def parse_overrides(items: list[str]) -> dict:
    """``["a.b=yaml", ...]`` -> nested dict."""
    over: dict = {}
    for item in items:
        key, _, value = item.partition("=")
        d = over
        *parents, leaf = key.split(".")
        for p in parents:
            d = d.setdefault(p, {})
        d[leaf] = yaml.safe_load(value)
    return over


def resolve(name: str, params_train: dict, overrides: dict | None = None) -> dict:
    """The TrainConfig dict of configuration ``name`` -- a CONFIGS key, optionally followed by
    ``+key=value`` overrides (``after_mask+batch_size=16``) -- on the default train section."""
    base, *extra = name.split("+")
    if base not in CONFIGS:
        raise SystemExit(f"--configs: unknown configuration {base!r} (choose from {', '.join(CONFIGS)})")
    raw = _merge(params_train, REFERENCE)
    raw = _merge(raw, CONFIGS[base])
    if "weights" in CONFIGS[base]:      # a framework's weights replace the reference's as a whole
        raw["weights"] = copy.deepcopy(CONFIGS[base]["weights"])
    raw = _merge(raw, overrides or {})
    return _merge(raw, parse_overrides(extra))


def goals(cfg: dict) -> dict[str, list[str]]:
    """metric -> the baselines the configuration must beat on it."""
    approach = cfg.get("generator", {}).get("approach", "normal")
    if cfg.get("framework") == "paired" or approach in ("mask", "binary_mask"):
        return {m: ["input", *CLASSICAL] for m in METRICS}
    return {"psnr": ["input"], "ssim": ["input"], "psnr_masked": ["input", *CLASSICAL]}


def baselines(data: Path, image_size: int) -> dict[str, dict[str, float]]:
    from unmask.data.torch_datasets import PairedDataset, batches
    from unmask.metrics import aggregate, build_baseline, compute_metrics

    ds = PairedDataset(data / "test", size=image_size)
    out = {}
    for name in ("input", *CLASSICAL):
        fn = build_baseline(name)
        per = [compute_metrics(fn((b["occluded"] + 1) / 2, b["mask"]), (b["clean"] + 1) / 2, mask=b["mask"])
               for b in batches(ds, 32)]
        out[name] = {m: v for m, v in aggregate(per).items() if m in METRICS}
    return out


def train_curve(args: tuple) -> dict:
    """Train one configuration for ``budget`` seconds of training; test metrics every ``eval_every`` s."""
    name, cfg_dict, data, budget, eval_every, image_size, seed, by_steps = args
    import torch

    from unmask.data.torch_datasets import PairedDataset, UnpairedDataset, batches, infinite_batches
    from unmask.training import TrainConfig, build_trainer, trainer_class
    from unmask.training.config import MAX_STEPS

    torch.set_num_threads(1)
    cfg_dict = {**cfg_dict, "seed": seed, "device": "cpu", "steps": MAX_STEPS, "image_size": image_size}
    cfg = TrainConfig.from_dict(cfg_dict)
    trainer = build_trainer(cfg)
    if trainer_class(cfg).pairing == "paired":
        train = PairedDataset(data / "train", size=image_size)
    else:
        train = UnpairedDataset(data / "train", size=image_size, seed=seed)
    test = PairedDataset(data / "test", size=image_size)
    stream = infinite_batches(train, cfg.batch_size, seed=seed)
    points, trained, next_eval = [], 0.0, 0.0
    g_updates = 0
    while True:
        if (trainer.step if by_steps else trained) >= next_eval:
            m = trainer.evaluate(batches(test, 32))
            points.append({"seconds": trained, "step": trainer.step, "g_updates": g_updates,
                           **{k: m[k] for k in METRICS}})
            next_eval += eval_every
            if (trainer.step if by_steps else trained) >= budget:
                break
        t0 = time.perf_counter()
        logs = trainer.train_step(next(stream))
        trained += time.perf_counter() - t0
        g_updates += "g_total" in logs
    return {"name": name, "config": cfg_dict, "points": points}


def time_to_quality(points: list[dict], need: dict[str, list[str]], base: dict[str, dict[str, float]]) -> dict | None:
    """The first point that beats every baseline ``need`` names on every metric, else None."""
    for p in points:
        if all(p[m] > base[b][m] for m, names in need.items() for b in names):
            return p
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data/splits")
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS))
    ap.add_argument("--set", action="append", default=[], help="override for every config: key=yaml (dotted)")
    ap.add_argument("--budget", type=float, default=120.0, help="training seconds per configuration")
    ap.add_argument("--eval-every", type=float, default=10.0)
    ap.add_argument("--by-steps", action="store_true", help="--budget and --eval-every count steps, not seconds")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "reports")
    ap.add_argument("--tag", default="convergence", help="output file stem")
    args = ap.parse_args()
    from unmask.sysinfo import cpu_description

    if not (args.data / "test").is_dir():
        sys.exit(f"{args.data}: no split data (run `dvc repro split` first)")
    params = yaml.safe_load(args.params.read_text())
    train = dict(params["train"])
    image_size = train.pop("image_size")
    over = parse_overrides(args.set)
    base = baselines(args.data, image_size)
    jobs = [(f"{n} seed={s}" if len(args.seeds) > 1 else n, resolve(n, train, over), args.data, args.budget,
             args.eval_every, image_size, s, args.by_steps) for n in args.configs for s in args.seeds]
    t0 = time.time()
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        runs = pool.map(train_curve, jobs, chunksize=1)
    wall = time.time() - t0
    for run in runs:
        run["goals"] = goals(run["config"])
        hit = time_to_quality(run["points"], run["goals"], base)
        run["time_to_quality"] = hit
    write_report(args, runs, base, image_size, wall, cpu_description())


def _fmt_run(run: dict) -> str:
    last = run["points"][-1]
    hit = run["time_to_quality"]
    ttq = (f"**{hit['seconds']:.0f} s** ({hit['step']} steps, {hit['g_updates']} G updates)" if hit
           else f"not within {last['seconds']:.0f} s")
    cfg = run["config"]
    desc = (f"{cfg['framework']}, {cfg['generator'].get('approach', 'normal')}, batch {cfg['batch_size']}, "
            f"n_critic {cfg.get('n_critic') or 'loss default'}, lr {cfg['lr_g']:g}/{cfg['lr_d']:g}")
    return (f"| {run['name']} | {desc} | {ttq} | {last['seconds']:.0f} s / {last['step']} | "
            f"{last['psnr']:.2f} | {last['ssim']:.3f} | {last['psnr_masked']:.2f} |")


def write_report(args, runs: list[dict], base: dict, image_size: int, wall: float, cpu: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / args.tag
    fig, axes = plt.subplots(2, 3, figsize=(15, 8), constrained_layout=True)
    for col, metric in enumerate(METRICS):
        for row, xkey in enumerate(("seconds", "g_updates")):
            ax = axes[row][col]
            for run in runs:
                ax.plot([p[xkey] for p in run["points"]], [p[metric] for p in run["points"]], marker=".",
                        label=run["name"])
            for i, (name, values) in enumerate(base.items()):
                ax.axhline(values[metric], color=f"C{7 + i % 3}" if i else "k", ls="--" if i else ":", lw=1,
                           label=f"baseline: {name}")
            ax.set_xlabel("single-thread training seconds" if xkey == "seconds" else "generator updates")
            ax.set_ylabel({"psnr": "test PSNR (dB)", "ssim": "test SSIM", "psnr_masked": "test PSNR masked (dB)"}[metric])
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Time to quality at {image_size} px, one thread per configuration ({cpu})", fontsize=9)
    fig.savefig(stem.with_suffix(".png"), dpi=90)
    lines = [
        "# Time to quality: seed 000's CycleGAN on this CPU", "",
        f"- CPU: {cpu}; one torch thread per configuration, {args.jobs} configurations at a time",
        f"- Data: `{args.data.relative_to(ROOT) if args.data.is_relative_to(ROOT) else args.data}` (the pipeline's "
        f"split), {image_size} px; test split measured every {args.eval_every:g} s of training (clock stopped)",
        f"- Seeds: {', '.join(map(str, args.seeds))}; budget {args.budget:g} s of training per configuration; "
        f"whole run {wall:.0f} s wall",
        f"- Command: `python benchmarks/convergence.py {' '.join(sys.argv[1:])}`".rstrip(), "",
        "Time-to-quality: training seconds until the configuration first beats, on test, what it must beat -- "
        "the mask approach and the paired inpainter: the input and every classical baseline on whole-image PSNR, "
        "SSIM and masked PSNR; the normal approach: the input on whole-image PSNR and SSIM, and every classical "
        "baseline on masked PSNR.", "",
        "| configuration | settings | time to quality | trained (s / steps) | PSNR | SSIM | PSNR masked |",
        "|---|---|---|---:|---:|---:|---:|",
        *(_fmt_run(r) for r in runs), "",
        "| baseline | PSNR | SSIM | PSNR masked |", "|---|---:|---:|---:|",
        *(f"| {n} | {v['psnr']:.2f} | {v['ssim']:.3f} | {v['psnr_masked']:.2f} |" for n, v in base.items()), "",
        f"![curves]({stem.with_suffix('.png').name})", ""]
    stem.with_suffix(".md").write_text("\n".join(lines))
    stem.with_suffix(".json").write_text(json.dumps({"cpu": cpu, "baselines": base, "runs": runs}, indent=1,
                                                    default=lambda o: None if isinstance(o, float) and math.isnan(o) else str(o)))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
