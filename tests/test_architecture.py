"""The package cut holds: no import circle, no import from a lower layer into a higher one, a small top level.

The graph is built from the source (module-level and function-level imports alike, ``TYPE_CHECKING``
blocks included), so an import that only runs inside a function still counts. The layers are the
README's "Where things are", low to high; a module may import from its own layer or lower ones.
"""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Mapping
from pathlib import Path

import pytest

PACKAGE = "ceco_fair"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE
MAX_TOP_LEVEL_MODULES = 6
MAX_MODULE_LINES = 600
"""A module fits in one's head: the project holds each to this many lines."""

LAYERS: Mapping[str, int] = {
    "errors": 0,
    "common": 0,
    "metrics": 1,
    "results": 1,
    "losses": 1,
    "data": 2,
    "report": 2,
    "models": 3,
    "training": 4,
    "evaluation": 5,
    "runner": 6,
    "run": 7,
    "summary": 7,
    "": 7,  # the package itself: ceco_fair/__init__.py, the public imports
}
"""Subpackage or top-level module -> layer (0 lowest)."""


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Every module of the package under ``root``: dotted name -> file."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: Mapping[str, Path], package: str) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its source."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(_known(alias.name, modules) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, name, is_package)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else _known(base, modules))
    return {target for target in found if target.split(".")[0] == package and target != name}


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    modules = module_files(root, package)
    return {name: imports_of(name, path, modules, package) for name, path in modules.items()}


def layer_of(module: str, layers: Mapping[str, int]) -> int:
    """The layer of a dotted module name (its first component below the package)."""
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else ""
    if key not in layers:
        raise AssertionError(f"{module}: {key!r} has no layer; add it to LAYERS and to the README's layers")
    return layers[key]


def upward_imports(graph: Mapping[str, set[str]], layers: Mapping[str, int]) -> list[str]:
    """Every import from a lower layer into a higher one, as ``a (L1) -> b (L5)``."""
    return sorted(
        f"{module} (L{layer_of(module, layers)}) -> {target} (L{layer_of(target, layers)})"
        for module, targets in graph.items()
        for target in targets
        if layer_of(target, layers) > layer_of(module, layers)
    )


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph``, or None."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        cycle: list[str] = error.args[1]
        return cycle
    return None


def _absolute(node: ast.ImportFrom, name: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    parts = name.split(".")
    anchor = parts if is_package else parts[:-1]
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join([*anchor, *([node.module] if node.module else [])])


def _known(dotted: str, modules: Mapping[str, Path]) -> str:
    """The longest prefix of ``dotted`` that is a module of the package (else ``dotted`` itself)."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return dotted


GRAPH = import_graph(ROOT, PACKAGE)


def test_the_graph_sees_module_and_function_level_imports() -> None:
    """Guards the parser itself: known edges of the real package, one of them inside a function."""
    assert "ceco_fair.results.layout" in GRAPH["ceco_fair.results.folder"]
    assert "ceco_fair.report" in GRAPH["ceco_fair.evaluation.auditing"]  # build_report, imported in save()
    assert "ceco_fair.metrics.specs" in GRAPH["ceco_fair.report.load"]
    assert len(GRAPH) > 60


def test_every_module_has_a_layer() -> None:
    for module in GRAPH:
        layer_of(module, LAYERS)


def test_no_import_circle() -> None:
    assert find_cycle(GRAPH) is None, " -> ".join(find_cycle(GRAPH) or [])


def test_no_import_from_a_lower_layer_into_a_higher_one() -> None:
    assert upward_imports(GRAPH, LAYERS) == []


def test_the_top_level_holds_at_most_six_modules() -> None:
    top = sorted(path.name for path in ROOT.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_no_module_is_over_600_lines() -> None:
    sizes = {
        path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in ROOT.rglob("*.py")
    }
    assert {name: size for name, size in sizes.items() if size > MAX_MODULE_LINES} == {}


@pytest.fixture
def tangled(tmp_path: Path) -> Path:
    """A package with a circle (a.x <-> b.y, one side inside a function) and an upward import (a.z -> b.y)."""
    root = tmp_path / "pkg"
    for folder in ("a", "b"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "a" / "x.py").write_text("from pkg.b import y\n")
    (root / "a" / "z.py").write_text("import os\n\n\ndef f():\n    from ..b.y import thing\n")
    (root / "b" / "y.py").write_text("def g():\n    from . import w\n    import pkg.a.x\n")
    (root / "b" / "w.py").write_text("thing = 1\n")
    return root


def test_the_checks_catch_a_circle_and_an_upward_import(tangled: Path) -> None:
    graph = import_graph(tangled, "pkg")
    assert graph["pkg.a.z"] == {"pkg.b.y"} and graph["pkg.b.y"] == {"pkg.b.w", "pkg.a.x"}
    cycle = find_cycle(graph)
    assert cycle is not None and set(cycle) == {"pkg.a.x", "pkg.b.y"}
    assert upward_imports(graph, {"a": 0, "b": 1, "": 2}) == [
        "pkg.a.x (L0) -> pkg.b.y (L1)",
        "pkg.a.z (L0) -> pkg.b.y (L1)",
    ]
