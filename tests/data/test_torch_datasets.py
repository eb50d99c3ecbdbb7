import torch

from unmask.config import SplitConfig
from unmask.data.split import split_dataset
from unmask.data.torch_datasets import PairedDataset, UnpairedDataset, infinite_batches

from tests.helpers import write_synth


def _splits(tmp_path):
    synth = write_synth(tmp_path / "synth", n_identities=20, per_identity=2, size=32)
    split_dataset(synth, tmp_path / "splits", SplitConfig(val=0.1, test=0.2), seed=0, progress=False)
    return tmp_path / "splits"


def test_paired_items_are_in_range_and_mask_matches_occlusion(tmp_path):
    ds = PairedDataset(_splits(tmp_path) / "test")
    item = ds[0]
    assert item["occluded"].shape == (3, 32, 32) and item["mask"].shape == (1, 32, 32)
    assert item["clean"].min() >= -1 and item["clean"].max() <= 1
    assert set(item["mask"].unique().tolist()) == {0.0, 1.0}
    keep = item["mask"][0] == 0
    assert torch.equal(item["occluded"][:, keep], item["clean"][:, keep])
    assert not torch.equal(item["occluded"], item["clean"])


def test_lazy_decoding_gives_the_same_items(tmp_path):
    splits = _splits(tmp_path)
    a, b = PairedDataset(splits / "val"), PairedDataset(splits / "val", preload_limit_mb=0)
    assert b.columns["clean"].tensor is None and a.columns["clean"].tensor is not None
    for k in ("occluded", "clean", "mask"):
        assert torch.equal(a[1][k], b[1][k])


def test_unpaired_domains_come_from_disjoint_people(tmp_path):
    ds = UnpairedDataset(_splits(tmp_path) / "train", seed=1)
    assert ds.masked_identities and ds.clean_identities
    assert not ds.masked_identities & ds.clean_identities
    assert torch.equal(ds[3]["clean"], UnpairedDataset(tmp_path / "splits" / "train", seed=1)[3]["clean"])


def test_resize_and_kind_filter(tmp_path):
    splits = _splits(tmp_path)
    ds = PairedDataset(splits / "test", kinds=["surgical"], size=16)
    assert set(ds.kinds) == {"surgical"}
    assert ds[0]["clean"].shape == (3, 16, 16)


def test_infinite_batches_reshuffle_reproducibly(tmp_path):
    ds = PairedDataset(_splits(tmp_path) / "test")
    it1, it2 = infinite_batches(ds, 2, seed=4), infinite_batches(ds, 2, seed=4)
    for _ in range(len(ds)):  # crosses an epoch boundary
        b1, b2 = next(it1), next(it2)
        assert b1["clean"].shape[0] == 2 and torch.equal(b1["clean"], b2["clean"])


def test_round_robin_by_identity_shows_different_people_first():
    from unmask.data.torch_datasets import round_robin_by_identity

    order = round_robin_by_identity(["a", "a", "a", "b", "b", "c"])
    assert order == [0, 3, 5, 1, 4, 2]
    assert sorted(order) == list(range(6))


def test_the_clean_domain_holds_each_source_image_once_whatever_its_variants(tmp_path):
    """A second variant of every face (seed 002's centre hole) must not double the clean domain: the
    CycleGAN trainers' epochs, and so their results, stay those of the face-mask data alone."""
    import json

    from tests.helpers import synth_rows
    from unmask.data.schema import SYNTH
    from unmask.io.shards import write_rows

    rows = synth_rows(n_identities=20, per_identity=2, size=32)
    extra = [{**r, "image_id": r["source_id"] + "#centre_hole", "kind": "centre_hole", "attrs": json.dumps({})}
             for r in rows]
    write_rows(tmp_path / "one", SYNTH, rows)
    write_rows(tmp_path / "two", SYNTH, [x for pair in zip(rows, extra) for x in pair])
    for name in ("one", "two"):
        split_dataset(tmp_path / name, tmp_path / f"{name}_splits", SplitConfig(val=0.1, test=0.2), seed=0,
                      progress=False)
    a = UnpairedDataset(tmp_path / "one_splits" / "train", kinds=["surgical", "cloth"], seed=0)
    b = UnpairedDataset(tmp_path / "two_splits" / "train", kinds=["surgical", "cloth"], seed=0)
    assert len(a) == len(b) and len(b.clean) == len(a.clean)
    assert all(torch.equal(a[i]["clean"], b[i]["clean"]) for i in range(len(a)))


def _parsed_splits(tmp_path, with_parsing: bool = True):
    from unmask.io.shards import write_rows
    from unmask.data.schema import SYNTH
    from tests.helpers import synth_rows

    write_rows(tmp_path / "synth", SYNTH, synth_rows(20, 2, size=32, with_parsing=with_parsing))
    split_dataset(tmp_path / "synth", tmp_path / "splits", SplitConfig(val=0.1, test=0.2), seed=0, progress=False)
    return tmp_path / "splits"


def test_a_dataset_yields_the_fields_asked_for_with_parsing_labels_resized_nearest(tmp_path):
    ds = PairedDataset(_parsed_splits(tmp_path) / "test", size=16, fields=("occluded", "parsing", "landmarks"))
    item = ds[0]
    assert list(item) == ["occluded", "parsing", "landmarks"]
    parsing = item["parsing"]
    assert parsing.shape == (16, 16) and parsing.dtype == torch.int64
    assert set(parsing.unique().tolist()) == {0, 1, 10}       # labels stay labels: no blend of 1 and 10
    assert (parsing[:2] == 10).all() and parsing[8, 8] == 1 and parsing[15, 15] == 0
    assert item["landmarks"].shape == (68, 2)


def test_a_field_the_data_lacks_is_one_line_naming_the_folder(tmp_path):
    import pytest
    from unmask.errors import UnmaskError

    test_dir = _parsed_splits(tmp_path, with_parsing=False) / "test"
    with pytest.raises(UnmaskError) as err:
        PairedDataset(test_dir, fields=("occluded", "clean", "mask", "parsing"))
    assert str(err.value).startswith(f"{test_dir}: ") and "no 'parsing'" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(UnmaskError, match="not 'mask'"):
        UnpairedDataset(test_dir.parent / "train", fields=("occluded", "clean", "mask"))


def test_a_trainer_gets_the_fields_it_declares_and_val_test_also_the_mask(tmp_path, monkeypatch):
    from unmask.studies.trial import trial_datasets
    from unmask.training import TRAINERS, TrainConfig
    from unmask.training.paired import PairedInpaintingTrainer

    class ParsingTrainer(PairedInpaintingTrainer):    # a trainer that needs the parsing maps
        framework = "parsing_toy"
        FIELDS = ("occluded", "clean", "parsing")

    monkeypatch.setattr(TRAINERS, "_entries", dict(TRAINERS._entries))
    TRAINERS.register("parsing_toy")(ParsingTrainer)
    splits = _parsed_splits(tmp_path)
    cfg = TrainConfig.from_dict({"framework": "parsing_toy", "image_size": 16})
    train, val, test = trial_datasets({"image_size": 16, "kinds": None}, cfg, splits)
    assert list(train[0]) == ["occluded", "clean", "parsing"]
    assert list(val[0]) == list(test[0]) == ["occluded", "clean", "mask", "parsing"]
