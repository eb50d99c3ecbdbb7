import json

import pytest

from unmask.config import SplitConfig
from unmask.data.split import assign_identities, split_dataset
from unmask.errors import UnmaskError
from unmask.io.shards import read_table

from tests.helpers import write_synth


def test_splits_are_identity_disjoint_and_domains_too(tmp_path):
    synth = write_synth(tmp_path / "synth", n_identities=40, per_identity=3)
    report = split_dataset(synth, tmp_path / "splits", SplitConfig(val=0.1, test=0.2, clean_domain=0.5),
                           seed=3, progress=False)
    tables = {s: read_table(tmp_path / "splits" / s) for s in ("train", "val", "test")}
    ids = {s: set(t.column("identity").to_pylist()) for s, t in tables.items()}
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"] and not ids["val"] & ids["test"]
    assert sum(t.num_rows for t in tables.values()) == 120  # nothing lost
    train = tables["train"].to_pydict()
    masked = {i for i, d in zip(train["identity"], train["domain"]) if d == "masked"}
    clean = {i for i, d in zip(train["identity"], train["domain"]) if d == "clean"}
    assert masked and clean and not masked & clean
    assert set(tables["test"].column("domain").to_pylist()) == {"paired"}
    assert (len(ids["test"]), len(ids["val"])) == (8, 4)
    summary = json.loads((tmp_path / "splits" / "summary.json").read_text())
    assert summary == json.loads(json.dumps(report.to_dict()))
    assert all(v == 0 for v in summary["identity_overlap"].values())
    assert summary["rows"] == {"train": 84, "val": 12, "test": 24}


def test_assignment_is_deterministic_and_order_independent():
    ids = [f"p{i}" for i in range(30)]
    cfg = SplitConfig()
    a = assign_identities(ids, cfg, seed=1)
    b = assign_identities(list(reversed(ids)), cfg, seed=1)
    c = assign_identities(ids, cfg, seed=2)
    assert a == b
    assert a.split != c.split


def test_too_few_identities_is_a_clear_error():
    with pytest.raises(UnmaskError, match="too few"):
        assign_identities(["a", "b", "c"], SplitConfig(val=0.2, test=0.2), seed=0)


def test_failed_split_keeps_previous_output(tmp_path, monkeypatch):
    synth = write_synth(tmp_path / "synth", n_identities=10, per_identity=1)
    out = tmp_path / "splits"
    split_dataset(synth, out, SplitConfig(), seed=0, progress=False)
    before = (out / "summary.json").read_text()
    import unmask.data.split as mod

    def boom(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(mod.ShardWriter, "close", boom)
    with pytest.raises(RuntimeError):
        split_dataset(synth, out, SplitConfig(), seed=5, progress=False)
    assert (out / "summary.json").read_text() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".splits")]
