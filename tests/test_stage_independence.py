"""Only evaluate stages measure, and the report only renders: in a copy of the project whose every
stage DVC records as up to date (``dvc commit`` over placeholder outputs, nothing run), editing a
published number (reports/paper.py) or a page's wording (reports/tables.py) leaves every sweep and
evaluate stage up to date, and a study that reads another study's models is measured by a stage
whose deps name that study's checkpoints (one per entry of params.yaml's ``across``)."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from tests.conftest import ROOT
from tests.test_pipeline_dvc import _copy_project, _dvc
from unmask.config import load_params
from unmask.errors import ConfigError, UnmaskError
from unmask.studies import parse_study_params


def _placeholder(path, is_dir: bool) -> None:
    if is_dir:
        path.mkdir(parents=True, exist_ok=True)
        (path / "placeholder").write_text("x")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}" if path.suffix == ".json" else "x")


def _outs_and_deps(project) -> list[str]:
    """Every dep and out path of the resolved pipeline, ``${key}`` and ``${item.*}`` expanded."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    paths = []
    for stage in stages.values():
        if "foreach" not in stage:
            bodies = [(stage, {})]
        elif stage["foreach"] == "${studies}":
            bodies = [(stage["do"], {"${key}": k}) for k in params["studies"]]
        elif stage["foreach"] == "${leaderboard.champions}":
            bodies = [(stage["do"], {"${item}": k}) for k in params["leaderboard"]["champions"]]
        else:
            assert stage["foreach"] == "${across}"
            bodies = [(stage["do"], {"${item.study}": e["study"], "${item.reads}": e["reads"]})
                      for e in params["across"]]
        for body, subs in bodies:
            subs = {**subs, "${leaderboard.mask_from}": params["leaderboard"]["mask_from"]}
            for entry in [*body.get("deps", []), *body.get("outs", []), *body.get("metrics", [])]:
                path = entry if isinstance(entry, str) else next(iter(entry))
                for k, v in subs.items():
                    path = path.replace(k, v)
                paths.append(path)
    return paths


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    project = tmp_path_factory.mktemp("recorded")
    _copy_project(project)
    shutil.copy(ROOT / "params.yaml", project / "params.yaml")
    for path in _outs_and_deps(project):
        p = project / path
        if not p.exists():
            _placeholder(p, is_dir=not p.suffix or path.endswith("checkpoints") or path.startswith("results/across"))
    _dvc(project, "commit", "-f", "-q")
    assert json.loads(_dvc(project, "status", "--json") or "{}") == {}
    return project


def _changed(project) -> set[str]:
    out = _dvc(project, "status", "--json").strip()
    return set(json.loads(out or "{}"))


@pytest.mark.parametrize("module", ["paper.py", "tables.py", "figures.py"])
def test_editing_a_published_number_or_a_page_re_runs_the_report_alone(recorded, module):
    path = recorded / "src" / "unmask" / "reports" / module
    before = path.read_text()
    try:
        path.write_text(before + "\n# an edited published number\n")
        assert _changed(recorded) == {"report"}
    finally:
        path.write_text(before)
    assert _changed(recorded) == set()


def test_a_re_trained_champion_re_measures_the_stage_that_reads_it_alone(recorded):
    ckpt = recorded / "results" / "table4_approach" / "checkpoints" / "placeholder"
    before = ckpt.read_text()
    try:
        ckpt.write_text("re-trained")
        changed = _changed(recorded)
    finally:
        ckpt.write_text(before)
    # the sweep whose output was replaced, its own evaluate, the evaluate_across stages that read it
    # (seed004_stages and seed003_unmask read table4_approach: entries 0 and 5 of across), and the report
    reading = {f"evaluate_across@{i}" for i, e in enumerate(yaml.safe_load((ROOT / "params.yaml").read_text())["across"])
               if e["reads"] == "table4_approach"}
    assert reading == {"evaluate_across@0", "evaluate_across@5"}
    assert changed == {"sweep@table4_approach", "evaluate@table4_approach", *reading, "leaderboard@table4_approach", "report"}


def test_evaluate_across_stages_name_the_files_of_the_study_they_read():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["evaluate_across"]
    assert stage["foreach"] == "${across}"
    for f in ("trials.parquet", "sweep.json", "checkpoints"):
        assert f"results/${{item.reads}}/{f}" in stage["do"]["deps"]
    sp = parse_study_params(load_params(ROOT / "params.yaml"))
    assert [(e["study"], e["reads"]) for e in params["across"]] == [
        (name, other) for name, study in sp.studies.items() for other in study.reads()]


@pytest.mark.parametrize("across, message", [
    ([{"study": "seed004_stages", "reads": "table4_approach"}, {"study": "seed004_stages", "reads": "table8_generator"},
      {"study": "seed001_conv_type", "reads": "seed001_segmentation"}],
     "across: add {study: seed004_stages, reads: seed002_unet_vs_cgan}, which studies.seed004_stages.champions "
     "asks for"),
    ([{"study": "table3_adv_loss", "reads": "table4_approach"}],
     "across[0]: {study: table3_adv_loss, reads: table4_approach}: studies.table3_adv_loss does not read "
     "'table4_approach'"),
    ([{"study": "seed004_stages", "reads": "table4_approach"}] * 2, "across[1]: "),
])
def test_across_must_list_exactly_what_the_studies_read(tmp_path, across, message):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["across"] = across
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ConfigError) as err:
        parse_study_params(load_params(path))
    assert "\n" not in str(err.value) and str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_evaluate_across_of_a_study_it_does_not_read_is_one_line(tmp_path):
    from unmask.pipeline import run_evaluate_across

    with pytest.raises(UnmaskError, match=r"studies.seed004_stages does not read study 'table3_adv_loss'"):
        run_evaluate_across(load_params(ROOT / "params.yaml"), "seed004_stages", "table3_adv_loss", root=tmp_path)
    assert not (tmp_path / "results").exists()


def test_a_params_file_without_across_reads_what_its_studies_ask_for(tmp_path):
    """Run by hand (no DVC), a params file may leave `across` out: it is the pairs the studies ask for."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    del raw["across"]
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    sp = parse_study_params(load_params(path))
    assert [(e.study, e.reads) for e in sp.across] == [(e["study"], e["reads"]) for e in
                                                       yaml.safe_load((ROOT / "params.yaml").read_text())["across"]]
