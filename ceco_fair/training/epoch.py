"""One epoch of training: the batches of the method's order, one optimisation step each.

Each epoch's sample order and augmentation come from generators seeded by ``(seed, epoch)``
(:func:`~ceco_fair.training.state.epoch_generator`), so that a replayed epoch draws the same.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from ceco_fair.common.progress import progress_bar
from ceco_fair.data.augment import BatchAugment, normalize
from ceco_fair.data.base import FairnessDataset
from ceco_fair.errors import UserCodeError
from ceco_fair.training.batches import Batch, BatchSource, chunk_indices
from ceco_fair.training.config import TrainConfig
from ceco_fair.training.distributed import DistributedContext
from ceco_fair.training.state import Schedule, TrainState, epoch_generator

DIVERGED_HINT = "the last good checkpoint is kept (try a lower train.optimizer.lr or train.grad_clip)"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass(frozen=True)
class Progress:
    """Whether to show a progress bar per epoch, and its label (the run's id)."""

    show: bool = True
    label: str = ""


class TrainingStep:
    """One optimisation step, split into the data part (views) and the model part (update).

    Neither part reads a value back to the host: on a GPU the Python loop runs ahead of the device
    and only the caller's logging at intervals waits for it.

    Args:
        state: the run's state: its model, optimiser (read at each step: a restart replaces it) and method.
        config: the training settings (augmentation, gradient clipping, bf16 autocast).
        device: where the step runs; autocast and channels-last apply on CUDA only.
    """

    def __init__(self, state: TrainState, config: TrainConfig, device: torch.device) -> None:
        self.state = state
        self.augment = BatchAugment(config.augment)
        self.grad_clip = config.grad_clip
        self.device = device
        self.use_amp = config.amp and device.type == "cuda"
        self.memory_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format
        self.n_views = state.method.n_views

    def views(self, images: torch.Tensor, generator: torch.Generator | None) -> list[torch.Tensor]:
        """Augmented views of a uint8 batch ``[B, 3, H, W]``: ``n_views`` float tensors of that shape."""
        return [
            self.augment(images, generator).contiguous(memory_format=self.memory_format) for _ in range(self.n_views)
        ]

    def update(
        self, views: list[torch.Tensor], targets: torch.Tensor, sensitive: torch.Tensor, lr: float, index: torch.Tensor
    ) -> torch.Tensor:
        """Forward, backward and optimiser step at learning rate ``lr``; returns the detached loss (0-dim).

        ``index [B]`` are the batch's rows in the training set.
        """
        model, optimizer = self.state.model, self.state.optimizer
        for group in optimizer.param_groups:
            group["lr"] = lr
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.use_amp else contextlib.nullcontext()
        with autocast:
            loss = self.state.method.loss(model, views, targets, sensitive, index)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip)
        optimizer.step()
        return loss.detach()


def located_batches(batches: Iterator[Batch], epoch: int, step: int) -> Iterator[Batch]:
    """``batches`` as they are; a :class:`UserCodeError` raised reading one names the epoch and step.

    Args:
        batches: one epoch's batches.
        epoch: the epoch (0-based).
        step: the global step (0-based) of the first batch.
    """
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except UserCodeError as error:
            raise error.at(f"epoch {epoch + 1}, step {step + 1}") from None
        yield batch
        step += 1


def epoch_batches(state: TrainState, schedule: Schedule, seed: int, context: DistributedContext) -> list[torch.Tensor]:
    """This process's share of each of the epoch's batches: rows ``[B / world_size]`` of the method's order."""
    order = state.method.order(state.epoch, epoch_generator(seed, state.epoch, 0))
    batches = chunk_indices(order, schedule.global_batch, drop_last=True)[: schedule.steps_per_epoch]
    local = schedule.global_batch // context.world_size
    return [b[context.rank * local : (context.rank + 1) * local] for b in batches]


