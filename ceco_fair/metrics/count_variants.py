"""Variants of the count metrics that other benchmarks report, from the same confusion counts.

For a binary target, with the TPR and FPR spreads (max − min over groups, fairlearn's conventions:
:func:`ceco_fair.metrics.group.odds_spreads`):

- ``equalized_odds_difference``: ``max(ΔTPR, ΔFPR)`` (fairlearn's ``agg="worst_case"``; the value
  :func:`~ceco_fair.metrics.group.group_metrics` reports);
- ``equalized_odds_sum``: ``ΔTPR + ΔFPR`` (FFB's equalized odds);
- ``average_odds_difference``: ``(ΔTPR + ΔFPR) / 2`` (fairlearn's ``agg="mean"``).

For any number of classes, with the accuracy of each (true class, group) cell:

- ``adjusted_accuracy``: the unweighted mean over the cells holding test rows;
- ``train_weighted_accuracy``: the mean weighted by each cell's share of the training split,
  renormalised over the cells holding test rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ceco_fair.errors import CecoFairError
from ceco_fair.metrics.bootstrap import FloatArray, bootstrap_statistic, check_bootstrap_args, percentile_interval
from ceco_fair.metrics.confusion import (
    GroupConfusion,
    IntArray,
    LabelsLike,
    as_int_labels,
    check_same_length,
    group_confusion,
)
from ceco_fair.metrics.group import cell_accuracy, odds_spreads
from ceco_fair.metrics.specs import ci_high_name, ci_low_name

BAD_SHARES = "train_shares must be a non-negative [classes, groups] array with a positive sum, got {detail}"
SHARES_TOO_SMALL = "train_shares has shape {shape} but the test labels need at least [{classes}, {groups}]"
NEGATIVE_LABEL = "{name} must be non-negative integers to index train_shares, found {low}"
UNWEIGHTED_CELLS = (
    "test cells (class, group) {cells} have no training share: they do not count in train_weighted_accuracy"
)
MISSING_CELLS = "training cells (class, group) {cells} have no test rows: the other cells' shares are renormalised"


def odds_from_counts(counts: IntArray) -> dict[str, FloatArray]:
    """The three equalized-odds aggregates of binary tables, vectorised over leading axes.

    Args:
        counts: Counts ``[..., G, 2, 2]``.

    Returns:
        ``equalized_odds_difference``, ``equalized_odds_sum``, ``average_odds_difference``, each ``[...]``.

    """
    tpr, fpr = odds_spreads(counts)
    return {
        "equalized_odds_difference": np.fmax(tpr, fpr),
        "equalized_odds_sum": tpr + fpr,
        "average_odds_difference": (tpr + fpr) / 2.0,
    }


def odds_metrics(y_true: LabelsLike, y_pred: LabelsLike, sensitive: LabelsLike) -> dict[str, float]:
    """Equalized-odds difference (worst case), sum and average of a binary target.

    Args:
        y_true: True classes ``[n]`` in ``{0, 1}``.
        y_pred: Predicted classes ``[n]`` in ``{0, 1}``.
        sensitive: Group labels ``[n]``.

    Returns:
        The three values of :func:`odds_from_counts`, as floats.

    Example:
        >>> odds_metrics([1, 0, 1, 0], [1, 0, 0, 1], ["a", "a", "b", "b"])["equalized_odds_sum"]
        2.0

    """
    counts = group_confusion(y_true, y_pred, sensitive, binary=True).counts
    return {name: float(value) for name, value in odds_from_counts(counts).items()}


def equalized_odds_sum(y_true: LabelsLike, y_pred: LabelsLike, sensitive: LabelsLike) -> float:
    """FFB's equalized odds: TPR spread + FPR spread over the groups (binary target)."""
    return odds_metrics(y_true, y_pred, sensitive)["equalized_odds_sum"]


