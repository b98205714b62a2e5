"""Batch iteration: in-memory datasets gathered on the device, others through a DataLoader."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from ceco_fair.training.batches import BatchSource, chunk_indices, iterate_batches


class InMemory(Dataset[tuple[torch.Tensor, int, int]]):
    """20 images held as one tensor, with targets and sensitive values."""

    def __init__(self) -> None:
        self.images = torch.arange(20 * 3 * 2 * 2, dtype=torch.uint8).reshape(20, 3, 2, 2)
        self.targets = torch.arange(20) % 3
        self.sensitive = torch.arange(20) % 2

    def __len__(self) -> int:
        return 20

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        return self.images[index], int(self.targets[index]), int(self.sensitive[index])


class FromDisk(Dataset[tuple[torch.Tensor, int, int]]):
    """The same samples without an ``images`` tensor: the DataLoader path."""

    def __init__(self) -> None:
        self.inner = InMemory()

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        return self.inner[index]


def test_chunks_drop_the_short_last_batch() -> None:
    order = torch.arange(10)
    assert [len(b) for b in chunk_indices(order, 4, drop_last=True)] == [4, 4]
    assert [len(b) for b in chunk_indices(order, 4, drop_last=False)] == [4, 4, 2]


def test_both_paths_yield_the_indexed_samples_in_order() -> None:
    batches = chunk_indices(torch.randperm(20, generator=torch.Generator().manual_seed(0)), 6, drop_last=False)
    expected = InMemory()
    for dataset in (InMemory(), FromDisk()):
        yielded = list(iterate_batches(dataset, batches))
        assert len(yielded) == len(batches)
        for (images, targets, sensitive), index in zip(yielded, batches, strict=True):
            assert torch.equal(images, expected.images[index])
            assert torch.equal(targets, expected.targets[index])
            assert torch.equal(sensitive, expected.sensitive[index])
            assert targets.dtype == sensitive.dtype == torch.int64


def test_a_source_serves_several_epochs_from_one_copy() -> None:
    dataset = InMemory()
    source = BatchSource(dataset)
    assert source.tensors is not None
    held = source.tensors[0]
    for seed in (1, 2):
        order = torch.randperm(20, generator=torch.Generator().manual_seed(seed))
        batches = chunk_indices(order, 5, drop_last=True)
        images = torch.cat([b[0] for b in source(batches)])
        assert torch.equal(images, dataset.images[order])
    assert source.tensors[0] is held
    assert list(source([])) == []
    assert BatchSource(FromDisk()).tensors is None
