"""train.tensorboard: each epoch's history row as scalars under runs/<id>/tensorboard/, or one clear error."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest
from test_protocol import run_cli


class FakeWriter:
    """Stands in for torch.utils.tensorboard.SummaryWriter and records what it is given."""

    made: ClassVar[list[FakeWriter]] = []

    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir
        self.scalars: list[tuple[str, float, int]] = []
        self.closed = False
        FakeWriter.made.append(self)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars.append((tag, value, step))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_without_tensorboard_validation_names_the_extra(
    write_protocol: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # an import of it fails
    status, err = run_cli(write_protocol(train={"tensorboard": True}), tmp_path / "out", capsys, "--dry-run")
    assert status == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("error:") and "train.tensorboard" in line
    assert "pip install 'ceco_fair[tensorboard]'" in line
    assert not (tmp_path / "out").exists()


def test_each_epoch_row_is_written_as_scalars(
    write_protocol: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake: Any = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = FakeWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    FakeWriter.made.clear()
    protocol = write_protocol(methods=["ce", "frozen"], train={"tensorboard": True})
    status, err = run_cli(protocol, tmp_path / "out", capsys)
    assert status == 0, err
    run = tmp_path / "out" / "runs" / "ce-rho0.99-seed0"
    (writer,) = FakeWriter.made  # the frozen run trains nothing and logs nothing
    assert writer.log_dir == str(run / "tensorboard") and writer.closed
    history = pd.read_csv(run / "history.csv")
    for column in ("loss", "lr", "images_per_s"):
        logged = [(step, value) for tag, value, step in writer.scalars if tag == f"train/{column}"]
        assert logged == list(zip(history["epoch"].astype(int), history[column], strict=True))
