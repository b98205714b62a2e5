"""Checked in full before anything is written: seeds, batch size, encoder factories, dry runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_protocol import run_cli

SLIPPING: list[tuple[str, dict[str, Any], list[str]]] = [
    ("negative seed", {"seeds": [0, -1]}, ["seeds[1]", "expected a seed >= 0, got -1"]),
    (
        "batch larger than the training set",
        {"train": {"batch_size": 4096}},
        ["train.batch_size: 4096 is larger than the training set of ce-rho0.99-seed0 (4000 samples)"],
    ),
    (
        "factory that raises",
        {"encoder": {"arch": "tiny_encoder:broken", "kwargs": {"width": 3}}},
        ["encoder.arch 'tiny_encoder:broken' raised RuntimeError: cannot build an encoder of width 3"],
    ),
    (
        "factory keyword",
        {"encoder": {"arch": "tiny_encoder:make", "kwargs": {"widht": 3}}},
        ["encoder.kwargs.widht", "did you mean 'width'"],
    ),
]


@pytest.mark.parametrize(("case", "override", "expected"), SLIPPING, ids=[c[0] for c in SLIPPING])
def test_failure_is_one_error_line_exit_2_and_no_output_folder(
    case: str,
    override: dict[str, Any],
    expected: list[str],
    write_protocol: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    protocol = write_protocol(**override)
    status, err = run_cli(protocol, tmp_path / "out", capsys)
    assert status == 2, err
    (line,) = err.strip().splitlines()
    assert line.startswith(f"error: {protocol}: ") and "Traceback" not in err
    assert all(fragment in line for fragment in expected), line
    assert not (tmp_path / "out").exists()


def test_dry_run_imports_a_factory_but_calls_nothing(
    write_protocol: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    witness = tmp_path / "factory_was_called"
    protocol = write_protocol(encoder={"arch": "tiny_encoder:writes_file", "kwargs": {"path": str(witness)}})
    status, err = run_cli(protocol, tmp_path / "out", capsys, "--dry-run")
    assert status == 0, err
    assert not witness.exists() and not (tmp_path / "out").exists()


def test_a_real_run_calls_the_factory_once_before_the_output_folder_exists(
    write_protocol: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log, output = tmp_path / "calls.txt", tmp_path / "out"
    protocol = write_protocol(
        methods=["frozen"],
        encoder={"arch": "tiny_encoder:records_calls", "kwargs": {"log": str(log), "output": str(output)}},
    )
    status, err = run_cli(protocol, output, capsys)
    assert status == 0, err
    assert log.read_text().split() == ["False", "True"]  # the check, then the one run
