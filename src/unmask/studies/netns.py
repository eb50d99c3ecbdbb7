"""Keep a local Ray cluster off the network: run the sweep in a loopback-only network namespace.

Ray's GCS, raylets and workers listen on every interface whatever node address is given. A sweep
that starts its own local cluster therefore re-runs itself under ``unshare -rn`` (an unprivileged
user + network namespace whose only interface is ``lo``), where nothing can listen beyond
127.0.0.1. Sweeps on an existing cluster (``sweep.address`` / ``RAY_ADDRESS``) need the network and
are not isolated.

Where permitted the namespace is a PID namespace too, whose first process (PID 1) is the sweep's
driver: when it ends, however it ends (``kill -9`` included), the kernel kills every process left in
the namespace, so none of Ray's processes outlives the sweep.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys

log = logging.getLogger("unmask")

FLAG = "UNMASK_IN_LOOPBACK_NETNS"
OUTER_PID = "UNMASK_SWEEP_PID"   # in the namespace: the pid, outside, of the `unmask sweep` that started it


def inside() -> bool:
    return os.environ.get(FLAG) == "1"


PID_NS = ["--pid", "--fork", "--mount-proc"]   # the driver is PID 1: Ray's processes die with it


def _permitted(flags: list[str]) -> bool:
    return subprocess.run(["unshare", "-rn", *flags, "true"], capture_output=True).returncode == 0


def available() -> bool:
    """Whether this machine lets an unprivileged process make a network namespace."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    return _permitted([])


def command(argv: list[str], pid_namespace: bool = False) -> list[str]:
    """``argv`` wrapped to run in a fresh loopback-only namespace (``lo`` brought up first), as PID 1
    of a new PID namespace too when ``pid_namespace``."""
    return ["unshare", "-rn", *(PID_NS if pid_namespace else []), "sh", "-c", 'ip link set lo up && exec "$@"',
            "sh", *argv]


def _forked_child(pid: int) -> int:
    """The process ``unshare --fork`` (``pid``) started (it blocks SIGINT itself); ``pid`` until it is
    there."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = f.read().split()
    except OSError:
        return pid
    return int(children[0]) if children else pid


def rerun_isolated(argv: list[str]) -> int | None:
    """Run ``python -m unmask.cli *argv`` in a loopback-only namespace and return its exit status;
    ``None`` when already inside one or namespaces are not permitted (then the caller goes on here)."""
    if inside():
        return None
    if not available():
        log.warning("unshare -rn is not permitted here: the local Ray cluster will listen on all "
                    "network interfaces (set sweep.isolate_network: false to silence this)")
        return None
    env = {**os.environ, FLAG: "1", OUTER_PID: str(os.getpid())}
    pid_ns = _permitted(PID_NS)
    # its own session: a Ctrl-C (or a SIGTERM from DVC or a scheduler) reaches the sweep once, from here,
    # as the SIGINT on which Tune saves its state and stops; Ray's workers never see it
    proc = subprocess.Popen(command([sys.executable, "-m", "unmask.cli", *argv], pid_ns), env=env,
                            start_new_session=True)

    def forward(signum, frame) -> None:
        try:
            os.kill(_forked_child(proc.pid) if pid_ns else proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
