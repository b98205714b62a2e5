"""Iterating a dataset in batches of a fixed index order, fast for in-memory tensors.

Datasets that hold their images as one tensor (``.images``, as BiasedMNIST and ColoredMNIST do)
are moved to the device once and sliced there; any other dataset yielding ``(image, target, sensitive)`` goes through a
``DataLoader`` with the given batches, workers and pinned memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from ceco_fair.common.user_code import user_code

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


class BatchSource:
    """Batches of one dataset on one device, epoch after epoch.

    An in-memory dataset is copied to the device once, when the source is made, and each epoch's
    batches are gathered there from one copy of that epoch's indices: a training step makes no
    host-to-device copy. A dataset that decodes from disk goes through a ``DataLoader`` with pinned
    memory and asynchronous copies; an exception raised while reading its items becomes one
    :class:`~ceco_fair.errors.UserCodeError` line naming the dataset.

    Args:
        dataset: a dataset yielding ``(image, target, sensitive)``.
        device: where the batches go (default: the CPU).
        num_workers: ``DataLoader`` workers for datasets that decode from disk.
    """

    def __init__(self, dataset: Dataset[Any], device: torch.device | None = None, num_workers: int = 0) -> None:
        self.dataset = dataset
        self.device = device or torch.device("cpu")
        self.num_workers = num_workers
        images = dataset_images(dataset)
        self.tensors: Batch | None = None
        if images is not None:
            self.tensors = (
                images.to(self.device),
                as_long(getattr(dataset, "targets")).to(self.device),  # noqa: B009  (not part of Dataset's type)
                as_long(getattr(dataset, "sensitive")).to(self.device),  # noqa: B009
            )

    def __call__(self, batches: Sequence[torch.Tensor]) -> Iterator[Batch]:
        """Yield ``(images [B, C, H, W], targets [B], sensitive [B])`` for each index batch, in order.

        Args:
            batches: index tensors ``[B]`` into the dataset, one per batch.
        """
        if self.tensors is not None:
            yield from self._gather(self.tensors, batches)
            return
        loader = DataLoader(
            self.dataset,
            batch_sampler=[b.tolist() for b in batches],
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )
        batches_read = iter(loader)
        while True:
            with user_code(f"dataset {type(self.dataset).__name__} (reading a batch of items)"):
                batch = next(batches_read, None)
            if batch is None:
                return
            images_batch, targets_batch, sensitive_batch = batch
            yield (
                images_batch.to(self.device, non_blocking=True),
                as_long(targets_batch).to(self.device, non_blocking=True),
                as_long(sensitive_batch).to(self.device, non_blocking=True),
            )

    def _gather(self, tensors: Batch, batches: Sequence[torch.Tensor]) -> Iterator[Batch]:
        if not batches:
            return
        indices = torch.split(torch.cat(list(batches)).to(self.device), [len(index) for index in batches])
        for index in indices:
            yield tensors[0][index], tensors[1][index], tensors[2][index]


def iterate_batches(
    dataset: Dataset[Any],
    batches: Sequence[torch.Tensor],
    *,
    device: torch.device | None = None,
    num_workers: int = 0,
) -> Iterator[Batch]:
    """Yield ``(images [B, C, H, W], targets [B], sensitive [B])`` for each index batch on ``device``.

    One pass; see :class:`BatchSource` for several epochs over one dataset.

    Args:
        dataset: a dataset yielding ``(image, target, sensitive)``.
        batches: index tensors, one per batch, in the order to yield.
        device: where the batches go (default: the CPU).
        num_workers: ``DataLoader`` workers for datasets that decode from disk.
    """
    return BatchSource(dataset, device, num_workers)(batches)
