"""From frozen features to an audit's tables: the metric kind, the probe's metrics, the 2-D projection.

The steps :func:`ceco_fair.audit` and every protocol run share once the features are extracted; they
write nothing (see :mod:`ceco_fair.results.run_files` for the files).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA

from ceco_fair.data.base import FairnessDataset
from ceco_fair.metrics import bias_accuracy_matrix, bias_metrics, group_metrics, group_table, score_metrics
from ceco_fair.metrics.count_variants import cell_shares, train_weighted_metrics
from ceco_fair.metrics.specs import spec_of
from ceco_fair.results.layout import MetricKind

AuditKind = MetricKind | Literal["auto"]
"""The metric kind asked of an audit: a :data:`~ceco_fair.results.layout.MetricKind` or ``auto``."""


def choose_kind(kind: AuditKind, targets: np.ndarray, sensitive: np.ndarray) -> MetricKind:
    """``kind`` itself, or for ``auto``: ``bias`` when the bias values index the target classes, else ``group``.

    Args:
        kind: ``bias``, ``group`` or ``auto``.
        targets: ``[n]`` classes.
        sensitive: ``[n]`` sensitive / bias values.
    """
    if kind != "auto":
        return kind
    classes, groups = np.unique(targets), np.unique(sensitive)
    if len(classes) > 2 and np.isin(groups, classes).all():
        return "bias"
    return "group"


def project(features: torch.Tensor, targets: np.ndarray, sensitive: np.ndarray, points: int, seed: int) -> pd.DataFrame:
    """2-D PCA of at most ``points`` randomly chosen rows of ``features [n, D]``.

    Returns:
        One row per chosen sample, in dataset order: ``x``, ``y``, ``target``, ``sensitive``.
    """
    n = len(features)
    chosen = np.sort(np.random.default_rng(seed).choice(n, size=min(points, n), replace=False))
    if len(chosen) < 3 or features.shape[1] < 2:
        coordinates = np.zeros((len(chosen), 2))
    else:
        coordinates = PCA(n_components=2, random_state=seed).fit_transform(features[chosen].numpy())
    return pd.DataFrame(
        {
            "x": coordinates[:, 0],
            "y": coordinates[:, 1],
            "target": targets[chosen],
            "sensitive": sensitive[chosen],
        }
    )


def evaluate_predictions(
    targets: np.ndarray,
    predictions: np.ndarray,
    sensitive: np.ndarray,
    *,
    kind: MetricKind,
    n_boot: int,
    confidence: float,
    seed: int,
    group_names: Sequence[str] | None = None,
) -> tuple[dict[str, float], pd.DataFrame | None, np.ndarray | None]:
    """Metrics, per-group table and bias matrix of test predictions (all arrays ``[n]``).

    Returns:
        The metrics; the per-group table (``group`` kind, else None); the accuracy per (class, bias
        value) cell ``[n_classes, n_bias]`` (``bias`` kind, else None).
    """
    if kind == "bias":
        metrics = bias_metrics(targets, predictions, sensitive)
        return metrics, None, bias_accuracy_matrix(targets, predictions, sensitive)
    binary = set(np.unique(targets).tolist()) <= {0, 1}
    boot = {"n_boot": n_boot, "seed": seed}
    metrics = group_metrics(targets, predictions, sensitive, confidence=confidence, rates=binary, **boot)
    table = group_table(targets, predictions, sensitive, confidence=confidence, rates=binary, **boot)
    if group_names is not None:
        names = list(group_names)
        table.insert(
            1,
            "group_name",
            [names[int(g)] if 0 <= int(g) < len(names) else str(g) for g in table["group"]],
        )
    return metrics, table, None


ONE_CLASS_SCORES = "the read-out scores {classes} class: no score metric is defined"


def evaluate_scores(
    targets: np.ndarray,
    probabilities: np.ndarray,
    sensitive: np.ndarray,
    *,
    predictions: np.ndarray,
    train: tuple[np.ndarray, np.ndarray] | None,
    n_boot: int,
    confidence: float,
    seed: int,
) -> tuple[dict[str, float], list[str]]:
    """A group run's score metrics (AUROC, ECE, score gaps, ABCC) and train-share weighted accuracy, one read-out.

    Args:
        targets: ``[n]`` test classes.
        probabilities: ``[n, C]`` the read-out's class probabilities of the test samples.
        sensitive: ``[n]`` test groups.
        predictions: ``[n]`` the read-out's predicted classes.
        train: the training split's ``(targets, sensitive)`` ``[n_train]`` each; None when its groups are
            unknown (the training-share weighted accuracy is then left out).
        n_boot: bootstrap replicates of the intervals (rows resampled within each group; 0: none).
        confidence: the intervals' level.
        seed: the bootstrap's seed.

    Returns:
        Metric name -> value (with ``_ci_low`` / ``_ci_high`` / ``_p_value`` where the metric has them),
        every key a metric with a spec; and why values are NaN (one line each).
    """
    values: dict[str, float] = {}
    reasons: list[str] = []
    if probabilities.shape[1] < 2:
        reasons.append(ONE_CLASS_SCORES.format(classes=probabilities.shape[1]))
    else:
        result = score_metrics(targets, probabilities, sensitive, n_boot=n_boot, confidence=confidence, seed=seed)
        values.update({key: value for key, value in result.values.items() if spec_of(key) is not None})
        reasons += result.reasons
    if train is not None:
        train_targets, train_sensitive = train
        n_classes = int(max(targets.max(), train_targets.max())) + 1
        n_groups = int(max(sensitive.max(), train_sensitive.max())) + 1
        shares = cell_shares(train_targets, train_sensitive, n_classes=n_classes, n_groups=n_groups)
        weighted = train_weighted_metrics(
            targets, predictions, sensitive, shares, n_boot=n_boot, confidence=confidence, seed=seed, reasons=reasons
        )
        values.update(weighted)
    return values, list(dict.fromkeys(reasons))


def dataset_info(dataset: object) -> dict[str, Any]:
    """What a dataset says about itself, for the run record.

    Args:
        dataset: a split; one outside :class:`~ceco_fair.data.base.FairnessDataset` says nothing.

    Returns:
        ``metric_kind``, ``target_name``, ``sensitive_name``, ``class_names``, ``group_names``
        and, when the dataset has them, ``group_colours`` (an empty mapping for a dataset
        outside the protocol).
    """
    if not isinstance(dataset, FairnessDataset):
        return {}
    info = {
        "metric_kind": dataset.metric_kind,
        "target_name": dataset.target_name,
        "sensitive_name": dataset.sensitive_name,
        "class_names": list(dataset.class_names),
        "group_names": list(dataset.group_names),
    }
    colours = getattr(dataset, "group_colours", None)  # an optional member
    return {**info, "group_colours": list(colours)} if colours is not None else info
