"""Throughput of metric computation (images/s) at 64 and 256 px, batch 16, with and without the
masked variants (and LPIPS when its weights are present).

    PYTHONPATH=src python benchmarks/metrics_speed.py [--device cpu|cuda] [--threads 1] [--weights-dir DIR]
"""

from __future__ import annotations

import argparse
import time

import torch

from unmask.metrics import MetricSuite


def images_per_second(size: int, batch: int, masked: bool, suite: MetricSuite, device: torch.device,
                      repeats: int) -> float:
    gen = torch.Generator().manual_seed(0)
    pred = torch.rand(batch, 3, size, size, generator=gen).to(device)
    target = torch.rand(batch, 3, size, size, generator=gen).to(device)
    mask = (torch.rand(batch, 1, size, size, generator=gen) > 0.5).float().to(device) if masked else None
    suite(pred, target, mask)   # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        suite(pred, target, mask)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return repeats * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--weights-dir", default=None, help="folder holding alexnet-owt-7be5be79.pth")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    suite = MetricSuite(args.weights_dir)
    print(f"device {device}, threads {torch.get_num_threads()}, batch {args.batch}, "
          f"lpips: {suite.note('lpips') or 'on'}")
    print(f"{'size':>5} {'plain img/s':>12} {'+masked img/s':>14}")
    for size in args.sizes:
        plain = images_per_second(size, args.batch, False, suite, device, args.repeats)
        masked = images_per_second(size, args.batch, True, suite, device, args.repeats)
        print(f"{size:>5} {plain:>12.1f} {masked:>14.1f}")


if __name__ == "__main__":
    main()
