"""Methods are plug-ins: one class and one registry line each, and a user adds one with no edit inside ceco_fair."""

from __future__ import annotations

import ast
import inspect
import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_train import TinyImages
from user_method import GroupWeightedSupCon

import ceco_fair
import ceco_fair.training.methods as methods_module
from ceco_fair.errors import CecoFairError
from ceco_fair.losses import LOSSES
from ceco_fair.results.layout import RESULTS_CSV
from ceco_fair.run import main
from ceco_fair.training.distributed import DistributedContext
from ceco_fair.training.method import Method
from ceco_fair.training.methods import BUILTIN_METHODS, METHODS, Contrastive, MethodConfig, register_method

ROOT = Path(ceco_fair.__file__).resolve().parent
REGISTRIES = ("training/methods.py", "losses/registry.py")
"""The method registry, and the loss registry that names the contrastive methods."""
NOT_METHODS = {
    "data/utkface.py": {"biascon", "fscl"},  # age-bin conventions named after the BiasCon and FSCL papers
    "results/comparisons.py": {"supcon"},  # the default baseline: results/ sits below training, reads run.json
}
"""Literals equal to a method name that do not name a method, or that a lower layer reads from disk."""


def spelled(source: str, names: set[str]) -> list[tuple[str, int]]:
    """The string literals of ``source`` equal to one of ``names``, with their lines.

    Docstrings (and other string statements) are left out, and so is a class's own ``name = "..."``:
    that is where a method (or a loss) spells its name.
    """
    tree = ast.parse(source)
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            skipped.add(id(node.value))
        if isinstance(node, ast.ClassDef):
            for statement in node.body:
                target = statement.targets[0] if isinstance(statement, ast.Assign) else None
                if isinstance(statement, ast.AnnAssign):
                    target = statement.target
                value = getattr(statement, "value", None)
                if isinstance(target, ast.Name) and target.id == "name" and isinstance(value, ast.Constant):
                    skipped.add(id(value))
    return [
        (node.value, node.lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names
        if id(node) not in skipped
    ]


def test_the_registry_holds_every_way_of_training_an_encoder() -> None:
    subgroup = {"groupdro", "reweight", "resample", "jtt", "lff", "cnc"}
    assert {"ce", "frozen", *LOSSES, *subgroup} <= set(METHODS)
    assert [cls.name for cls in BUILTIN_METHODS] == list(METHODS)[: len(BUILTIN_METHODS)]
    assert [name for name, cls in METHODS.items() if not cls.trains] == ["frozen"]


def test_method_names_are_spelled_only_in_their_class_and_the_registry() -> None:
    names = {cls.name for cls in BUILTIN_METHODS}
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative in REGISTRIES:
            continue
        allowed = NOT_METHODS.get(relative, set())
        source = path.read_text(encoding="utf-8")
        found += [f"{relative}:{line}: {name!r}" for name, line in spelled(source, names) if name not in allowed]
    assert not found, "method names spelled outside their class and the registry:\n" + "\n".join(found)


def test_the_guard_sees_a_name_compared_in_code() -> None:
    source = '''
class JTT:
    """Uses "jtt" in a docstring."""

    name = "jtt"


def kind(method):
    return "two-stage" if method == "jtt" else "plain"
'''
    assert spelled(source, {"jtt", "ce"}) == [("jtt", 9)]


@pytest.mark.parametrize("cls", [cls for cls in BUILTIN_METHODS if not issubclass(cls, Contrastive)])
def test_options_are_the_constructor_keywords_and_their_defaults(cls: type[Method]) -> None:
    parameters = inspect.signature(cls.__init__).parameters
    expected = {key: p.default for key, p in parameters.items() if key != "self"}
    assert cls.check_options({}, "m") == expected == cls.option_defaults()
    assert cls.search_keys() == tuple(expected)


def test_register_method_refuses_a_taken_name_and_a_user_code_name() -> None:
    taken = type("Other", (Method,), {"name": next(iter(METHODS))})
    with pytest.raises(CecoFairError, match="already the name of"):
        register_method(taken)
    with pytest.raises(CecoFairError, match="plain name"):
        register_method(type("Spec", (Method,), {"name": "package.module:Name"}))


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> type[Method]:
    """GroupWeightedSupCon registered for one test (the registry is restored afterwards)."""
    monkeypatch.setattr(methods_module, "METHODS", dict(METHODS))
    GroupWeightedSupCon.calls.clear()
    return register_method(GroupWeightedSupCon)


def test_the_user_method_weighs_every_group_alike(registered: type[Method]) -> None:
    method = MethodConfig(registered.name, {"temperature": 0.5}).build()
    assert isinstance(method, GroupWeightedSupCon)
    data = TinyImages()
    method.start(data, torch.nn.Identity(), torch.device("cpu"), DistributedContext())
    groups = data.targets * data.n_groups + data.sensitive
    totals = torch.zeros(8).index_add_(0, groups, method.weights)
    present = torch.bincount(groups, minlength=8) > 0
    torch.testing.assert_close(totals, present.float())


def test_a_user_method_registered_from_a_test_module_runs_in_a_protocol(
    registered: type[Method], write_protocol: Callable[..., Path], tmp_path: Path
) -> None:
    methods = [
        {"name": registered.name, "temperature": 0.2},
        {"name": "user_method:GroupWeightedSupCon", "label": "by_spec"},
    ]
    protocol = write_protocol(methods=methods)
    output = tmp_path / "out"
    assert main([str(protocol), "--output", str(output), "--quiet"]) == 0
    assert GroupWeightedSupCon.calls, "the user method's loss trained the encoder"
    table = pd.read_csv(output / RESULTS_CSV)
    assert set(table["method"]) == {registered.name, "by_spec"}
    assert table["value"].map(math.isfinite).any()
    history = pd.read_csv(output / "runs" / f"{registered.name}-rho0.99-seed0" / "history.csv")
    assert len(history) == 2 and history["loss"].map(math.isfinite).all()


def test_a_user_method_checks_its_options_before_any_run(
    registered: type[Method], write_protocol: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    protocol = write_protocol(methods=[{"name": registered.name, "temperature": 0}])
    assert main([str(protocol), "--output", str(tmp_path / "out"), "--quiet"]) == 2
    assert "methods[0].temperature: expected a number > 0, got 0.0" in capsys.readouterr().err
