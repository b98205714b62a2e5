"""Atomic writes: all or nothing, ordinary permissions, checkpoints load without running code."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from ceco_fair.common.io import atomic_write, atomic_write_json
from ceco_fair.training.checkpoint import load_checkpoint, save_checkpoint


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "results.csv"
    target.write_text("old\n")

    def explode(file: object) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, explode)  # type: ignore[arg-type]
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]


def test_written_files_get_ordinary_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "m.json", {"a": float("nan")})
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "m.json").stat().st_mode) == 0o644
    assert (tmp_path / "m.json").read_text().strip() == '{\n  "a": null\n}'


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    state = {"epoch": 3, "model": {"w": torch.arange(4.0)}, "history": [{"loss": 1.5}]}
    save_checkpoint(tmp_path / "c.pt", state)
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert loaded["epoch"] == 3 and loaded["history"] == [{"loss": 1.5}]
    torch.testing.assert_close(loaded["model"]["w"], torch.arange(4.0))
