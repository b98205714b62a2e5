"""The ``train`` section of a protocol: optimiser and pretraining settings, checked on construction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ceco_fair.data.augment import AugmentConfig
from ceco_fair.errors import CecoFairError
from ceco_fair.training.tensorboard import require_tensorboard

HISTORY_COLUMNS = ("epoch", "loss", "lr", "seconds", "images_per_s", "data_seconds")
"""The per-epoch history's columns (``history.csv``)."""


@dataclass(frozen=True)
class OptimizerConfig:
    """Optimiser settings (``sgd``, ``adam`` or ``adamw``) with a cosine schedule after warm-up."""

    name: Literal["sgd", "adam", "adamw"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in ("sgd", "adam", "adamw"):
            raise CecoFairError(f"train.optimizer.name: expected sgd, adam or adamw, got {self.name!r}")
        if not self.lr > 0:
            raise CecoFairError(f"train.optimizer.lr: expected a positive number, got {self.lr}")
        if self.weight_decay < 0:
            raise CecoFairError(f"train.optimizer.weight_decay: expected >= 0, got {self.weight_decay}")


@dataclass(frozen=True)
class TrainConfig:
    """Pretraining settings; see the protocol documentation for each key."""

    epochs: int = 10
    batch_size: int = 256
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    warmup_epochs: int = 0
    grad_clip: float | None = None
    amp: bool = True
    num_workers: int = 0
    sync_batchnorm: bool = False
    log_every: int = 50
    max_batches_per_epoch: int | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    deterministic: bool | None = None
    tensorboard: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise CecoFairError(f"train.epochs: expected a positive integer, got {self.epochs}")
        if self.batch_size < 2:
            raise CecoFairError(f"train.batch_size: expected at least 2, got {self.batch_size}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise CecoFairError(
                f"train.warmup_epochs: expected 0 <= warmup < epochs ({self.epochs}), got {self.warmup_epochs}"
            )
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise CecoFairError(f"train.grad_clip: expected a positive number or null, got {self.grad_clip}")
        if self.max_batches_per_epoch is not None and self.max_batches_per_epoch < 1:
            raise CecoFairError(
                f"train.max_batches_per_epoch: expected a positive integer or null, got {self.max_batches_per_epoch}"
            )
        if self.num_workers < 0:
            raise CecoFairError(f"train.num_workers: expected >= 0, got {self.num_workers}")
        if self.tensorboard:
            require_tensorboard()
