from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import pytest
import torch

from ceco_fair.data import (
    DATASETS,
    BiasedMNIST,
    CelebA,
    ColoredMNIST,
    UTKFace,
    build_dataset,
    dataset_options,
    preflight,
)
from ceco_fair.data.registry import REQUIRED, dataset_option_types
from ceco_fair.errors import CecoFairError, DataError


def test_registry_names() -> None:
    assert DATASETS == {
        "biased_mnist": BiasedMNIST,
        "colored_mnist": ColoredMNIST,
        "utkface": UTKFace,
        "celeba": CelebA,
    }


def test_dataset_options_from_signatures() -> None:
    assert dataset_options("biased_mnist") == {
        "source": "embedded",
        "rho": None,
        "seed": 0,
        "val_fraction": 0.0,
        "conflict_order": "shuffled",
    }
    utk = dataset_options("utkface")
    assert utk["root"] is REQUIRED and "split" not in utk
    assert utk["target"] == "gender" and utk["sensitive"] == "race" and utk["bias_rate"] is None
    celeba = dataset_options("celeba")
    assert celeba["root"] is REQUIRED and celeba["image_size"] == 128 and celeba["crop"] is None
    assert "seed" in celeba


def test_dataset_option_types_from_annotations() -> None:
    types = dataset_option_types("biased_mnist")
    assert set(types) == set(dataset_options("biased_mnist"))
    assert types["source"] == (str | Mapping[str, object])
    assert types["rho"] == (float | None) and types["seed"] is int
    assert types["conflict_order"] == Literal["shuffled", "sequential"]
    celeba = dataset_option_types("celeba")
    assert celeba["sensitive"] == (str | Sequence[str])


def test_build_dataset_matches_direct_construction() -> None:
    built = build_dataset("biased_mnist", "test", rho=0.2, seed=3)
    direct = BiasedMNIST(split="test", rho=0.2, seed=3)
    assert isinstance(built, BiasedMNIST)
    assert torch.equal(built.bias, direct.bias)


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: build_dataset("biased_mnst", "train"), "did you mean 'biased_mnist'"),
        (lambda: build_dataset("biased_mnist", "train", roh=0.9), "did you mean 'rho'"),
        (lambda: build_dataset("utkface", "train"), "needs option 'root'"),
        (lambda: dataset_options("cifar"), "unknown dataset 'cifar'"),
        (lambda: preflight("celeba", root="x", target="Attractive", crop_size=3), "'crop'"),
    ],
)
def test_option_errors(call: Callable[[], object], fragment: str) -> None:
    with pytest.raises(CecoFairError) as info:
        call()
    assert fragment in str(info.value)
    assert not isinstance(info.value, DataError)


def test_preflight_mnist(mnist_test_dir: Path) -> None:
    preflight("biased_mnist")
    preflight("colored_mnist", source={"idx_dir": mnist_test_dir}, splits=("test",))
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        preflight("biased_mnist", source={"idx_dir": mnist_test_dir})
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        preflight("biased_mnist", source={"idx_dir": mnist_test_dir}, splits=("valid",))


def test_preflight_utkface(make_utkface: Callable[..., Path], tmp_path: Path) -> None:
    root = make_utkface()
    preflight("utkface", root=root, target="gender", sensitive="age")
    with pytest.raises(DataError, match="expected ROOT/UTKFace"):
        preflight("utkface", root=tmp_path / "nowhere")
    with pytest.raises(CecoFairError, match="target and sensitive must differ"):
        preflight("utkface", root=root, target="race")
    with pytest.raises(DataError, match="split_file"):
        preflight("utkface", root=root, split_file=tmp_path / "missing.csv")


def test_preflight_celeba(make_celeba: Callable[..., Path], tmp_path: Path) -> None:
    root = make_celeba()
    preflight("celeba", root=root, target="Blond_Hair", sensitive=["Male", "Young"])
    with pytest.raises(CecoFairError, match="did you mean 'Blond_Hair'"):
        preflight("celeba", root=root, target="Blonde_Hair")
    with pytest.raises(DataError, match="list_attr_celeba"):
        preflight("celeba", root=tmp_path)
