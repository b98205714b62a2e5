"""Per-group confusion counts: the one disaggregation primitive every metric is built on.

All bias and fairness metrics of :mod:`ceco_fair.metrics` are functions of a count table
``counts[g, t, p]`` = number of rows of group ``g`` with true class ``t`` predicted as ``p``,
shape ``[G, C, C]``. The table is built in one pass (:func:`numpy.bincount` on a combined
index), so metrics never touch the rows again, and a bootstrap can resample the table itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from ceco_fair.errors import CecoFairError

LabelsLike = npt.ArrayLike | torch.Tensor
"""A 1-D sequence of labels: a numpy array, a torch tensor (any device), a list."""

IntArray = npt.NDArray[np.int64]

NOT_1D = "{name} must be a 1-D array of labels, got shape {shape}"
EMPTY = "{name} is empty; expected at least one label"
NOT_INTEGER = "{name} must hold integer labels, got dtype {dtype}"
LENGTH_MISMATCH = "{name} has {length} entries but {reference} has {expected}; expected equal lengths"
NOT_BINARY = (
    "{name} must be a binary target with values in {{0, 1}}, found values {values}; "
    "pass rates=False for a multi-class target"
)
OUT_OF_RANGE = "{name} must hold integers in [0, {size}), found values {values}"
BAD_SIZE = "{name} must be a positive integer, got {value!r}"

_MAX_SHOWN_VALUES = 10


@dataclass(frozen=True)
class GroupConfusion:
    """Confusion counts per sensitive group.

    Attributes:
        counts: Array ``[G, C, C]`` of int64; ``counts[g, t, p]`` counts the rows of group
            ``g`` whose true class index is ``t`` and predicted class index is ``p``.
        groups: Array ``[G]`` of the original sensitive labels, sorted; row ``g`` of
            ``counts`` belongs to ``groups[g]``. Every group has at least one row.
        classes: Array ``[C]`` of the original class labels, sorted; index ``t`` (or ``p``)
            stands for ``classes[t]``.

    """

    counts: IntArray
    groups: npt.NDArray[Any]
    classes: npt.NDArray[Any]


def as_label_array(values: LabelsLike, name: str) -> npt.NDArray[Any]:
    """Convert labels to a non-empty 1-D numpy array on the CPU.

    Args:
        values: Labels ``[N]``: numpy array, torch tensor (moved to the CPU) or sequence.
        name: Argument name used in error messages.

    Returns:
        Array ``[N]`` (a view of ``values`` where possible).

    Raises:
        CecoFairError: If ``values`` is not 1-D or is empty.

    """
    if isinstance(values, torch.Tensor):
        array = values.detach().cpu().numpy()
    else:
        array = np.asarray(values)
    if array.ndim != 1:
        raise CecoFairError(NOT_1D.format(name=name, shape=tuple(array.shape)))
    if array.size == 0:
        raise CecoFairError(EMPTY.format(name=name))
    return array


def as_int_labels(values: LabelsLike, name: str) -> IntArray:
    """Convert integer (or boolean) labels to a 1-D int64 numpy array.

    Args:
        values: Integer labels ``[N]``.
        name: Argument name used in error messages.

    Returns:
        Array ``[N]`` of int64.

    Raises:
        CecoFairError: If ``values`` is not 1-D, is empty or holds non-integers.

    """
    array = as_label_array(values, name)
    if array.dtype == np.bool_:
        return array.astype(np.int64)
    if not np.issubdtype(array.dtype, np.integer):
        raise CecoFairError(NOT_INTEGER.format(name=name, dtype=array.dtype))
    return array.astype(np.int64, copy=False)


def check_same_length(reference: tuple[str, npt.NDArray[Any]], *others: tuple[str, npt.NDArray[Any]]) -> None:
    """Check that label arrays have the length of a reference array.

    Args:
        reference: ``(name, array [N])`` that fixes the expected length.
        *others: ``(name, array)`` pairs to compare with it.

    Raises:
        CecoFairError: Naming the first array whose length differs.

    """
    ref_name, ref_array = reference
    for name, array in others:
        if len(array) != len(ref_array):
            raise CecoFairError(
                LENGTH_MISMATCH.format(name=name, length=len(array), reference=ref_name, expected=len(ref_array))
            )


def shown_values(array: npt.NDArray[Any]) -> str:
    """Format the distinct values of an array for an error message (at most ten shown).

    Args:
        array: Any 1-D array ``[N]``.

    Returns:
        A short string such as ``[0, 1, 2]`` or ``[0, 1, ..., 9] (12 distinct)``.

    """
    distinct = np.unique(array)
    listed = ", ".join(str(v) for v in distinct[:_MAX_SHOWN_VALUES].tolist())
    if distinct.size <= _MAX_SHOWN_VALUES:
        return f"[{listed}]"
    return f"[{listed}, ...] ({distinct.size} distinct)"


def encode_labels(values: npt.NDArray[Any]) -> tuple[IntArray, npt.NDArray[Any]]:
    """Map arbitrary labels to contiguous codes ``0..K-1`` in sorted label order.

    Equal to ``numpy.unique(values, return_inverse=True)`` (the test oracle); small
    non-negative integers take an O(N) path through :func:`numpy.bincount` instead of a sort.

    Args:
        values: Labels ``[N]`` of any sortable dtype (integers, strings, ...).

    Returns:
        ``(codes, labels)``: codes ``[N]`` int64 in ``0..K-1`` and the sorted distinct labels
        ``[K]`` such that ``labels[codes] == values``.

    """
    if np.issubdtype(values.dtype, np.integer) and values.dtype != np.uint64:
        low, high = int(values.min()), int(values.max())
        if low >= 0 and high <= 2 * values.size + 1024:
            present = np.flatnonzero(np.bincount(values))
            lookup = np.zeros(high + 1, dtype=np.int64)
            lookup[present] = np.arange(present.size, dtype=np.int64)
            return lookup[values], present.astype(values.dtype)
    labels, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64, copy=False).reshape(-1), labels


def check_index_range(values: IntArray, size: int, name: str) -> None:
    """Check that integer labels lie in ``[0, size)``.

    Args:
        values: Integer labels ``[N]``.
        size: Number of allowed values.
        name: Argument name used in error messages.

    Raises:
        CecoFairError: If a value is negative or ``>= size``.

    """
    if int(values.min()) < 0 or int(values.max()) >= size:
        raise CecoFairError(OUT_OF_RANGE.format(name=name, size=size, values=shown_values(values)))


def check_size(value: int | None, name: str) -> None:
    """Check an optional category count (``None`` means "infer from the data").

    Args:
        value: ``None`` or the number of categories.
        name: Argument name used in error messages.

    Raises:
        CecoFairError: If ``value`` is not ``None`` and not a positive integer.

    """
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise CecoFairError(BAD_SIZE.format(name=name, value=value))


def confusion_counts(y_true: IntArray, y_pred: IntArray, group: IntArray, n_classes: int, n_groups: int) -> IntArray:
    """Count rows per (group, true class, predicted class) in one pass.

    Args:
        y_true: True class indices ``[N]`` in ``[0, n_classes)``.
        y_pred: Predicted class indices ``[N]`` in ``[0, n_classes)``.
        group: Group indices ``[N]`` in ``[0, n_groups)``.
        n_classes: Number of classes ``C``.
        n_groups: Number of groups ``G``.

    Returns:
        Array ``[G, C, C]`` of int64 with ``counts[g, t, p]`` rows; it sums to ``N``.

    """
    index = group * n_classes
    index += y_true
    index *= n_classes
    index += y_pred
    flat = np.bincount(index, minlength=n_groups * n_classes * n_classes)
    return flat.astype(np.int64, copy=False).reshape(n_groups, n_classes, n_classes)


def group_confusion(y_true: LabelsLike, y_pred: LabelsLike, sensitive: LabelsLike, *, binary: bool) -> GroupConfusion:
    """Validate labels and build the per-group confusion counts.

    Args:
        y_true: True classes ``[N]`` (integers).
        y_pred: Predicted classes ``[N]`` (integers).
        sensitive: Sensitive attribute ``[N]``: any sortable labels (integers, strings).
        binary: If true, both targets must take values in ``{0, 1}`` and the class axis is
            exactly ``[0, 1]`` (index 1 is the positive class) even if one value is absent.
            Otherwise the classes are the distinct values of ``y_true`` and ``y_pred``.

    Returns:
        The :class:`GroupConfusion` of the inputs: counts ``[G, C, C]``.

    Raises:
        CecoFairError: On non-1-D, empty, non-integer or unequal-length inputs, or on a
            non-binary target when ``binary`` is true (the message lists the values found).

    """
    true = as_int_labels(y_true, "y_true")
    pred = as_int_labels(y_pred, "y_pred")
    groups_raw = as_label_array(sensitive, "sensitive")
    check_same_length(("y_true", true), ("y_pred", pred), ("sensitive", groups_raw))
    group_codes, groups = encode_labels(groups_raw)
    if binary:
        for name, array in (("y_true", true), ("y_pred", pred)):
            if int(array.min()) < 0 or int(array.max()) > 1:
                raise CecoFairError(NOT_BINARY.format(name=name, values=shown_values(array)))
        true_codes, pred_codes = true, pred
        classes: npt.NDArray[Any] = np.arange(2, dtype=np.int64)
    else:
        codes, classes = encode_labels(np.concatenate([true, pred]))
        true_codes, pred_codes = codes[: true.size], codes[true.size :]
    counts = confusion_counts(true_codes, pred_codes, group_codes, classes.size, groups.size)
    return GroupConfusion(counts=counts, groups=groups, classes=classes)
