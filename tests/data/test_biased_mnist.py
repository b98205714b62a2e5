from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from ceco_fair.data import PALETTE, BiasedMNIST, ColoredMNIST, load_mnist
from ceco_fair.data.biased_mnist import (
    BINARY_PALETTE,
    colourise,
    floor_share,
    rebias_colours,
    split_rng,
)
from ceco_fair.errors import CecoFairError, DataError

EXPECTED_PALETTE = [
    (255, 0, 0),
    (0, 255, 0),
    (0, 0, 255),
    (225, 225, 0),
    (225, 0, 225),
    (0, 255, 255),
    (255, 128, 0),
    (255, 0, 128),
    (128, 0, 255),
    (128, 128, 128),
]


def exact_floor(count: int, rho: float) -> int:
    return int(Fraction(str(rho)) * count)


def reference_rebias(labels: np.ndarray, rho: float, rng: np.random.Generator, shuffled: bool) -> list[int]:
    """The ReBias rule, sample by sample, drawing from ``rng`` in the same order."""
    colours = [-1] * len(labels)
    for label in range(10):
        members = rng.permutation([i for i in range(len(labels)) if labels[i] == label])
        n_aligned = exact_floor(len(members), rho)
        others = np.array([(label + j) % 10 for j in range(1, 10)])
        if shuffled:
            rng.shuffle(others)
        n_rest = len(members) - n_aligned
        chunk = math.ceil(n_rest / 9) if n_rest else 1
        for position, sample in enumerate(members):
            if position < n_aligned:
                colours[sample] = label
            else:
                colours[sample] = int(others[(position - n_aligned) // chunk])
    return colours


def expected_chunks(n_rest: int) -> list[int]:
    chunk = math.ceil(n_rest / 9)
    return [max(0, min(chunk, n_rest - j * chunk)) for j in range(9)]


def test_palette_is_rebias() -> None:
    assert [tuple(c) for c in PALETTE] == EXPECTED_PALETTE
    assert [tuple(c) for c in BINARY_PALETTE] == [(255, 0, 0), (0, 255, 0)]


def test_floor_share_is_exact() -> None:
    assert floor_share(100, 0.29) == 29  # float: 100 * 0.29 = 28.999999999999996
    assert floor_share(100, 0.99) == 99
    assert floor_share(400, 0.995) == 398
    assert floor_share(7, 1.0) == 7 and floor_share(7, 0.0) == 0
    assert floor_share(100, 1 - Fraction("0.9")) == 10


@pytest.mark.parametrize("rho", [0.0, 0.1, 0.5, 0.9, 0.99, 0.997, 1.0])
@pytest.mark.parametrize("order", ["shuffled", "sequential"])
def test_colouring_statistics_exact(rho: float, order: str) -> None:
    dataset = BiasedMNIST(split="train", rho=rho, seed=3, conflict_order=order)  # type: ignore[arg-type]
    labels = dataset.targets.numpy()
    colours = dataset.bias.numpy()
    for label in range(10):
        in_class = labels == label
        n_class = int(in_class.sum())
        n_aligned = exact_floor(n_class, rho)
        assert int((colours[in_class] == label).sum()) == n_aligned
        counts = np.bincount(colours[in_class], minlength=10)
        others = [(label + j) % 10 for j in range(1, 10)]
        chunks = expected_chunks(n_class - n_aligned)
        if order == "sequential":
            assert [int(counts[c]) for c in others] == chunks
        else:
            assert sorted(int(counts[c]) for c in others) == sorted(chunks)


@pytest.mark.parametrize("shuffled", [True, False])
def test_colours_match_sample_by_sample_reference(shuffled: bool) -> None:
    labels = np.random.default_rng(5).integers(0, 10, size=537)
    for rho in (0.0, 0.3, 0.95, 1.0):
        order = "shuffled" if shuffled else "sequential"
        fast = rebias_colours(labels, rho, np.random.default_rng(11), conflict_order=order)
        slow = reference_rebias(labels, rho, np.random.default_rng(11), shuffled)
        assert fast.tolist() == slow


def test_pixel_rule_against_loop() -> None:
    dataset = BiasedMNIST(split="test", seed=1)
    digits = load_mnist("embedded").test_images
    for index in range(0, 1000, 50):
        image = dataset.images[index]
        digit = digits[int(dataset.source_rows[index])]
        colour = EXPECTED_PALETTE[int(dataset.bias[index])]
        for row in range(28):
            for col in range(28):
                expected = (255, 255, 255) if int(digit[row, col]) > 0 else colour
                assert tuple(int(v) for v in image[:, row, col]) == expected


def test_colourise_small_example() -> None:
    digits = torch.tensor([[[0, 7], [255, 0]]], dtype=torch.uint8)
    palette = torch.tensor([[1, 2, 3], [10, 20, 30]], dtype=torch.uint8)
    out = colourise(digits, torch.tensor([1]), palette)
    assert out.shape == (1, 3, 2, 2) and out.dtype == torch.uint8
    assert out[0, :, 0, 0].tolist() == [10, 20, 30]
    assert out[0, :, 0, 1].tolist() == [255, 255, 255]
    assert out[0, :, 1, 0].tolist() == [255, 255, 255]
    assert out[0, :, 1, 1].tolist() == [10, 20, 30]


def test_item_contract_and_defaults() -> None:
    train = BiasedMNIST()
    test = BiasedMNIST(split="test")
    assert len(train) == 4000 and len(test) == 1000
    assert train.rho == 0.99 and test.rho == 0.1
    assert train.images.shape == (4000, 3, 28, 28) and train.images.dtype == torch.uint8
    assert train.targets.dtype == torch.int64 and train.bias.dtype == torch.int64
    assert train.sensitive is train.bias
    assert (train.n_classes, train.n_groups) == (10, 10)
    assert train.group_names[0] == "red" and len(train.class_names) == 10
    image, target, sensitive = train[7]
    assert image.shape == (3, 28, 28) and image.dtype == torch.uint8
    assert isinstance(target, int) and isinstance(sensitive, int)
    assert target == int(train.targets[7]) and sensitive == int(train.bias[7])
    assert torch.equal(train.targets, load_mnist("embedded").train_labels)
    assert int(test.aligned.sum()) == sum(exact_floor(100, 0.1) for _ in range(10))


def test_determinism_per_seed() -> None:
    first = BiasedMNIST(rho=0.9, seed=4)
    again = BiasedMNIST(rho=0.9, seed=4)
    other = BiasedMNIST(rho=0.9, seed=5)
    assert torch.equal(first.bias, again.bias) and torch.equal(first.images, again.images)
    assert not torch.equal(first.bias, other.bias)
    rng_train, rng_test = split_rng(4, "train"), split_rng(4, "test")
    assert rng_train.integers(0, 2**32) != rng_test.integers(0, 2**32)


def test_validation_carve_out() -> None:
    train = BiasedMNIST(split="train", seed=2, val_fraction=0.25)
    valid = BiasedMNIST(split="valid", seed=2, val_fraction=0.25)
    assert len(train) == 3000 and len(valid) == 1000
    rows_train, rows_valid = set(train.source_rows.tolist()), set(valid.source_rows.tolist())
    assert not rows_train & rows_valid and len(rows_train | rows_valid) == 4000
    assert torch.bincount(valid.targets).tolist() == [100] * 10
    assert valid.rho == 0.99
    for label in range(10):
        in_class = valid.targets == label
        assert int((valid.bias[in_class] == label).sum()) == exact_floor(100, 0.99)
    other_seed = BiasedMNIST(split="valid", seed=3, val_fraction=0.25)
    assert set(other_seed.source_rows.tolist()) != rows_valid


def test_idx_source_uses_official_test_split(mnist_test_dir: Path) -> None:
    dataset = BiasedMNIST(source={"idx_dir": mnist_test_dir}, split="test", seed=0)
    assert len(dataset) == 10000
    counts = torch.bincount(dataset.targets).tolist()
    for label in range(10):
        in_class = dataset.targets == label
        assert int((dataset.bias[in_class] == label).sum()) == exact_floor(counts[label], 0.1)
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        BiasedMNIST(source={"idx_dir": mnist_test_dir}, split="train")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"split": "val"}, "split must be one of"),
        ({"rho": 1.5}, "rho must be a number in [0, 1]"),
        ({"rho": "high"}, "rho must be a number"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"val_fraction": 1.0}, "val_fraction must be a number in [0, 1)"),
        ({"split": "valid"}, "needs val_fraction > 0"),
        ({"conflict_order": "random"}, "conflict_order must be"),
        ({"source": "mnist"}, "unknown MNIST source"),
    ],
)
def test_argument_errors(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(CecoFairError) as info:
        BiasedMNIST(**kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------
# ColoredMNIST


@pytest.mark.parametrize("rho", [0.5, 0.8, 0.9, 1.0])
def test_colored_mnist_statistics(rho: float) -> None:
    dataset = ColoredMNIST(rho=rho, seed=1)
    digits = load_mnist("embedded").train_labels
    assert torch.equal(dataset.digits, digits)
    assert torch.equal(dataset.targets, (digits >= 5).long())
    assert set(dataset.bias.unique().tolist()) <= {0, 1}
    for target in (0, 1):
        in_class = dataset.targets == target
        assert int((dataset.bias[in_class] == target).sum()) == exact_floor(int(in_class.sum()), rho)


def test_colored_mnist_pixels_and_contract() -> None:
    dataset = ColoredMNIST(split="test", seed=2)
    assert dataset.rho == 0.5 and ColoredMNIST(seed=2).rho == 0.9
    assert (dataset.n_classes, dataset.n_groups) == (2, 2)
    assert dataset.group_names == ["red", "green"]
    digits = load_mnist("embedded").test_images
    for index in range(0, 1000, 97):
        colour = [(255, 0, 0), (0, 255, 0)][int(dataset.bias[index])]
        digit = digits[index]
        for row in range(28):
            for col in range(28):
                expected = (255, 255, 255) if int(digit[row, col]) > 0 else colour
                assert tuple(int(v) for v in dataset.images[index, :, row, col]) == expected
    image, target, group = dataset[3]
    assert image.shape == (3, 28, 28) and target == int(dataset.targets[3])
    assert group == int(dataset.sensitive[3])
    assert not torch.equal(ColoredMNIST(seed=2).bias, ColoredMNIST(seed=3).bias)
