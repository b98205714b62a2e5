"""Bias metrics for data whose bias values index the target classes (BiasedMNIST).

Each sample has a digit ``y`` and a bias (colour) index ``b``. With the ReBias colour scheme
colour ``c`` is the bias-aligned colour of digit ``c``, so a sample is *bias-aligned* when
``b == y`` and *bias-conflicting* otherwise. Definitions:

- ``accuracy``: fraction of all samples predicted correctly;
- ``unbiased_accuracy``: mean over the (digit, colour) cells that hold at least one sample of
  the per-cell accuracy (BiasCon's convention);
- ``bias_aligned_accuracy``: accuracy over the samples with ``b == y``;
- ``bias_conflicting_accuracy``: accuracy over the samples with ``b != y``.
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt

from ceco_fair.metrics.confusion import (
    IntArray,
    LabelsLike,
    as_int_labels,
    check_index_range,
    check_same_length,
    check_size,
    confusion_counts,
)

logger = logging.getLogger(__name__)

EMPTY_SUBSET = "no %s samples (bias index %s digit); %s is NaN"


def _cell_counts(
    y_true: LabelsLike,
    y_pred: LabelsLike,
    bias: LabelsLike,
    n_classes: int | None,
    n_bias: int | None,
) -> tuple[IntArray, IntArray]:
    """Validate inputs and count samples and correct predictions per (digit, colour) cell.

    Returns:
        ``(correct, total)``, both ``[n_classes, n_bias]`` int64.

    """
    check_size(n_classes, "n_classes")
    check_size(n_bias, "n_bias")
    true = as_int_labels(y_true, "y_true")
    pred = as_int_labels(y_pred, "y_pred")
    colour = as_int_labels(bias, "bias")
    check_same_length(("y_true", true), ("y_pred", pred), ("bias", colour))
    n_c = int(max(true.max(), pred.max())) + 1 if n_classes is None else int(n_classes)
    n_b = int(colour.max()) + 1 if n_bias is None else int(n_bias)
    check_index_range(true, n_c, "y_true")
    check_index_range(pred, n_c, "y_pred")
    check_index_range(colour, n_b, "bias")
    counts = confusion_counts(true, pred, colour, n_c, n_b)  # [B, C, C]
    correct = np.diagonal(counts, axis1=1, axis2=2).T  # [C, B]
    total = counts.sum(axis=2).T  # [C, B]
    return np.ascontiguousarray(correct), total


def _ratio(numerator: npt.NDArray[np.int64], denominator: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Elementwise ``numerator / denominator`` as float64, NaN where the denominator is 0."""
    out = np.full(numerator.shape, np.nan, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def bias_accuracy_matrix(
    y_true: LabelsLike,
    y_pred: LabelsLike,
    bias: LabelsLike,
    n_classes: int | None = None,
    n_bias: int | None = None,
) -> npt.NDArray[np.float64]:
    """Accuracy per (digit, colour) cell.

    Args:
        y_true: True digits ``[N]``, integers in ``[0, n_classes)``.
        y_pred: Predicted digits ``[N]``, integers in ``[0, n_classes)``.
        bias: Bias (colour) indices ``[N]``, integers in ``[0, n_bias)``.
        n_classes: Number of digits; default ``max(y_true, y_pred) + 1``.
        n_bias: Number of colours; default ``max(bias) + 1``.

    Returns:
        Array ``[n_classes, n_bias]`` of float64: entry ``[c, b]`` is the accuracy on the
        samples with digit ``c`` and colour ``b``, NaN for a cell without samples.

    Raises:
        CecoFairError: On non-1-D, empty, non-integer or unequal-length inputs, a label outside
            its range, or a non-positive ``n_classes`` / ``n_bias``.

    """
    correct, total = _cell_counts(y_true, y_pred, bias, n_classes, n_bias)
    return _ratio(correct, total)


def bias_metrics(y_true: LabelsLike, y_pred: LabelsLike, bias: LabelsLike) -> dict[str, float]:
    """Accuracy, unbiased, bias-aligned and bias-conflicting accuracy.

    A sample is bias-aligned when its bias index equals its digit. If there are no
    bias-aligned (or no bias-conflicting) samples, that accuracy is NaN and a warning is
    logged; ``accuracy`` and ``unbiased_accuracy`` are always defined.

    Args:
        y_true: True digits ``[N]``, non-negative integers (numpy array or torch tensor).
        y_pred: Predicted digits ``[N]``, non-negative integers.
        bias: Bias (colour) indices ``[N]``, non-negative integers.

    Returns:
        ``{"accuracy", "unbiased_accuracy", "bias_aligned_accuracy",
        "bias_conflicting_accuracy"}`` as floats in ``[0, 1]`` (or NaN as above).

    Raises:
        CecoFairError: On non-1-D, empty, non-integer, negative or unequal-length inputs.

    Example:
        >>> bias_metrics([0, 1, 1, 2], [0, 1, 0, 2], [0, 1, 0, 1])["bias_aligned_accuracy"]
        1.0

    """
    correct, total = _cell_counts(y_true, y_pred, bias, None, None)
    rows, cols = np.indices(total.shape)
    aligned = rows == cols
    present = total > 0
    result = {
        "accuracy": float(correct.sum() / total.sum()),
        "unbiased_accuracy": float(np.mean(correct[present] / total[present])),
    }
    for name, mask, kind, relation in (
        ("bias_aligned_accuracy", aligned, "bias-aligned", "=="),
        ("bias_conflicting_accuracy", ~aligned, "bias-conflicting", "!="),
    ):
        n = int(total[mask].sum())
        if n == 0:
            logger.warning(EMPTY_SUBSET, kind, relation, name)
            result[name] = float("nan")
        else:
            result[name] = float(correct[mask].sum() / n)
    return result
