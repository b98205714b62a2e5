"""README promises: its set-up commands are the ones CI runs, and the protocol keys are documented."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", text, re.S)
    assert first_block, "README.md must open with a fenced block of set-up commands"
    return [line.strip() for line in first_block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def test_readme_opens_with_quickstart_and_test_commands() -> None:
    commands = readme_commands()
    assert len(commands) == 2
    assert "python -m ceco_fair.run protocols/quickstart.yaml" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ci_commands = [line.strip() for line in ci.splitlines() if "pytest" in line and not line.strip().startswith("#")]
    assert ci_commands == [readme_commands()[1]]


def test_ci_lints_and_checks_types_before_the_tests() -> None:
    steps = [step.strip() for step in readme_commands()[1].split("&&")]
    wanted = ("ruff check ceco_fair tests benchmarks", "mypy", "python -m pytest")
    lint, types, tests = (steps.index(step) for step in wanted)
    assert lint < tests and types < tests and tests == len(steps) - 1


def test_readme_documents_every_protocol_section() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for key in ("name", "seeds", "data", "encoder", "methods", "train", "probe", "eval", "report"):
        assert f"`{key}`" in text, key
