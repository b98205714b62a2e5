"""Data-parallel training with ``torchrun``: process group, model wrapping, global negatives.

Under ``torchrun`` every process trains on its share of each global batch. Projected features,
labels and sensitive values are all-gathered with gradient, so every anchor contrasts against the
whole global batch. Each process computes the loss of its own anchors only, divided by the global
number of valid anchors and multiplied by the number of processes; after the all-gather's backward
(a sum over processes) and DistributedDataParallel's gradient averaging, every parameter receives
exactly the single-process gradient of the concatenated batch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ceco_fair.losses import ContrastiveLoss, TermSum

logger = logging.getLogger(__name__)

ContrastiveLossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""A training loss on projected features: ``(features [N, V, P], labels [N], sensitive [N]) -> scalar``."""


@dataclass
class DistributedContext:
    """Where this process stands in a data-parallel run (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes outputs."""
        return self.rank == 0


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 whose backward sums the gradients of all processes and keeps this one's slice."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        ctx.rows = tensor.shape[0]
        return gather_plain(tensor)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        total = grad.contiguous().clone()
        dist.all_reduce(total)
        start = dist.get_rank() * ctx.rows
        return total[start : start + ctx.rows]


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor [n, ...]`` of every process along dim 0, keeping the gradient.

    Every process must pass the same ``n``. The backward pass sums what every process computed for
    each slice and hands each process the gradient of its own slice, so
    ``d(Σ_processes loss)/d(local tensor)`` is exact.
    """
    gathered: torch.Tensor = _GatherWithGrad.apply(tensor)
    return gathered


def gather_plain(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate a tensor ``[n, ...]`` of every process along dim 0 (no gradient)."""
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


def global_term_sums(
    loss: ContrastiveLoss,
    context: DistributedContext,
    features: torch.Tensor,
    labels: torch.Tensor,
    sensitive: torch.Tensor,
    *,
    n_classes: int | None = None,
    n_groups: int | None = None,
) -> tuple[TermSum, ...]:
    """The term sums of this process's anchors against the global batch, with the global anchor counts.

    Args:
        loss: the named loss module.
        context: this process's rank and the world size (one process: the loss's own sums).
        features: ``[n_local, V, P]`` this process's features (every process the same ``n_local``).
        labels: ``[n_local]`` integer labels.
        sensitive: ``[n_local]`` integer sensitive (or pseudo-group) values.
        n_classes: labels lie in ``[0, n_classes)`` (None: any integers; see the loss's ``forward``).
        n_groups: sensitive values lie in ``[0, n_groups)``.

    Returns:
        One :class:`~ceco_fair.losses.TermSum` per term: this process's loss sum and the number of valid
        anchors of all processes; ``loss.combine(sums) * context.world_size`` is this process's share of
        the global loss times the world size (see the module docstring).
    """
    if context.world_size == 1:
        return loss.partial_sums(features, labels, sensitive, n_classes=n_classes, n_groups=n_groups)
    n_local, views = features.shape[0], features.shape[1]
    all_features = gather_with_grad(features)
    all_labels, all_sensitive = gather_plain(labels), gather_plain(sensitive)
    start = context.rank * n_local * views
    sums = loss.partial_sums(
        all_features,
        all_labels,
        all_sensitive,
        anchor_rows=slice(start, start + n_local * views),
        n_classes=n_classes,
        n_groups=n_groups,
    )
    counts = torch.stack([part.n_valid for part in sums])
    dist.all_reduce(counts)
    return tuple(TermSum(part.loss_sum, count) for part, count in zip(sums, counts, strict=True))


def global_contrastive_loss(
    loss: ContrastiveLoss,
    context: DistributedContext,
    *,
    n_classes: int | None = None,
    n_groups: int | None = None,
) -> ContrastiveLossFn:
    """A contrastive loss whose anchors on this process contrast against the global batch.

    Args:
        loss: the named loss module.
        context: this process's rank and the world size.
        n_classes: labels lie in ``[0, n_classes)`` (None: any integers; see the loss's ``forward``).
        n_groups: sensitive values lie in ``[0, n_groups)``.

    Returns:
        ``(features [n_local, V, P], labels [n_local], sensitive [n_local]) -> scalar``: this process's
        share of the global loss times the world size (see the module docstring).
    """

    def compute(features: torch.Tensor, labels: torch.Tensor, sensitive: torch.Tensor) -> torch.Tensor:
        sums = global_term_sums(loss, context, features, labels, sensitive, n_classes=n_classes, n_groups=n_groups)
        return loss.combine(sums) * context.world_size

    return compute


@dataclass
class DistributedSession:
    """This process's place in a run: one process by default, or a ``torchrun`` process group."""

    context: DistributedContext = field(default_factory=DistributedContext)
    local_rank: int | None = None

    @property
    def active(self) -> bool:
        """Whether a process group of more than one process is running."""
        return self.context.world_size > 1

    def prepare_model(self, model: nn.Module, device: torch.device, sync_batchnorm: bool) -> nn.Module:
        """Move ``model`` to ``device`` (channels-last on CUDA) and, when active, wrap it in DDP.

        With ``sync_batchnorm`` the batch-norm layers share their statistics across processes.
        """
        if self.active and sync_batchnorm:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # type: ignore[no-untyped-call]
        model.to(device)
        if device.type == "cuda":
            model.to(memory_format=torch.channels_last)
        if not self.active:
            return model
        device_ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every process."""
        if not self.active:
            return value
        payload = [value]
        dist.broadcast_object_list(payload, src=0)
        return payload[0]

    def barrier(self) -> None:
        """Wait for every process."""
        if self.active:
            dist.barrier()

    def close(self) -> None:
        """Leave the process group."""
        if self.active and dist.is_initialized():
            dist.destroy_process_group()


def start_distributed(device_type: str) -> DistributedSession:
    """Join the ``torchrun`` process group when ``WORLD_SIZE`` > 1 (NCCL on CUDA, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedSession()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=timedelta(minutes=30))
    logger.info("process %d of %d (%s)", rank, world_size, backend)
    return DistributedSession(DistributedContext(rank, world_size), local_rank)
