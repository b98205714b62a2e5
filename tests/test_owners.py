"""Small contracts have one owner each: the split names and checks, the metric kind, the closest-name
hint, the lazy exports; and ``ceco_fair.results`` and ``ceco_fair.report`` import without torch."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_report_without_torch import run_without_torch

import ceco_fair
from ceco_fair.common.config import closest
from ceco_fair.data import base
from ceco_fair.errors import CecoFairError

PACKAGE = Path(ceco_fair.__file__).parent
SOURCES = {str(path.relative_to(PACKAGE)): path.read_text(encoding="utf-8") for path in PACKAGE.rglob("*.py")}


def spelled_in(pattern: str) -> list[str]:
    """The package modules whose source matches ``pattern``."""
    return sorted(path for path, text in SOURCES.items() if re.search(pattern, text, re.MULTILINE))


def test_results_and_report_import_without_torch() -> None:
    modules = sorted(
        f"ceco_fair.{folder}.{path.stem}" if path.stem != "__init__" else f"ceco_fair.{folder}"
        for folder in ("results", "report")
        for path in (PACKAGE / folder).glob("*.py")
        if path.stem != "__main__"
    )
    assert "ceco_fair.results.manifest" in modules and "ceco_fair.report.html" in modules
    done = run_without_torch(
        "import importlib\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))\n"
    )
    assert done.returncode == 0, done.stderr


def test_each_small_contract_has_one_owner() -> None:
    assert spelled_in(r"Literal\[\"train\", \"valid\", \"test\"\]") == ["data/base.py"]
    assert spelled_in(r"^\s*UNKNOWN_SPLIT = \"split must") == ["data/base.py"]
    assert spelled_in(r"^\s*BAD_SEED = \"seed must be a non-negative") == ["data/base.py"]
    assert spelled_in(r"^(MetricKind|RunKind) = ") == ["metrics/specs.py"]
    assert spelled_in(r"Literal\[\"bias\", \"group\"\]") == ["metrics/specs.py"]
    assert spelled_in(r"^import difflib|get_close_matches") == ["common/config.py"]
    assert spelled_in(r"def __getattr__\(") == ["common/lazy.py"]


def test_the_split_and_seed_checks_name_the_value() -> None:
    base.check_split_and_seed("valid", 0)
    with pytest.raises(CecoFairError, match=r"split must be one of \['train', 'valid', 'test'\], got 'val'"):
        base.check_split_and_seed("val", 0)
    for seed in (-1, True, 1.0):
        with pytest.raises(CecoFairError, match="seed must be a non-negative integer"):
            base.check_seed(seed)
    assert [base.split_code(split) for split in base.SPLITS] == [0, 1, 2]


def test_one_closest_name_hint() -> None:
    assert closest("acuracy", ["accuracy", "loss"]) == " (did you mean 'accuracy'?)"
    assert closest("zzz", ["b", "a"]) == " (valid: a, b)"
    assert closest("zzz", ["b", "a"], listed=False) == ""
    assert closest("MALE", ["Male", "Bald"], most=3, fold_case=True) == " (did you mean 'Male'?)"
    assert closest("Bal", ["Bald", "Ball", "Male"], most=2) == " (did you mean 'Ball' or 'Bald'?)"


def test_lazy_exports_load_on_first_access() -> None:
    done = run_without_torch(
        "import ceco_fair, ceco_fair.metrics, ceco_fair.data\n"
        "assert 'torch' not in sys.modules\n"
        "try:\n"
        "    ceco_fair.metrics.nothing_here\n"
        "except AttributeError as error:\n"
        "    assert \"'ceco_fair.metrics' has no attribute 'nothing_here'\" in str(error), error\n"
        "else:\n"
        "    raise SystemExit('no AttributeError')\n"
    )
    assert done.returncode == 0, done.stderr
    assert ceco_fair.metrics.group_metrics.__module__ == "ceco_fair.metrics.group"
