"""Speed of one CycleGAN training step on the CPU: ms/step, GFLOP/s, the share of a conv peak measured in
the same run, the reference-loop ratio and (``--breakdown``) which conv layers hold it back.

    PYTHONPATH=src python benchmarks/train_step.py [--scale default paper] [--batches 4 8 16] [--threads N]
        [--n-critic 1] [--iters 30] [--budget 20] [--ref-threads N]
        [--breakdown [default] [paper] [--breakdown-steps 3 --breakdown-top 8]]
        [--peak-channels 256 --peak-size 32 --peak-batch 8 --peak-reps 5]
    PYTHONPATH=src python benchmarks/train_step.py --scale legacy [--sizes 32 64 128] [--widths small paper]
        [--threads 2] [--lambda-rec 0] [--iters 3]      # the earlier ours / ours+cl / reference table

Scales (the networks of ``unmask.models``, the loss of params.yaml: WGAN-GP, lambda_adv 0.1, cycle L1
x1, no identity term, lambda_gp 10, float32, contiguous tensors, trainer ``n_critic`` = ``--n-critic``):

* ``default``: params.yaml's embedded default -- 32 px, generator base 16 with 2 blocks, critic base
  16, one thread, batches 4, 8 and 16.
* ``paper``: base 64, 6 blocks (critic base 64), 64 px, two threads, batch 4.

``--threads`` and ``--batches`` override a scale's thread count and batch sizes.

What each figure means:

* ``CPU`` / ``torch``: :func:`unmask.sysinfo.cpu_description` (model, vector extensions, torch and its
  kernel level) -- the figures only compare on the same machine.
* ``conv peak``: a large 3x3 convolution (``--peak-channels`` in and out, ``--peak-size`` px square, batch
  ``--peak-batch``, float32, padding 1), ``F.conv2d`` forward + backward for the input and weight
  gradients, at 1 thread and at each thread count of the table. FLOPs = 3 x 2*Cin*Cout*9*H*W*B (the
  forward GEMM and the two backward ones; a multiply-add is 2 FLOPs); GFLOP/s = that / the median of
  ``--peak-reps`` timed repetitions (after one warm-up). The forward-only rate is shown alongside.
  This is what the machine's convolution kernels reach on a well-shaped problem, measured under the
  same load from other processes as the table, not the CPU's theoretical peak.
* ``ms/step``: the median seconds of ``CycleGANTrainer.train_step`` (one warm-up, then up to
  ``--iters`` timed rounds, stopping early once ``--budget`` seconds are spent). With ``--n-critic`` k
  > 1 a timed unit is k consecutive steps (k-1 D-only and one D+G step) and ms/step is its time / k.
* ``img/s``: batch / (s per step): images of each domain per second.
* ``InstanceNorm2d``: the same trainer with the generators' norm built as ``torch.nn.InstanceNorm2d``
  (before ``unmask.models.blocks.InstanceNorm``, a one-group-per-channel GroupNorm with the same maths),
  timed in the same rounds: its ms/step, GFLOP/s, % of peak, and how much slower it is.
* ``GFLOP/step``: the FLOPs of one step (mean over a k-step unit) counted by
  ``torch.utils.flop_counter.FlopCounterMode``: convolutions (transposed too) and matrix products,
  forward and backward; element-wise work (norms, activations, losses, Adam) is not counted.
  FlopCounterMode fails on WGAN-GP's gradient penalty (its double backward, create_graph=True). Then
  the step is counted again on fresh networks of the same config with the penalty left out, the
  figures carry a ``*`` and a note says so: GFLOP/step, GFLOP/s and % of peak are lower bounds.
  (``--breakdown`` counts the penalty's double-backward convolutions from the profiler's shapes.)
* ``GFLOP/s``: GFLOP/step / (s per step); ``% peak``: that / the conv peak at the row's thread count.
* ``ref x``: batch-4 rows only, with n_critic 1: seconds per iteration of the reference loop /
  ours, timed in turns with ours (one iteration each per round, so load from other processes hits
  both alike). The reference is the classic StarGAN-code loop over the same networks: a D update
  that runs the generators and both critics (fakes detached, plus the gradient penalty), then a G
  update that runs the generators and the critics on the fakes again; torch's default thread count
  (``--ref-threads``), default Adam.

``--breakdown [SCALE ...]`` (no value: ``default``; a scale need not be in ``--scale``): at the scale's
first batch size and thread count, ``--breakdown-steps`` steps under ``torch.profiler``
(``record_shapes=True``, after one warm-up). The conv ops are grouped by layer shape (``conv
Cin->Cout kxk/stride @HxW`` of the layer's input; ``convT`` = transposed): forward = ``aten::convolution``
(it wraps ``aten::mkldnn_convolution``; transposed convs run inside it without an op of their own),
backward = ``aten::convolution_backward``, ``dbl-bwd`` = ``aten::_convolution_double_backward`` (the
gradient penalty's second backward; its FLOPs are those of the convolutions it runs). Only the
outermost conv op of a nesting is counted. Per shape: ms per step, share of the profiled step's wall
time, GFLOP per step (from the shapes, as FlopCounterMode counts), GFLOP/s overall and per phase. The
profiler adds overhead, so its step is slower than the timed one; shares are of the profiled step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass

os.environ.setdefault("KINETO_LOG_LEVEL", "5")   # the profiler's start/stop and "no GPU" lines on stderr

import torch
import torch.nn.functional as F

from unmask.losses import build_adv_loss, gradient_penalty
from unmask.models import build_discriminator, build_generator
from unmask.sysinfo import cpu_description
from unmask.training import CycleGANTrainer, TrainConfig, build_trainer, seed_everything

WIDTHS = {"paper": (64, 6), "small": (16, 3)}


@dataclass(frozen=True)
class Scale:
    size: int
    base: int
    blocks: int
    threads: int
    batches: tuple[int, ...]


SCALES = {"default": Scale(size=32, base=16, blocks=2, threads=1, batches=(4, 8, 16)),
          "paper": Scale(size=64, base=64, blocks=6, threads=2, batches=(4,))}
CONV_OPS = ("aten::convolution", "aten::convolution_backward", "aten::_convolution_double_backward")


def make_config(size: int, width: str, lambda_rec: float, threads: int | None, channels_last: bool) -> TrainConfig:
    """Legacy table: LSGAN, cycle x10, identity x``lambda_rec``."""
    base, blocks = WIDTHS[width]
    return TrainConfig.from_dict(dict(
        weights={"identity": lambda_rec}, threads=threads, channels_last=channels_last, device="cpu", image_size=size,
        generator={"base_channels": base, "n_blocks": blocks}, discriminator={"base_channels": base}))


def scale_config(scale: Scale, threads: int | None, n_critic: int = 1) -> TrainConfig:
    """A scale's config with params.yaml's loss (WGAN-GP, lambda_adv 0.1, cycle x1, no identity)."""
    return TrainConfig.from_dict(dict(
        adv_loss="wgan_gp", weights={"adv": 0.1, "cycle": 1.0, "identity": 0.0}, n_critic=n_critic, threads=threads,
        channels_last=False, device="cpu", image_size=scale.size,
        generator={"base_channels": scale.base, "n_blocks": scale.blocks}, discriminator={"base_channels": scale.base}))


def trainer_with_torch_instance_norm(cfg: TrainConfig):
    """The same trainer with the generators' norm as ``torch.nn.InstanceNorm2d`` (what the generators
    used before :class:`unmask.models.blocks.InstanceNorm`, the same maths as a one-group-per-channel
    GroupNorm): the before/after of that change, timed in the same rounds."""
    import unmask.models.blocks as blocks
    import unmask.models.encoders as encoders

    def torch_instance_norm(ch: int) -> torch.nn.Module:
        return torch.nn.InstanceNorm2d(ch, affine=True, track_running_stats=False)

    saved = blocks.instance_norm, encoders.instance_norm
    blocks.instance_norm = encoders.instance_norm = torch_instance_norm
    try:
        return build_trainer(cfg)
    finally:
        blocks.instance_norm, encoders.instance_norm = saved


def make_batch(batch: int, size: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {k: torch.rand(batch, 3, size, size, generator=g) * 2 - 1 for k in ("occluded", "clean")}


class ReferenceCycleGAN:
    """The classic two-phase loop over the same networks (what the speed-up is measured against)."""

    def __init__(self, cfg: TrainConfig):
        seed_everything(cfg.seed)
        self.cfg = cfg
        g, d = cfg.networks["generator"], cfg.networks["discriminator"]
        self.g_ab, self.g_ba = build_generator(g), build_generator(g)
        self.d_a, self.d_b = build_discriminator(d), build_discriminator(d)
        self.opt_g = torch.optim.Adam([*self.g_ab.parameters(), *self.g_ba.parameters()], cfg.lr_g, cfg.betas)
        self.opt_d = torch.optim.Adam([*self.d_a.parameters(), *self.d_b.parameters()], cfg.lr_d, cfg.betas)
        self.adv = build_adv_loss(cfg.adv_loss)

    def train_step(self, batch: dict[str, torch.Tensor]) -> None:
        cfg, adv = self.cfg, self.adv
        w = {**CycleGANTrainer.WEIGHTS, **cfg.weights}
        a, b = batch["occluded"], batch["clean"]
        # D update
        fake_b, fake_a = self.g_ab(a), self.g_ba(b)
        d_loss = (adv.d_loss(self.d_b(b)[0], self.d_b(fake_b.detach())[0])
                  + adv.d_loss(self.d_a(a)[0], self.d_a(fake_a.detach())[0]))
        if adv.uses_gradient_penalty:
            d_loss = d_loss + w["gp"] * (gradient_penalty(lambda x: self.d_b(x)[0], b, fake_b)
                                               + gradient_penalty(lambda x: self.d_a(x)[0], a, fake_a))
        self.opt_d.zero_grad()
        d_loss.backward()
        self.opt_d.step()
        # G update
        fake_b, fake_a = self.g_ab(a), self.g_ba(b)
        g_loss = w["adv"] * (adv.g_loss(self.d_b(b)[0], self.d_b(fake_b)[0])
                                   + adv.g_loss(self.d_a(a)[0], self.d_a(fake_a)[0]))
        g_loss = g_loss + w["cycle"] * (F.l1_loss(self.g_ba(fake_b), a) + F.l1_loss(self.g_ab(fake_a), b))
        if w["identity"]:
            g_loss = g_loss + w["identity"] * (F.l1_loss(self.g_ab(b), b) + F.l1_loss(self.g_ba(a), a))
        self.opt_g.zero_grad()
        g_loss.backward()
        self.opt_g.step()


class StepCycle:
    """``n`` consecutive ``train_step`` calls of a trainer as one timed unit (one G update per unit)."""

    def __init__(self, trainer, n: int):
        self.trainer, self.n = trainer, n

    def train_step(self, batch: dict[str, torch.Tensor]) -> None:
        for _ in range(self.n):
            self.trainer.train_step(batch)


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


# ---------------------------------------------------------------------------------------------- FLOPs
def conv_flops(input_shape, weight_shape, stride=(1, 1), padding=(0, 0), dilation=(1, 1), transposed=False,
               output_padding=(0, 0), groups=1) -> int:
    """FLOPs (2 per multiply-add) of one 2-d convolution's forward, as ``FlopCounterMode`` counts them:
    2 * B * (output pixels) * Cout * Cin/groups * kh * kw, i.e. 2 * B * out_pixels * weight.numel();
    a transposed conv scatters each *input* pixel: 2 * B * in_pixels * weight.numel()."""
    b, _, h, w = input_shape
    kh, kw = weight_shape[2], weight_shape[3]
    n_weight = weight_shape[0] * weight_shape[1] * kh * kw
    if transposed:
        pixels = h * w
    else:
        ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
        wo = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
        pixels = ho * wo
    return 2 * b * pixels * n_weight


def peak_conv_flops(channels: int, size: int, batch: int, kernel: int = 3) -> int:
    """FLOPs of the peak conv's forward + backward (input and weight gradients): 3 x 2*Cin*Cout*k*k*H*W*B
    (same-padded, so the output is H x W)."""
    return 3 * 2 * channels * channels * kernel * kernel * size * size * batch


def measure_conv_peak(threads: int, channels: int, size: int, batch: int, reps: int) -> tuple[float, float]:
    """(forward+backward GFLOP/s, forward-only GFLOP/s) of the peak conv at ``threads`` threads:
    medians of ``reps`` repetitions after one warm-up."""
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, channels, size, size, generator=g).requires_grad_(True)
    w = (torch.randn(channels, channels, 3, 3, generator=g) * 0.05).requires_grad_(True)
    grad_out = torch.randn(batch, channels, size, size, generator=g)
    total, forward = [], []
    for rep in range(reps + 1):
        x.grad = w.grad = None
        t0 = time.perf_counter()
        y = F.conv2d(x, w, padding=1)
        t1 = time.perf_counter()
        y.backward(grad_out)
        t2 = time.perf_counter()
        if rep:                       # rep 0: warm-up
            total.append(t2 - t0)
            forward.append(t1 - t0)
    flops = peak_conv_flops(channels, size, batch)
    return flops / statistics.median(total) / 1e9, flops / 3 / statistics.median(forward) / 1e9


def count_step_flops(cfg: TrainConfig, batch: dict[str, torch.Tensor]) -> tuple[float, str | None]:
    """(FLOPs per step, note): FlopCounterMode over one ``n_critic``-step unit of a fresh trainer of
    ``cfg`` (the timed one keeps its state), divided by n_critic. If counting fails (the gradient
    penalty's double backward), the unit is counted again on fresh networks with the penalty left out,
    and the note says the figure is a lower bound."""
    from torch.utils.flop_counter import FlopCounterMode

    def count(without_penalty: bool) -> float:
        trainer = build_trainer(cfg)
        if without_penalty:
            trainer.adv.uses_gradient_penalty = False     # this instance only: same networks and losses
        with FlopCounterMode(display=False) as counter:
            for _ in range(trainer.n_critic):
                trainer.train_step(batch)
        return counter.get_total_flops() / trainer.n_critic

    try:
        return count(False), None
    except Exception as err:                               # noqa: BLE001 -- any failure: fall back
        if not build_adv_loss(cfg.adv_loss).uses_gradient_penalty:
            raise
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        return count(True), (f"FlopCounterMode fails on the gradient penalty's double backward ({reason}); "
                             f"FLOPs counted on the same networks without the penalty: the penalty's extra "
                             f"critic passes and double backward are not counted, so GFLOP/step, GFLOP/s "
                             f"and % of peak are lower bounds")


# ---------------------------------------------------------------------------------------------- breakdown
def _layer(input_shape, weight_shape, stride, transposed, groups) -> tuple:
    if transposed:
        cin, cout = weight_shape[0], weight_shape[1] * groups
    else:
        cin, cout = weight_shape[1] * groups, weight_shape[0]
    return (bool(transposed), cin, cout, weight_shape[2], weight_shape[3], tuple(stride),
            input_shape[2], input_shape[3])


def layer_label(key: tuple) -> str:
    transposed, cin, cout, kh, kw, stride, h, w = key
    s = stride[0] if len(set(stride)) == 1 else "x".join(map(str, stride))
    return f"{'convT' if transposed else 'conv'} {cin}->{cout} {kh}x{kw}/{s} @{h}x{w}"


def _event_conv(event) -> tuple[str, tuple, float] | None:
    """(phase, layer key, FLOPs) of one conv op event from its recorded shapes and scalar arguments;
    None when the profiler recorded too little to tell."""
    shapes, args = event.input_shapes, getattr(event, "concrete_inputs", None) or []
    try:
        if event.name == "aten::convolution":
            stride, padding, dilation, transposed, out_pad, groups = args[3:9]
            inp, weight = shapes[0], shapes[1]
            key = _layer(inp, weight, stride, transposed, groups)
            return "fwd", key, conv_flops(inp, weight, stride, padding, dilation, transposed, out_pad, groups)
        if event.name == "aten::convolution_backward":
            stride, padding, dilation, transposed, out_pad, groups, mask = args[4:11]
            inp, weight = shapes[1], shapes[2]
            key = _layer(inp, weight, stride, transposed, groups)
            flops = conv_flops(inp, weight, stride, padding, dilation, transposed, out_pad, groups)
            return "bwd", key, flops * (int(mask[0]) + int(mask[1]))
        if event.name == "aten::_convolution_double_backward":
            stride, _, _, transposed, _, groups = args[6:12]
            key = _layer(shapes[5], shapes[4], stride, transposed, groups)
            return "dbl-bwd", key, sum(_nested_conv_flops(child) for child in event.cpu_children)
    except (TypeError, ValueError, IndexError):
        return None
    return None


def _nested_conv_flops(event) -> float:
    """FLOPs of the outermost conv ops at or below ``event``."""
    if event.name in ("aten::convolution", "aten::convolution_backward"):
        found = _event_conv(event)
        return found[2] if found else 0.0
    return sum(_nested_conv_flops(child) for child in event.cpu_children)


def _nested_in_conv(event) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name in CONV_OPS:
            return True
        parent = parent.cpu_parent
    return False


def conv_breakdown(runner, batch: dict[str, torch.Tensor], steps: int, threads: int) -> tuple[dict, float, int]:
    """Profile ``steps`` units of ``runner`` (after one warm-up); returns ({layer key: {phase: [us,
    FLOPs, calls]}}, profiled wall seconds, skipped conv events)."""
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(threads)
    runner.train_step(batch)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            runner.train_step(batch)
        wall = time.perf_counter() - t0
    layers: dict[tuple, dict[str, list[float]]] = {}
    skipped = 0
    for event in prof.events():
        if event.name not in CONV_OPS or _nested_in_conv(event):
            continue
        found = _event_conv(event)
        if found is None:
            skipped += 1
            continue
        phase, key, flops = found
        cell = layers.setdefault(key, {}).setdefault(phase, [0.0, 0.0, 0])
        cell[0] += event.cpu_time_total
        cell[1] += flops
        cell[2] += 1
    return layers, wall, skipped


def print_breakdown(name: str, layers: dict, wall: float, steps: int, steps_per_unit: int, batch: int,
                    threads: int, timed_s: float | None, peak: float | None, top: int, skipped: int) -> None:
    n_steps = steps * steps_per_unit
    step_us = wall * 1e6 / n_steps
    phases = ("fwd", "bwd", "dbl-bwd")

    def rate(us: float, flops: float) -> str:
        return f"{flops / us / 1e3:.1f}" if us > 0 and flops > 0 else "-"

    rows = []
    for key, cells in layers.items():
        us = sum(c[0] for c in cells.values()) / n_steps
        flops = sum(c[1] for c in cells.values()) / n_steps
        rows.append((us, flops, key, cells))
    rows.sort(key=lambda r: r[0], reverse=True)
    timed = f"; timed step {timed_s * 1e3:.1f} ms" if timed_s else ""
    print(f"\nbreakdown, scale {name}, batch {batch}, {threads} thread(s): {n_steps} profiled step(s), "
          f"{step_us / 1e3:.1f} ms/step under the profiler{timed}")
    print(f"{'layer (input HxW)':30s} {'ms/step':>8s} {'% step':>7s} {'GFLOP/st':>9s} {'GFLOP/s':>8s} "
          f"{'fwd':>6s} {'bwd':>6s} {'dbl-bwd':>7s}")
    for us, flops, key, cells in rows[:top]:
        per_phase = [rate(cells[p][0], cells[p][1]) if p in cells else "" for p in phases]
        print(f"{layer_label(key):30s} {us / 1e3:8.2f} {100 * us / step_us:6.1f}% {flops / 1e9:9.4f} "
              f"{rate(us, flops):>8s} {per_phase[0]:>6s} {per_phase[1]:>6s} {per_phase[2]:>7s}")
    if len(rows) > top:
        rest_us, rest_flops = sum(r[0] for r in rows[top:]), sum(r[1] for r in rows[top:])
        print(f"{f'({len(rows) - top} more shapes)':30s} {rest_us / 1e3:8.2f} {100 * rest_us / step_us:6.1f}% "
              f"{rest_flops / 1e9:9.4f} {rate(rest_us, rest_flops):>8s}")
    conv_us, conv_flops_ = sum(r[0] for r in rows), sum(r[1] for r in rows)
    dbl = sum(c["dbl-bwd"][1] for *_, c in rows if "dbl-bwd" in c) / n_steps
    print(f"{'all conv ops':30s} {conv_us / 1e3:8.2f} {100 * conv_us / step_us:6.1f}% {conv_flops_ / 1e9:9.4f} "
          f"{rate(conv_us, conv_flops_):>8s}   (of which the penalty's double backward: {dbl / 1e9:.4f} GFLOP)")
    print(f"{'everything else':30s} {(step_us - conv_us) / 1e3:8.2f} {100 * (step_us - conv_us) / step_us:6.1f}%"
          f"   (norms, activations, losses, Adam, autograd and profiler overhead)")
    if peak:
        print(f"conv peak at {threads} thread(s): {peak:.1f} GFLOP/s (fwd+bwd); columns fwd / bwd / dbl-bwd: "
              f"GFLOP/s of each phase")
    if skipped:
        print(f"({skipped} conv events without recorded arguments were left out)")
    print(flush=True)


# ---------------------------------------------------------------------------------------------- tables
def run_scales(args: argparse.Namespace) -> None:
    default_threads = torch.get_num_threads()
    ref_threads = args.ref_threads or default_threads
    def plan(name: str) -> tuple[str, Scale, int, tuple[int, ...]]:
        scale = SCALES[name]
        return name, scale, args.threads or scale.threads, tuple(args.batches or scale.batches)

    plans = [plan(name) for name in args.scale]
    profiled = [plan(name) for name in args.breakdown or ()]
    print(f"CPU: {cpu_description()}")
    print(f"torch {torch.__version__}; {default_threads} default threads; WGAN-GP, lambda_adv 0.1, cycle x1, "
          f"no identity, n_critic {args.n_critic}, float32; reference loop: {ref_threads} thread(s)")
    peaks: dict[int, float] = {}
    peak_text = []
    for threads in sorted({1, *(p[2] for p in plans + profiled)}):
        total, forward = measure_conv_peak(threads, args.peak_channels, args.peak_size, args.peak_batch,
                                           args.peak_reps)
        peaks[threads] = total
        peak_text.append(f"{threads} thread(s) {total:.1f} GFLOP/s (fwd only {forward:.1f})")
    print(f"conv peak ({args.peak_channels}->{args.peak_channels} 3x3 @{args.peak_size}x{args.peak_size}, "
          f"batch {args.peak_batch}, fwd+bwd, median of {args.peak_reps}): " + "; ".join(peak_text))
    print(f"{'scale':7s} {'size':>4s} {'batch':>5s} {'thr':>3s} {'ms/step':>8s} {'img/s':>7s} {'GFLOP/step':>11s} "
          f"{'GFLOP/s':>9s} {'% peak':>7s} {'ref x':>6s}  (rounds)")
    notes: list[str] = []
    timed: dict[tuple[str, int], float] = {}
    for name, scale, threads, batches in plans:
        cfg = scale_config(scale, threads, args.n_critic)
        for bsz in batches:
            batch = make_batch(bsz, scale.size)
            runners = {"ours": (StepCycle(build_trainer(cfg), args.n_critic), threads),
                       "in2d": (StepCycle(trainer_with_torch_instance_norm(cfg), args.n_critic), threads)}
            with_ref = bsz == 4 and args.n_critic == 1
            if with_ref:
                runners["reference"] = (ReferenceCycleGAN(cfg), ref_threads)
            times = time_round_robin(runners, batch, args.iters, args.budget)
            sec = statistics.median(times["ours"]) / args.n_critic
            timed[(name, bsz)] = sec
            torch.set_num_threads(threads)
            flops, note = count_step_flops(cfg, batch)
            star = "*" if note else " "
            if note and note not in notes:
                notes.append(note)
            achieved = flops / sec / 1e9
            ratio = f"{statistics.median(times['reference']) / sec:5.2f}x" if with_ref else "     -"
            sec_in2d = statistics.median(times["in2d"]) / args.n_critic
            before = flops / sec_in2d / 1e9
            print(f"{name:7s} {scale.size:4d} {bsz:5d} {threads:3d} {sec * 1e3:8.1f} {bsz / sec:7.1f} "
                  f"{flops / 1e9:10.3f}{star} {achieved:8.2f}{star} {100 * achieved / peaks[threads]:6.1f}%{star}"
                  f" {ratio}  | InstanceNorm2d: {sec_in2d * 1e3:7.1f} ms, {before:6.2f} GFLOP/s, "
                  f"{100 * before / peaks[threads]:5.1f}% ({sec_in2d / sec:4.2f}x)  ({len(times['ours'])})", flush=True)
    for note in notes:
        print(f"* {note}")
    for name, scale, threads, batches in profiled:
        cfg = scale_config(scale, threads, args.n_critic)
        bsz = batches[0]
        layers, wall, skipped = conv_breakdown(StepCycle(build_trainer(cfg), args.n_critic),
                                               make_batch(bsz, scale.size), args.breakdown_steps, threads)
        print_breakdown(name, layers, wall, args.breakdown_steps, args.n_critic, bsz, threads,
                        timed.get((name, bsz)), peaks.get(threads), args.breakdown_top, skipped)


def run_legacy(args: argparse.Namespace) -> None:
    threads = args.threads or 2
    iters = args.iters or 3
    default_threads = torch.get_num_threads()
    print(f"CPU: {cpu_description()}")
    print(f"torch {torch.__version__}, {default_threads} default threads; ours uses {threads}; "
          f"batch 4, LSGAN, cycle x10, identity x{args.lambda_rec:g}")
    print(f"{'width':6s} {'size':>4s} {'ours s/it':>10s} {'ours+cl':>10s} {'reference':>10s} {'speed-up':>9s}  (rounds)")
    for width in args.widths:
        for size in args.sizes:
            batch = make_batch(4, size)
            runners = {
                "ours": (build_trainer(make_config(size, width, args.lambda_rec, threads, False)), threads),
                "ours+cl": (build_trainer(make_config(size, width, args.lambda_rec, threads, True)), threads),
                "reference": (ReferenceCycleGAN(make_config(size, width, args.lambda_rec, None, False)),
                              default_threads),
            }
            times = time_round_robin(runners, batch, iters, args.budget)
            ours, ours_cl, reference = (statistics.median(times[k]) for k in runners)
            print(f"{width:6s} {size:4d} {ours:10.3f} {ours_cl:10.3f} {reference:10.3f} "
                  f"{reference / ours:8.2f}x  ({len(times['ours'])})", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", nargs="+", default=["default", "paper"], choices=[*SCALES, "legacy"],
                    help="scales of the table (default: default paper); legacy: the earlier table")
    ap.add_argument("--batches", type=int, nargs="+", help="batch sizes (default: the scale's)")
    ap.add_argument("--threads", type=int, help="intra-op threads of ours (default: the scale's; legacy 2)")
    ap.add_argument("--ref-threads", type=int, help="threads of the reference loop (default: torch's default)")
    ap.add_argument("--n-critic", type=int, default=1, help="trainer n_critic (1: every step updates G and D)")
    ap.add_argument("--iters", type=int, help="timed rounds per cell at most (default 30; legacy 3)")
    ap.add_argument("--budget", type=float, default=20.0, help="seconds of timed rounds per cell")
    ap.add_argument("--peak-channels", type=int, default=256)
    ap.add_argument("--peak-size", type=int, default=32)
    ap.add_argument("--peak-batch", type=int, default=8)
    ap.add_argument("--peak-reps", type=int, default=5)
    ap.add_argument("--breakdown", nargs="*", choices=list(SCALES),
                    help="per-layer conv time from torch.profiler at these scales (no value: default)")
    ap.add_argument("--breakdown-steps", type=int, default=3)
    ap.add_argument("--breakdown-top", type=int, default=8)
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128], help="legacy only")
    ap.add_argument("--widths", nargs="+", default=["small", "paper"], choices=sorted(WIDTHS), help="legacy only")
    ap.add_argument("--lambda-rec", type=float, default=0.0, help="legacy only: identity weight (0 = the paper's)")
    args = ap.parse_args(argv)
    if args.n_critic < 1 or args.peak_reps < 1 or args.breakdown_steps < 1:
        ap.error("--n-critic, --peak-reps and --breakdown-steps must be >= 1")
    if "legacy" in args.scale:
        if len(args.scale) > 1:
            ap.error("--scale legacy runs alone")
        run_legacy(args)
        return
    args.iters = args.iters or 30
    if args.breakdown == []:
        args.breakdown = ["default"]
    run_scales(args)


if __name__ == "__main__":
    main()
