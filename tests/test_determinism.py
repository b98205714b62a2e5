"""Deterministic runs, in separate processes: two fresh runs agree, and so does a killed-and-resumed one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from tiny_protocol import tiny_protocol_dict

ROOT = Path(__file__).resolve().parents[1]
SECOND_RUN = "runs/contex-rho0.99-seed0"
HISTORY = ["epoch", "loss", "lr"]  # the other columns are timings


def command(protocol: Path, output: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ceco_fair.run", str(protocol), "--output", str(output), "--quiet", *extra]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A protocol of two runs (ce, then contex, two epochs each) and its output from one process."""
    folder = tmp_path_factory.mktemp("determinism")
    protocol = folder / "protocol.yaml"
    protocol.write_text(yaml.safe_dump(tiny_protocol_dict()), encoding="utf-8")
    subprocess.run(command(protocol, folder / "whole"), env=environment(), cwd=folder, check=True, timeout=300)
    return protocol, folder / "whole"


def assert_same_results(expected: Path, actual: Path) -> None:
    assert (actual / "results.csv").read_text() == (expected / "results.csv").read_text()
    for run in sorted((expected / "runs").iterdir()):
        whole = pd.read_csv(run / "history.csv")[HISTORY]
        other = pd.read_csv(actual / "runs" / run.name / "history.csv")[HISTORY]
        pd.testing.assert_frame_equal(whole, other, check_exact=True)


def test_two_fresh_processes_write_identical_results(uninterrupted: tuple[Path, Path], tmp_path: Path) -> None:
    protocol, whole = uninterrupted
    subprocess.run(command(protocol, tmp_path / "again"), env=environment(), cwd=tmp_path, check=True, timeout=300)
    assert_same_results(whole, tmp_path / "again")
    assert json.loads((whole / "manifest.json").read_text())["deterministic"] is True


def test_killed_during_the_second_run_and_resumed_ends_identical(
    uninterrupted: tuple[Path, Path], tmp_path: Path
) -> None:
    protocol, whole = uninterrupted
    output = tmp_path / "killed"
    process = subprocess.Popen(command(protocol, output), env=environment(), cwd=tmp_path)
    first_epoch_saved = output / SECOND_RUN / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while not first_epoch_saved.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL
    assert first_epoch_saved.exists() and not (output / SECOND_RUN / "metrics.json").exists()
    subprocess.run(command(protocol, output, "--resume"), env=environment(), cwd=tmp_path, check=True, timeout=300)
    assert_same_results(whole, output)
