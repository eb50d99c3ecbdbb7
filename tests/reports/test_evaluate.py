import numpy as np
import pytest
import torch

from unmask.data.torch_datasets import PairedDataset, batches
from unmask.errors import ConfigError, UnmaskError
from unmask.metrics import BASELINES, MetricSuite, aggregate, compute_metrics
from unmask.evaluation import evaluate_study, load_samples
from unmask.training import load_trainer

from tests.reports.helpers import SIZE, make_splits, train_tiny, trial_row, trials_frame


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("study")
    splits = make_splits(root)
    _, ckpt = train_tiny(splits, root / "t0")
    rows = [trial_row("t0", {"adv_loss": "lsgan"}, 0, ckpt),
            trial_row("t1", {"adv_loss": "hinge"}, 0, root / "never-written.pt", status="ERROR")]
    return splits, ckpt, trials_frame(rows), root


def test_evaluate_reproduces_translate_metrics_and_adds_baselines(study, tmp_path):
    splits, ckpt, trials, _ = study
    table = evaluate_study(trials, splits / "test", None, ["input", "telea"], MetricSuite(str(tmp_path / "no-weights")),
                           tmp_path / "out", n_samples=3, batch_size=3, progress=False)

    ds = PairedDataset(splits / "test", size=SIZE)
    expected = load_trainer(ckpt, device="cpu").evaluate(batches(ds, 4))
    row = table[table.trial_id == "t0"].iloc[0]
    for metric, value in expected.items():
        assert row[f"test_{metric}"] == pytest.approx(value, rel=1e-6, abs=1e-9), metric
    assert row["n_test"] == len(ds)

    base = table[table.role == "baseline"].set_index("cell_label")
    assert list(base.index) == ["input", "telea"]
    occ, clean, mask = (torch.stack([ds[i][k] for i in range(len(ds))]) for k in ("occluded", "clean", "mask"))
    want = aggregate([compute_metrics(BASELINES["input"]((occ + 1) / 2, mask), (clean + 1) / 2, mask=mask)])
    assert base.loc["input", "test_psnr"] == pytest.approx(want["psnr"], rel=1e-6)
    assert base.loc["telea", "test_l1_masked"] < base.loc["input", "test_l1_masked"]

    failed = table[table.trial_id == "t1"].iloc[0]
    assert failed["status"] == "ERROR" and np.isnan(failed["test_psnr"])
    assert table["test_lpips"].isna().all()
    assert table["note_lpips"].str.startswith("n/a: weights missing").all()
    assert (tmp_path / "out" / "eval.parquet").is_file()


def test_samples_hold_inputs_targets_and_each_output(study, tmp_path):
    splits, ckpt, trials, _ = study
    evaluate_study(trials, splits / "test", None, ["input"], None, tmp_path, n_samples=2, batch_size=4,
                   progress=False)
    s = load_samples(tmp_path / "samples.npz")
    assert s["labels"] == ["adv_loss=lsgan", "baseline: input"]
    assert s["input"].shape == s["target"].shape == (2, SIZE, SIZE, 3) and s["mask"].shape == (2, SIZE, SIZE)
    assert all(o.shape == (2, SIZE, SIZE, 3) and o.dtype == np.uint8 for o in s["outputs"])
    np.testing.assert_array_equal(s["outputs"][1], s["input"])   # the input baseline changes nothing
    ds = PairedDataset(splits / "test", size=SIZE)
    pred = load_trainer(ckpt, device="cpu").translate(ds[0]["occluded"][None], ds[0]["mask"][None])
    got = torch.from_numpy(s["outputs"][0][0]).float().permute(2, 0, 1) / 127.5 - 1
    assert (got - pred[0]).abs().max() <= 1 / 127.5


def test_bad_inputs_give_one_line_errors(study, tmp_path):
    splits, _, trials, _ = study
    with pytest.raises(ConfigError, match="baselines.*'magic'"):
        evaluate_study(trials, splits / "test", None, ["magic"], None, tmp_path, progress=False)
    with pytest.raises(UnmaskError, match="missing column 'checkpoint'"):
        evaluate_study(trials.drop(columns="checkpoint"), splits / "test", None, [], None, tmp_path, progress=False)
    broken = trials.copy()
    broken.loc[0, "checkpoint"] = str(tmp_path / "gone.pt")
    with pytest.raises(UnmaskError, match="gone.pt: checkpoint not found"):
        evaluate_study(broken, splits / "test", None, [], None, tmp_path, progress=False)
    assert not (tmp_path / "eval.parquet").exists()


