"""Shared fixtures: the small real data files carried in ``tests/data/real`` and tiny protocol files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

torch.set_num_threads(2)

REAL_DATA = Path(__file__).resolve().parent / "data" / "real"


@pytest.fixture
def real_data() -> Path:
    """The real MNIST test files and CelebA attribute sample carried with the tests (see its README)."""
    assert REAL_DATA.exists(), f"expected the test data folder at {REAL_DATA}"
    return REAL_DATA


def tiny_protocol_dict(**overrides: Any) -> dict[str, Any]:
    """A protocol that trains for seconds: BiasedMNIST embedded, small_conv, a few batches."""
    protocol: dict[str, Any] = {
        "name": "tiny",
        "device": "cpu",
        "seeds": [0],
        "data": {"dataset": "biased_mnist", "source": "embedded", "rho": [0.99]},
        "encoder": {"arch": "small_conv", "feature_dim": 16, "projection_dim": 16},
        "methods": [{"name": "ce"}, {"name": "contex", "temperature": 0.1}],
        "train": {
            "epochs": 2,
            "batch_size": 64,
            "max_batches_per_epoch": 3,
            "optimizer": {"name": "adam", "lr": 0.001},
        },
        "probe": {"epochs": 2, "batch_size": 512},
        "eval": {"n_boot": 0, "projection_points": 100},
        "report": False,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(protocol.get(key), dict):
            protocol[key] = {**protocol[key], **value}
        else:
            protocol[key] = value
    return protocol


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
