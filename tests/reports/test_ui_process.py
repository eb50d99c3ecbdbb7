"""``unmask ui`` as a process: the artifact root it gives new experiments, and how it stops."""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from unmask.ui import serves_port, stop_ui, ui_command, wait_until_healthy

from tests.conftest import ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        tree.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return tree


def _descendants(pid: int) -> set[int]:
    tree, out, todo = _children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _start_unmask_ui(root: Path, port: int) -> subprocess.Popen:
    """``unmask ui --port PORT`` over ``root`` (its default store: sqlite:///mlflow.db, mlartifacts/)."""
    (root / "params.yaml").write_text("data: {}\nalign: {}\nsynthesize: {}\nsplit: {}\ntrain: {}\nstudies: {}\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
           "MLFLOW_DISABLE_TELEMETRY": "true"}
    with open(root / "ui.log", "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "unmask.cli", "ui", "--port", str(port)], cwd=root, env=env,
                                stdout=log, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("root", ["file:///tmp/p/mlartifacts", "/tmp/p/mlartifacts", Path("/tmp/p/mlartifacts")])
def test_ui_command_gives_the_artifact_root_as_one_uri(root):
    cmd = ui_command("sqlite:////tmp/p/mlflow.db", root)
    for flag in ("--default-artifact-root", "--artifacts-destination"):
        assert cmd[cmd.index(flag) + 1] == "file:///tmp/p/mlartifacts"


@pytest.mark.slow   # an MLflow server start: 45-55 s on a loaded 2-core machine
def test_experiment_created_through_the_api_of_unmask_ui(tmp_path):
    """Not ``file:///…/file%3A/…/mlartifacts``: the artifact root goes to ``mlflow server`` once, as a URI."""
    import mlflow

    port = _free_port()
    proc = _start_unmask_ui(tmp_path, port)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", proc, timeout_s=180)
        client = mlflow.MlflowClient(tracking_uri=f"http://127.0.0.1:{port}")
        exp_id = client.create_experiment("from-the-api")
        location = client.get_experiment(exp_id).artifact_location
    finally:
        _stop(proc)
    log = (tmp_path / "ui.log").read_text()[-2000:]
    assert location == f"{(tmp_path / 'mlartifacts').resolve().as_uri()}/{exp_id}", log


@pytest.mark.slow   # an MLflow server start: 45-55 s on a loaded 2-core machine
def test_sigterm_to_unmask_ui(tmp_path):
    """SIGTERM (what a service manager or ``kill`` sends) stops the MLflow server and its uvicorn too, before
    ``unmask ui`` exits: nothing listens on the port afterwards and no process it started survives."""
    port = _free_port()
    proc = _start_unmask_ui(tmp_path, port)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", proc, timeout_s=180)
        started = _descendants(proc.pid)
        assert started and _listening(port)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
    finally:
        _stop(proc)
    log = (tmp_path / "ui.log").read_text()[-2000:]
    assert rc == 0, log
    assert not _listening(port), log
    assert not [p for p in started if _alive(p)], log


# ------------------------------------------------------------------ --port taken or not a port
class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):   # noqa: N802 -- what another project's `unmask ui` answers
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _other_server(port: int):
    """Another program serving ``/health`` on 127.0.0.1:``port`` (another project's ``unmask ui``)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _unmask_ui(tmp_path, monkeypatch, port: str) -> int:
    from unmask.cli import main

    (tmp_path / "params.yaml").write_text("data: {}\nalign: {}\nsynthesize: {}\nsplit: {}\ntrain: {}\nstudies: {}\n")
    return main(["--root", str(tmp_path), "--params", str(tmp_path / "params.yaml"), "ui", "--port", port])


def _never_started(*args, **kwargs):
    raise AssertionError("mlflow server started")


@pytest.mark.parametrize("port", ["99999", "-5", "0"])
def test_port_99999_or_minus_5_is_not_a_port(port, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("unmask.ui.start_ui", _never_started)
    assert _unmask_ui(tmp_path, monkeypatch, port) == 2
    assert capsys.readouterr().err == f"unmask ui: error: --port {port}: not a port (1-65535)\n"


def test_port_served_by_another_projects_ui_is_in_use(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("unmask.ui.start_ui", _never_started)
    port = _free_port()
    with _other_server(port):
        assert _unmask_ui(tmp_path, monkeypatch, str(port)) == 2
    out = capsys.readouterr()
    assert out.err == (f"unmask ui: error: port {port} is in use on 127.0.0.1 (by another program; "
                       f"choose another with --port)\n")
    assert "MLflow UI" not in out.out


def test_port_taken_by_another_program_while_the_server_starts_is_in_use(tmp_path, monkeypatch, capsys):
    """The race: the port is free when checked, another server takes it before ours binds; ours then
    fails to bind and exits, while the other answers /health."""
    port = _free_port()
    other = contextlib.ExitStack()

    def start_losing_the_race(*args, **kwargs):
        other.enter_context(_other_server(port))
        return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3); raise SystemExit(1)"],
                                start_new_session=True)

    monkeypatch.setattr("unmask.ui.start_ui", start_losing_the_race)
    with other:
        assert _unmask_ui(tmp_path, monkeypatch, str(port)) == 2
    out = capsys.readouterr()
    assert out.err.startswith(f"unmask ui: error: port {port} is in use on 127.0.0.1")
    assert "MLflow UI" not in out.out


def test_health_answered_by_our_own_server_is_ours(tmp_path):
    port = _free_port()
    (tmp_path / "health").write_text("OK")                          # GET /health: 200
    ours = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", ours, timeout_s=30, port=port)   # returns: it is ours
        assert serves_port(ours, port) is True
    finally:
        stop_ui(ours)
