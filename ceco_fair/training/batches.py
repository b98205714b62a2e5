"""Iterating a dataset in batches of a fixed index order, fast for in-memory tensors.

Datasets that hold their images as one tensor (``.images``, as BiasedMNIST and ColoredMNIST do,
and file datasets with a decoded-image cache) are moved to the device once, where they fit, and
sliced there; any other dataset yielding ``(image, target, sensitive)`` goes through a
``DataLoader`` with the given batches, workers and pinned memory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, Final, cast

import torch
from torch.utils.data import DataLoader, Dataset

from ceco_fair.common.user_code import user_code
from ceco_fair.data.base import ImageDataset

logger = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
DEVICE_SHARE: Final = 0.5
"""Largest share of an accelerator's free memory that a dataset's images may take."""


def as_long(values: Any) -> torch.Tensor:
    """An integer array-like as an int64 CPU tensor ``[n]``."""
    return torch.as_tensor(values).long().reshape(-1)


def dataset_images(dataset: ImageDataset) -> torch.Tensor | None:
    """The dataset's images as one ``[n, C, H, W]`` tensor if it keeps them in memory, else None."""
    images = getattr(dataset, "images", None)
    return images if isinstance(images, torch.Tensor) and images.ndim == 4 else None


def fits_on(device: torch.device, nbytes: int) -> bool:
    """Whether ``nbytes`` of images may live on ``device``.

    Always on the CPU; on CUDA within :data:`DEVICE_SHARE` of the device's free memory.
    """
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_SHARE * free


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
    host-to-device copy. Images too large for the device's free memory (see :func:`fits_on`) stay
    in host memory and each batch is gathered there and copied. A dataset that decodes from disk
    goes through a ``DataLoader`` with pinned memory and asynchronous copies; an exception raised
    while reading its items becomes one :class:`~ceco_fair.errors.UserCodeError` line naming the dataset.

    Args:
        dataset: a dataset yielding ``(image, target, sensitive)``.
        device: where the batches go (default: the CPU).
        num_workers: ``DataLoader`` workers for datasets that decode from disk.
    """

    def __init__(self, dataset: ImageDataset, device: torch.device | None = None, num_workers: int = 0) -> None:
        self.dataset = dataset
        self.device = device or torch.device("cpu")
        self.num_workers = num_workers
        images = dataset_images(dataset)
        self.tensors: Batch | None = None
        self.home = self.device
        if images is not None:
            if not fits_on(self.device, images.nelement() * images.element_size()):
                self.home = torch.device("cpu")
                logger.info("images of %d samples stay in host memory (too large for %s)", len(images), self.device)
            self.tensors = (
                images.to(self.home),
                as_long(getattr(dataset, "targets")).to(self.home),  # noqa: B009  (not part of ImageDataset)
                as_long(getattr(dataset, "sensitive")).to(self.home),  # noqa: B009
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
            cast("Dataset[Batch]", self.dataset),  # a DataLoader reads only len() and [index]
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
        indices = torch.split(torch.cat(list(batches)).to(self.home), [len(index) for index in batches])
        for index in indices:
            batch = (tensors[0][index], tensors[1][index], tensors[2][index])
            yield batch if self.home == self.device else tuple_to(batch, self.device)


def tuple_to(batch: Batch, device: torch.device) -> Batch:
    """A batch copied to ``device`` (asynchronously where the copy allows it)."""
    images, targets, sensitive = batch
    return (
        images.to(device, non_blocking=True),
        targets.to(device, non_blocking=True),
        sensitive.to(device, non_blocking=True),
    )


def iterate_batches(
    dataset: ImageDataset,
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
