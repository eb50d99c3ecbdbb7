"""The tracking store: a sqlite store another process holds locked is one line naming it, at once."""

from __future__ import annotations

import sqlite3
import time

import pytest

from unmask import tracking
from unmask.errors import UnmaskError
from unmask.studies.config import TrackingConfig


@pytest.mark.parametrize("lock", ["BEGIN EXCLUSIVE", "BEGIN IMMEDIATE"])
def test_locked_mlflow_db_is_one_line_naming_it_before_mlflow_waits(tmp_path, monkeypatch, lock):
    db = tmp_path / "mlflow.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute(lock)                   # another program's open write transaction
    monkeypatch.setattr(tracking, "LOCK_WAIT_S", 0.2)
    t0 = time.monotonic()
    try:
        with pytest.raises(UnmaskError) as e:
            tracking.configure(TrackingConfig(uri="sqlite:///mlflow.db"), tmp_path)
    finally:
        holder.close()
    assert str(e.value) == (f"{db}: database is locked by another process (waited 0.2 s); end the program "
                            "holding it, then run again")
    assert time.monotonic() - t0 < 3
    tracking.check_store(f"sqlite:///{db}")   # free again: fine
