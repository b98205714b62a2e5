"""Datasets: colour-biased MNIST from any MNIST source, UTKFace and CelebA, by name.

All implement :class:`FairnessDataset`, as a dataset of your own named ``package.module:ClassName`` can.
"""

from __future__ import annotations

from ceco_fair.data.base import FairnessDataset
from ceco_fair.data.biased_mnist import PALETTE, BiasedMNIST, ColoredMNIST
from ceco_fair.data.celeba import CelebA
from ceco_fair.data.mnist_sources import MnistArrays, load_mnist, preflight_mnist_source
from ceco_fair.data.registry import DATASETS, build_dataset, dataset_options, preflight
from ceco_fair.data.utkface import UTKFace

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
