"""A study on a two-node Ray cluster (``ray start`` head + second node, token auth) through
``sweep.address``: its trials spread over both nodes and the results say which node ran each.

Everything runs in a loopback-only network and PID namespace (:mod:`tests.studies.isolated`); skipped
with the reason where such namespaces are not permitted.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.studies.isolated import namespace_or_skip, run_isolated

SCRIPT = Path(__file__).with_name("fault_study.py")


@pytest.mark.slow
def test_trials_spread_over_two_nodes(tmp_path):
    namespace_or_skip()
    out = run_isolated(SCRIPT, "cluster", str(tmp_path), timeout=240)
    assert len(out["nodes"]) == 2, out["nodes"]
    table = pd.read_parquet(Path(out["out"]) / "trials.parquet")
    assert len(table) == 2
    assert (table["status"] == "TERMINATED").all(), table["error"].tolist()
    # one CPU per node, one CPU per trial, both trials at once: one trial on each node
    assert sorted(table["node_id"]) == sorted(out["nodes"])
    assert (table["node_ip"] == "127.0.0.1").all()
    assert table["test_psnr"].notna().all()
    for ckpt in table["checkpoint"]:   # relative to the project root
        assert (tmp_path / ckpt).is_file()
