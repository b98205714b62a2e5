"""Datasets written the way a user would, outside the package, named in protocols as
``user_datasets:Squares`` and ``user_datasets:ShadedDigits``. They import nothing from ceco_fair."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

SIZE = 16


def _images(targets: Tensor, sensitive: Tensor, seed: int) -> Tensor:
    """``uint8 [n, 3, SIZE, SIZE]``: a bright square whose side grows with the target, tinted by the group."""
    generator = torch.Generator().manual_seed(seed)
    n = len(targets)
    images = torch.randint(0, 40, (n, 3, SIZE, SIZE), generator=generator, dtype=torch.uint8)
    for index in range(n):
        side = 4 + 2 * int(targets[index])
        images[index, :, :side, :side] = 220
        images[index, int(sensitive[index]) % 3] = 255
    return images


class Squares:
    """Binary target (small or large square), binary group (red or green tint) correlated with it."""

    metric_kind: ClassVar[str] = "group"
    takes_rho: ClassVar[bool] = False
    checked: ClassVar[list[str]] = []

    def __init__(self, split: str = "train", n: int = 192, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed + (0 if split == "train" else 1))
        self.targets = torch.randint(0, 2, (n,), generator=generator)
        flip = torch.rand(n, generator=generator) < (0.2 if split == "train" else 0.5)
        self.sensitive = torch.where(flip, 1 - self.targets, self.targets)
        self.images = _images(self.targets, self.sensitive, seed)
        self.n_classes, self.n_groups = 2, 2
        self.class_names, self.group_names = ["small", "large"], ["red", "green"]
        self.target_name, self.sensitive_name = "square size", "tint"

    @classmethod
    def preflight(cls, options: Mapping[str, Any], splits: Sequence[str]) -> None:
        """Nothing on disk to check; records that it was asked."""
        cls.checked.extend(splits)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Tensor, int, int]:
        return self.images[index], int(self.targets[index]), int(self.sensitive[index])


class ShadedDigits(Squares):
    """Three classes, each with its own bias value on a share ``rho`` of the training images."""

    metric_kind: ClassVar[str] = "bias"
    takes_rho: ClassVar[bool] = True

    def __init__(self, split: str = "train", rho: float = 0.9, n: int = 192, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed + (0 if split == "train" else 1))
        self.targets = torch.arange(n) % 3
        share = rho if split == "train" else 1 / 3
        aligned = torch.rand(n, generator=generator) < share
        other = (self.targets + torch.randint(1, 3, (n,), generator=generator)) % 3
        self.sensitive = torch.where(aligned, self.targets, other)
        self.images = _images(self.targets, self.sensitive, seed)
        self.n_classes, self.n_groups = 3, 3
        self.class_names, self.group_names = ["a", "b", "c"], ["red", "green", "blue"]
        self.target_name, self.sensitive_name = "square size", "tint"


class Incomplete(Squares):
    """Lacks ``group_names`` and ``sensitive_name``: the runner must say so."""

    def __init__(self, split: str = "train", seed: int = 0) -> None:
        super().__init__(split, seed=seed)
        del self.group_names, self.sensitive_name


class PreflightFails(Squares):
    """Its ``preflight`` raises a plain exception, as a user's check of its files might."""

    @classmethod
    def preflight(cls, options: Mapping[str, Any], splits: Sequence[str]) -> None:
        raise KeyError("labels.csv has no column 'smiling'")


class BuildFails(Squares):
    """Its constructor raises, as a user's dataset with a bug might."""

    def __init__(self, split: str = "train", seed: int = 0) -> None:
        raise ZeroDivisionError(f"cannot build the {split} split")


class ReadFails(Squares):
    """Reads its items one by one (no ``images`` tensor), and item 2 onwards raise."""

    def __init__(self, split: str = "train", n: int = 192, seed: int = 0) -> None:
        super().__init__(split, n, seed)
        self.pixels = self.images
        del self.images

    def __getitem__(self, index: int) -> tuple[Tensor, int, int]:
        if index >= 2:
            raise IndexError(f"item {index} is not on disk")
        return self.pixels[index], int(self.targets[index]), int(self.sensitive[index])


class OneGroup(Squares):
    """Every image in one sensitive group: nothing for a group-label method to balance."""

    def __init__(self, split: str = "train", n: int = 192, seed: int = 0) -> None:
        super().__init__(split, n=n, seed=seed)
        self.sensitive = self.sensitive.clone().zero_()
        self.n_groups, self.group_names = 1, ["grey"]


class ValidatedSquares(Squares):
    """Squares with a validation split drawn like the training split; ``flip_test`` swaps the test labels."""

    validation_labels: ClassVar[str] = "groups"

    def __init__(self, split: str = "train", n: int = 192, seed: int = 0, flip_test: bool = False) -> None:
        super().__init__("test" if split == "test" else "train", n, seed + (7 if split == "valid" else 0))
        if split == "test" and flip_test:
            self.targets = 1 - self.targets


class TargetOnlySquares(ValidatedSquares):
    """A validation split without real group labels: only ``val_accuracy`` may select on it."""

    validation_labels: ClassVar[str] = "targets"