def average_odds_difference(y_true: LabelsLike, y_pred: LabelsLike, sensitive: LabelsLike) -> float:
    """Mean of the TPR and FPR spreads (fairlearn's ``equalized_odds_difference(agg="mean")``)."""
    return odds_metrics(y_true, y_pred, sensitive)["average_odds_difference"]


def adjusted_accuracy(y_true: LabelsLike, y_pred: LabelsLike, sensitive: LabelsLike) -> float:
    """Unweighted mean of the accuracies of the (true class, group) cells holding rows.

    Args:
        y_true: True classes ``[n]`` (any number).
        y_pred: Predicted classes ``[n]``.
        sensitive: Group labels ``[n]``.

    Returns:
        The mean cell accuracy in ``[0, 1]``.

    """
    accuracy = cell_accuracy(group_confusion(y_true, y_pred, sensitive, binary=False).counts)
    return float(np.nanmean(accuracy))


def cell_shares(targets: LabelsLike, sensitive: LabelsLike, *, n_classes: int, n_groups: int) -> FloatArray:
    """Each (true class, group) cell's share of a split's rows.

    Args:
        targets: Classes ``[m]`` in ``[0, n_classes)``.
        sensitive: Group values ``[m]`` in ``[0, n_groups)``.
        n_classes: Rows of the result.
        n_groups: Columns of the result.

    Returns:
        Shares ``[n_classes, n_groups]`` summing to 1.

    """
    target = as_int_labels(targets, "targets")
    group = as_int_labels(sensitive, "sensitive")
    check_same_length(("targets", target), ("sensitive", group))
    counts = np.bincount(target * n_groups + group, minlength=n_classes * n_groups)
    return np.asarray(counts.reshape(n_classes, n_groups) / target.size, dtype=np.float64)


def _check_shares(shares: npt.NDArray[Any]) -> FloatArray:
    """Reject anything but a finite non-negative 2-D array with a positive sum."""
    array = np.asarray(shares, dtype=np.float64)
    if array.ndim != 2:
        raise CecoFairError(BAD_SHARES.format(detail=f"shape {array.shape}"))
    if not np.all(np.isfinite(array)) or np.any(array < 0) or array.sum() <= 0:
        raise CecoFairError(BAD_SHARES.format(detail="negative, non-finite or all-zero values"))
    return array


def train_weighted_accuracy(
    y_true: LabelsLike,
    y_pred: LabelsLike,
    sensitive: LabelsLike,
    train_shares: npt.ArrayLike,
    *,
    reasons: list[str] | None = None,
) -> float:
    """Cell accuracies weighted by the training split's cell shares.

    ``Σ_cells w_cell · accuracy_cell / Σ_cells w_cell`` over the cells holding test rows, ``w`` the
    cell's share of the training rows (:func:`cell_shares`).

    Args:
        y_true: True classes ``[n]``: non-negative integers (they index ``train_shares``).
        y_pred: Predicted classes ``[n]``.
        sensitive: Group values ``[n]``: non-negative integers (they index ``train_shares``).
        train_shares: ``[C, S]``: entry ``[t, s]`` the training share of class ``t`` in group ``s``.
        reasons: If given, training cells without test rows (whose weight is dropped) and test cells
            without training weight are appended to it.

    Returns:
        The weighted accuracy; NaN if no cell with test rows has a training share.

    Raises:
        CecoFairError: On invalid labels or shares, or shares too small for the labels.

    """
    confusion, weights = _weighted_cells(y_true, y_pred, sensitive, train_shares, reasons)
    return float(_weighted_accuracy(confusion.counts, weights))


