"""The sweep's namespace: the driver is PID 1 of its own PID namespace, so ``kill -9`` of it leaves none of
the processes it started (Ray's daemons start their own sessions: a stand-in here does the same), and the
SIGINT forwarded from outside still reaches it (no Ray: plain processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from unmask.studies import netns

DRIVER = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGINT, lambda *a: (print("SIGINT", flush=True), sys.exit(130)))
daemon = subprocess.Popen(["sleep", "300"], start_new_session=True)   # as raylet and gcs_server are
print(os.getpid(), daemon.pid, flush=True)
time.sleep(300)
"""


def _started():
    if not (netns.available() and netns._permitted(netns.PID_NS)):
        pytest.skip("unprivileged network + PID namespaces (unshare -rn --pid) not permitted here")
    proc = subprocess.Popen(netns.command([sys.executable, "-c", DRIVER], pid_namespace=True),
                            start_new_session=True, stdout=subprocess.PIPE, text=True)
    pid_inside, _ = proc.stdout.readline().split()
    assert pid_inside == "1"
    driver = netns._forked_child(proc.pid)
    daemons = [int(p) for p in open(f"/proc/{driver}/task/{driver}/children").read().split()]
    assert daemons and all(os.path.exists(f"/proc/{p}") for p in daemons)
    return proc, driver, daemons


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1].startswith("Z")   # a zombie waiting for its reaper
    except FileNotFoundError:
        return True


def test_kill_9_of_the_sweep_driver_leaves_no_orphans():
    proc, driver, daemons = _started()
    os.kill(driver, signal.SIGKILL)
    proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    while not all(_gone(p) for p in daemons) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_gone(p) for p in daemons)


def test_sigint_from_outside_reaches_the_driver_as_pid_1():
    proc, driver, _ = _started()
    os.kill(driver, signal.SIGINT)
    assert proc.stdout.readline() == "SIGINT\n"
    proc.wait(timeout=10)
