"""Bad inputs on disk and in params.yaml end the CLI with one line naming the file or key (exit status 2),
not a traceback. Each test is named after the input; they run ``unmask.cli.main`` in-process, as the
stage scripts do, or ``python -m unmask.cli`` where the process must be a separate one."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from unmask import cli, pipeline
from unmask.config import SplitConfig, parse_params
from unmask.data.schema import RAW
from unmask.data.split import split_dataset
from unmask.errors import ConfigError
from unmask.io.shards import write_rows
from unmask.studies import parse_study_params

from tests.conftest import ROOT
from tests.helpers import write_synth

STUDY = {"data": {}, "align": {}, "synthesize": {}, "split": {},      # a params.yaml names every section
         "studies": {"x": {"grid": {"adv_loss": ["lsgan"]}}},
         "train": {"image_size": 16, "steps": 4, "generator": {"base_channels": 4, "n_blocks": 1},
                   "discriminator": {"base_channels": 4}},
         "sweep": {"storage_path": "results/ray", "isolate_network": False}}
TRIALS = {"trial_id": ["t0"], "cell": ["{}"], "cell_label": ["adv_loss=lsgan"], "seed": [0], "status": ["ERROR"],
          "checkpoint": [""]}


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A project root (the working directory) holding params.yaml with one study, ``x``."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(STUDY))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(capsys, *args: str) -> tuple[int, str]:
    """``unmask -q *args`` in-process: (exit status, stderr)."""
    rc = cli.main(["-q", *args])
    return rc, capsys.readouterr().err


def _one_line(err: str, start: str) -> str:
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith(start), err
    assert "Traceback" not in err, err
    return lines[-1]


def _raw(root: Path) -> Path:
    raw = root / "data" / "raw"
    write_rows(raw, RAW, [])     # a valid, empty RAW dataset (part-00000.parquet)
    return raw


def _splits(root: Path) -> None:
    write_synth(root / "data" / "synth", n_identities=12, per_identity=2, size=16)
    split_dataset(root / "data" / "synth", root / "data" / "splits", SplitConfig(val=0.1, test=0.15), seed=0,
                  progress=False)


# ---------------------------------------------------------------- 1. results/<study>/trials.parquet

def test_corrupt_trials_parquet_before_evaluate(project, capsys):
    (project / "results" / "x").mkdir(parents=True)
    (project / "results" / "x" / "trials.parquet").write_bytes(os.urandom(4096))
    rc, err = _run(capsys, "evaluate", "x")
    line = _one_line(err, "unmask evaluate: error: results/x/trials.parquet: not a trials table (")
    assert rc == 2 and "magic bytes" in line, err


def test_trials_parquet_without_trial_columns_before_evaluate(project, capsys):
    (project / "results" / "x").mkdir(parents=True)
    pd.DataFrame({"a": [1]}).to_parquet(project / "results" / "x" / "trials.parquet")
    rc, err = _run(capsys, "evaluate", "x")
    _one_line(err, "unmask evaluate: error: results/x/trials.parquet: not a trials table (no column 'trial_id'")
    assert rc == 2


# ---------------------------------------------------------------- 2. read-only data/ and results/

def _refuse_writes_under(monkeypatch, folder: Path) -> None:
    """Temporary files and folders (how every output is written) under ``folder`` fail as in a
    read-only folder; root is not refused by file modes, hence the stand-in."""
    real_mkdtemp, real_mkstemp = tempfile.mkdtemp, tempfile.mkstemp

    def refuse(real):
        def make(suffix=None, prefix=None, dir=None, *args, **kw):
            if dir is not None and Path(dir).resolve().is_relative_to(folder.resolve()):
                name = Path(dir) / f"{prefix}abcd1234{suffix}"
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(name))
            return real(suffix, prefix, dir, *args, **kw)
        return make

    monkeypatch.setattr(tempfile, "mkdtemp", refuse(real_mkdtemp))
    monkeypatch.setattr(tempfile, "mkstemp", refuse(real_mkstemp))


def test_read_only_data_before_align(project, capsys, monkeypatch):
    _raw(project)
    _refuse_writes_under(monkeypatch, project / "data")
    rc, err = _run(capsys, "align")
    assert _one_line(err, "unmask align: error: ") == \
        "unmask align: error: cannot write data/aligned: Permission denied"
    assert rc == 2


def test_read_only_results_before_evaluate(project, capsys, monkeypatch):
    _splits(project)
    (project / "results" / "x").mkdir(parents=True)
    pd.DataFrame(TRIALS).to_parquet(project / "results" / "x" / "trials.parquet")
    _refuse_writes_under(monkeypatch, project / "results")
    rc, err = _run(capsys, "evaluate", "x")
    line = _one_line(err, "unmask evaluate: error: cannot write results/x/")
    assert rc == 2 and line.endswith(": Permission denied"), err


def _ro_mount_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run(["unshare", "-rm", "sh", "-c", f'mount --bind -o ro "{d}" "{d}"'], capture_output=True)
    return r.returncode == 0


@pytest.mark.skipif(not _ro_mount_works(), reason="no unprivileged mount namespace (unshare -rm) here")
def test_read_only_mounted_data_before_align(project):
    """A real read-only folder that root cannot write either: ``data/`` bind-mounted read-only."""
    _raw(project)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    r = subprocess.run(["unshare", "-rm", "sh", "-c", 'mount --bind -o ro data data && exec "$@"', "sh",
                        sys.executable, "-m", "unmask.cli", "-q", "align"],
                       cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert _one_line(r.stderr, "unmask align: error: ") == \
        "unmask align: error: cannot write data/aligned: Read-only file system"
    assert r.returncode == 2


@pytest.mark.parametrize("err, line", [
    (PermissionError(errno.EACCES, "Permission denied", "data/.aligned.k2j3x9_a.tmp"),
     "cannot write data/aligned: Permission denied"),
    (PermissionError(errno.EACCES, "Permission denied", "data/.aligned.4242-k2j3x9_a.tmp"),   # with its pid
     "cannot write data/aligned: Permission denied"),
    (OSError(errno.EROFS, "Read-only file system", "results/x/.eval.parquet.abcdefgh.tmp"),
     "cannot write results/x/eval.parquet: Read-only file system"),
    (OSError(errno.ENOSPC, "No space left on device", "reports/x.md"),
     "cannot write reports/x.md: No space left on device"),
    (PermissionError(errno.EACCES, "Permission denied", "data/.raw.old", None, "data/raw"),
     "cannot write data/raw: Permission denied"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "data/raw/x.png"),
     "data/raw/x.png: No such file or directory"),
])
def test_os_error_line(err, line):
    assert cli.os_error_line(err) == line


def test_interrupted_stage_is_one_line(project, capsys, monkeypatch):
    def interrupted(*args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setitem(pipeline.STAGES, "align", (interrupted, "align"))
    rc, err = _run(capsys, "align")
    assert (rc, err.strip()) == (130, "unmask align: interrupted")


# ---------------------------------------------------------------- 3. junk in data/raw

@pytest.mark.parametrize("junk", ["text", "empty", "truncated"])
def test_junk_file_in_data_raw_before_align(project, capsys, junk):
    raw = _raw(project)
    bad = raw / "part-00001.parquet"
    if junk == "text":
        bad.write_text("this is not a parquet file\n" * 20)
    elif junk == "empty":
        bad.write_bytes(b"")
    else:
        bad.write_bytes((raw / "part-00000.parquet").read_bytes()[:-20])
    rc, err = _run(capsys, "align")
    _one_line(err, "unmask align: error: data/raw/part-00001.parquet: unreadable Parquet shard (")
    assert rc == 2


# ---------------------------------------------------------------- 4. corrupt mlflow.db

def test_corrupt_mlflow_db_before_ui(project, capsys):
    (project / "mlflow.db").write_bytes(os.urandom(8192))
    rc, err = _run(capsys, "ui", "--port", "1")      # refused before any server starts
    _one_line(err, f"unmask ui: error: {project.resolve() / 'mlflow.db'}: not an MLflow tracking database (")
    assert rc == 2


def test_corrupt_mlflow_db_before_sweep(project, capsys, monkeypatch):
    _splits(project)
    (project / "mlflow.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 8192)   # a damaged header
    monkeypatch.setenv(cli.SWEEP_DRIVER_FLAG, "1")    # the driver itself, in-process (no re-run)
    rc, err = _run(capsys, "sweep", "x")
    _one_line(err, f"unmask sweep: error: {project.resolve() / 'mlflow.db'}: not an MLflow tracking database (")
    assert rc == 2


def test_valid_or_missing_mlflow_db_passes_the_check(tmp_path):
    import sqlite3

    from unmask.tracking import check_store

    check_store(f"sqlite:///{tmp_path / 'new.db'}")       # created by MLflow later
    sqlite3.connect(tmp_path / "ok.db").execute("CREATE TABLE t (a)").connection.commit()
    check_store(f"sqlite:///{tmp_path / 'ok.db'}")
    check_store("http://127.0.0.1:5000")


# ---------------------------------------------------------------- 5. tracking.uri

@pytest.mark.parametrize("uri", ["foo://", "foo://host/x", "mlruns", "/abs/mlruns", "sqlite:mlflow.db", "http://",
                                 "ftp+pymysql://x", "s3://bucket/mlruns"])
def test_tracking_uri_with_unknown_scheme(uri):
    with pytest.raises(ConfigError, match=r"^params\.yaml: tracking\.uri: "):
        parse_study_params(parse_params({"tracking": {"uri": uri}}))


@pytest.mark.parametrize("uri", ["sqlite:///mlflow.db", "sqlite:////abs/mlflow.db", "http://mlflow:5000",
                                 "https://mlflow.example.org", "file:///abs/mlruns", "file:/abs/mlruns",
                                 "postgresql://u@db/mlflow", "mysql+pymysql://u@db/mlflow", "databricks",
                                 "databricks://profile", "databricks-uc", "uc:http://localhost:8080"])
def test_tracking_uri_mlflow_accepts(uri):
    assert parse_study_params(parse_params({"tracking": {"uri": uri}})).tracking.uri == uri


def test_tracking_uri_foo_from_the_cli(project, capsys):
    (project / "params.yaml").write_text(yaml.safe_dump({**STUDY, "tracking": {"uri": "foo://"}}))
    rc, err = _run(capsys, "ui")
    line = _one_line(err, "unmask ui: error: params.yaml: tracking.uri: unknown scheme 'foo:'")
    assert rc == 2 and "(got 'foo://')" in line


# ---------------------------------------------------------------- 8. SIGTERM to a sweep's process group

def test_sweep_reruns_in_its_own_session(project, capsys, monkeypatch):
    """A sweep not isolated in a network namespace re-runs itself in a session of its own (where
    group signals reach it once, as SIGINT); the re-run runs the driver in-process."""
    calls = []
    monkeypatch.delenv(cli.SWEEP_DRIVER_FLAG, raising=False)
    monkeypatch.setattr(cli, "run_in_own_session", lambda cmd, env=None: calls.append((cmd, env)) or 7)
    rc, _ = _run(capsys, "sweep", "x")
    assert rc == 7
    (cmd, env), = calls
    assert cmd == [sys.executable, "-m", "unmask.cli", "-q", "sweep", "x"]
    assert env[cli.SWEEP_DRIVER_FLAG] == "1"


CHILD = """
import signal, sys, time
def on(signum, frame):
    print("child got", signal.Signals(signum).name, flush=True)
    sys.exit(3)
