"""Seconds per CycleGAN iteration (batch 4): our trainer against a straightforward reference loop.

    PYTHONPATH=src python benchmarks/train_step.py [--sizes 32 64 128] [--threads 2] [--lambda-rec 0]

Both sides train the same networks (StarGAN generator and critic from ``unmask.models``) with the
same losses (LSGAN adversarial, L1 cycle x10, identity x``lambda_rec``; default 0 = the paper's loss)
and TTUR Adam. Widths: paper (base 64, 6 blocks; critic base 64) and small (base 16, 3 blocks;
critic base 16). Rows:

* ``ours``: ``CycleGANTrainer.train_step`` -- one generator pass per input, one critic pass per
  image batch shared by the G and D updates, fused Adam, ``zero_grad(set_to_none=True)``,
  ``--threads`` intra-op threads, contiguous tensors (the CPU default; see ``ours+cl``).
* ``ours+cl``: the same in channels_last memory format.
* ``reference``: the classic StarGAN-code loop -- a D update that runs the generators and both
  critics (fakes detached), then a G update that runs the generators again and the critics on the
  fakes again; identity inputs in separate calls; torch's default thread count and Adam; contiguous.

The speed-up is reference / ours. Each cell warms every row up once, then times up to ``--iters`` rounds -- one iteration of each row
per round, so other processes' load hits the rows alike -- stopping early once the cell's
``--budget`` seconds are spent, and reports the medians.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from unmask.losses import build_adv_loss
from unmask.models import DiscriminatorConfig, GeneratorConfig, build_discriminator, build_generator
from unmask.training import TrainConfig, build_trainer, seed_everything

WIDTHS = {"paper": (64, 6), "small": (16, 3)}


def make_config(size: int, width: str, lambda_rec: float, threads: int | None, channels_last: bool) -> TrainConfig:
    base, blocks = WIDTHS[width]
    return TrainConfig(lambda_rec=lambda_rec, threads=threads, channels_last=channels_last, device="cpu",
                       generator=GeneratorConfig(base_channels=base, n_blocks=blocks),
                       discriminator=DiscriminatorConfig(image_size=size, base_channels=base))


class ReferenceCycleGAN:
    """The classic two-phase loop over the same networks (what the speed-up is measured against)."""

    def __init__(self, cfg: TrainConfig):
        seed_everything(cfg.seed)
        self.cfg = cfg
        self.g_ab, self.g_ba = build_generator(cfg.generator), build_generator(cfg.generator)
        self.d_a, self.d_b = build_discriminator(cfg.discriminator), build_discriminator(cfg.discriminator)
        self.opt_g = torch.optim.Adam([*self.g_ab.parameters(), *self.g_ba.parameters()], cfg.lr_g, cfg.betas)
        self.opt_d = torch.optim.Adam([*self.d_a.parameters(), *self.d_b.parameters()], cfg.lr_d, cfg.betas)
        self.adv = build_adv_loss(cfg.adv_loss)

    def train_step(self, batch: dict[str, torch.Tensor]) -> None:
        cfg, adv = self.cfg, self.adv
        a, b = batch["occluded"], batch["clean"]
        # D update
        fake_b, fake_a = self.g_ab(a), self.g_ba(b)
        d_loss = (adv.d_loss(self.d_b(b)[0], self.d_b(fake_b.detach())[0])
                  + adv.d_loss(self.d_a(a)[0], self.d_a(fake_a.detach())[0]))
        self.opt_d.zero_grad()
        d_loss.backward()
        self.opt_d.step()
        # G update
        fake_b, fake_a = self.g_ab(a), self.g_ba(b)
        g_loss = cfg.lambda_adv * (adv.g_loss(self.d_b(b)[0], self.d_b(fake_b)[0])
                                   + adv.g_loss(self.d_a(a)[0], self.d_a(fake_a)[0]))
        g_loss = g_loss + cfg.lambda_cycle * (F.l1_loss(self.g_ba(fake_b), a) + F.l1_loss(self.g_ab(fake_a), b))
        if cfg.lambda_rec:
            g_loss = g_loss + cfg.lambda_rec * (F.l1_loss(self.g_ab(b), b) + F.l1_loss(self.g_ba(a), a))
        self.opt_g.zero_grad()
        g_loss.backward()
        self.opt_g.step()


def time_round_robin(runners: dict[str, tuple[object, int]], batch: dict[str, torch.Tensor], iters: int,
                     budget: float) -> dict[str, list[float]]:
    """Seconds per iteration of each runner ``name -> (trainer, threads)``, timed in turns (one
    iteration of each per round) so load from other processes hits all alike; one warm-up each."""
    for trainer, threads in runners.values():
        torch.set_num_threads(threads)
        trainer.train_step(batch)
    times: dict[str, list[float]] = {name: [] for name in runners}
    start = time.perf_counter()
    for _ in range(iters):
        for name, (trainer, threads) in runners.items():
            torch.set_num_threads(threads)
            t0 = time.perf_counter()
            trainer.train_step(batch)
            times[name].append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget:
            break
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--widths", nargs="+", default=["small", "paper"], choices=sorted(WIDTHS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lambda-rec", type=float, default=0.0, help="identity weight (0 = the paper's loss)")
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--budget", type=float, default=20.0, help="seconds of timed rounds per cell")
    args = ap.parse_args()
    default_threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {default_threads} default threads; ours uses {args.threads}; "
          f"batch 4, LSGAN, cycle x10, identity x{args.lambda_rec:g}")
    print(f"{'width':6s} {'size':>4s} {'ours s/it':>10s} {'ours+cl':>10s} {'reference':>10s} {'speed-up':>9s}  (rounds)")
    for width in args.widths:
        for size in args.sizes:
            g = torch.Generator().manual_seed(0)
            batch = {k: torch.rand(4, 3, size, size, generator=g) * 2 - 1 for k in ("occluded", "clean")}
            runners = {
                "ours": (build_trainer(make_config(size, width, args.lambda_rec, args.threads, False)), args.threads),
                "ours+cl": (build_trainer(make_config(size, width, args.lambda_rec, args.threads, True)), args.threads),
                "reference": (ReferenceCycleGAN(make_config(size, width, args.lambda_rec, None, False)),
                              default_threads),
            }
            times = time_round_robin(runners, batch, args.iters, args.budget)
            ours, ours_cl, reference = (statistics.median(times[k]) for k in runners)
            print(f"{width:6s} {size:4d} {ours:10.3f} {ours_cl:10.3f} {reference:10.3f} "
                  f"{reference / ours:8.2f}x  ({len(times['ours'])})", flush=True)


if __name__ == "__main__":
    main()
