"""What a training run holds between epochs (:class:`TrainState`) and its learning-rate :class:`Schedule`.

The state is the model, its optimiser, the method (with its own state: group DRO's ``q``, JTT's error
set, ...), the history and the number of epochs done; a checkpoint holds all of it, so that a resumed
run on CPU ends with exactly the state of an uninterrupted one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ceco_fair.errors import CecoFairError
from ceco_fair.training.checkpoint import load_checkpoint, save_checkpoint
from ceco_fair.training.config import OptimizerConfig, TrainConfig
from ceco_fair.training.method import Method

CHECKPOINT_VERSION = 2
"""Version 2: a method's second network is the model's ``extra`` part (version 1 named LfF's ``biased``)."""


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a ``DistributedDataParallel`` wrapper (or the model itself)."""
    inner = getattr(model, "module", model)
    assert isinstance(inner, nn.Module)
    return inner


def cosine_lr(base_lr: float, step: int, total_steps: int, warmup_steps: int) -> float:
    """Learning rate at ``step``: linear warm-up to ``base_lr``, then cosine decay to zero."""
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * base_lr * (1 + math.cos(math.pi * min(1.0, progress)))


def build_optimizer(model: nn.Module, config: OptimizerConfig) -> torch.optim.Optimizer:
    """The optimiser named by ``config`` over ``model``'s parameters."""
    params = model.parameters()
    if config.name == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.name == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def epoch_generator(seed: int, epoch: int, stream: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator seeded by ``(seed, epoch, stream)``: the same draws whenever an epoch is replayed."""
    generator = torch.Generator(device=device)
    generator.manual_seed((seed * 1_000_003 + epoch) * 4 + stream)
    return generator


@dataclass(frozen=True)
class Schedule:
    """The steps of an epoch and the learning rate of each: warm-up, then cosine decay, per stage of a method.

    Attributes:
        steps_per_epoch: optimisation steps per epoch (full global batches, capped by
            ``train.max_batches_per_epoch``).
        global_batch: samples per step over all processes.
        warmup_epochs: epochs of linear warm-up at the start of each stage.
        base_lr: the peak learning rate.
    """

    steps_per_epoch: int
    global_batch: int
    warmup_epochs: int
    base_lr: float

    @classmethod
    def of(cls, config: TrainConfig, n_samples: int, world_size: int) -> Schedule:
        """The schedule of ``config`` on ``n_samples`` training samples split over ``world_size`` processes.

        Raises:
            CecoFairError: the batch does not split over the processes, or is larger than the training set.
        """
        global_batch = config.batch_size
        if global_batch % world_size:
            raise CecoFairError(f"train.batch_size: {global_batch} is not divisible by the {world_size} processes")
        steps = n_samples // global_batch
        if steps < 1:
            raise CecoFairError(
                f"train.batch_size: {global_batch} is larger than the training set ({n_samples} samples)"
            )
        if config.max_batches_per_epoch is not None:
            steps = min(steps, config.max_batches_per_epoch)
        return cls(steps, global_batch, config.warmup_epochs, config.optimizer.lr)

    def lr(self, step: int, stage_epochs: int) -> float:
        """The learning rate at ``step`` (0-based, counted from the stage's start) of a stage of ``stage_epochs``."""
        total = self.steps_per_epoch * stage_epochs
        warmup = self.steps_per_epoch * min(self.warmup_epochs, stage_epochs - 1)
        return cosine_lr(self.base_lr, step, total, warmup)


@dataclass
class TrainState:
    """A run's training state after ``epoch`` epochs.

    Attributes:
        model: the :class:`~ceco_fair.training.methods.MethodModel`, possibly wrapped in DDP.
        optimizer: the optimiser of its parameters.
        method: the run's method object, with its own state.
        seed: the run's seed (recorded in the checkpoint).
        history: one row per epoch done.
        epoch: the number of epochs done.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    method: Method
    seed: int
    history: list[dict[str, float]] = field(default_factory=list)
    epoch: int = 0

    def restart_optimizer(self, config: OptimizerConfig) -> None:
        """A fresh optimiser (the model restarted)."""
        self.optimizer = build_optimizer(self.model, config)

    def save(self, path: Path) -> None:
        """Write the state to ``path`` atomically."""
        state: dict[str, Any] = {
            "version": CHECKPOINT_VERSION,
            "epoch": self.epoch,
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "history": self.history,
            "method": self.method.name,
            "seed": self.seed,
            "objective": self.method.state_dict(),
        }
        save_checkpoint(path, state)

    def load(self, path: Path) -> None:
        """Restore the state saved in ``path``.

        Raises:
            CecoFairError: the checkpoint has another version.
        """
        state = load_checkpoint(path)
        if state.get("version") != CHECKPOINT_VERSION:
            raise CecoFairError(
                f"--resume: {path} has checkpoint version {state.get('version')!r}, this "
                f"version of ceco_fair writes {CHECKPOINT_VERSION}; start the protocol again without --resume"
            )
        unwrap(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.history = [dict(row) for row in state["history"]]
        self.epoch = int(state["epoch"])
        self.method.load_state_dict(state["objective"])
