"""A user-style loss, loaded by protocols as ``user_loss:ViewAgreement`` (tests put tests/ on the path)."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn


class ViewAgreement(nn.Module):
    """Mean squared distance between the normalised views of each image, times ``scale``.

    ``calls`` records the shapes of every call, so that tests can see the loss ran.
    """

    calls: ClassVar[list[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]] = []

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, features: torch.Tensor, labels: torch.Tensor, sensitive: torch.Tensor) -> torch.Tensor:
        ViewAgreement.calls.append((tuple(features.shape), tuple(labels.shape), tuple(sensitive.shape)))
        views = F.normalize(features, dim=-1)  # [N, V, D]
        return self.scale * (views[:, 0] - views[:, 1]).pow(2).sum(-1).mean()


class Raises(nn.Module):
    """A loss whose construction fails."""

    def __init__(self) -> None:
        raise RuntimeError("this loss cannot be built")


class Broken(nn.Module):
    """A loss that returns what ``mode`` says, or raises when ``mode`` is ``raise``.

    Modes: ``raise`` (a ValueError), ``no_grad`` (a detached value), ``vector`` (one value per
    image), ``nan`` and ``number`` (a Python float).
    """

    def __init__(self, mode: str = "raise") -> None:
        super().__init__()
        self.mode = mode

    def forward(self, features: torch.Tensor, labels: torch.Tensor, sensitive: torch.Tensor) -> object:
        per_image = features.pow(2).sum((1, 2))
        if self.mode == "raise":
            raise ValueError(f"cannot handle {features.shape[0]} images")
        if self.mode == "no_grad":
            return per_image.mean().detach()
        if self.mode == "vector":
            return per_image
        if self.mode == "nan":
            return per_image.mean() * float("nan")
        return float(per_image.detach().mean())
