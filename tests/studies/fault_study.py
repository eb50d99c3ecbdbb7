"""Micro studies under stress, for ``test_cluster.py`` and ``test_fault_tolerance.py``.

Run as ``python fault_study.py MODE WORKDIR`` inside :mod:`isolated`'s PID and loopback-only network
namespace; prints one JSON line with what the test checks. Modes:

- ``cluster``: ``ray start`` a head and a second node (one CPU each, token auth), run the study on
  that cluster through ``sweep.address``, ``ray stop``.
- ``kill-worker``: run the study while a thread SIGKILLs the trial's Ray worker once, after Tune
  took the trial's first checkpoint.
- ``interrupt``: run the study as a child process (``run`` mode), SIGINT it once one trial finished
  and the next one checkpointed, then run it again to the end.
- ``run``: run the study in ``WORKDIR/params.json`` once (exit status 3 on an UnmaskError).
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # tests/ for helpers

from helpers import write_synth  # noqa: E402

from unmask.config import SplitConfig, parse_params  # noqa: E402
from unmask.data.split import split_dataset  # noqa: E402
from unmask.errors import UnmaskError  # noqa: E402
from unmask.studies import parse_study_params  # noqa: E402
from studies.micro_study import PARAMS  # noqa: E402  (tests/ is on sys.path)

STUDY = "micro"
BASE = copy.deepcopy(PARAMS)            # the micro study of test_sweep, with one more retry
BASE["sweep"]["max_failures"] = 2
LONG = {"steps": 160, "val_every": 40}   # trials of a few seconds, four checkpoints each
CKPT = re.compile(r"checkpoint_(\d+)$")


def make_data(work: Path) -> Path:
    write_synth(work / "synth", n_identities=12, per_identity=2, size=16)
    split_dataset(work / "synth", work / "splits", SplitConfig(val=0.1, test=0.15), seed=0, progress=False)
    return work / "splits"


def params_dict(train: dict | None = None, sweep: dict | None = None, grid: dict | None = None) -> dict:
    p = copy.deepcopy(BASE)
    p["train"].update(train or {})
    p["sweep"].update(sweep or {})
    if grid:
        p["studies"][STUDY]["grid"] = grid
    return p


def run(work: Path, params: dict) -> Path:
    from unmask.studies.sweep import run_study

    return run_study(STUDY, parse_study_params(parse_params(params)), work / "splits", work / "results",
                     progress=False, root=work, data_source="test")


def checkpoints(work: Path) -> dict[str, list[Path]]:
    """Trial folder name -> its checkpoint folders, oldest first."""
    out: dict[str, list[Path]] = {}
    for trial in sorted((work / "ray" / STUDY).glob("trial_*")):
        found = [(int(m.group(1)), p) for p in trial.iterdir() if (m := CKPT.search(p.name))]
        out[trial.name] = [p for _, p in sorted(found)]
    return out


def trial_workers() -> list[int]:
    """PIDs of live Ray trial workers in this PID namespace."""
    out = subprocess.run(["ps", "-eo", "pid=,stat=,args="], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines()
            if "ImplicitFunc" in line or "ray::train_trial" in line if not line.split()[1].startswith("Z")]


# --------------------------------------------------------------------------- modes
def cluster(work: Path) -> dict:
    # the nodes and this driver share one token; Ray reads these when it is imported
    os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex + uuid.uuid4().hex})
    import ray

    ray_cli = str(Path(sys.executable).with_name("ray"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]

    def ray_start(*args: str) -> None:
        proc = subprocess.run([ray_cli, "start", *args, *common], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"ray start {' '.join(args)} failed: {proc.stderr[-2000:]}")

    try:
        ray_start("--head", f"--port={port}", "--include-dashboard=false")
        ray_start(f"--address={address}")
        ray.init(address=address)
        deadline = time.monotonic() + 60
        while sum(n["Alive"] for n in ray.nodes()) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        nodes = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
        ray.shutdown()
        out = run(work, params_dict(sweep={"address": address, "max_concurrent": 2}))
    finally:
        subprocess.run([ray_cli, "stop", "--force"], capture_output=True)   # this PID namespace only
    return {"out": str(out), "nodes": nodes}


def kill_worker(work: Path) -> dict:
    killed: dict = {}
    stop = threading.Event()

    def killer() -> None:
        # a checkpoint counts once Tune's driver has taken its result (a row in result.json): a
        # folder the worker has written but not yet reported would not be restored from
        while not stop.wait(0.1):
            for trial in (work / "ray" / STUDY).glob("trial_*/result.json"):
                steps = [json.loads(line)["step"] for line in trial.read_text().splitlines() if line.strip()]
                if steps and steps[-1] < LONG["steps"]:
                    pids = trial_workers()
                    if len(pids) == 1:            # one trial at a time: this trial's worker
                        os.kill(pids[0], signal.SIGKILL)
                        killed.update(trial=trial.parent.name, pid=pids[0], after=steps[-1])
                        return

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    out = run(work, params_dict(train=LONG, sweep={"max_concurrent": 1}))
    stop.set()
    seconds = time.perf_counter() - t0
    history = []    # Tune's results of the killed trial: which worker reported which step
    if killed:
        with open(work / "ray" / STUDY / killed["trial"] / "result.json") as f:
            history = [{k: json.loads(line)[k] for k in ("step", "pid", "iterations_since_restore")} for line in f]
    return {"out": str(out), "killed": killed, "history": history, "seconds": seconds}


def interrupt(work: Path) -> dict:
    import mlflow

    final = LONG["steps"] // LONG["val_every"] - 1
    (work / "params.json").write_text(json.dumps(params_dict(
        train=LONG, sweep={"max_concurrent": 1}, grid={"adv_loss": ["lsgan", "hinge", "minimax"]})))
    cmd = [sys.executable, __file__, "run", str(work)]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finished: dict[str, dict] = {}
    deadline = time.monotonic() + 150
    while child.poll() is None and time.monotonic() < deadline:
        ckpts = checkpoints(work)
        done = {t: c[-1] for t, c in ckpts.items() if c and int(CKPT.search(c[-1].name).group(1)) == final}
        going = [t for t, c in ckpts.items() if c and t not in done]
        if done and going:     # one trial finished, the next one (run one at a time) is under way
            for trial, ckpt in done.items():
                finished[trial] = {"checkpoint": str(ckpt / "last.pt"),
                                   "mtime_ns": (ckpt / "last.pt").stat().st_mtime_ns,
                                   "state": json.loads((ckpt / "trial_state.json").read_text())}
            child.send_signal(signal.SIGINT)
            break
        time.sleep(0.1)
    _, err = child.communicate(timeout=120)
    client = mlflow.MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    exp = client.get_experiment_by_name(STUDY)
    statuses = {r.info.run_id: r.info.status for r in client.search_runs([exp.experiment_id])}
    first = {"rc": child.returncode, "stderr": err[-3000:], "finished": finished, "statuses": statuses,
             "tables": (work / "results" / STUDY / "trials.parquet").exists()}
    t0 = time.perf_counter()
    rerun = subprocess.run(cmd, capture_output=True, text=True)
    return {"out": str(work / "results" / STUDY), "first": first, "rerun_rc": rerun.returncode,
            "rerun_stderr": rerun.stderr[-3000:], "rerun_s": time.perf_counter() - t0}


def main(mode: str, work: Path) -> None:
    work = work.resolve()
    if mode == "run":
        try:
            run(work, json.loads((work / "params.json").read_text()))
        except UnmaskError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(3)
        return
    make_data(work)
    result = {"cluster": cluster, "kill-worker": kill_worker, "interrupt": interrupt}[mode](work)
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