def train_weighted_metrics(
    y_true: LabelsLike,
    y_pred: LabelsLike,
    sensitive: LabelsLike,
    train_shares: npt.ArrayLike,
    *,
    n_boot: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
    reasons: list[str] | None = None,
) -> dict[str, float]:
    """``train_weighted_accuracy`` with, for ``n_boot > 0``, the percentiles of its count bootstrap.

    The test rows are resampled as the other group metrics' are (a multinomial draw of the confusion
    counts); the training shares are fixed. Arguments as :func:`train_weighted_accuracy`.

    Returns:
        ``{"train_weighted_accuracy": value}`` and, with a bootstrap, its ``_ci_low`` / ``_ci_high``.
    """
    check_bootstrap_args(n_boot, confidence, seed)
    confusion, weights = _weighted_cells(y_true, y_pred, sensitive, train_shares, reasons)
    name = "train_weighted_accuracy"
    result = {name: float(_weighted_accuracy(confusion.counts, weights))}
    if n_boot > 0:
        samples = bootstrap_statistic(
            confusion.counts,
            lambda batch: {name: _weighted_accuracy(batch, weights)},
            n_boot,
            np.random.default_rng(seed),
        )
        low, high = percentile_interval(samples[name], confidence)
        result[ci_low_name(name)], result[ci_high_name(name)] = float(low), float(high)
    return result


def _weighted_cells(
    y_true: LabelsLike,
    y_pred: LabelsLike,
    sensitive: LabelsLike,
    train_shares: npt.ArrayLike,
    reasons: list[str] | None,
) -> tuple[GroupConfusion, FloatArray]:
    """The test confusion counts and each of their (group, class) cells' training share ``[G', C']``."""
    shares = _check_shares(np.asarray(train_shares))
    confusion = group_confusion(y_true, y_pred, sensitive, binary=False)
    for name, labels in (("y_true", confusion.classes), ("sensitive", confusion.groups)):
        if not np.issubdtype(labels.dtype, np.integer) or int(labels.min()) < 0:
            raise CecoFairError(NEGATIVE_LABEL.format(name=name, low=labels.min()))
    classes, groups = confusion.classes.astype(np.int64), confusion.groups.astype(np.int64)
    if classes.max() >= shares.shape[0] or groups.max() >= shares.shape[1]:
        raise CecoFairError(
            SHARES_TOO_SMALL.format(shape=shares.shape, classes=int(classes.max()) + 1, groups=int(groups.max()) + 1)
        )
    weights = shares[np.ix_(classes, groups)]  # [C', G'] over the labels present in the test data
    if reasons is not None:
        present = ~np.isnan(cell_accuracy(confusion.counts).T)
        _share_reasons(shares, classes, groups, present, weights, reasons)
    return confusion, weights.T


def _weighted_accuracy(counts: IntArray, weights: FloatArray) -> FloatArray:
    """``Σ w·accuracy / Σ w`` over the cells holding rows and weight: counts ``[..., G, C, C]`` -> ``[...]``.

    ``weights`` is ``[G, C]``; NaN where no cell holding rows has weight.
    """
    accuracy = cell_accuracy(counts)  # [..., G, C]
    used = np.isfinite(accuracy) & (weights > 0)
    total = np.where(used, weights, 0.0).sum(axis=(-2, -1))
    weighted = np.where(used, weights * np.nan_to_num(accuracy), 0.0).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(total > 0, weighted / np.where(total > 0, total, 1.0), np.nan))


def _share_reasons(
    shares: FloatArray,
    classes: IntArray,
    groups: IntArray,
    present: npt.NDArray[np.bool_],
    weights: FloatArray,
    reasons: list[str],
) -> None:
    """Record training cells without test rows and test cells without training share."""
    tested = np.zeros(shares.shape, dtype=np.bool_)
    tested[np.ix_(classes, groups)] = present
    missing = np.argwhere((shares > 0) & ~tested)
    if missing.size:
        reasons.append(MISSING_CELLS.format(cells=[tuple(cell) for cell in missing.tolist()]))
    unweighted = [(int(classes[t]), int(groups[g])) for t, g in np.argwhere(present & (weights == 0))]
    if unweighted:
        reasons.append(UNWEIGHTED_CELLS.format(cells=unweighted))
