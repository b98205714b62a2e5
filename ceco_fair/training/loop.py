"""Pretraining: one loop for cross-entropy and every contrastive loss, with exact resume.

The loop draws each epoch's sample order and augmentation from generators seeded by
``(seed, epoch)``, and a checkpoint after every epoch holds the model, optimiser and history, so
that a resumed run on CPU ends with exactly the state of an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ceco_fair.common.progress import progress_bar
from ceco_fair.common.user_code import is_user_spec
from ceco_fair.data.augment import AugmentConfig, BatchAugment, normalize
from ceco_fair.data.base import FairnessDataset
from ceco_fair.errors import CecoFairError, UserCodeError
from ceco_fair.losses import LOSSES, ContrastiveLoss, build_loss
from ceco_fair.models.encoders import ProjectionHead
from ceco_fair.training.batches import Batch, BatchSource, chunk_indices
from ceco_fair.training.checkpoint import load_checkpoint, save_checkpoint
from ceco_fair.training.distributed import ContrastiveLossFn, DistributedContext, global_contrastive_loss
from ceco_fair.training.groups import OBJECTIVES, SUBGROUP_METHODS, SubgroupObjective, build_objective
from ceco_fair.training.tensorboard import require_tensorboard
from ceco_fair.training.user_loss import build_user_loss

logger = logging.getLogger(__name__)

FROZEN = "frozen"
"""The method that trains nothing: the encoder is audited as built (and loaded from ``encoder.weights``)."""
METHODS: tuple[str, ...] = ("ce", FROZEN, *sorted(LOSSES), *SUBGROUP_METHODS)
CHECKPOINT_VERSION = 1
HISTORY_COLUMNS = ("epoch", "loss", "lr", "seconds", "images_per_s", "data_seconds")
"""The per-epoch history's columns (``history.csv``)."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


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


@dataclass(frozen=True)
class MethodConfig:
    """A training method: ``ce``, a subgroup baseline or a contrastive loss name with its keyword arguments.

    Attributes:
        name: ``ce``, ``frozen``, one of :data:`~ceco_fair.training.groups.SUBGROUP_METHODS` or a key of
            :data:`ceco_fair.losses.LOSSES` (or a user loss).
        loss_kwargs: keyword arguments of the loss (temperature, ...) or the subgroup method's options.
        ce_weight: weight of an auxiliary cross-entropy head trained with a contrastive loss; 0 disables
            it, None takes the loss's ``default_ce_weight`` (BiasCon trains 0.01·CE + BiasCon, others 0).
        projection_dim: output size of the projection head.
    """

    name: str
    loss_kwargs: Mapping[str, Any] = field(default_factory=dict)
    ce_weight: float | None = None
    projection_dim: int = 128

    @property
    def cross_entropy_weight(self) -> float:
        """The auxiliary cross-entropy weight: ``ce_weight``, else the named loss's ``default_ce_weight``."""
        if self.ce_weight is not None:
            return self.ce_weight
        return LOSSES[self.name].default_ce_weight if self.name in LOSSES else 0.0

    @property
    def contrastive(self) -> bool:
        """Whether the method trains with a contrastive loss on two views (a named or a user loss)."""
        return self.name not in ("ce", FROZEN, *SUBGROUP_METHODS)

    @property
    def subgroup(self) -> bool:
        """Whether the method is a subgroup baseline (cross-entropy with per-sample weights or sampling)."""
        return self.name in SUBGROUP_METHODS

    @property
    def projects(self) -> bool:
        """Whether the model has a projection head: a contrastive loss, or a subgroup method that contrasts (CnC)."""
        return self.contrastive or (self.subgroup and OBJECTIVES[self.name].projection_head)

    @property
    def trains(self) -> bool:
        """Whether the method pretrains the encoder (every method but ``frozen``)."""
        return self.name != FROZEN


