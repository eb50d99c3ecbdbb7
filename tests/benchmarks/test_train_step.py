"""benchmarks/train_step.py: the FLOP formulas, the profiler breakdown's FLOP count, and a tiny run."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "train_step.py"


def _load():
    name = "bench_train_step"
    if name not in sys.modules:      # registered before it runs: its dataclasses look their module up
        spec = importlib.util.spec_from_file_location(name, SCRIPT)
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    return env


def test_peak_conv_flop_formula():
    bench = _load()
    # 3 x 2*Cin*Cout*9*H*W*B: forward + the input- and weight-gradient GEMMs
    assert bench.peak_conv_flops(256, 32, 8) == 3 * 2 * 256 * 256 * 9 * 32 * 32 * 8 == 28_991_029_248
    assert bench.peak_conv_flops(256, 32, 8) == 3 * bench.conv_flops((8, 256, 32, 32), (256, 256, 3, 3),
                                                                     padding=(1, 1))
    # and it is what FlopCounterMode counts for the measured conv (F.conv2d, backward to input and weight)
    x = torch.randn(2, 8, 6, 6, requires_grad=True)
    w = torch.randn(8, 8, 3, 3, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        F.conv2d(x, w, padding=1).sum().backward()
    assert counter.get_total_flops() == bench.peak_conv_flops(8, 6, 2)


def test_conv_flops_strided_and_transposed_match_flop_counter():
    bench = _load()
    x = torch.randn(2, 4, 9, 9)
    cases = [  # (weight shape, kwargs, F function)
        ((6, 4, 4, 4), dict(stride=(2, 2), padding=(1, 1)), F.conv2d),
        ((4, 6, 4, 4), dict(stride=(2, 2), padding=(1, 1)), F.conv_transpose2d),
        ((3, 4, 7, 7), dict(padding=(3, 3)), F.conv2d),
    ]
    for shape, kw, fn in cases:
        with FlopCounterMode(display=False) as counter:
            fn(x, torch.randn(shape), **kw)
        assert counter.get_total_flops() == bench.conv_flops(tuple(x.shape), shape, transposed=fn is not F.conv2d,
                                                             **kw), (shape, kw)


def test_breakdown_counts_the_same_flops_as_flop_counter():
    """The profiler's shapes give FlopCounterMode's count (a loss without penalty, where both work)."""
    bench = _load()
    from unmask.training import TrainConfig, build_trainer

    cfg = TrainConfig.from_dict(dict(adv_loss="lsgan", weights={"identity": 1.0}, threads=1, device="cpu",
                                     image_size=16, generator={"base_channels": 4, "n_blocks": 1},
                                     discriminator={"base_channels": 4}))
    batch = bench.make_batch(2, 16)
    flops, note = bench.count_step_flops(cfg, batch)
    assert note is None and flops > 0
    layers, wall, skipped = bench.conv_breakdown(build_trainer(cfg), batch, 2, 1)
    assert skipped == 0 and wall > 0
    total = sum(cell[1] for cells in layers.values() for cell in cells.values())
    assert total == 2 * flops
    assert "convT 8->4 4x4/2 @8x8" in {bench.layer_label(k) for k in layers}


def test_script_prints_gflops_percent_of_peak_and_cpu():
    cmd = [sys.executable, str(SCRIPT), "--scale", "default", "--batches", "4", "--budget", "1", "--iters", "1",
           "--ref-threads", "1",
           "--peak-channels", "16", "--peak-size", "8", "--peak-batch", "2", "--peak-reps", "2",
           "--breakdown", "--breakdown-steps", "1", "--breakdown-top", "3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    out = proc.stdout
    assert proc.returncode == 0, out[-2000:] + proc.stderr[-3000:]
    assert re.search(r"^CPU: .+; torch \d", out, re.M)
    assert re.search(r"conv peak \(16->16 3x3 @8x8, batch 2.*1 thread\(s\) [\d.]+ GFLOP/s", out)
    header = next(line for line in out.splitlines() if line.startswith("scale"))
    assert "GFLOP/s" in header and "% peak" in header
    # default 32 4 1 <ms> <img/s> <GFLOP/step>* <GFLOP/s>* <%>* <ref>x
    row = re.search(r"^default\s+32\s+4\s+1\s+[\d.]+\s+[\d.]+\s+([\d.]+)\*\s+([\d.]+)\*\s+([\d.]+)%\*\s+([\d.]+)x",
                    out, re.M)
    assert row, out
    assert float(row[1]) > 0 and float(row[2]) > 0 and float(row[3]) > 0 and float(row[4]) > 0
    assert "double backward" in out and "lower bounds" in out
    assert "breakdown, scale default, batch 4" in out
    assert re.search(r"^conv 16->3 7x7/1 @32x32\s", out, re.M) or "more shapes" in out
    assert re.search(r"^all conv ops\s+[\d.]+\s+[\d.]+%", out, re.M)