def run_epoch(
    state: TrainState,
    step: TrainingStep,
    source: BatchSource,
    schedule: Schedule,
    context: DistributedContext,
    config: TrainConfig,
    progress: Progress,
) -> dict[str, float]:
    """Train epoch ``state.epoch`` and return its history row.

    Returns:
        ``epoch`` (1-based), ``loss`` (the mean over the epoch's steps and processes), ``lr`` (the last
        step's), ``seconds``, ``images_per_s`` and ``data_seconds``.

    Raises:
        TrainingDiverged: the loss became NaN or infinite.
        UserCodeError: user code raised (epoch and step named).
    """
    epoch, device = state.epoch, step.device
    state.model.train()
    batches = epoch_batches(state, schedule, state.seed, context)
    first_epoch, stage_epochs = state.method.stage(epoch, config.epochs)
    aug_generator = epoch_generator(state.seed, epoch, 1 + context.rank, device)
    started = time.perf_counter()
    data_seconds, lr = 0.0, schedule.base_lr
    loss_sum = torch.zeros((), device=device)
    bar = progress_bar(
        total=len(batches),
        desc=f"{progress.label} epoch {epoch + 1}/{config.epochs}",
        hidden=not (progress.show and context.is_main),
        leave=False,
        unit="batch",
    )
    index = (epoch - first_epoch) * schedule.steps_per_epoch
    data_started = time.perf_counter()
    for rows, (images, targets, sensitive) in zip(batches, located_batches(source(batches), epoch, index), strict=True):
        views = step.views(images, aug_generator)
        data_seconds += time.perf_counter() - data_started
        lr = schedule.lr(index, stage_epochs)
        try:
            loss = step.update(views, targets, sensitive, lr, rows)
        except UserCodeError as error:  # a user loss raised or broke its contract: say where
            bar.close()
            raise error.at(f"epoch {epoch + 1}, step {index + 1}") from None
        loss_sum += loss
        index += 1
        bar.update(1)
        if index % config.log_every == 0 or device.type == "cpu":
            current = float(loss)
            if not math.isfinite(current):
                bar.close()
                raise TrainingDiverged(
                    f"{progress.label}: the loss became {current} at epoch {epoch + 1}, step {index}; {DIVERGED_HINT}"
                )
            bar.set_postfix(loss=f"{current:.4f}", lr=f"{lr:.2e}")
        data_started = time.perf_counter()
    bar.close()
    if context.world_size > 1:
        torch.distributed.all_reduce(loss_sum)
        loss_sum /= context.world_size
    mean_loss = float(loss_sum) / max(1, len(batches))  # waits for the device: the epoch's work is done
    seconds = time.perf_counter() - started
    if not math.isfinite(mean_loss):
        raise TrainingDiverged(f"{progress.label}: the loss became {mean_loss} in epoch {epoch + 1}; {DIVERGED_HINT}")
    return {
        "epoch": float(epoch + 1),
        "loss": mean_loss,
        "lr": lr,
        "seconds": seconds,
        "images_per_s": len(batches) * schedule.global_batch / seconds,
        "data_seconds": data_seconds,
    }


@torch.no_grad()
def predict_classes(
    model: nn.Module, *, dataset: FairnessDataset, config: TrainConfig, device: torch.device
) -> torch.Tensor:
    """The classifier's predictions ``[n]`` on every (un-augmented) training image, in dataset order.

    Args:
        model: an unwrapped :class:`~ceco_fair.training.methods.MethodModel` with a classifier.
        dataset: the training split.
        config: the training settings (batch size, workers, normalisation).
        device: where the model is.
    """
    was_training = model.training
    model.eval()
    batches = chunk_indices(torch.arange(len(dataset)), config.batch_size, drop_last=False)
    parts = []
    for images, _, _ in BatchSource(dataset, device, config.num_workers)(batches):
        logits = model(normalize(images, config.augment))[1]
        assert logits is not None
        parts.append(logits.argmax(dim=1))
    model.train(was_training)
    return torch.cat(parts)