class MethodModel(nn.Module):
    """Encoder plus what a method trains on top of it: a projection head and/or a classifier.

    Args:
        encoder: maps ``[B, 3, H, W]`` to ``[B, D]`` and exposes ``feature_dim``.
        method: the training method.
        n_classes: number of target classes for the classifier.
    """

    def __init__(self, encoder: nn.Module, method: MethodConfig, n_classes: int) -> None:
        super().__init__()
        feature_dim = int(getattr(encoder, "feature_dim"))  # noqa: B009  (user encoders are plain Modules)
        self.encoder = encoder
        self.head = ProjectionHead(feature_dim, method.projection_dim) if method.projects else None
        needs_classifier = not method.contrastive or method.cross_entropy_weight > 0
        self.classifier = nn.Linear(feature_dim, n_classes) if needs_classifier else None
        self.biased = biased_model(encoder, feature_dim, n_classes) if method.name == "lff" else None

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Projections ``[B, P]`` (None without a head) and logits ``[B, C]`` (None without a classifier).

        For ``lff`` the first output is the biased model's logits ``[B, C]`` (it has no projection head).
        """
        features = self.encoder(images)
        projected = self.head(features) if self.head is not None else None
        if self.biased is not None:
            projected = self.biased(images)
        logits = self.classifier(features) if self.classifier is not None else None
        return projected, logits


def biased_model(encoder: nn.Module, feature_dim: int, n_classes: int) -> nn.Module:
    """LfF's biased model: a copy of ``encoder`` with freshly initialised layers and its own linear head.

    Layers with ``reset_parameters`` are re-initialised from the global generator (seeded per run), so
    the two models start apart, as two independently initialised networks do.
    """
    copied = copy.deepcopy(encoder)
    for module in copied.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
    return nn.Sequential(copied, nn.Linear(feature_dim, n_classes))


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


def training_loss(
    model: nn.Module,
    method: MethodConfig,
    contrastive_loss: ContrastiveLossFn | None,
    views: list[torch.Tensor],
    targets: torch.Tensor,
    sensitive: torch.Tensor,
) -> torch.Tensor:
    """The method's loss on one batch.

    Args:
        model: a :class:`MethodModel`, possibly wrapped in ``DistributedDataParallel``.
        method: the method (``ce`` uses the first view only).
        contrastive_loss: the contrastive loss on projected features, None for ``ce``.
        views: augmented views, each ``[B, 3, H, W]``.
        targets: labels ``[B]``.
        sensitive: sensitive / bias values ``[B]``.

    Returns:
        A scalar tensor.
    """
    batch = views[0].shape[0]
    projected, logits = model(torch.cat(views) if len(views) > 1 else views[0])
    if not method.contrastive:
        assert logits is not None
        return F.cross_entropy(logits.float(), targets)
    assert projected is not None and contrastive_loss is not None
    per_sample = projected.float().view(len(views), batch, -1).transpose(0, 1)  # [B, V, P]
    loss = contrastive_loss(per_sample, targets, sensitive)
    if logits is not None and method.cross_entropy_weight > 0:
        loss = loss + method.cross_entropy_weight * F.cross_entropy(logits[:batch].float(), targets)
    return loss


def method_loss_module(method: MethodConfig) -> ContrastiveLoss | None:
    """The contrastive loss module of a method for training (input value checks off), None for ``ce``.

    Without the checks the loss reads nothing back to the host. Non-finite features give a
    non-finite loss instead of an input error, so that a diverging run stops as
    :class:`TrainingDiverged` with its last good checkpoint kept. A user loss
    (``"package.module:Name"``) is not a :class:`ContrastiveLoss`: see :func:`build_method_loss`.
    """
    if not method.contrastive or is_user_spec(method.name):
        return None
    loss = build_loss(method.name, **dict(method.loss_kwargs))
    loss.check_values = False
    return loss


def build_method_loss(
    method: MethodConfig,
    *,
    n_classes: int | None = None,
    n_groups: int | None = None,
    context: DistributedContext | None = None,
) -> ContrastiveLossFn | None:
    """The training loss of a method's contrastive part, None for ``ce`` and ``frozen``: the one place it is built.

    Args:
        method: the training method.
        n_classes: the dataset's number of classes (labels in ``[0, n_classes)``; None: any integers).
        n_groups: the dataset's number of sensitive groups.
        context: this process's rank and world size; with more than one process a named loss
            contrasts this process's anchors against the global batch
            (:func:`~ceco_fair.training.distributed.global_contrastive_loss`).

    Returns:
        ``(features [B, V, P], labels [B], sensitive [B]) -> scalar``; with both sizes a named loss
        indexes fixed-size tables by the ids and makes no host synchronisation. A user loss
        (``"package.module:Name"``) is built with the method's keywords and called as it is, on this
        process's share of the batch.
    """
    if is_user_spec(method.name):
        return build_user_loss(method.name, method.loss_kwargs)
    loss = method_loss_module(method)
    if loss is None:
        return None
    if context is not None and context.world_size > 1:
        return global_contrastive_loss(loss, context, n_classes=n_classes, n_groups=n_groups)
    return functools.partial(loss, n_classes=n_classes, n_groups=n_groups)


class TrainingStep:
    """One optimisation step, split into the data part (views) and the model part (update).

    Neither part reads a value back to the host: on a GPU the Python loop runs ahead of the device
    and only the caller's logging at intervals waits for it.

    Args:
        model: a :class:`MethodModel`, possibly wrapped in ``DistributedDataParallel``.
        method: the training method (two views for contrastive methods, one for ``ce``).
        contrastive_loss: the contrastive loss on projected features, None for ``ce``.
        optimizer: the optimiser of ``model``'s parameters.
        config: the training settings (augmentation, gradient clipping, bf16 autocast).
        device: where the step runs; autocast and channels-last apply on CUDA only.
        objective: the subgroup method's loss (None: :func:`training_loss`).
    """

    def __init__(
        self,
        model: nn.Module,
        method: MethodConfig,
        contrastive_loss: ContrastiveLossFn | None,
        optimizer: torch.optim.Optimizer,
        config: TrainConfig,
        device: torch.device,
        objective: SubgroupObjective | None = None,
    ) -> None:
        self.model = model
        self.objective = objective
        self.method = method
        self.contrastive_loss = contrastive_loss
        self.optimizer = optimizer
        self.augment = BatchAugment(config.augment)
        self.grad_clip = config.grad_clip
        self.use_amp = config.amp and device.type == "cuda"
        self.memory_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format
        self.n_views = 2 if method.contrastive else 1

    def views(self, images: torch.Tensor, generator: torch.Generator | None) -> list[torch.Tensor]:
        """Augmented views of a uint8 batch ``[B, 3, H, W]``: ``n_views`` float tensors of that shape."""
        return [
            self.augment(images, generator).contiguous(memory_format=self.memory_format) for _ in range(self.n_views)
        ]

    def update(
        self,
        views: list[torch.Tensor],
        targets: torch.Tensor,
        sensitive: torch.Tensor,
        lr: float,
        index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Forward, backward and optimiser step at learning rate ``lr``; returns the detached loss (0-dim).

        ``index [B]`` are the batch's rows in the training set (subgroup methods need them).
        """
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.use_amp else contextlib.nullcontext()
        with autocast:
            if self.objective is not None:
                assert index is not None
                loss = self.objective.loss(self.model(views[0]), targets, index)
            else:
                loss = training_loss(self.model, self.method, self.contrastive_loss, views, targets, sensitive)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
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


