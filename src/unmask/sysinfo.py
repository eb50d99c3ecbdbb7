"""What machine produced a result: the CPU's model and vector extensions, and the torch version.

Training speed and even some numerics (oneDNN / AMX kernels) depend on the CPU's vector extensions, so
every report and benchmark states the CPU it ran on: :func:`cpu_description`.
"""

from __future__ import annotations

import os
import platform
from functools import lru_cache

CPUINFO = "/proc/cpuinfo"
# the vector extensions that decide which kernels run, in the order they are shown (x86, then Arm)
VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx_vnni", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
                "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve", "sve2", "sme")
_MODEL_KEYS = ("model name", "Model", "cpu model", "Hardware", "Processor")
_FLAG_KEYS = ("flags", "Features")


def _read_cpuinfo(path: str | os.PathLike) -> tuple[str, list[str], int]:
    """(model name, flags of the first processor, processors listed) from a /proc/cpuinfo-like file;
    ("", [], 0) when it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return "", [], 0
    model, flags, n = "", [], 0
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "processor":
            n += 1
        elif key in _MODEL_KEYS and not model and value:
            model = value
        elif key in _FLAG_KEYS and not flags:
            flags = value.split()
    return " ".join(model.split()), flags, n


def vector_extensions(flags: list[str] | set[str]) -> list[str]:
    """The notable vector extensions among ``flags`` (a cpuinfo flags list), in :data:`VECTOR_FLAGS` order."""
    have = set(flags)
    return [f for f in VECTOR_FLAGS if f in have]


def _torch_text() -> str:
    try:
        import torch
    except ImportError:
        return "torch not installed"
    text = f"torch {torch.__version__}"
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        capability = ""
    return f"{text} (kernels: {capability})" if capability else text


def cpu_description(cpuinfo: str | os.PathLike = CPUINFO, with_torch: bool = True) -> str:
    """One line naming the CPU and the software that ran on it, e.g.
    ``Intel(R) Xeon(R) Platinum 8480+, 2 logical CPUs; vector extensions: avx2, avx512f, amx_tile;
    torch 2.3.1 (kernels: AVX512)``. Model and flags come from ``cpuinfo`` (/proc/cpuinfo), else from
    :mod:`platform`; the extensions read "unknown" when no flags are listed."""
    if os.fspath(cpuinfo) == CPUINFO and with_torch:
        return _cached_description()
    return _describe(cpuinfo, with_torch)


@lru_cache(maxsize=1)
def _cached_description() -> str:
    return _describe(CPUINFO, True)


def _describe(cpuinfo: str | os.PathLike, with_torch: bool) -> str:
    model, flags, n = _read_cpuinfo(cpuinfo)
    model = model or platform.processor() or platform.machine() or "unknown CPU"
    n = n or os.cpu_count() or 0
    exts = vector_extensions(flags)
    parts = [model + (f", {n} logical CPUs" if n else ""),
             "vector extensions: " + (", ".join(exts) if exts else "none listed" if flags else "unknown")]
    if with_torch:
        parts.append(_torch_text())
    return "; ".join(parts)
