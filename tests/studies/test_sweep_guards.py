"""A sweep's edges, checked before the first trial (no Ray cluster is started: its calls are stubbed):
resources no node has, an address nothing answers at, a storage path over the results, a second sweep of
the same study, an interruption while trials wait."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from unmask.config import parse_params
from unmask.errors import UnmaskError
from unmask.studies import ResourcesConfig, SweepConfig, expand_study, parse_study_params
from unmask.studies import cluster, tune_setup
from unmask.studies.cluster import check_resources, reachable_address
from unmask.studies.results import unfinished_trials
from unmask.studies.state import LOCK_FILE, STATE_FILE, study_lock
from unmask.studies.sweep import run_study

from tests.helpers import MICRO_PARAMS, micro_grid_study

CPU_ONLY = [{"Alive": True, "Resources": {"CPU": 2.0, "memory": 1e9}}, {"Alive": False, "Resources": {"GPU": 8.0}}]


@pytest.mark.parametrize("res, line", [
    ({"gpu": 1}, "params.yaml: sweep.resources.gpu: a trial asks for 1 GPU, but no node of the Ray cluster has "
                 "that many (the most on one node: 0); lower it"),
    ({"cpu": 4}, "params.yaml: sweep.resources.cpu: a trial asks for 4 CPU, but no node of the Ray cluster has "
                 "that many (the most on one node: 2); lower it"),
], ids=["gpu_1_without_a_gpu", "cpu_4_on_2_cores"])
def test_sweep_resources_no_node_has_fail_in_one_line(res, line):
    with pytest.raises(UnmaskError) as e:
        check_resources(ResourcesConfig(**res), CPU_ONLY)
    assert str(e.value) == line
    check_resources(ResourcesConfig(cpu=2), CPU_ONLY)   # what the node has is fine


def test_sweep_resources_gpu_1_is_refused_before_any_trial_is_started(tmp_path, monkeypatch):
    import ray
    from ray import tune

    raw = {**MICRO_PARAMS, "sweep": {"storage_path": "ray", "resources": {"gpu": 1}}}
    params = parse_study_params(parse_params(raw, "other.yaml"))
    monkeypatch.setattr(tune_setup, "ray_session", lambda cfg: contextlib.nullcontext())
    monkeypatch.setattr(ray, "nodes", lambda: CPU_ONLY)

    def no_tuner(*a, **kw):
        raise AssertionError("a trial was started")

    monkeypatch.setattr(tune, "Tuner", no_tuner)
    with pytest.raises(UnmaskError, match=r"^other.yaml: sweep.resources.gpu: a trial asks for 1 GPU"):
        tune_setup.sweep_trials("s", params.study("s"), params, expand_study(params, "s"), {}, str(tmp_path / "ray"),
                                str(tmp_path / "ray" / "s"), False, False, "synthetic")


def test_ctrl_c_while_trials_wait_counts_them_unfinished_without_attribute_error():
    """After SIGINT Tune hands back results of trials that never started with ``config`` None."""
    waiting = SimpleNamespace(config=None, error=None, metrics=None)
    assert unfinished_trials([waiting, waiting]) == 2


def test_sweep_address_127_0_0_1_port_1_fails_at_once_naming_the_address(monkeypatch):
    import ray

    monkeypatch.setattr(ray, "init", lambda *a, **kw: pytest.fail("ray.init was called"))
    t0 = time.monotonic()
    with pytest.raises(UnmaskError, match=r"^sweep.address: cannot reach a Ray cluster at 127.0.0.1:1 \(Connection "
                                          r"refused\)$"):
        with cluster.ray_session(SweepConfig(address="127.0.0.1:1")):
            pass
    assert time.monotonic() - t0 < 5


def test_sweep_address_that_never_answers_is_time_boxed(monkeypatch):
    def silent(addr, timeout):
        assert timeout == 30
        raise TimeoutError("timed out")

    monkeypatch.setattr(cluster.socket, "create_connection", silent)
    with pytest.raises(UnmaskError, match=r"^sweep.address: cannot reach a Ray cluster at ray://10.255.0.1:10001 "
                                          r"\(no answer within 30 s\)$"):
        reachable_address("ray://10.255.0.1:10001", "sweep.address", SweepConfig().connect_timeout_s)


def test_sweep_address_auto_never_joins_ray_processes_not_started_by_ray_start(monkeypatch):
    import ray._private.services as services

    monkeypatch.setattr(services, "find_bootstrap_address", lambda temp_dir: None)
    monkeypatch.setattr(services, "find_gcs_addresses", lambda: ["127.0.0.1:6379"], raising=False)
    with pytest.raises(UnmaskError, match=r"^sweep.address: auto: no cluster started with `ray start` on this "
                                          r"machine \(Ray processes another program started are not joined\)"):
        reachable_address("auto", "sweep.address", 1)


def test_storage_path_absolute_results_folder_is_refused_and_results_kept(tmp_path):
    micro_grid_study(tmp_path)
    out = tmp_path / "results" / "s"
    out.mkdir(parents=True)
    (out / "trials.parquet").write_bytes(b"old table")
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "k.pt").write_bytes(b"old weights")
    (tmp_path / "results" / f"s.{STATE_FILE}").write_text("{}")
    raw = {**MICRO_PARAMS, "sweep": {"storage_path": str(tmp_path / "results")}}
    params = parse_study_params(parse_params(raw))
    with pytest.raises(UnmaskError, match=rf"^params.yaml: sweep.storage_path: '{tmp_path}/results': it holds "):
        run_study("s", params, tmp_path / "splits", tmp_path / "results", progress=False, root=tmp_path)
    assert (out / "trials.parquet").read_bytes() == b"old table"
    assert (out / "checkpoints" / "k.pt").read_bytes() == b"old weights"


def test_two_sweeps_of_the_same_study_at_once_the_second_names_the_holder(tmp_path):
    params = micro_grid_study(tmp_path)
    lock = tmp_path / "results" / "s" / LOCK_FILE
    with study_lock(lock, "s"):
        with pytest.raises(UnmaskError, match=rf"^{lock}: study s is being swept already, by pid {os.getpid()} on "):
            run_study("s", params, tmp_path / "splits", tmp_path / "results", progress=False, root=tmp_path)
    with study_lock(lock, "s"):   # released when the sweep ends
        pass


def test_lock_of_a_killed_sweep_does_not_block(tmp_path):
    lock = tmp_path / LOCK_FILE
    lock.write_text("pid 999999 on elsewhere since 2020-01-01 00:00:00\n")   # left by a sweep long gone
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                               f"fd = os.open({str(lock)!r}, os.O_RDWR); fcntl.flock(fd, fcntl.LOCK_EX)\n"
                               "print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(UnmaskError, match="being swept already, by pid 999999 on elsewhere"):
            with study_lock(lock, "s"):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with study_lock(lock, "s"):
        assert lock.read_text().startswith(f"pid {os.getpid()} on ")
