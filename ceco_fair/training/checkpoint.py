"""Checkpoints that survive an interrupted run, written atomically (see :mod:`ceco_fair.common.io`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ceco_fair.common.io import atomic_write


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Save a training state (tensors, numbers, strings, lists, dicts) atomically with ``torch.save``."""
    atomic_write(path, lambda file: torch.save(state, file))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``: no code is run)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a ceco_fair checkpoint")
    return state
