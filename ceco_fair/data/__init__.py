"""Datasets: colour-biased MNIST from any MNIST source, UTKFace and CelebA, by name.

All implement :class:`FairnessDataset`, as a dataset of your own named ``package.module:ClassName`` can.
Each dataset module is imported on first access, so ``import ceco_fair.data.augment`` loads no dataset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ceco_fair.common.lazy import lazy_exports

if TYPE_CHECKING:
    from ceco_fair.data.base import FairnessDataset
    from ceco_fair.data.biased_mnist import PALETTE, BiasedMNIST, ColoredMNIST
    from ceco_fair.data.celeba import CelebA
    from ceco_fair.data.mnist_sources import MnistArrays, load_mnist, preflight_mnist_source
    from ceco_fair.data.registry import DATASETS, build_dataset, dataset_options, preflight
    from ceco_fair.data.utkface import UTKFace

_MNIST = "ceco_fair.data.biased_mnist"
_SOURCES = "ceco_fair.data.mnist_sources"
_REGISTRY = "ceco_fair.data.registry"
_LAZY = {
    "FairnessDataset": "ceco_fair.data.base",
    "PALETTE": _MNIST,
    "BiasedMNIST": _MNIST,
    "ColoredMNIST": _MNIST,
    "CelebA": "ceco_fair.data.celeba",
    "UTKFace": "ceco_fair.data.utkface",
    "MnistArrays": _SOURCES,
    "load_mnist": _SOURCES,
    "preflight_mnist_source": _SOURCES,
    "DATASETS": _REGISTRY,
    "build_dataset": _REGISTRY,
    "dataset_options": _REGISTRY,
    "preflight": _REGISTRY,
}

__all__ = [
    "DATASETS",
    "PALETTE",
    "BiasedMNIST",
    "CelebA",
    "ColoredMNIST",
    "FairnessDataset",
    "MnistArrays",
    "UTKFace",
    "build_dataset",
    "dataset_options",
    "load_mnist",
    "preflight",
    "preflight_mnist_source",
]


__getattr__ = lazy_exports(__name__, _LAZY)
