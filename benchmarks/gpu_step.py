"""Paper-scale CycleGAN training step on one GPU: images/s and peak memory, AMP off against on.

    PYTHONPATH=src python benchmarks/gpu_step.py                    # 256 px, base 64, 6 blocks, cuda
    PYTHONPATH=src python benchmarks/gpu_step.py --device cpu --size 32 --base 8 --blocks 1 --steps 2

The trainer is the pipeline's own (``unmask.training.build_trainer``): CycleGAN, WGAN-GP (one generator
update every 5th step, as in training; keep ``--steps`` and ``--warmup`` multiples of 5 so each timed
run holds the same mix), batch ``--batch`` of each domain, generator ``--base`` channels and ``--blocks``
middle blocks, critic ``--base`` channels. For AMP off and on (``TrainConfig.amp``; AMP only acts on
cuda) it warms up, then times ``--steps`` steps between ``torch.cuda.synchronize()`` calls. images/s
counts the occluded-domain batch (``batch * steps / seconds``). Peak memory is
``torch.cuda.max_memory_allocated`` over the warm-up and timed steps ("n/a" on cpu). The last line is
``gpu_step: {json}`` for ``benchmarks/gpu_check.sh``; the exit status is 1 when a loss was not finite.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))   # runs without PYTHONPATH too

import torch  # noqa: E402

try:
    import pytorch_msssim  # noqa: F401,E402 -- unmask.metrics needs it; train steps do not
    MSSSIM_NOTE = ""
except ModuleNotFoundError:     # a bare CUDA image (no .venv, no PyPI): stub it, the step still runs
    import types

    def _no_ssim(*args, **kwargs):
        raise RuntimeError("pytorch_msssim is not installed (stubbed by benchmarks/gpu_step.py)")

    sys.modules["pytorch_msssim"] = stub = types.ModuleType("pytorch_msssim")
    stub.ssim = _no_ssim
    MSSSIM_NOTE = " (pytorch_msssim missing: stubbed, unused by train steps)"


from unmask.training import TrainConfig, build_trainer  # noqa: E402


def make_config(args: argparse.Namespace, amp: bool) -> TrainConfig:
    return TrainConfig.from_dict(dict(
        framework="cyclegan", adv_loss=args.adv_loss, batch_size=args.batch, device=args.device, amp=amp,
        weights={"identity": 0.0}, seed=0, image_size=args.size,
        generator={"base_channels": args.base, "n_blocks": args.blocks}, discriminator={"base_channels": args.base}))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(args: argparse.Namespace, amp: bool) -> dict:
    """Warm-up, then ``args.steps`` timed steps of one fresh trainer."""
    trainer = build_trainer(make_config(args, amp))
    device = trainer.device
    g = torch.Generator().manual_seed(0)
    # on the host, as the data loader hands batches over; the trainer copies them to the device
    batch = {k: torch.rand(args.batch, 3, args.size, args.size, generator=g) * 2 - 1 for k in ("occluded", "clean")}
    if device.type == "cuda":
        batch = {k: v.pin_memory() for k, v in batch.items()}
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(args.warmup):
        trainer.train_step(batch)
    sync(device)
    t0 = time.perf_counter()
    logs: dict[str, float] = {}
    finite = True
    for _ in range(args.steps):
        logs = trainer.train_step(batch)      # returns floats: one host sync per step, as in training
        finite = finite and all(math.isfinite(v) for v in logs.values())
    sync(device)
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    out = {"amp": trainer.amp, "steps": args.steps, "seconds": seconds,
           "images_per_s": args.batch * args.steps / seconds, "ms_per_step": 1e3 * seconds / args.steps,
           "peak_mem_mib": peak, "finite": finite, "last_losses": logs,
           "scale": float(trainer.scaler.get_scale()) if trainer.amp else None}
    del trainer, batch
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    ap.add_argument("--size", type=int, default=256, help="image side (px)")
    ap.add_argument("--base", type=int, default=64, help="generator and critic base channels")
    ap.add_argument("--blocks", type=int, default=6, help="generator middle blocks")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--adv-loss", default="wgan_gp")
    ap.add_argument("--steps", type=int, default=30, help="timed steps per AMP setting")
    ap.add_argument("--warmup", type=int, help="untimed steps first (cudnn autotuning); default 10 on cuda, 1 on cpu")
    ap.add_argument("--amp", choices=["both", "on", "off"], default="both")
    args = ap.parse_args(argv)
    if args.warmup is None:
        args.warmup = 10 if args.device.startswith("cuda") else 1
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_step: torch.cuda.is_available() is False; use --device cpu", file=sys.stderr)
        return 2

    name = device_name(args.device)
    print(f"gpu_step: torch {torch.__version__} on {args.device} ({name}); CycleGAN {args.adv_loss}, "
          f"{args.size} px, batch {args.batch}, generator base {args.base} x {args.blocks} blocks, "
          f"{args.warmup} warm-up + {args.steps} timed steps{MSSSIM_NOTE}", flush=True)
    settings = {"both": [False, True], "off": [False], "on": [True]}[args.amp]
    runs = {}
    for amp in settings:
        r = measure(args, amp)
        key = "amp_on" if amp else "amp_off"
        runs[key] = r
        peak = f"{r['peak_mem_mib']:.0f} MiB" if r["peak_mem_mib"] is not None else "n/a"
        print(f"  AMP {'on ' if amp else 'off'}{'' if r['amp'] == amp else ' (no effect on ' + args.device + ')'}: "
              f"{r['images_per_s']:.2f} images/s, {r['ms_per_step']:.1f} ms/step, peak memory {peak}, "
              f"losses {'finite' if r['finite'] else 'NOT FINITE'}", flush=True)
    speedup = (runs["amp_on"]["images_per_s"] / runs["amp_off"]["images_per_s"]
               if {"amp_on", "amp_off"} <= set(runs) and runs["amp_on"]["amp"] else None)
    if {"amp_on", "amp_off"} <= set(runs):
        print(f"  AMP speed-up: {speedup:.2f}x" if speedup else "  AMP speed-up: n/a (AMP acts on cuda only)")
    ok = all(r["finite"] for r in runs.values())
    summary = {"device": args.device, "device_name": name, "torch": torch.__version__, "size": args.size,
               "base": args.base, "blocks": args.blocks, "batch": args.batch, "adv_loss": args.adv_loss,
               "runs": runs, "amp_speedup": speedup, "ok": ok}
    print("gpu_step: " + json.dumps(summary), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
