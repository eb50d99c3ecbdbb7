"""Atomic writes: in place only when complete, with the modes the umask gives a plain open/mkdir."""

from __future__ import annotations

import fcntl
import os
import signal
import stat
import subprocess
import sys

import pytest

from unmask.errors import UnmaskError
from unmask.io import atomic
from unmask.io.atomic import atomic_dir, atomic_path, current_umask, write_bytes, write_text


@pytest.fixture(params=[0o022, 0o002, 0o077], ids=lambda m: f"umask{m:03o}")
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_current_umask_reads_without_changing_it(umask, monkeypatch):
    assert current_umask() == umask
    monkeypatch.setattr(atomic, "_PROC_STATUS", "/nonexistent/status")   # not Linux: os.umask round trip
    assert current_umask() == umask
    assert current_umask() == umask


def test_written_files_follow_the_umask(umask, tmp_path):
    write_text(tmp_path / "a.txt", "x")
    write_bytes(tmp_path / "sub" / "b.bin", b"y")
    with atomic_path(tmp_path / "c.parquet") as tmp:
        tmp.write_bytes(b"z")
    expected = 0o666 & ~umask
    assert {_mode(tmp_path / p) for p in ("a.txt", "sub/b.bin", "c.parquet")} == {expected}
    assert (tmp_path / "a.txt").read_text() == "x"
    assert _mode(tmp_path / "sub") == 0o777 & ~umask     # made by mkdir, for comparison


@pytest.mark.parametrize(("mask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775)],
                         ids=["umask022", "umask002"])
def test_the_usual_umasks(mask, file_mode, dir_mode, tmp_path):
    old = os.umask(mask)
    try:
        write_text(tmp_path / "f.json", "{}")
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "inner.txt").write_text("x")
            write_text(tmp / "nested.txt", "y")          # an atomic write inside an atomic folder
    finally:
        os.umask(old)
    assert _mode(tmp_path / "f.json") == file_mode
    assert _mode(tmp_path / "d") == dir_mode
    assert _mode(tmp_path / "d" / "inner.txt") == file_mode
    assert _mode(tmp_path / "d" / "nested.txt") == file_mode


def test_atomic_dir_replacing_a_folder_follows_the_umask(umask, tmp_path):
    (tmp_path / "d").mkdir(mode=0o700)
    (tmp_path / "d" / "old.txt").write_text("old")
    with atomic_dir(tmp_path / "d") as tmp:
        (tmp / "new.txt").write_text("new")
    assert _mode(tmp_path / "d") == 0o777 & ~umask
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["new.txt"]


def test_a_mode_the_caller_sets_is_kept(umask, tmp_path):
    with atomic_path(tmp_path / "run.sh") as tmp:
        tmp.write_text("#!/bin/sh\n")
        tmp.chmod(0o750)
    assert _mode(tmp_path / "run.sh") == 0o750


def test_a_failed_write_leaves_the_old_file(tmp_path):
    write_text(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert (tmp_path / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "x").write_text("x")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


# ------------------------------------------------------------------ what a killed writer leaves behind
_KILLED_WRITER = """
import os, signal, sys
from unmask.io.atomic import atomic_dir, atomic_path
with atomic_dir(sys.argv[1] + "/aligned") as tmp:
    (tmp / "half.png").write_bytes(b"half")
    with atomic_path(sys.argv[1] + "/summary.json") as f:
        f.write_text("{")
        os.kill(os.getpid(), signal.SIGKILL)
"""


def _siblings(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_temporaries_of_a_writer_killed_with_sigkill_are_removed_on_the_next_write(tmp_path):
    (tmp_path / "aligned").mkdir()
    (tmp_path / "aligned" / "good.png").write_bytes(b"good")
    (tmp_path / ".aligned.notes").write_text("the user's")                     # not a temporary
    r = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(tmp_path)])
    assert r.returncode == -signal.SIGKILL
    left = [n for n in _siblings(tmp_path) if n.endswith(".tmp")]
    assert len(left) == 2                                                        # .aligned.*.tmp, .summary.json.*.tmp
    (tmp_path / ".aligned.k2j3x9_a.tmp").mkdir()                                 # one from before temporaries had a pid
    with atomic_dir(tmp_path / "aligned") as tmp:
        (tmp / "new.png").write_bytes(b"new")
    assert _siblings(tmp_path) == [".aligned.notes", next(n for n in left if n.startswith(".summary.json.")),
                                   "aligned"]                                    # only aligned's own are cleaned
    write_text(tmp_path / "summary.json", "{}")
    assert _siblings(tmp_path) == [".aligned.notes", "aligned", "summary.json"]
    assert _siblings(tmp_path / "aligned") == ["new.png"]


