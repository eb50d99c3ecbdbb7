"""Atomic writes: in place only when complete, with the modes the umask gives a plain open/mkdir."""

from __future__ import annotations

import os
import stat

import pytest

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