signal.signal(signal.SIGINT, on)
signal.signal(signal.SIGTERM, on)
print("ready", flush=True)
time.sleep(60)
sys.exit(9)
"""
RUNNER = "import sys; from unmask.cli import run_in_own_session; sys.exit(run_in_own_session(sys.argv[1:]))"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_the_process_group_reaches_the_sweep_as_sigint(tmp_path, sig):
    """What ``kill -TERM -- -$PGID`` does to a sweep stage: the stage process forwards it, once, as the
    SIGINT on which Tune saves its state; the sweep (in its own session) gets nothing from the group."""
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, sys.executable, "-c", CHILD], stdout=subprocess.PIPE,
                              text=True, start_new_session=True)    # a group of its own, as `setsid dvc repro`
    try:
        assert runner.stdout.readline().strip() == "ready"
        os.killpg(runner.pid, sig)
        out, _ = runner.communicate(timeout=30)
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()
    assert out.strip() == "child got SIGINT"
    assert runner.returncode == 3


def test_benchmark_real_refuses_a_missing_folder_and_one_it_would_replace(tmp_path, capsys):
    params = str(Path(__file__).resolve().parents[1] / "params.yaml")
    assert cli.main(["--params", params, "--root", str(tmp_path), "-q", "benchmark-real",
                     str(tmp_path / "nope")]) == 2
    assert f"{tmp_path / 'nope'}: not a folder of photos" in capsys.readouterr().err
    inside = tmp_path / "reports" / "my-photos"
    inside.mkdir(parents=True)
    (inside / "a.png").write_bytes(b"keep me")
    assert cli.main(["--params", params, "--root", str(tmp_path), "-q", "benchmark-real", str(inside)]) == 2
    assert "which benchmark-real replaces" in capsys.readouterr().err
    assert (inside / "a.png").read_bytes() == b"keep me"