_LIVE_WRITER = """
import sys
from unmask.io.atomic import atomic_dir
with atomic_dir(sys.argv[1]) as tmp:
    (tmp / "theirs.png").write_bytes(b"theirs")
    print(tmp.name, flush=True)
    sys.stdin.readline()
"""


def test_temporary_of_a_live_writer_is_kept(tmp_path):
    with subprocess.Popen([sys.executable, "-c", _LIVE_WRITER, str(tmp_path / "synth")], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as live:
        theirs = live.stdout.readline().strip()
        with atomic_dir(tmp_path / "synth") as tmp:
            (tmp / "ours.png").write_bytes(b"ours")
        assert (tmp_path / theirs / "theirs.png").read_bytes() == b"theirs"    # still being written: kept
        live.communicate("\n", timeout=30)
    assert live.returncode == 0
    assert _siblings(tmp_path) == ["synth"] and _siblings(tmp_path / "synth") == ["theirs.png"]


def test_temporary_locked_by_a_writer_whose_pid_is_not_ours_to_see_is_kept(tmp_path):
    """A writer in another pid namespace (a container sharing the disk): its pid means nothing here,
    its lock does."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    foreign = tmp_path / f".splits.{dead}-abcdefgh.tmp"
    foreign.mkdir()
    fd = os.open(foreign, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with atomic_dir(tmp_path / "splits") as tmp:
            (tmp / "x").write_text("x")
        assert foreign.is_dir()
    finally:
        os.close(fd)
    with atomic_dir(tmp_path / "splits") as tmp:       # its lock released: a leftover now
        (tmp / "y").write_text("y")
    assert _siblings(tmp_path) == ["splits"]


def test_dot_old_of_an_interrupted_swap_is_put_back_when_the_output_is_missing(tmp_path):
    """Killed between moving ``raw`` aside and renaming the new folder in: only ``.raw.old`` is left."""
    (tmp_path / ".raw.old").mkdir()
    (tmp_path / ".raw.old" / "photo.png").write_bytes(b"kept")
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "raw"):
            raise RuntimeError("the next run fails too")
    assert _siblings(tmp_path) == ["raw"]
    assert (tmp_path / "raw" / "photo.png").read_bytes() == b"kept"


# ------------------------------------------------------------------ an output folder linked elsewhere
def test_output_folder_that_is_a_symlink_to_another_disk_stays_a_link(tmp_path):
    disk = tmp_path / "big_disk"
    (disk / "aligned").mkdir(parents=True)
    (disk / "aligned" / "old.png").write_bytes(b"old")
    project = tmp_path / "project" / "data"
    project.mkdir(parents=True)
    (project / "aligned").symlink_to(disk / "aligned")
    with atomic_dir(project / "aligned") as tmp:
        (tmp / "new.png").write_bytes(b"new")
    assert (project / "aligned").is_symlink()
    assert _siblings(project) == ["aligned"]                       # no real folder, no leftovers here
    assert _siblings(disk) == ["aligned"]
    assert _siblings(disk / "aligned") == ["new.png"]
    with pytest.raises(RuntimeError):                              # a failed write leaves the target as it was
        with atomic_dir(project / "aligned") as tmp:
            (tmp / "half.png").write_bytes(b"half")
            raise RuntimeError("boom")
    assert _siblings(disk / "aligned") == ["new.png"] and _siblings(disk) == ["aligned"]


def test_output_folder_linked_to_a_disk_not_mounted_is_refused(tmp_path):
    (tmp_path / "aligned").symlink_to(tmp_path / "unmounted" / "aligned")
    with pytest.raises(UnmaskError) as e:
        with atomic_dir(tmp_path / "aligned"):
            pass
    assert str(e.value) == (f"{tmp_path / 'aligned'}: a symbolic link to {tmp_path / 'unmounted' / 'aligned'}, "
                            f"whose folder {tmp_path / 'unmounted'} does not exist (not mounted?)")
    assert _siblings(tmp_path) == ["aligned"]
