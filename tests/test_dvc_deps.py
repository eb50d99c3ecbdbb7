"""dvc.yaml declares what each stage depends on: every ``unmask`` module its code path imports, and
the params that change its results (no more).

The import closure is static (``ast``): ``import unmask.x``, ``from unmask.x import y`` (``y`` counts
when it is a submodule), relative imports, and imports inside functions (the code imports lazily a
lot), transitively. Importing ``unmask.a.b`` runs ``unmask/__init__.py`` and ``unmask/a/__init__.py``
too, so those (and what they import) are in the closure.

A stage's path: ``stages/<stage>.py`` calls ``unmask.cli.run_stage("<command>")``, which dispatches to
``unmask.pipeline.run_<command>``. In those two dispatching modules only the functions reachable from
the entry point (``run_stage`` / ``run_<command>``, through calls by name within the module) are
followed, and branches on ``<x>.command == "<other command>"`` are skipped; every other module is
taken whole (all its functions' imports), a conservative over-approximation.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path
from typing import Callable

import pytest
import yaml

from tests.conftest import ROOT

SRC = ROOT / "src"
PACKAGE = "unmask"
# dispatching modules: (module, command) -> the functions a command enters it through
ENTRIES: dict[str, Callable[[str], set[str]]] = {
    "unmask.cli": lambda command: {"run_stage"},
    "unmask.pipeline": lambda command: {f"run_{command}"},
}
# sweep settings that decide how the trials run, not what they compute: not params of the sweep stage
EXECUTION_ONLY = {"address", "storage_path", "max_concurrent", "max_failures", "isolate_network", "connect_timeout_s"}


def _dvc() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _body(stage: dict) -> dict:
    return stage.get("do", stage)     # foreach stages keep cmd/deps/params under do:


def module_file(name: str) -> Path | None:
    """``unmask.x.y`` -> src/unmask/x/y.py or src/unmask/x/y/__init__.py; None when neither exists."""
    base = SRC.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _ours(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def _with_parents(name: str) -> set[str]:
    """The module and every package above it (importing it runs their ``__init__``)."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def imports_in(nodes: list[ast.AST], module: str, is_package: bool) -> set[str]:
    """``unmask`` modules the import statements anywhere under ``nodes`` load (parents included)."""
    found: set[str] = set()
    for node in (n for top in nodes for n in ast.walk(top)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names if _ours(a.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[:len(package) - (node.level - 1)]
                base = ".".join(package + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if not _ours(base):
                continue
            # `from unmask.x import y`: y is a submodule, or a name defined in unmask.x
            names = [base] + [f"{base}.{a.name}" for a in node.names if module_file(f"{base}.{a.name}")]
        else:
            continue
        for name in names:
            found |= {m for m in _with_parents(name) if module_file(m)}
    return found


class _PruneOtherCommands(ast.NodeTransformer):
    """Drop the body of ``if <x>.command == "<other>":`` (keep its else)."""

    def __init__(self, command: str):
        self.command = command

    def visit_If(self, node: ast.If):
        self.generic_visit(node)
        t = node.test
        if (isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], ast.Eq)
                and isinstance(t.comparators[0], ast.Constant) and isinstance(t.comparators[0].value, str)
                and ((isinstance(t.left, ast.Attribute) and t.left.attr == "command")
                     or (isinstance(t.left, ast.Name) and t.left.id == "command"))
                and t.comparators[0].value != self.command):
            return node.orelse or None
        return node


def _module_nodes(tree: ast.Module, module: str, command: str) -> list[ast.AST]:
    """The parts of ``module`` a run of ``command`` executes (see the module docstring)."""
    entries = ENTRIES.get(module)
    if entries is None:
        return [tree]
    funcs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    nodes: list[ast.AST] = [n for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    todo, seen = list(entries(command)), set()
    assert set(todo) <= set(funcs), f"{module}: no function {sorted(set(todo) - set(funcs))}"
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        fn = _PruneOtherCommands(command).visit(copy.deepcopy(funcs[name]))
        nodes.append(fn)
        todo += [n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and n.id in funcs]
    return nodes


def _stage_command(script: Path) -> str:
    """The command ``stages/<stage>.py`` passes to ``run_stage``."""
    for node in ast.walk(ast.parse(script.read_text())):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "run_stage" and node.args
                and isinstance(node.args[0], ast.Constant)):
            return node.args[0].value
    return script.stem


def import_closure(script: Path) -> set[Path]:
    """The files of every ``unmask`` module the stage script loads, transitively."""
    command = _stage_command(script)
    todo = sorted(imports_in([ast.parse(script.read_text())], "__main__", False))
    done: set[str] = set()
    while todo:
        name = todo.pop()
        if name in done:
            continue
        done.add(name)
        path = module_file(name)
        tree = ast.parse(path.read_text(), filename=str(path))
        found = imports_in(_module_nodes(tree, name, command), name, path.name == "__init__.py")
        todo += sorted(found - done)
    return {module_file(m) for m in done}


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == d.rstrip("/") or path.startswith(d.rstrip("/") + "/") for d in deps)


