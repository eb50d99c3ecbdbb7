"""The MLflow UI starts on loopback over a sqlite store and a real browser finds the study's runs."""

import re
import shutil
import socket
import subprocess

import pytest

from unmask.ui import start_ui, wait_until_healthy

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make_runs(uri: str, artifacts) -> str:
    import mlflow

    mlflow.set_tracking_uri(uri)
    exp = mlflow.create_experiment("study-micro", artifact_location=artifacts.resolve().as_uri())
    with mlflow.start_run(experiment_id=exp, run_name="sweep-micro-parent"):
        with mlflow.start_run(experiment_id=exp, run_name="trial-hinge-seed0", nested=True):
            mlflow.log_metric("test_psnr", 12.5)
    return exp


def _chromium(*args: str, user_dir, timeout: int = 120) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={user_dir}", "--window-size=1400,900", "--virtual-time-budget=15000"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_ui_lists_the_study_runs_in_a_browser(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exp = _make_runs(uri, tmp_path / "mlartifacts")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_ui(uri, tmp_path / "mlartifacts", port=port, log_path=tmp_path / "ui.log")
    try:
        wait_until_healthy(url, proc, timeout_s=180)
        listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout if shutil.which("ss") else ""
        assert f"0.0.0.0:{port}" not in listening and f"[::]:{port}" not in listening
        page = f"{url}/#/experiments/{exp}/runs"
        dom = _chromium("--dump-dom", page, user_dir=tmp_path / "chrome-dom").stdout
        # children are folded under their parent: a search on the child's name shows it
        child = _chromium("--dump-dom", f"{page}?searchFilter=attributes.run_name%3D%27trial-hinge-seed0%27",
                          user_dir=tmp_path / "chrome-child").stdout
        shot = tmp_path / "ui_screenshot.png"
        _chromium(f"--screenshot={shot}", page, user_dir=tmp_path / "chrome-shot")
        print(f"UI screenshot: {shot}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "sweep-micro-parent" in dom, (tmp_path / "ui.log").read_text()[-2000:]
    assert re.search(r"<strong>2</strong>\s*matching runs", dom)   # parent + nested child
    assert "trial-hinge-seed0" in child
    assert shot.is_file() and shot.stat().st_size > 1000
