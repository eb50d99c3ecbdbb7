"""Imports run one way (issue 17): configuration -> shared vocabulary -> data / models / losses /
metrics -> training -> studies -> evaluation -> reports -> pipeline / CLI.

The check is static (``ast``): every ``import`` and ``from ... import`` in a module, at module level
or inside functions, absolute or relative, resolved to the ``unmask`` module it names (``from unmask.x
import y`` names ``unmask.x.y`` when ``y`` is a submodule, else ``unmask.x``). Each module gets the
layer of the longest dotted prefix in :data:`LAYERS` that covers it; a module no prefix covers is an
error (a new top-level module must be placed). Then (a) no module imports one of a higher layer, and
(b) the imports form no cycle. Imports under ``if TYPE_CHECKING:`` never run: they count for (a), not
for (b). Only the module a statement names is an edge, not the packages above it whose ``__init__``
the import also runs (Python initialises a package before its submodules; the package is in the same
layer anyway).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

SRC = ROOT / "src"
PACKAGE = "unmask"

# lowest first; a prefix covers the module of that name and everything under it ("unmask" alone: only
# the package's __init__)
LAYERS: tuple[tuple[str, ...], ...] = (
    ("unmask", "unmask.errors", "unmask.config"),                                             # 0 configuration
    ("unmask.catalog", "unmask.registry", "unmask.io", "unmask.sysinfo", "unmask.tracking"),  # 1 shared vocabulary
    ("unmask.data", "unmask.models", "unmask.losses", "unmask.metrics"),                      # 2 building blocks
    ("unmask.training",),                                                                     # 3
    ("unmask.studies",),                                                                      # 4
    ("unmask.evaluation",),                                                                   # 5
    ("unmask.reports",),                                                                      # 6
    ("unmask.pipeline", "unmask.cli", "unmask.infer", "unmask.edit", "unmask.ui"),                           # 7 entry points
)


@dataclass(frozen=True)
class Import:
    path: Path          # the importing file
    line: int
    importer: str       # its module
    imported: str       # the unmask module the statement names
    runs: bool = True   # False under ``if TYPE_CHECKING:``

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported}"


def module_name(path: Path, src_root: Path) -> str:
    parts = path.relative_to(src_root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules_under(src_root: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file of ``package`` under ``src_root``."""
    return {module_name(p, src_root): p for p in sorted((src_root / package).rglob("*.py"))}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes under the body of ``if TYPE_CHECKING:`` / ``if typing.TYPE_CHECKING:``."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and (
                (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
                or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")):
            ids |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return ids


def imports_of(path: Path, module: str, modules: dict[str, Path], package: str = PACKAGE) -> list[Import]:
    """The ``package`` modules the import statements anywhere in ``path`` name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    type_only = _type_checking_nodes(tree)
    is_package = path.name == "__init__.py"

    def ours(name: str) -> bool:
        return name == package or name.startswith(package + ".")

    def existing(name: str) -> str:
        """``name``, or its longest prefix that is a module (``import unmask.x.nothing`` -> ``unmask.x``)."""
        parts = name.split(".")
        while parts and ".".join(parts) not in modules:
            parts.pop()
        return ".".join(parts) or name

    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names if ours(a.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = module.split(".") if is_package else module.split(".")[:-1]
                base_parts = base_parts[:len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if not ours(base):
                continue
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
            # names defined in the module itself (not submodules) import the module
            names = subs + ([base] if len(subs) < len(node.names) else [])
        else:
            continue
        for name in names:
            found.append(Import(path, node.lineno, module, existing(name), id(node) not in type_only))
    return found


def layer_of(module: str, layers=LAYERS, package: str = PACKAGE) -> int | None:
    """The layer of the longest prefix covering ``module`` (``package`` itself covers only itself)."""
    best, best_len = None, -1
    for level, prefixes in enumerate(layers):
        for prefix in prefixes:
            covers = module == prefix or (prefix != package and module.startswith(prefix + "."))
            if covers and len(prefix) > best_len:
                best, best_len = level, len(prefix)
    return best


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (its modules in import order, the first repeated at the end), or None."""
    state: dict[str, int] = {}          # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def check_layers(src_root: Path, layers=LAYERS, package: str = PACKAGE) -> list[str]:
    """Every problem with the imports of ``package`` under ``src_root``, one line each (empty: none)."""
    modules = modules_under(src_root, package)
    problems = [f"{path}: module {name} is in no layer (place it in LAYERS of {Path(__file__).name})"
                for name, path in modules.items() if layer_of(name, layers, package) is None]
    imports = [imp for name, path in modules.items() for imp in imports_of(path, name, modules, package)]
    for imp in imports:
        mine, theirs = layer_of(imp.importer, layers, package), layer_of(imp.imported, layers, package)
        if mine is not None and theirs is not None and theirs > mine:
            problems.append(f"{imp}: upward import (layer {mine} imports layer {theirs})")
    graph: dict[str, set[str]] = {name: set() for name in modules}
    where: dict[tuple[str, str], Import] = {}
    for imp in imports:
        if imp.runs and imp.imported != imp.importer:
            graph[imp.importer].add(imp.imported)
            where.setdefault((imp.importer, imp.imported), imp)
    # report every cycle: find one, name each of its imports, drop its closing edge, look again
    while cycle := find_cycle(graph):
        edges = [where[(a, b)] for a, b in zip(cycle, cycle[1:])]
        problems.append(f"import cycle {' -> '.join(cycle)}: " + "; ".join(map(str, edges)))
        graph[cycle[-2]].discard(cycle[-1])
    return problems


# --------------------------------------------------------------------------------------------- the project
def test_every_module_is_in_a_layer():
    modules = modules_under(SRC)
    assert len(modules) > 50
    unplaced = [f"{path}: {name}" for name, path in modules.items() if layer_of(name) is None]
    assert not unplaced, "modules in no layer (place them in LAYERS):\n" + "\n".join(unplaced)


def test_imports_go_down_the_layers_without_cycles():
    problems = check_layers(SRC)
    assert not problems, "\n".join(problems)


def test_importing_tracking_does_not_import_torch():
    """``unmask ui`` imports tracking: it must stay light."""
    out = subprocess.run([sys.executable, "-c", "import unmask.tracking, sys; assert 'torch' not in sys.modules, "
                          "sorted(m for m in sys.modules if m.startswith('unmask'))"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr


# ------------------------------------------------------------------------------------ the checker itself
def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "unmask" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


BASE = {"__init__.py": "", "config.py": "X = 1\n", "training/__init__.py": "", "training/base.py": "Y = 2\n",
        "reports/__init__.py": "", "reports/paper.py": "Z = 3\n", "cli.py": "import unmask.reports.paper\n"}


def test_a_clean_tree_passes(tmp_path):
    assert check_layers(_tree(tmp_path, BASE)) == []


def test_an_upward_import_is_caught_with_file_line_and_module(tmp_path):
    root = _tree(tmp_path, {**BASE, "training/base.py": "import os\n\nfrom unmask.reports.paper import Z\n"})
    problems = check_layers(root)
    assert len(problems) == 1, problems
    assert f"{root / 'unmask/training/base.py'}:3: unmask.training.base imports unmask.reports.paper" in problems[0]
    assert "upward" in problems[0]


@pytest.mark.parametrize("text, imported", [
    ("def f():\n    from ..reports import paper\n", "unmask.reports.paper"),       # relative, in a function
    ("from .. import reports\n", "unmask.reports"),                                # a package by relative name
    ("import unmask.cli as c\n", "unmask.cli"),
    ("from unmask.reports.paper import Z, W\n", "unmask.reports.paper"),
])
def test_every_form_of_import_is_resolved(tmp_path, text, imported):
    root = _tree(tmp_path, {**BASE, "training/base.py": text})
    problems = check_layers(root)
    assert len(problems) == 1 and f"unmask.training.base imports {imported}:" in problems[0], problems


def test_a_downward_or_same_layer_import_is_allowed(tmp_path):
    files = {**BASE, "data/__init__.py": "", "data/a.py": "from unmask.models import b\n",
             "models/__init__.py": "", "models/b.py": "from unmask import config\nfrom unmask.config import X\n"}
    assert check_layers(_tree(tmp_path, files)) == []


def test_a_cycle_is_caught_and_its_modules_named(tmp_path):
    files = {**BASE, "data/__init__.py": "", "data/a.py": "from unmask.models.b import B\nA = 1\n",
             "models/__init__.py": "", "models/b.py": "def f():\n    from unmask.data import a\nB = 1\n"}
    problems = check_layers(_tree(tmp_path, files))
    assert len(problems) == 1, problems
    assert problems[0].startswith("import cycle unmask.data.a -> unmask.models.b -> unmask.data.a:"), problems
    assert "data/a.py:1: unmask.data.a imports unmask.models.b" in problems[0]
    assert "models/b.py:2: unmask.models.b imports unmask.data.a" in problems[0]


def test_type_checking_imports_are_no_cycle_but_still_no_upward_import(tmp_path):
    files = {**BASE, "training/a.py": "from unmask.training.base import Y\n",
             "training/base.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                 "    from unmask.training.a import A\n"}
    assert check_layers(_tree(tmp_path, files)) == []
    files["config.py"] = "import typing\nif typing.TYPE_CHECKING:\n    from unmask.training import base\n"
    problems = check_layers(_tree(tmp_path, files))
    assert len(problems) == 1 and "unmask.config imports unmask.training.base" in problems[0], problems


def test_a_module_in_no_layer_fails(tmp_path):
    problems = check_layers(_tree(tmp_path, {**BASE, "newthing.py": ""}))
    assert len(problems) == 1 and "module unmask.newthing is in no layer" in problems[0], problems
