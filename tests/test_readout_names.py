"""Read-out names are spelled only in the read-out registry and the results layout.

Every other module asks the registry (:data:`ceco_fair.evaluation.readouts.READOUTS`) or the layout's
constants (``PRIMARY_READOUT``, ``ordered_readouts``); a read-out added with ``register_readout`` then
reaches every table with no edit inside ``ceco_fair/``. The check reads the source (string constants,
f-string parts included); docstrings and comments are not code and are skipped.
"""

from __future__ import annotations

import ast
from pathlib import Path

from ceco_fair.evaluation.readouts import READOUTS
from ceco_fair.results import layout

ROOT = Path(__file__).resolve().parents[1] / "ceco_fair"
OWNERS = {"results/layout.py", "evaluation/readouts.py"}
"""The modules that may spell a read-out's name: the layout (file format, order, labels) and the registry."""
OTHER_MEANINGS = {
    ("metrics/specs.py", layout.BALANCED_READOUT),
    ("evaluation/tracking.py", layout.BALANCED_READOUT),
}
"""The same word with another meaning: ``balanced`` also names the k-NN tracking's group-balanced bank."""


def docstrings(tree: ast.AST) -> set[int]:
    """The ids of the string constants that are docstrings (or other bare string statements)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            found.add(id(node.value))
    return found


def spelled(path: Path, names: set[str]) -> list[tuple[int, str]]:
    """(line, name) of each string constant of ``path`` that is a read-out name, docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip = docstrings(tree)
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names
        if id(node) not in skip
    ]


def test_readout_names_are_spelled_only_in_the_registry_and_the_layout() -> None:
    names = set(layout.READOUTS)
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        module = path.relative_to(ROOT).as_posix()
        if module in OWNERS:
            continue
        found += [
            f"{module}:{line}: {name!r}" for line, name in spelled(path, names) if (module, name) not in OTHER_MEANINGS
        ]
    assert not found, "read-out names outside the registry and results/layout.py:\n" + "\n".join(found)


def test_the_guard_sees_a_name_in_code_but_not_in_a_docstring(tmp_path: Path) -> None:
    source = tmp_path / "module.py"
    source.write_text('"""The linear probe: ``linear``."""\n\nX = "linear"\nY = f"{X} head"\n', encoding="utf-8")
    assert spelled(source, {"linear", "head"}) == [(3, "linear")]


def test_the_registry_and_the_layout_agree() -> None:
    assert list(READOUTS)[: len(layout.READOUTS)] == list(layout.READOUTS)
    assert next(iter(READOUTS)) == layout.PRIMARY_READOUT
    assert all(readout.name == name for name, readout in READOUTS.items())
    assert set(layout.READOUT_LABELS) == set(layout.READOUTS)
