"""Iterating a dataset in batches of a fixed index order, fast for in-memory tensors.

Datasets that hold their images as one tensor (``.images``, as BiasedMNIST and ColoredMNIST do)
are sliced directly; any other dataset yielding ``(image, target, sensitive)`` goes through a
``DataLoader`` with the given batches, workers and pinned memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def as_long(values: Any) -> torch.Tensor:
    """An integer array-like as an int64 CPU tensor ``[n]``."""
    return torch.as_tensor(values).long().reshape(-1)


def dataset_images(dataset: Dataset[Any]) -> torch.Tensor | None:
    """The dataset's images as one ``[n, C, H, W]`` tensor if it keeps them in memory, else None."""
    images = getattr(dataset, "images", None)
    return images if isinstance(images, torch.Tensor) and images.ndim == 4 else None


def chunk_indices(order: torch.Tensor, batch_size: int, drop_last: bool) -> list[torch.Tensor]:
    """Cut an index order ``[n]`` into consecutive batches of ``batch_size``."""
    chunks = list(torch.split(order, batch_size))
    if drop_last and chunks and len(chunks[-1]) < batch_size:
        chunks.pop()
    return chunks


def iterate_batches(
    dataset: Dataset[Any],
    batches: Sequence[torch.Tensor],
    *,
    device: torch.device | None = None,
    num_workers: int = 0,
) -> Iterator[Batch]:
    """Yield ``(images [B, C, H, W], targets [B], sensitive [B])`` for each index batch on ``device``.

    In-memory datasets are copied to a CUDA device once and indexed there, so a training step makes no
    host-to-device copy; datasets that decode from disk go through a ``DataLoader`` with pinned memory
    and asynchronous copies.

    Args:
        dataset: a dataset yielding ``(image, target, sensitive)``.
        batches: index tensors, one per batch, in the order to yield.
        device: where the batches go (default: the CPU).
        num_workers: ``DataLoader`` workers for datasets that decode from disk.
    """
    device = device or torch.device("cpu")
    images = dataset_images(dataset)
    if images is not None:
        tensors = (
            images.to(device),
            as_long(getattr(dataset, "targets")).to(device),  # noqa: B009  (not part of Dataset's type)
            as_long(getattr(dataset, "sensitive")).to(device),  # noqa: B009
        )
        for index in batches:
            on_device = index.to(device, non_blocking=True)
            yield tensors[0][on_device], tensors[1][on_device], tensors[2][on_device]
        return
    loader = DataLoader(
        dataset,
        batch_sampler=[b.tolist() for b in batches],
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    for images_batch, targets_batch, sensitive_batch in loader:
        yield (
            images_batch.to(device, non_blocking=True),
            as_long(targets_batch).to(device, non_blocking=True),
            as_long(sensitive_batch).to(device, non_blocking=True),
        )