def test_sample_faces_are_different_people(study, tmp_path):
    splits, _, trials, _ = study
    evaluate_study(trials, splits / "test", None, [], None, tmp_path, n_samples=2, progress=False)
    s = load_samples(tmp_path / "samples.npz")
    ds = PairedDataset(splits / "test", size=SIZE)
    shown = [next(i for i in range(len(ds)) if torch.equal(
        ((ds[i]["clean"].permute(1, 2, 0) + 1) * 127.5).round().to(torch.uint8), torch.from_numpy(t)))
        for t in s["target"]]
    assert len({ds.identities[i] for i in shown}) == 2


def test_checkpoints_on_a_filesystem_uri_are_fetched(study, tmp_path):
    """A sweep on shared storage (sweep.storage_path: s3://...) records its checkpoints as URIs."""
    splits, ckpt, trials, _ = study
    local = evaluate_study(trials.iloc[:1], splits / "test", None, [], None, tmp_path / "a", progress=False)
    remote = trials.iloc[:1].copy()
    remote.loc[0, "checkpoint"] = f"file://{ckpt}"
    table = evaluate_study(remote, splits / "test", None, [], None, tmp_path / "b", progress=False)
    assert table.loc[0, "test_psnr"] == pytest.approx(local.loc[0, "test_psnr"], rel=1e-6)
    remote.loc[0, "checkpoint"] = f"file://{tmp_path}/gone/last.pt"
    with pytest.raises(UnmaskError, match=r"^file://.*/gone/last.pt: cannot fetch the checkpoint"):
        evaluate_study(remote, splits / "test", None, [], None, tmp_path / "c", progress=False)


def test_rows_record_the_training_cpu_else_this_one(study, tmp_path):
    splits, _, trials, _ = study
    here = evaluate_study(trials.iloc[1:], splits / "test", None, ["input"], None, tmp_path / "a", progress=False)
    assert here["cpu"].str.contains("vector extensions").all() and (here["cpu"] == here["eval_cpu"]).all()
    trained = trials.iloc[1:].assign(cpu="Trainer CPU; vector extensions: amx_tile")
    table = evaluate_study(trained, splits / "test", None, ["input"], None, tmp_path / "b", progress=False)
    by_role = table.set_index("role")
    assert by_role.loc["trial", "cpu"] == "Trainer CPU; vector extensions: amx_tile"
    assert by_role.loc["baseline", "cpu"] == by_role.loc["baseline", "eval_cpu"] == here["eval_cpu"].iloc[0]


def test_evaluate_stage_writes_metrics_json_beside_eval(study, tmp_path):
    """`unmask evaluate STUDY` (the DVC stage) writes results/STUDY/metrics.json for `dvc metrics`."""
    import json

    from unmask.config import parse_params
    from unmask.pipeline import run_evaluate

    splits, _, trials, _ = study
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "splits").symlink_to(splits)
    (tmp_path / "results" / "micro").mkdir(parents=True)
    trials.to_parquet(tmp_path / "results" / "micro" / "trials.parquet")
    params = parse_params({"studies": {"micro": {"grid": {"adv_loss": ["lsgan", "hinge"]}, "baselines": ["input"]}}})
    run_evaluate(params, "micro", root=tmp_path, progress=False)
    got = json.loads((tmp_path / "results" / "micro" / "metrics.json").read_text())
    assert got["study"] == "micro" and set(got["cells"]) == {"adv_loss=lsgan", "adv_loss=hinge"}
    assert got["cells"]["adv_loss=lsgan"]["test_psnr"]["n"] == 1
    assert isinstance(got["cells"]["adv_loss=lsgan"]["test_psnr"]["mean"], float)
    assert got["cells"]["adv_loss=hinge"]["test_psnr"] == {"mean": None, "std": None, "n": 0}
    assert isinstance(got["baselines"]["input"]["test_psnr"], float)
    assert isinstance(got["beats"]["adv_loss=lsgan"]["input"]["test_psnr"], bool)


