"""``unmask ui``: the MLflow UI over the project's tracking store, on loopback, one worker."""

from __future__ import annotations

import os
import subprocess
import sys
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
    """``mlflow server`` over ``tracking_uri`` (runs and model registry) with one worker."""
    return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tracking_uri,
            "--default-artifact-root", Path(artifact_root).resolve().as_uri(),
            "--host", host, "--port", str(port), "--workers", "1"]


def start_ui(tracking_uri: str, artifact_root: str | os.PathLike, port: int = 5000, host: str = LOOPBACK,
             log_path: str | os.PathLike | None = None) -> subprocess.Popen:
    """Start the UI in the background (output to ``log_path`` or discarded); see :func:`wait_until_healthy`."""
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        return subprocess.Popen(ui_command(tracking_uri, artifact_root, port, host), env=ui_env(),
                                stdout=log, stderr=subprocess.STDOUT)
    finally:
        if log_path:
            log.close()


def wait_until_healthy(url: str, proc: subprocess.Popen, timeout_s: float = 120) -> None:
    """Poll ``url/health`` until it answers; UnmaskError if the server exits or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UnmaskError(f"mlflow server exited with status {proc.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise UnmaskError(f"mlflow server at {url} not healthy after {timeout_s:.0f} s")


def serve_ui(tracking_uri: str, artifact_root: str | os.PathLike, port: int = 5000, host: str = LOOPBACK) -> int:
    """Run the MLflow UI until interrupted; prints its URL once it is up. Returns the exit status."""
    proc = start_ui(tracking_uri, artifact_root, port, host)
    url = f"http://{host}:{port}"
    try:
        wait_until_healthy(url, proc)
        print(f"MLflow UI: {url}  (tracking store {tracking_uri}; Ctrl-C to stop)", flush=True)
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
