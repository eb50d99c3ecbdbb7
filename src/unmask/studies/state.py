"""What a study's sweeps leave for the next one: the Tune experiment, its state file, and the study's lock.

Resume: the Tune experiment lives at ``<sweep.storage_path>/<study>`` next to ``<study>.unmask-sweep.json``
(fingerprints of the trials to train and of the data files' sizes and mtimes, the keys of all the
study's trials, and the parent run id). Running the study again with the same trials to train
restores the experiment (``Tuner.restore(..., resume_errored=True)``): finished trials are not
retrained, interrupted ones continue from their last checkpoint, and the same parent run is reopened
(as it is when the study's trials are unchanged, e.g. all stored by now). A changed set of trials to
train (grid, search, seeds, budget, or trials another study stored meanwhile) or changed data starts
the experiment afresh; a changed study also gets a new parent run. The decision is
:func:`unmask.studies.resume.plan_resume`; :func:`resume` reads what it needs and deletes the experiment
when it starts over, :func:`save_state` records the run for the next one.

Lock: ``<results_dir>/<study>/.sweep.lock`` is held (:func:`study_lock`) while the study is swept, so
that a second sweep of the same study is refused, naming the first.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pyarrow.fs as pafs

from unmask.errors import UnmaskError
from unmask.studies.config import SearchConfig, SweepConfig
from unmask.studies.grid import Trial, fingerprint
from unmask.studies.resume import ResumePlan, plan_resume

STATE_FILE = "unmask-sweep.json"   # <storage>/<study>.unmask-sweep.json
LOCK_FILE = ".sweep.lock"          # <results_dir>/<study>/.sweep.lock: held by the study's running sweep


@contextlib.contextmanager
def study_lock(path: Path, name: str) -> Iterator[None]:
    """Hold ``path`` (flock, released when the process ends, however it ends) while study ``name`` is
    swept; UnmaskError saying who holds it when another sweep of the study runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "another process"
            raise UnmaskError(f"{path}: study {name} is being swept already, by {holder}; wait for it to end "
                              "(it keeps what it trains)") from None
        os.ftruncate(fd, 0)
        # in the sweep's PID namespace it is PID 1: name the `unmask sweep` outside (netns.OUTER_PID; not
        # imported: the evaluate stage, whose imports reach this module through unmask.studies, does not
        # depend on netns)
        pid = os.environ.get("UNMASK_SWEEP_PID") or os.getpid()
        os.pwrite(fd, f"pid {pid} on {socket.gethostname()} since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def tune_storage(cfg: SweepConfig, root: Path) -> str:
    """The storage path Tune wants: a URI as given, a local path made absolute."""
    if "://" in cfg.storage_path:
        return cfg.storage_path.rstrip("/")
    return str((root / cfg.storage_path).resolve())


def read_state(fs: pafs.FileSystem, path: str) -> dict[str, Any] | None:
    try:
        with fs.open_input_stream(path) as f:
            return json.loads(f.read().decode())
    except (FileNotFoundError, OSError, json.JSONDecodeError):
        return None


def write_state(fs: pafs.FileSystem, path: str, state: dict[str, Any]) -> None:
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as f:
        f.write(json.dumps(state).encode())


def data_fingerprint(data_root: Path) -> list[tuple[str, int, int]]:
    """(file, size, mtime) of every split file: new data starts the sweep afresh instead of resuming."""
    return [(str(p.relative_to(data_root)), p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(data_root.rglob("*")) if p.is_file()]


def can_restore(exp_path: str) -> bool:
    from ray import tune

    return tune.Tuner.can_restore(exp_path)


@dataclass(frozen=True)
class Experiment:
    """Where study ``name``'s Tune experiment and its state file live."""

    name: str
    storage: str              # Tune's storage_path: a URI as given, or an absolute local path
    fs: pafs.FileSystem
    base: str                 # ``storage`` within ``fs``

    @classmethod
    def of(cls, name: str, cfg: SweepConfig, root: Path) -> Experiment:
        storage = tune_storage(cfg, root)
        fs, base = pafs.FileSystem.from_uri(storage)
        return cls(name, storage, fs, base)

    @property
    def path(self) -> str:
        """The experiment as Tune names it (``Tuner.restore``)."""
        return f"{self.storage}/{self.name}"

    @property
    def folder(self) -> str:
        """The experiment's folder within ``fs``."""
        return f"{self.base}/{self.name}"

    @property
    def state_path(self) -> str:
        return f"{self.base}/{self.name}.{STATE_FILE}"


@dataclass(frozen=True)
class Resume:
    """What this run of the study does with its last sweep (``plan``), and what it read to decide."""

    last: dict[str, Any] | None   # the state file the last run wrote; None when there is none
    plan: ResumePlan
    study_fp: str | None          # every trial's key (grid studies); None for a search study

    @property
    def last_parent_run_id(self) -> str | None:
        """The parent run of the last sweep (None: none recorded)."""
        return self.last.get("parent_run_id") if self.last is not None else None


def resume(exp: Experiment, trials: list[Trial], pending: list[Trial], keys: list[str] | None,
           data_root: Path, search: SearchConfig | None) -> Resume:
    """Read the state file and decide (:func:`plan_resume`) from the trials to train (``pending``), the
    data and, for a grid study (``keys``: its trials' store keys), the whole study; the experiment folder
    is deleted when the plan starts over. Ray is asked whether it can restore only when there is
    something to train and a state file."""
    # resume: the trials to train (not those stored) and the data; the study: every trial's key
    data_fp = data_fingerprint(data_root)
    search_fp = [search.model_dump(exclude_none=True)] if search is not None else []

    def sweep_fp(ts: list[Trial]) -> str:
        return json.dumps([fingerprint(ts), data_fp, *search_fp])

    train = bool(pending)
    fp = sweep_fp(pending)
    study_fp = json.dumps(keys) if keys is not None else None
    state = read_state(exp.fs, exp.state_path)
    plan = plan_resume(state, fp, sweep_fp(trials) if keys is not None else None, study_fp, train,
                       can_restore=train and state is not None and can_restore(exp.path),   # Ray only then
                       experiment_exists=train and exp.fs.get_file_info(exp.folder).type != pafs.FileType.NotFound)
    if plan.start_over:
        exp.fs.delete_dir(exp.folder)          # another trial set: start over
    return Resume(state, plan, study_fp)


def save_state(exp: Experiment, resume: Resume, parent_run_id: str) -> None:
    """Record this run (fingerprints, study keys, parent run) for the next; unchanged state is not rewritten."""
    new_state = {"fingerprint": resume.plan.fingerprint, "study": resume.study_fp, "parent_run_id": parent_run_id}
    if new_state != resume.last:
        write_state(exp.fs, exp.state_path, new_state)