def _script(stage: dict) -> Path:
    m = re.search(r"\bstages/\S+\.py\b", _body(stage)["cmd"])
    assert m, f"no stages/*.py in {_body(stage)['cmd']!r}"
    return ROOT / m.group(0)


STAGES = sorted(_dvc())


@pytest.mark.parametrize("name", STAGES)
def test_deps_cover_the_import_closure_of_the_stage(name):
    stage = _dvc()[name]
    deps = _body(stage)["deps"]
    script = _script(stage)
    files = sorted(p.relative_to(ROOT).as_posix() for p in {script, *import_closure(script)})
    missing = [f for f in files if not _covered(f, deps)]
    assert not missing, f"stage {name}: deps miss modules its code imports: {missing}"


@pytest.mark.parametrize("name", STAGES)
def test_code_deps_exist(name):
    deps = _body(_dvc()[name])["deps"]
    code = [d for d in deps if d.startswith(("src/", "stages/"))]
    assert code and all((ROOT / d).exists() for d in code), [d for d in code if not (ROOT / d).exists()]


def test_the_closure_follows_each_stage_path():
    """The analysis is not vacuous: lazy imports are found, and other stages' imports are not."""
    rel = {name: {p.relative_to(SRC).as_posix() for p in import_closure(ROOT / "stages" / f"{name}.py")}
           for name in ("download", "split", "sweep", "evaluate")}
    assert {"unmask/__init__.py", "unmask/cli.py", "unmask/pipeline.py", "unmask/data/__init__.py",
            "unmask/data/sources.py", "unmask/data/synthetic.py"} <= rel["download"]   # synthetic: lazily
    assert not any(p.startswith(("unmask/studies/", "unmask/training/")) for p in rel["download"])
    assert "unmask/data/sources.py" not in rel["split"] and "unmask/data/split.py" in rel["split"]
    assert {"unmask/studies/sweep.py", "unmask/studies/trial.py", "unmask/studies/netns.py",
            "unmask/training/__init__.py", "unmask/io/remote.py"} <= rel["sweep"]
    assert "unmask/studies/netns.py" not in rel["evaluate"] and "unmask/ui.py" not in rel["sweep"]
    assert "unmask/evaluation/evaluate.py" in rel["evaluate"]
    assert not any(p.startswith(("unmask/reports/", "unmask/evaluation/")) for p in rel["sweep"])


def test_relative_and_submodule_imports_resolve():
    tree = ast.parse("from . import store\nfrom .grid import Trial\nfrom unmask.io import atomic, nothing\n"
                     "def f():\n    import unmask.training.base as b\n")
    found = imports_in([tree], "unmask.studies.sweep", False)
    assert {"unmask", "unmask.studies", "unmask.studies.store", "unmask.studies.grid", "unmask.io",
            "unmask.io.atomic", "unmask.training", "unmask.training.base"} == found
    assert imports_in([ast.parse("from .config import X")], "unmask.studies", True) == {
        "unmask", "unmask.studies", "unmask.studies.config"}