def test_resolve_location_joins_relative_paths_to_the_project_root(tmp_path):
    from unmask.evaluation.evaluate import resolve_location

    rel = "results/micro/checkpoints/k.pt"
    assert resolve_location(rel, tmp_path) == str(tmp_path / rel)
    assert resolve_location(rel, "proj") == "proj/results/micro/checkpoints/k.pt"
    assert resolve_location(rel, None) == rel                         # no root: as stored (the cwd)
    assert resolve_location(str(tmp_path / "abs.pt"), "/elsewhere") == str(tmp_path / "abs.pt")
    for uri in ("s3://bucket/ray/t0/last.pt", "gs://b/last.pt", "file:///tmp/x/last.pt"):
        assert resolve_location(uri, tmp_path) == uri
    assert resolve_location("", tmp_path) == ""                       # a trial without a checkpoint


def _project(root, splits, ckpt, trials):
    """A project at ``root`` laid out as a sweep leaves it: trials.parquet whose checkpoint column is
    relative to the project root (results/micro/checkpoints/<key>.pt)."""
    import shutil

    (root / "data").mkdir(parents=True)
    (root / "data" / "splits").symlink_to(splits)
    (root / "results" / "micro" / "checkpoints").mkdir(parents=True)
    shutil.copyfile(ckpt, root / "results" / "micro" / "checkpoints" / "t0.pt")
    relative = trials.copy()
    relative.loc[0, "checkpoint"] = "results/micro/checkpoints/t0.pt"
    relative.to_parquet(root / "results" / "micro" / "trials.parquet")
    return relative


def test_evaluate_reads_relative_checkpoints_from_the_root_not_the_cwd(study, tmp_path, monkeypatch):
    splits, ckpt, trials, _ = study
    relative = _project(tmp_path / "proj", splits, ckpt, trials)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    expected = evaluate_study(trials.iloc[:1], splits / "test", None, [], None, tmp_path / "a", progress=False)
    table = evaluate_study(relative.iloc[:1], splits / "test", None, [], None, tmp_path / "b", progress=False,
                           root=tmp_path / "proj")
    assert table.loc[0, "test_psnr"] == pytest.approx(expected.loc[0, "test_psnr"], rel=1e-6)
    assert table.loc[0, "checkpoint"] == "results/micro/checkpoints/t0.pt"   # kept as stored: portable
    with pytest.raises(UnmaskError, match="checkpoint not found"):             # no root: the cwd, which lacks it
        evaluate_study(relative.iloc[:1], splits / "test", None, [], None, tmp_path / "c", progress=False)


def test_cli_evaluate_with_root_from_another_directory(study, tmp_path, monkeypatch, capsys):
    """`unmask --root DIR evaluate STUDY` run outside DIR reads DIR's checkpoints."""
    import json

    import yaml

    from unmask import cli

    splits, ckpt, trials, _ = study
    proj = tmp_path / "proj"
    _project(proj, splits, ckpt, trials)
    params = {"data": {}, "align": {}, "synthesize": {}, "split": {}, "sweep": {},
              "train": {"image_size": SIZE, "steps": 2},
              "studies": {"micro": {"grid": {"adv_loss": ["lsgan", "hinge"]}, "baselines": ["input"]}}}
    (proj / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    rc = cli.main(["-q", "--params", str(proj / "params.yaml"), "--root", "../proj", "evaluate", "micro"])
    assert rc == 0, capsys.readouterr().err
    got = json.loads((proj / "results" / "micro" / "metrics.json").read_text())
    assert got["cells"]["adv_loss=lsgan"]["test_psnr"]["n"] == 1
    assert not (tmp_path / "elsewhere" / "results").exists()


def test_metrics_are_also_broken_down_by_occlusion_kind(study, tmp_path):
    from unmask.reports.tables import per_kind_section

    splits, _, trials, _ = study
    table = evaluate_study(trials, splits / "test", None, [], None, tmp_path, n_samples=1, batch_size=4,
                           progress=False)
    kinds = PairedDataset(splits / "test", size=SIZE).kinds
    row = table[table.trial_id == "t0"].iloc[0]
    if len(set(kinds)) < 2:
        pytest.skip("the micro test split drew one occlusion kind")
    per = {k: row[f"test_psnr@{k}"] for k in set(kinds)}
    overall = sum(per[k] * kinds.count(k) for k in per) / len(kinds)   # the overall mean is their weighted mean
    assert overall == pytest.approx(row["test_psnr"], rel=1e-6)
    lines = per_kind_section(table, ["psnr"])
    assert lines[1] == "## Per occlusion kind" and all(f"PSNR (dB) {k}" in lines[3] for k in per)
