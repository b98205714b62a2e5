"""A user-style encoder factory, loaded by protocols as ``tiny_encoder:make``."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def make(width: int = 8) -> nn.Module:
    """A two-layer convolutional encoder without a ``feature_dim`` attribute: ``[B, 3, H, W] -> [B, width]``."""
    return nn.Sequential(nn.Conv2d(3, width, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def broken(width: int = 8) -> nn.Module:
    """A factory that fails when called."""
    raise RuntimeError(f"cannot build an encoder of width {width}")


def writes_file(path: str) -> nn.Module:
    """A factory with a visible side effect: it writes ``path`` when called."""
    Path(path).write_text("called\n", encoding="utf-8")
    return make()


def records_calls(log: str, output: str) -> nn.Module:
    """A factory that appends to ``log`` whether the folder ``output`` existed when it was called."""
    with Path(log).open("a", encoding="utf-8") as file:
        file.write(f"{Path(output).exists()}\n")
    return make()


def unflattened(width: int = 8) -> nn.Module:
    """A backbone cut before its flatten: ``[B, 3, H, W] -> [B, width, 1, 1]``."""
    return nn.Sequential(nn.Conv2d(3, width, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1))


class _Pair(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = make()

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(images)
        return features, features


def pair() -> nn.Module:
    """An encoder that returns a tuple of two feature tensors instead of one."""
    return _Pair()


class _FailsForward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = make()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        raise RuntimeError(f"no forward pass for images of {images.shape[-1]} pixels")


def fails_forward() -> nn.Module:
    """An encoder that builds but raises on every batch."""
    return _FailsForward()