def test_sweep_params_are_what_changes_results_not_how_it_runs():
    from unmask.studies.config import SweepConfig

    params = _body(_dvc()["sweep"])["params"]
    assert "sweep.resources" in params
    assert "sweep" not in params
    assert not [p for p in params if p.startswith("sweep.") and p.split(".")[1] in EXECUTION_ONLY]
    # a new sweep setting must be classified: listed under the stage's params, or execution-only here
    assert set(SweepConfig.model_fields) == {"resources"} | EXECUTION_ONLY, sorted(SweepConfig.model_fields)


def test_sweep_declares_the_checkpoints_evaluate_reads():
    sweep, evaluate = _body(_dvc()["sweep"]), _body(_dvc()["evaluate"])
    outs = {next(iter(o)) if isinstance(o, dict) else o: (o[next(iter(o))] if isinstance(o, dict) else {})
            for o in sweep["outs"]}
    assert outs.get("results/${key}/checkpoints", {}).get("persist") is True, outs
    assert "results/${key}/checkpoints" in evaluate["deps"]


# --------------------------------------------------------------------------- checkpoints as a sweep output
TEST_METRICS = {f"{split}_{m}": 0.5 for split in ("val", "test")
                for m in ("l1", "l2", "psnr", "ssim", "l1_masked", "l2_masked", "psnr_masked")}


def _trial_row(trial_id: str, checkpoint: str, label: str = "adv_loss=lsgan", **over) -> dict:
    return {"study": "s", "trial_id": trial_id, "cell": "{}", "cell_label": label, "seed": 0, "status": "TERMINATED",
            "error": "", "mlflow_run_id": "", "model_uri": "", "checkpoint": checkpoint, "steps": 4, "steps_done": 4,
            "framework": "cyclegan", "image_size": 16, "data_source": "synthetic",
            "note_lpips": "n/a: no weights", "test_lpips": float("nan"), **TEST_METRICS, **over}


