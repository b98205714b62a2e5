"""The representation diagnostics of a run or an audit: how an encoder distorts its input.

The functions of :mod:`ceco_fair.metrics.representation` take features; this module makes the
features they need from an encoder and a dataset (two augmented views of every test image, the
counterfactual re-colourings of coloured digits) and computes every diagnostic of the registry
(:data:`ceco_fair.metrics.registry.REPRESENTATION_METRICS`) that these allow, under the names that
``results.csv`` uses:

- retrieval (share of test images whose second view is the nearest of all second views to their
  first view; within cell: among the images of its own (target, sensitive) cell), alignment and
  uniformity (Wang & Isola 2020) of the views and of the plain features;
- the variance ratio (share of the feature variance left inside the target classes);
- leakage: balanced accuracy of a cross-validated linear probe of the sensitive value,
  unconditionally and within each target class;
- for coloured digits, bias sensitivity (share of the feature variance due to the background
  colour alone) and the counterfactual flip rate (share of (image, colour) pairs whose probe
  prediction differs from the prediction on the image as given).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ceco_fair.data.augment import AugmentConfig, BatchAugment
from ceco_fair.data.base import ImageDataset, Recolourable
from ceco_fair.evaluation.counterfactual import counterfactual_features
from ceco_fair.evaluation.features import FeatureReader
from ceco_fair.evaluation.probe import Encoder
from ceco_fair.metrics.registry import RepresentationInputs, representation_scores

logger = logging.getLogger(__name__)

VIEW_SEED_OFFSET = 7919
"""Seeds the views' augmentation apart from training's streams: view ``v`` uses ``seed · 7919 + v``."""

SUBSAMPLE_POINTS = 20_000
"""Uniformity and leakage use every test point up to this many; larger test sets are subsampled (fixed
seed), which keeps both exact on the subsample and their cost bounded (retrieval is block-wise and uses all)."""


@dataclass
class Views:
    """Features of two augmented views of the same images: ``first``, ``second`` ``[n, D]``."""

    first: torch.Tensor
    second: torch.Tensor


def view_features(
    encoder: Encoder,
    dataset: ImageDataset,
    augment: AugmentConfig,
    *,
    seed: int,
    reader: FeatureReader,
    indices: torch.Tensor | None = None,
) -> Views:
    """Features of two augmentations of every image of ``dataset``, reproducible for a given ``seed``.

    Args:
        encoder: maps normalised images ``[B, 3, H, W]`` to features ``[B, D]``.
        dataset: yields ``(image uint8 [3, H, W], target, sensitive)``.
        augment: the augmentation (a protocol's ``train.augment``; audits use a documented default).
        seed: seeds both views' augmentation (view ``v`` from ``seed · 7919 + v``).
        reader: the device, batch size, workers and progress (the augmentation normalises).
        indices: only these rows ``[m]`` of ``dataset`` (default: all).

    Returns:
        The two views' features, each ``[n, D]`` float32 on the CPU, rows in dataset (or ``indices``) order.
    """
    augmenter = BatchAugment(augment)

    def one_view(view: int) -> torch.Tensor:
        generator = torch.Generator(device=reader.device).manual_seed(seed * VIEW_SEED_OFFSET + view)

        def transform(images: torch.Tensor) -> torch.Tensor:
            return augmenter(images, generator)

        return reader.features(encoder, dataset, f"test view {view + 1}", transform=transform, indices=indices).features

    return Views(one_view(0), one_view(1))


def feature_diagnostics(
    features: torch.Tensor,
    targets: np.ndarray,
    sensitive: np.ndarray,
    *,
    seed: int,
    views: Views | None = None,
) -> dict[str, float]:
    """The diagnostics that features (and, if given, two views' features) allow.

    Args:
        features: plain (un-augmented) test features ``[n, D]``.
        targets: ``[n]`` integer targets.
        sensitive: ``[n]`` integer sensitive / bias values.
        seed: seeds the leakage probe's folds and the subsample of :data:`SUBSAMPLE_POINTS`.
        views: features of two augmentations of the same ``n`` images, for retrieval and alignment.

    Returns:
        Every registered diagnostic that needs the features alone and, with views, those that need
        views (:data:`~ceco_fair.metrics.registry.REPRESENTATION_METRICS`), in the registry's order.
    """
    n = len(features)
    chosen = np.arange(n)
    if n > SUBSAMPLE_POINTS:
        chosen = np.sort(np.random.default_rng(seed).choice(n, size=SUBSAMPLE_POINTS, replace=False))
    inputs = RepresentationInputs(
        features,
        np.asarray(targets),
        np.asarray(sensitive),
        seed,
        chosen,
        views=(views.first, views.second) if views is not None else None,
    )
    return representation_scores(inputs, ("features", "views"))


def counterfactual_diagnostics(
    counterfactual: torch.Tensor,
    predictions: np.ndarray,
    predict: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[dict[str, float], np.ndarray]:
    """Colour sensitivity of features and of the probe's predictions.

    Args:
        counterfactual: features of every test image on each of K colours ``[n, K, D]``.
        predictions: the probe's predictions on the images as given ``[n]``.
        predict: the fitted probe: features ``[m, D]`` -> classes ``[m]``.

    Returns:
        Every registered diagnostic that needs the counterfactuals, and the predictions under every
        colour ``[n, K]``.
    """
    n, k, d = counterfactual.shape
    recoloured = predict(counterfactual.reshape(n * k, d)).numpy().reshape(n, k)
    inputs = RepresentationInputs(
        counterfactual[:, 0, :],
        np.zeros(n, dtype=np.int64),
        np.zeros(n, dtype=np.int64),
        0,
        np.arange(n),
        counterfactual=counterfactual,
        predictions=np.asarray(predictions),
        recoloured=recoloured,
    )
    return representation_scores(inputs, ("counterfactual",)), recoloured


def dataset_counterfactuals(encoder: Encoder, dataset: ImageDataset, reader: FeatureReader) -> torch.Tensor | None:
    """``[n, K, D]`` counterfactual features for a :class:`~ceco_fair.data.base.Recolourable` dataset, else None."""
    if not isinstance(dataset, Recolourable):
        return None
    return counterfactual_features(
        encoder, dataset, batch_size=reader.batch_size, device=reader.device, normalization=reader.normalization
    )


def colour_strip(dataset: Recolourable, under_colour: np.ndarray, index: int = 0) -> dict[str, Any]:
    """One test digit rendered on every background colour, with the probe's prediction under each.

    Args:
        dataset: the test set, recolourable.
        under_colour: the probe's predictions ``[n, K]`` for every image on every colour.
        index: the digit shown (default: the first test image, an unselected example).

    Returns:
        ``{"index", "target", "colour", "images": K nested lists [H][W][3] of 0–255, "predictions": [K]}``.
    """
    target, colour = dataset.targets[index], dataset.sensitive[index]
    images = [
        dataset.render_on(k, torch.tensor([index]))[0].permute(1, 2, 0).to(torch.uint8).tolist()
        for k in range(under_colour.shape[1])
    ]
    return {
        "index": index,
        "target": int(target),
        "colour": int(colour),
        "images": images,
        "predictions": [int(p) for p in under_colour[index]],
    }
