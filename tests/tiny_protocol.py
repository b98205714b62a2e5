"""A protocol that trains for seconds, shared by the runner tests."""

from __future__ import annotations

from typing import Any


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