def _ckpt(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_copy_checkpoints_one_file_per_trial_and_the_table_points_at_it(tmp_path):
    import pandas as pd

    from unmask.studies.store import TrialStore
    from unmask.studies.results import CURVE_COLS, copy_checkpoints, store_and_tabulate

    root = tmp_path / "proj"
    store = TrialStore(root / "results" / "trial_store")
    trials = [{"study": "s", "cell": {"adv_loss": a}, "cell_label": f"adv_loss={a}", "seed": 0}
              for a in ("lsgan", "hinge", "lsgan")]           # the third: the first's key again
    keys = ["k-lsgan", "k-hinge", "k-lsgan"]
    no_curves = pd.DataFrame(columns=CURVE_COLS)
    # stored before (another study trained it), and trained by this sweep (Tune's checkpoint)
    store.put("k-lsgan", _trial_row("t0", str(_ckpt(tmp_path / "old" / "last.pt", b"lsgan"))), no_curves,
              trained_by="other", parent_run_id="p0", experiment_id="1")
    fresh = pd.DataFrame([_trial_row("t1", str(_ckpt(root / "results/ray/s/trial_t1/ck/last.pt", b"hinge")),
                                     label="adv_loss=hinge")])
    table, _, _ = store_and_tabulate("s", trials, keys, store, fresh, no_curves, "p1", "2")
    assert [Path(c).parent.parent.name for c in table["checkpoint"]] == ["trial_store"] * 3

    out = copy_checkpoints(table, root / "results" / "s", root)
    folder = root / "results" / "s" / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["k-hinge.pt", "k-lsgan.pt"]
    assert out["checkpoint"].tolist() == ["results/s/checkpoints/k-lsgan.pt", "results/s/checkpoints/k-hinge.pt",
                                          "results/s/checkpoints/k-lsgan.pt"]
    assert [(root / c).read_bytes() for c in out["checkpoint"]] == [b"lsgan", b"hinge", b"lsgan"]
    assert table["checkpoint"].iloc[0].endswith("last.pt")         # the input table is left alone

    # a search study's rows (no trial key): by trial id; a URI is fetched; no checkpoint stays ""
    search = pd.DataFrame([_trial_row("a1", (root / "results/ray/s/trial_a1/ck/last.pt").as_uri()),
                           _trial_row("a2", "", status="STOPPED_EARLY")])
    _ckpt(root / "results/ray/s/trial_a1/ck/last.pt", b"a1")
    out = copy_checkpoints(search, root / "results" / "s", root)
    assert out["checkpoint"].tolist() == ["results/s/checkpoints/a1.pt", ""]
    assert sorted(p.name for p in folder.iterdir()) == ["a1.pt"]     # replaced whole: the old set is gone

    # a copy that fails leaves the folder as it was
    broken = pd.DataFrame([_trial_row("b1", str(root / "gone.pt"))])
    with pytest.raises(FileNotFoundError):
        copy_checkpoints(broken, root / "results" / "s", root)
    assert sorted(p.name for p in folder.iterdir()) == ["a1.pt"]
    assert sorted(p.name for p in (root / "results" / "s").iterdir()) == ["checkpoints"]   # no temporaries


def test_run_study_writes_the_checkpoints_before_the_table(tmp_path, monkeypatch):
    """run_study without Ray (its Tune part replaced by a stand-in returning finished rows)."""
    import pandas as pd

    from unmask.studies import sweep as sweep_mod
    from unmask.studies.results import CURVE_COLS
    from unmask.studies.sweep import run_study

    from tests.helpers import micro_grid_study

    params = micro_grid_study(tmp_path)
    calls = []

    def fake_sweep(name, study, params, trials, *args, **kw):
        calls.append(len(trials))
        rows = [_trial_row(f"t{i}", str(_ckpt(tmp_path / f"ray/s/trial_t{i}/last.pt", f"w{i}".encode())),
                           label=t["cell_label"], cell=json.dumps(t["cell"])) for i, t in enumerate(trials)]
        return pd.DataFrame(rows), pd.DataFrame(columns=CURVE_COLS)

    monkeypatch.setattr(sweep_mod, "sweep_trials", fake_sweep)
    out = run_study("s", params, tmp_path / "splits", tmp_path / "results", progress=False, root=tmp_path)
    table = pd.read_parquet(out / "trials.parquet")
    keys = table["trial_key"].tolist()
    assert table["checkpoint"].tolist() == [f"results/s/checkpoints/{k}.pt" for k in keys]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == sorted(f"{k}.pt" for k in keys)
    assert [(tmp_path / c).read_bytes() for c in table["checkpoint"]] == [b"w0", b"w1"]

    again = run_study("s", params, tmp_path / "splits", tmp_path / "results", progress=False, root=tmp_path)
    assert calls == [2]                                     # all in the store: nothing trained
    assert pd.read_parquet(again / "trials.parquet")["checkpoint"].tolist() == table["checkpoint"].tolist()
    assert [(tmp_path / c).read_bytes() for c in table["checkpoint"]] == [b"w0", b"w1"]


def test_checkpoint_paths_stay_relative_through_a_linked_results_folder(tmp_path):
    from unmask.studies.results import _project_path

    root, disk = tmp_path / "proj", tmp_path / "disk"
    (disk / "s" / "checkpoints").mkdir(parents=True)
    root.mkdir()
    (root / "results").symlink_to(disk)
    assert _project_path(root / "results/s/checkpoints/k.pt", root) == "results/s/checkpoints/k.pt"
    assert _project_path(disk / "s/checkpoints/k.pt", root) == str(disk / "s/checkpoints/k.pt")   # outside
