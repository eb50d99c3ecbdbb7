"""Keep a local Ray cluster off the network: run the sweep in a loopback-only network namespace.

Ray's GCS, raylets and workers listen on every interface whatever node address is given. A sweep
that starts its own local cluster therefore re-runs itself under ``unshare -rn`` (an unprivileged
user + network namespace whose only interface is ``lo``), where nothing can listen beyond
127.0.0.1. Sweeps on an existing cluster (``sweep.address`` / ``RAY_ADDRESS``) need the network and
are not isolated.
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


def inside() -> bool:
    return os.environ.get(FLAG) == "1"


def available() -> bool:
    """Whether this machine lets an unprivileged process make a network namespace."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    r = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
    return r.returncode == 0


def command(argv: list[str]) -> list[str]:
    """``argv`` wrapped to run in a fresh loopback-only namespace (``lo`` brought up first)."""
    return ["unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]


def rerun_isolated(argv: list[str]) -> int | None:
    """Run ``python -m unmask.cli *argv`` in a loopback-only namespace and return its exit status;
    ``None`` when already inside one or namespaces are not permitted (then the caller goes on here)."""
    if inside():
        return None
    if not available():
        log.warning("unshare -rn is not permitted here: the local Ray cluster will listen on all "
                    "network interfaces (set sweep.isolate_network: false to silence this)")
        return None
    env = {**os.environ, FLAG: "1"}
    # its own session: a Ctrl-C (or a SIGTERM from DVC or a scheduler) reaches the sweep once, from here,
    # as the SIGINT on which Tune saves its state and stops; Ray's workers never see it
    proc = subprocess.Popen(command([sys.executable, "-m", "unmask.cli", *argv]), env=env, start_new_session=True)

    def forward(signum, frame) -> None:
        try:
            os.kill(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
