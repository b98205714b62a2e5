"""README promises: its set-up commands are the ones CI runs, its commands parse, its protocol table is the schema."""

from __future__ import annotations

import dataclasses
import re
import shlex
from pathlib import Path

import pytest

from ceco_fair.data.augment import AugmentConfig
from ceco_fair.evaluation.probe import ProbeConfig
from ceco_fair.models.encoders import ENCODERS
from ceco_fair.models.files import EncoderConfig
from ceco_fair.run import parse_args
from ceco_fair.runner.protocol import TOP_LEVEL_KEYS, EvalConfig, load_protocol
from ceco_fair.runner.shards import parse_shard
from ceco_fair.training.loop import OptimizerConfig, TrainConfig

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


def protocol_table() -> dict[str, str]:
    """The README's protocol table: key -> its meaning cell."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Protocols") :]
    rows = re.findall(r"^\| `([a-z_]+)` \| (.*) \|$", section, re.M)
    return dict(rows)


def documented_names(cell: str) -> tuple[set[str], dict[str, set[str]]]:
    """The option names a meaning cell lists in backticks, and the names inside each ``name: {...}``."""
    names: set[str] = set()
    nested: dict[str, set[str]] = {}
    for span in re.findall(r"`([^`]+)`", cell):
        head = re.match(r"([a-z_]+)(?:: \{(.*)\})?$", span)
        if head is None:
            continue
        names.add(head.group(1))
        if head.group(2) is not None:
            nested[head.group(1)] = {part.split(":")[0].strip() for part in head.group(2).split(",")}
    return names, nested


def field_names(config: type) -> set[str]:
    return {field.name for field in dataclasses.fields(config)}


VALUE_WORDS = {"null", "tensorboard", *ENCODERS}
"""Backticked words of the table that name a value (a built-in encoder, ``null``), not an option."""


def test_the_protocol_table_documents_exactly_the_top_level_keys() -> None:
    assert list(protocol_table()) == list(TOP_LEVEL_KEYS)


@pytest.mark.parametrize(
    ("key", "config", "nested"),
    [
        ("train", TrainConfig, {"optimizer": OptimizerConfig, "augment": AugmentConfig}),
        ("probe", ProbeConfig, {}),
        ("eval", EvalConfig, {}),
        ("encoder", EncoderConfig, {}),
    ],
)
def test_every_documented_option_exists_and_every_option_is_documented(
    key: str, config: type, nested: dict[str, type]
) -> None:
    names, inner = documented_names(protocol_table()[key])
    fields = field_names(config)
    assert names - VALUE_WORDS - fields == set(), f"{key}: documented but not in {config.__name__}"
    assert fields - names == set(), f"{key}: options of {config.__name__} the README does not document"
    for name, nested_config in nested.items():
        assert inner[name] - field_names(nested_config) == set(), f"{key}.{name}: documented but unknown"
        assert field_names(nested_config) - inner[name] == set(), f"{key}.{name}: undocumented"


def shell_commands() -> list[list[str]]:
    """Every ``python -m ceco_fair.run`` command of the README's bash blocks, as arguments (loops' ``$k`` as 1)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            if "python -m ceco_fair.run " in line and not line.strip().startswith("#"):
                line = re.sub(r"\$\(\([^)]*\)\)|\$\w+", "1", line.split("python -m ceco_fair.run ", 1)[1])
                commands.append(shlex.split(line.split("&&")[0].split(";")[0].rstrip("& ")))
    return commands


def test_every_run_command_of_the_readme_parses_and_names_a_valid_protocol() -> None:
    commands = shell_commands()
    assert len(commands) >= 2
    for argv in commands:
        args = parse_args(argv)
        protocol = load_protocol(ROOT / args.protocol, check_data=False)
        if args.shard is not None:
            parse_shard(args.shard)
        assert protocol.methods, argv
