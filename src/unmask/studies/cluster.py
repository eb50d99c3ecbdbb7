"""The Ray cluster a sweep runs on: attach to one, or start a local one, and check it can run the trials.

:func:`ray_session` joins the cluster at ``sweep.address`` (or ``RAY_ADDRESS``), shipping ``src/unmask``
to its workers, after :func:`reachable_address` has checked within ``sweep.connect_timeout_s`` that
something answers there; without an address it starts a local cluster bound to 127.0.0.1, without
dashboard, and shuts it down after. :func:`check_resources` refuses, before the first trial, a
``sweep.resources`` request no alive node can meet (Tune would wait for ever).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from pathlib import Path
from typing import Any, Iterator

import unmask
from unmask.errors import UnmaskError
from unmask.studies.config import ResourcesConfig, SweepConfig

log = logging.getLogger("unmask")


def _worker_env() -> dict[str, str]:
    return {"MLFLOW_DISABLE_TELEMETRY": "true", "RAY_USAGE_STATS_ENABLED": "0"}


@contextlib.contextmanager
def ray_session(cfg: SweepConfig) -> Iterator[None]:
    """Attach to ``sweep.address`` / ``RAY_ADDRESS`` (shipping ``src/unmask``), or start a local
    cluster bound to 127.0.0.1 without dashboard; a cluster started here is shut down after."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # checkpoints at every validation of short CPU trials are expected, not a bottleneck to warn about
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Tune's legacy table reporter: the only one that takes our columns (cell, seed, val PSNR)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # it notes, per trial, that TensorBoard cannot take the betas tuple: noise beside the table
    logging.getLogger("ray.tune.logger.tensorboardx").setLevel(logging.WARNING)
    if ray.is_initialized():
        yield
        return
    key = "sweep.address" if cfg.address else "RAY_ADDRESS"
    address = cfg.address or os.environ.get("RAY_ADDRESS")
    package = str(Path(unmask.__file__).parent)
    if address:
        address = reachable_address(address, key, cfg.connect_timeout_s)
        log.info("joining the Ray cluster at %s (%s)", address, key)
        ray.init(address=address, runtime_env={"py_modules": [package], "env_vars": _worker_env()})
    else:
        src = str(Path(package).parent)
        env = {**_worker_env(), "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
        # address="local": always a new cluster, never one a `ray start` left on this machine
        ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1",
                 runtime_env={"env_vars": env})
    try:
        yield
    finally:
        ray.shutdown()


def reachable_address(address: str, key: str, timeout_s: float) -> str:
    """The cluster address to hand ``ray.init``, after checking within ``timeout_s`` that something answers
    there (``ray.init`` itself retries an unreachable address for minutes): UnmaskError naming ``key``
    otherwise. ``auto`` is the cluster ``ray start`` started on this machine, never other Ray processes
    that happen to run here (another program's own cluster)."""
    from ray._private.services import find_bootstrap_address

    if address == "auto":
        found = find_bootstrap_address(None)
        if found is None:
            raise UnmaskError(f"{key}: auto: no cluster started with `ray start` on this machine (Ray processes "
                              "another program started are not joined); start one, or give its address")
        address = found
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise UnmaskError(f"{key}: {address!r} is not host:port (or ray://host:port, or auto)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as err:
        why = f"no answer within {timeout_s:g} s" if isinstance(err, TimeoutError) else (err.strerror or str(err))
        raise UnmaskError(f"{key}: cannot reach a Ray cluster at {address} ({why})") from None
    return address


def check_resources(res: ResourcesConfig, nodes: list[dict[str, Any]], source: str = "params.yaml") -> None:
    """UnmaskError naming the ``sweep.resources`` key no alive node of the cluster (``ray.nodes()``) can
    meet: Tune would wait for ever for a node with the GPU (or the CPUs) one trial asks for."""
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]
    for key, name, need in (("gpu", "GPU", res.gpu), ("cpu", "CPU", res.cpu)):
        most = max((r.get(name, 0) for r in alive), default=0)
        if need > most:
            raise UnmaskError(f"{source}: sweep.resources.{key}: a trial asks for {need:g} {name}, but no node of "
                              f"the Ray cluster has that many (the most on one node: {most:g}); lower it")
    if not any(r.get("GPU", 0) >= res.gpu and r.get("CPU", 0) >= res.cpu for r in alive):
        raise UnmaskError(f"{source}: sweep.resources: no node of the Ray cluster has {res.cpu:g} CPU and "
                          f"{res.gpu:g} GPU together")