@torch.no_grad()
def predict_classes(
    model: nn.Module, *, dataset: FairnessDataset, config: TrainConfig, device: torch.device
) -> torch.Tensor:
    """The classifier's predictions ``[n]`` on every (un-augmented) training image, in dataset order.

    Args:
        model: an unwrapped :class:`MethodModel` with a classifier.
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


def pretrain(
    model: nn.Module,
    method: MethodConfig,
    dataset: FairnessDataset,
    config: TrainConfig,
    *,
    seed: int,
    device: torch.device,
    checkpoint_path: Path | None = None,
    resume: bool = False,
    contrastive_loss: ContrastiveLossFn | None = None,
    context: DistributedContext | None = None,
    progress: bool = True,
    description: str = "",
    track: Callable[[nn.Module], dict[str, float]] | None = None,
    track_every: int = 0,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` with ``method`` on ``dataset`` and return the per-epoch history.

    Each epoch's order and augmentation come from generators seeded by ``(seed, epoch)``. After every
    epoch the model, optimiser and history are checkpointed atomically to ``checkpoint_path``; with
    ``resume`` the loop continues from that checkpoint.

    Args:
        model: the :class:`MethodModel` to train, possibly wrapped in ``DistributedDataParallel``.
        method: the training method.
        dataset: yields ``(image uint8 [3, H, W], target, sensitive)``; its ``n_classes`` / ``n_groups``
            size the loss's tables.
        config: the training settings.
        seed: the run's seed.
        device: where to train.
        checkpoint_path: where to save a checkpoint after every epoch (None: no checkpoints).
        resume: continue from ``checkpoint_path`` if it exists.
        contrastive_loss: replaces the method's loss (default: :func:`build_method_loss` with the dataset's
            sizes and ``context``).
        context: this process's rank and world size.
        progress: show a progress bar per epoch.
        description: the progress bar's label.
        track: measures the encoder after an epoch (e.g. :class:`ceco_fair.evaluation.tracking.EpochTracker`); its
            values join that epoch's history row (rank 0 only), with ``track_seconds``.
        track_every: call ``track`` after every ``track_every``-th epoch and after the last (0: never).
        on_epoch: called with each new epoch's history row (e.g. a TensorBoard log).

    Returns:
        One dict per epoch: ``epoch``, ``loss``, ``lr``, ``seconds``, ``images_per_s``, ``data_seconds``
        (and the tracked values on tracked epochs).

    Raises:
        TrainingDiverged: the loss became NaN or infinite (the last checkpoint is the last good epoch).
        UserCodeError: a user loss raised or returned no finite scalar with a gradient (epoch and step named).
    """
    context = context or DistributedContext()
    model.to(device)
    if contrastive_loss is None:
        contrastive_loss = build_method_loss(
            method, n_classes=dataset.n_classes, n_groups=dataset.n_groups, context=context
        )
    optimizer = build_optimizer(model, config.optimizer)
    n_samples = len(dataset)
    global_batch = config.batch_size
    if global_batch % context.world_size:
        raise CecoFairError(f"train.batch_size: {global_batch} is not divisible by the {context.world_size} processes")
    steps_per_epoch = n_samples // global_batch
    if steps_per_epoch < 1:
        raise CecoFairError(f"train.batch_size: {global_batch} is larger than the training set ({n_samples} samples)")
    if config.max_batches_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, config.max_batches_per_epoch)
    objective = (
        build_objective(method.name, method.loss_kwargs, dataset, model=unwrap(model), device=device)
        if method.subgroup
        else None
    )
    history: list[dict[str, float]] = []
    start_epoch = 0
    if resume and checkpoint_path is not None and checkpoint_path.exists():
        state = load_checkpoint(checkpoint_path)
        if state.get("version") != CHECKPOINT_VERSION:
            raise CecoFairError(
                f"--resume: {checkpoint_path} has checkpoint version {state.get('version')!r}, this "
                f"version of ceco_fair writes {CHECKPOINT_VERSION}; start the protocol again without --resume"
            )
        unwrap(model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = [dict(row) for row in state["history"]]
        start_epoch = int(state["epoch"])
        if objective is not None:
            objective.load_state_dict(state["objective"])
        logger.info("resumed %s from epoch %d", checkpoint_path, start_epoch)
    train_step = TrainingStep(model, method, contrastive_loss, optimizer, config, device, objective)
    source = BatchSource(dataset, device, config.num_workers)
    for epoch in range(start_epoch, config.epochs):
        model.train()
        order_generator = epoch_generator(seed, epoch, 0)
        order = (
            objective.order(epoch, order_generator)
            if objective
            else torch.randperm(n_samples, generator=order_generator)
        )
        first_epoch, stage_epochs = objective.stage(epoch, config.epochs) if objective else (0, config.epochs)
        total_steps = steps_per_epoch * stage_epochs
        warmup_steps = steps_per_epoch * min(config.warmup_epochs, stage_epochs - 1)
        batches = chunk_indices(order, global_batch, drop_last=True)[:steps_per_epoch]
        local = global_batch // context.world_size
        batches = [b[context.rank * local : (context.rank + 1) * local] for b in batches]
        aug_generator = epoch_generator(seed, epoch, 1 + context.rank, device)
        started = time.perf_counter()
        data_seconds = 0.0
        loss_sum = torch.zeros((), device=device)
        bar = progress_bar(
            total=len(batches),
            desc=f"{description} epoch {epoch + 1}/{config.epochs}",
            hidden=not (progress and context.is_main),
            leave=False,
            unit="batch",
        )
        step = (epoch - first_epoch) * steps_per_epoch
        data_started = time.perf_counter()
        for index, (images, targets, sensitive) in zip(
            batches, located_batches(source(batches), epoch, step), strict=True
        ):
            views = train_step.views(images, aug_generator)
            data_seconds += time.perf_counter() - data_started
            lr = cosine_lr(config.optimizer.lr, step, total_steps, warmup_steps)
            try:
                loss = train_step.update(views, targets, sensitive, lr, index)
            except UserCodeError as error:  # a user loss raised or broke its contract: say where
                bar.close()
                raise error.at(f"epoch {epoch + 1}, step {step + 1}") from None
            loss_sum += loss
            step += 1
            bar.update(1)
            if step % config.log_every == 0 or device.type == "cpu":
                current = float(loss)
                if not math.isfinite(current):
                    bar.close()
                    raise TrainingDiverged(
                        f"{description}: the loss became {current} at epoch {epoch + 1}, step {step}; "
                        "the last good checkpoint is kept (try a lower train.optimizer.lr or train.grad_clip)"
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
            raise TrainingDiverged(
                f"{description}: the loss became {mean_loss} in epoch {epoch + 1}; the last good checkpoint is kept "
                "(try a lower train.optimizer.lr or train.grad_clip)"
            )
        row = {
            "epoch": float(epoch + 1),
            "loss": mean_loss,
            "lr": lr,
            "seconds": seconds,
            "images_per_s": len(batches) * global_batch / seconds,
            "data_seconds": data_seconds,
        }
        if objective is not None and objective.end_epoch(
            unwrap(model), epoch, functools.partial(predict_classes, dataset=dataset, config=config, device=device)
        ):
            optimizer = build_optimizer(model, config.optimizer)  # the model restarts: so does its optimiser
            train_step.optimizer = optimizer
        last = epoch + 1 == config.epochs
        if track is not None and track_every > 0 and context.is_main and ((epoch + 1) % track_every == 0 or last):
            tracked_from = time.perf_counter()
            encoder = unwrap(model).encoder
            assert isinstance(encoder, nn.Module)
            row.update(track(encoder))
            row["track_seconds"] = time.perf_counter() - tracked_from
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        logger.info(
            "%s epoch %d/%d loss %.4f (%.0f images/s)",
            description,
            epoch + 1,
            config.epochs,
            mean_loss,
            row["images_per_s"],
        )
        if checkpoint_path is not None and context.is_main:
            save_checkpoint(
                checkpoint_path,
                {
                    "version": CHECKPOINT_VERSION,
                    "epoch": epoch + 1,
                    "model": unwrap(model).state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "history": history,
                    "method": method.name,
                    "seed": seed,
                    "objective": objective.state_dict() if objective is not None else {},
                },
            )
    return history
