"""``unmask ui``: the MLflow UI over the project's tracking store, on loopback, one worker."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from unmask.errors import UnmaskError

LOOPBACK = "127.0.0.1"


def ui_env() -> dict[str, str]:
    """The environment of the UI process: telemetry and the job runner off."""
    return {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true"}


def ui_command(tracking_uri: str, artifact_root: str | os.PathLike, port: int = 5000,
               host: str = LOOPBACK) -> list[str]:
    """``mlflow server`` over ``tracking_uri`` (runs and model registry) with one worker.

    ``artifact_root`` is a folder or a URI (what :func:`unmask.tracking.resolve_artifact_root` gives):
    experiments created from the UI or the API get ``<root>/<experiment id>``, and artifacts uploaded
    through the server land under the same root."""
    from unmask.tracking import artifact_uri

    root = artifact_uri(artifact_root)
    return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tracking_uri,
            "--default-artifact-root", root, "--artifacts-destination", root,
            "--host", host, "--port", str(port), "--workers", "1"]


def start_ui(tracking_uri: str, artifact_root: str | os.PathLike, port: int = 5000, host: str = LOOPBACK,
             log_path: str | os.PathLike | None = None) -> subprocess.Popen:
    """Start the UI in the background (output to ``log_path`` or discarded); see :func:`wait_until_healthy`.

    The server (``mlflow server`` and the uvicorn it starts) runs in a session of its own, so a
    terminal's Ctrl-C reaches only this process, which stops the whole server: :func:`stop_ui`."""
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        return subprocess.Popen(ui_command(tracking_uri, artifact_root, port, host), env=ui_env(),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        if log_path:
            log.close()


def _group_pids(pgid: int) -> list[int] | None:
    """The live (not zombie) processes of process group ``pgid``; None where there is no /proc."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    pids = []
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()   # after "pid (comm)": state ppid pgrp ...
        except (OSError, IndexError):
            continue   # exited meanwhile
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            pids.append(int(stat.parent.name))
    return pids


def _group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process remains in process group ``pgid``."""
    pids = _group_pids(pgid)
    if pids is not None:
        return bool(pids)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_port(port: int, host: str = LOOPBACK) -> None:
    """Refuse ``--port`` unless it is a TCP port that nothing listens on at ``host`` now (bound the way
    the server will bind it, so a port another program serves -- another project's ``unmask ui`` -- is
    found before anything claims to serve it)."""
    if not 1 <= port <= 65535:
        raise UnmaskError(f"--port {port}: not a port (1-65535)")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as uvicorn: TIME_WAIT is no obstacle
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise UnmaskError(_in_use(port, host)) from None
            raise UnmaskError(f"--port {port}: cannot listen on {host} ({e.strerror})") from None


def _in_use(port: int, host: str) -> str:
    return f"port {port} is in use on {host} (by another program; choose another with --port)"


def _listening_inodes(port: int) -> set[int]:
    """Socket inodes listening on TCP ``port`` (any address), from /proc/net/tcp{,6}."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()   # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if len(f) > 9 and f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(int(f[9]))
    return inodes


def serves_port(proc: subprocess.Popen, port: int) -> bool | None:
    """Whether the server started as ``proc`` (its process group) is what listens on ``port``; None where
    /proc cannot tell."""
    pids = _group_pids(proc.pid)
    if pids is None or not Path("/proc/net/tcp").exists():
        return None
    listening = _listening_inodes(port)
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(fd)
            except OSError:
                continue
            if link.startswith("socket:[") and int(link[8:-1]) in listening:
                return True
    return False


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_ui(proc: subprocess.Popen, timeout_s: float = 10) -> None:
    """Stop the server's whole process group (``mlflow server`` and its uvicorn): SIGTERM, then SIGKILL
    to whatever is left after ``timeout_s``; returns once none of it runs."""
    pgid = proc.pid   # start_ui made it a session (and group) leader
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pass
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_alive(pgid):
        _signal_group(pgid, signal.SIGKILL)
        proc.wait()
        while _group_alive(pgid) and time.monotonic() < deadline + 5:
            time.sleep(0.1)


def wait_until_healthy(url: str, proc: subprocess.Popen, timeout_s: float = 120, port: int | None = None) -> None:
    """Poll ``url/health`` until it answers -- and, given ``port``, until the answer is this server's: its
    process group listens on ``port`` (another program that took the port meanwhile answers too).
    UnmaskError if the server exits or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            if port is not None and _listening_inodes(port):
                raise UnmaskError(_in_use(port, LOOPBACK))
            raise UnmaskError(f"mlflow server exited with status {proc.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200 and (port is None or serves_port(proc, port) is not False):
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise UnmaskError(f"mlflow server at {url} not healthy after {timeout_s:.0f} s")


class _Stop(BaseException):   # not an Exception: no `except Exception` on the way may swallow it
    """SIGTERM (or SIGHUP) to ``unmask ui``."""


def _stop(signum, frame) -> None:
    raise _Stop(signum)


def serve_ui(tracking_uri: str, artifact_root: str | os.PathLike, port: int = 5000, host: str = LOOPBACK) -> int:
    """Run the MLflow UI until interrupted; prints its URL once it is up. Returns the exit status.

    Ctrl-C (SIGINT), SIGTERM and SIGHUP stop the whole server (:func:`stop_ui`) before this returns 0,
    so nothing is left listening on the port."""
    main = threading.current_thread() is threading.main_thread()
    stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.getsignal(sig) for sig in stops} if main else {}
    for sig in stops[1:]:
        if main and previous[sig] is not signal.SIG_IGN:    # under nohup, SIGHUP stays ignored
            signal.signal(sig, _stop)
    proc = None
    try:
        check_port(port, host)
        proc = start_ui(tracking_uri, artifact_root, port, host)
        url = f"http://{host}:{port}"
        wait_until_healthy(url, proc, port=port)
        print(f"MLflow UI: {url}  (tracking store {tracking_uri}; Ctrl-C to stop)", flush=True)
        return proc.wait()
    except (KeyboardInterrupt, _Stop):
        return 0
    finally:
        try:
            if main:   # a second signal while stopping must not leave the server running
                for sig in stops:
                    signal.signal(sig, signal.SIG_IGN)
            if proc is not None:
                stop_ui(proc)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
