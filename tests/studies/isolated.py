"""Run a test script in a fresh loopback-only network namespace that is also a PID namespace.

A shell is PID 1 there (it reaps the daemons ``ray start`` leaves) and runs the script: ``ps`` and
``ray stop`` see only the processes the script started, and when it exits the kernel kills whatever
it left (Ray's daemons included), so nothing outlives the test and nothing reaches beyond 127.0.0.1. Ray's default temp folder ``/tmp/ray`` is a private tmpfs there, so
``ray start``/``ray stop`` never touch the host's ``/tmp/ray/ray_current_cluster`` (which a plain
``ray.init()`` elsewhere on the machine would follow).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
UNSHARE = ["unshare", "-rn", "--pid", "--fork", "--mount-proc"]
SETUP = "ip link set lo up && mkdir -p /tmp/ray && mount -t tmpfs tmpfs /tmp/ray"


def namespace_or_skip() -> None:
    """Skip the test, with the reason, where unprivileged network + PID namespaces are not permitted."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs unshare and ip (util-linux, iproute2) for a loopback-only network namespace")
    probe = subprocess.run([*UNSHARE, "sh", "-c", SETUP], capture_output=True, text=True)
    if probe.returncode != 0:
        reason = probe.stderr.strip() or probe.returncode
        pytest.skip(f"unshare -rn --pid --mount-proc with a tmpfs not permitted here ({reason})")


def run_isolated(script: Path, *args: str, timeout: float) -> dict:
    """Run ``python script *args`` isolated; returns the JSON object on its last stdout line."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
           "RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true"}
    cmd = f'{SETUP} && "$@"'     # no exec: the shell stays PID 1
    proc = subprocess.run([*UNSHARE, "sh", "-c", cmd, "sh", sys.executable, str(script), *args],
                          capture_output=True, text=True, env=env, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
