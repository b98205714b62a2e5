"""Shared fixtures: the small real data files carried in ``tests/data/real`` and tiny protocol files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from tiny_protocol import tiny_protocol_dict

torch.set_num_threads(2)

REAL_DATA = Path(__file__).resolve().parent / "data" / "real"


@pytest.fixture
def real_data() -> Path:
    """The real MNIST test files and CelebA attribute sample carried with the tests (see its README)."""
    assert REAL_DATA.exists(), f"expected the test data folder at {REAL_DATA}"
    return REAL_DATA


@pytest.fixture
def write_protocol(tmp_path: Path) -> Callable[..., Path]:
    """Write a tiny protocol (with overrides) to ``tmp_path/protocol.yaml`` and return its path."""

    def write(raw: dict[str, Any] | str | None = None, **overrides: Any) -> Path:
        path = tmp_path / "protocol.yaml"
        if isinstance(raw, str):
            path.write_text(raw, encoding="utf-8")
        else:
            path.write_text(
                yaml.safe_dump(raw if raw is not None else tiny_protocol_dict(**overrides)),
                encoding="utf-8",
            )
        return path

    return write
