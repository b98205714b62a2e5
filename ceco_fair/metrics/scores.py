"""Metrics of predicted class probabilities (scores) per sensitive group.

Inputs: ``targets [n]`` integer classes, ``scores`` either ``[n]`` (the positive-class probability
of a binary target; ``[n, 2]`` is read as its column 1) or ``[n, C]`` class probabilities
(``C > 2``), and ``sensitive [n]`` group labels. Scores may be float16, float32 or float64; every
computation is in float64. Definitions, per group ``g`` (``n_g`` rows):

- ``auroc``: area under the ROC curve as the Mann-Whitney statistic with midranks,
  ``(Σ_pos rank − n₊(n₊ + 1)/2) / (n₊ n₋)`` (ties count ½); for ``C > 2`` the unweighted mean
  over classes of the one-vs-rest AUROCs (scikit-learn's ``multi_class="ovr",
  average="macro"``). In a group, the mean is over the classes present there.
- ``worst_group_auroc`` / ``auroc_gap``: min and max − min of the group AUROCs.
- ``ece``: expected calibration error of the top-label confidence (``max(p, 1 − p)`` for a
  binary score, the largest probability otherwise) against the correctness of the predicted
  class (``p > 0.5`` / the first largest probability), over 10 equal-width bins: bin ``b`` holds
  ``b/10 ≤ confidence < (b + 1)/10``, the last bin also ``confidence = 1``;
  ``ECE = Σ_b (n_b / n) |mean confidence_b − accuracy_b|``. ``ece_gap``: max − min over groups.
- ``score_gap`` (FFB's ``dpe``): max − min over groups of the mean positive-class score.
  ``score_gap_eo``: the same gap within each true class, then the max over the classes.
- ``abcc``: area between the groups' empirical CDFs of the positive-class score,
  ``∫ |F_a(t) − F_b(t)| dt`` (the 1-D Wasserstein-1 distance); with more than two groups the
  largest pairwise value.

Undefined values are NaN with a reason, never an exception or a warning: a group holding one
class has no AUROC. Functions append the reasons to ``reasons`` when the caller passes a list
(to log or store them). With a single sensitive group every gap is 0 (as in fairlearn).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch

from ceco_fair.errors import CecoFairError
from ceco_fair.metrics.confusion import (
    IntArray,
    LabelsLike,
    as_int_labels,
    as_label_array,
    check_same_length,
    encode_labels,
    shown_values,
)

FloatArray = npt.NDArray[np.float64]
ScoresLike = npt.ArrayLike | torch.Tensor
"""Scores ``[n]`` or ``[n, C]``: a numpy array, a torch tensor (any device) or a nested sequence."""
GapForm = Literal["overall", "eo"]

ECE_BINS = 10
"""Equal-width confidence bins of :func:`ece` on ``[0, 1]``."""
BIN_EDGES: FloatArray = np.arange(ECE_BINS + 1, dtype=np.float64) / ECE_BINS
"""Bin edges ``b / 10``; bin ``b`` is ``[b/10, (b + 1)/10)``, the last one closed."""

BAD_SCORES_DTYPE = "scores must hold floating-point probabilities (float16/32/64), got dtype {dtype}"
BAD_SCORES_SHAPE = "scores must have shape [n] or [n, C] with C >= 2, got shape {shape}"
BAD_SCORES_RANGE = "scores must be probabilities in [0, 1]; found values in [{low}, {high}] (or NaN)"
NOT_BINARY_TARGET = "targets must be in {{0, 1}} for [n] scores, found values {values}"
TARGET_RANGE = "targets must be class indices in [0, {classes}) for scores of shape [n, {classes}], found {values}"
NEEDS_BINARY = "{name} needs a binary target and a positive-class score ([n] or [n, 2]), got scores [n, {classes}]"
BAD_FORM = "form must be 'overall' or 'eo', got {form!r}"

ONE_CLASS = "group {group}: only class {cls} present ({count} rows): its AUROC is undefined (NaN)"
ONE_CLASS_OVERALL = "the targets hold one class only ({cls}): AUROC is undefined (NaN)"
ABSENT_CLASSES = "group {group}: classes {classes} absent: its AUROC is the mean over the classes present"
NO_AUROC = "no group holds two classes: worst_group_auroc and auroc_gap are NaN"
SINGLE_GROUP = "sensitive has a single group ({group}): every between-group gap is 0"
EMPTY_CELL = "class {cls} has no rows in group {group}: that cell is left out of score_gap_eo"


@dataclass(frozen=True)
class ScoreData:
    """Validated score-metric inputs.

    Attributes:
        targets: True class indices ``[n]`` int64.
        probabilities: Class probabilities ``[n, C]`` float64; for a binary target ``C = 2`` and
            column 0 is ``1 − positive``.
        positive: Positive-class score ``[n]`` float64 for a binary target, else ``None``.
        group: Group codes ``[n]`` int64 in ``0..G-1``.
        groups: Sorted distinct sensitive labels ``[G]``; code ``g`` stands for ``groups[g]``.

    """

    targets: IntArray
    probabilities: FloatArray
    positive: FloatArray | None
    group: IntArray
    groups: npt.NDArray[Any]

    @property
    def n_classes(self) -> int:
        """Number of classes ``C`` (2 for a binary target)."""
        return int(self.probabilities.shape[1])

    @property
    def n_groups(self) -> int:
        """Number of sensitive groups ``G``."""
        return int(self.groups.size)


def as_scores(scores: ScoresLike) -> FloatArray:
    """Convert scores to a float64 numpy array ``[n]`` or ``[n, C]`` and check they are probabilities.

    Raises:
        CecoFairError: On a non-floating dtype, another shape, or a value outside ``[0, 1]`` or NaN.

    """
    if isinstance(scores, torch.Tensor):
        if not scores.is_floating_point():
            raise CecoFairError(BAD_SCORES_DTYPE.format(dtype=scores.dtype))
        array = scores.detach().cpu().to(torch.float64).numpy()
    else:
        raw = np.asarray(scores)
        if not np.issubdtype(raw.dtype, np.floating):
            raise CecoFairError(BAD_SCORES_DTYPE.format(dtype=raw.dtype))
        array = raw.astype(np.float64)
    if array.ndim not in (1, 2) or (array.ndim == 2 and array.shape[1] < 2) or array.shape[0] == 0:
        raise CecoFairError(BAD_SCORES_SHAPE.format(shape=tuple(array.shape)))
    low, high = float(array.min()), float(array.max())
    if not (low >= 0.0 and high <= 1.0):  # also false for NaN
        raise CecoFairError(BAD_SCORES_RANGE.format(low=low, high=high))
    return array


def score_data(targets: LabelsLike, scores: ScoresLike, sensitive: LabelsLike | None = None) -> ScoreData:
    """Validate inputs and encode the groups.

    Args:
        targets: True classes ``[n]``: ``{0, 1}`` for ``[n]`` or ``[n, 2]`` scores, else ``[0, C)``.
        scores: Positive-class scores ``[n]`` or class probabilities ``[n, C]`` (``[n, 2]`` is read
            as its column 1), any float dtype.
        sensitive: Group labels ``[n]`` (any sortable labels); ``None`` puts every row in one group.

    Returns:
        The :class:`ScoreData`.

    Raises:
        CecoFairError: On a bad shape, dtype, length or value (the message names the argument).

    """
    target = as_int_labels(targets, "targets")
    array = as_scores(scores)
    labels = np.zeros(target.size, dtype=np.int64) if sensitive is None else as_label_array(sensitive, "sensitive")
    check_same_length(("targets", target), ("scores", array), ("sensitive", labels))
    group, groups = encode_labels(labels)
    if array.ndim == 2 and array.shape[1] > 2:
        classes = array.shape[1]
        if int(target.min()) < 0 or int(target.max()) >= classes:
            raise CecoFairError(TARGET_RANGE.format(classes=classes, values=shown_values(target)))
        return ScoreData(target, array, None, group, groups)
    positive = array if array.ndim == 1 else np.ascontiguousarray(array[:, 1])
    if int(target.min()) < 0 or int(target.max()) > 1:
        raise CecoFairError(NOT_BINARY_TARGET.format(values=shown_values(target)))
    probabilities = np.stack([1.0 - positive, positive], axis=1)
    return ScoreData(target, probabilities, positive, group, groups)


def require_binary(data: ScoreData, name: str) -> FloatArray:
    """The positive-class score ``[n]`` of a binary target, or an error naming the metric."""
    if data.positive is None:
        raise CecoFairError(NEEDS_BINARY.format(name=name, classes=data.n_classes))
    return data.positive


# --- ranks and AUROC -------------------------------------------------------------------------


def ratio(numerator: npt.ArrayLike, denominator: npt.ArrayLike) -> FloatArray:
    """Elementwise ``numerator / denominator`` as float64, NaN where the denominator is 0."""
    top, bottom = np.asarray(numerator, dtype=np.float64), np.asarray(denominator)
    out = np.full(np.broadcast(top, bottom).shape, np.nan)
    np.divide(top, bottom, out=out, where=bottom != 0)
    return out


def _run_starts(*keys: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """``[n]`` mask of the positions where any of the (sorted) keys changes; the first is true."""
    start = np.zeros(keys[0].size, dtype=np.bool_)
    start[0] = True
    for key in keys:
        start[1:] |= key[1:] != key[:-1]
    return start


def midranks(values: FloatArray, segment: IntArray, value_order: IntArray | None = None) -> FloatArray:
    """Ranks of ``values`` within each segment, ties sharing the mean of their ranks.

    Args:
        values: Values ``[n]``.
        segment: Segment codes ``[n]``; ranks restart at 1 in every segment.
        value_order: ``numpy.argsort(values, kind="stable")`` if already known (saves the float sort).

    Returns:
        Midranks ``[n]`` (1-based, half-integers where an even number of values tie), equal to
        ``scipy.stats.rankdata(values[segment == s])`` within each segment ``s``.

    """
    by_value = np.argsort(values, kind="stable") if value_order is None else value_order
    order = by_value[np.argsort(segment[by_value], kind="stable")]
    sorted_values, sorted_segment = values[order], segment[order]
    tie_start = _run_starts(sorted_values, sorted_segment)
    tie_id = np.cumsum(tie_start) - 1
    first = np.flatnonzero(tie_start)
    last = np.append(first[1:], values.size) - 1
    segment_first = np.flatnonzero(_run_starts(sorted_segment))
    offset = segment_first[np.cumsum(_run_starts(sorted_segment)) - 1]  # first position of each row's segment
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = (first[tie_id] + last[tie_id]) / 2.0 + 1.0 - offset
    return ranks


@dataclass(frozen=True)
class RankAuc:
    """One-vs-rest AUROCs per segment from midranks, with DeLong's structural components.

    Attributes:
        auc: AUROC ``[S, C']`` of class ``c`` against the others in segment ``s`` (``C' = 1`` for a
            binary target: the positive class), NaN where the segment lacks positives or negatives.
        positives: Rows of the class ``[S, C']``.
        negatives: Rows of the other classes ``[S, C']``.
        v10: ``[n, C']``: for a row of class ``c``, the share of the segment's other rows that
            score lower on ``c`` (ties ½); NaN for rows of other classes.
        v01: ``[n, C']``: for a row not of class ``c``, the share of the segment's class-``c`` rows
            that score higher (ties ½); NaN for rows of class ``c``.

    """

    auc: FloatArray
    positives: IntArray
    negatives: IntArray
    v10: FloatArray
    v01: FloatArray


def rank_auc(data: ScoreData, segment: IntArray, n_segments: int) -> RankAuc:
    """AUROC of each class against the rest within each segment, by midranks (Mann-Whitney).

    The structural components are DeLong's, from midranks as in Sun & Xu (2014, *IEEE Signal
    Process. Lett.* 21(11)): for a positive, ``v10 = (R − R₊) / n₋``; for a negative,
    ``v01 = 1 − (R − R₋) / n₊``, with ``R`` its midrank in the segment and ``R₊`` / ``R₋`` its
    midrank among the segment's positives / negatives.

    Args:
        data: Validated inputs.
        segment: Segment codes ``[n]`` in ``0..S-1`` (zeros for the whole data, the group codes
            for per-group values).
        n_segments: Number of segments ``S``.

    Returns:
        The :class:`RankAuc`, one column per class (a single column for a binary target).

    """
    columns = [1] if data.positive is not None else list(range(data.n_classes))
    shape = (n_segments, len(columns))
    auc, pos, neg = np.full(shape, np.nan), np.zeros(shape, np.int64), np.zeros(shape, np.int64)
    v10 = np.full((segment.size, len(columns)), np.nan)
    v01 = np.full((segment.size, len(columns)), np.nan)
    sizes = np.bincount(segment, minlength=n_segments)
    for k, cls in enumerate(columns):
        values = data.probabilities[:, cls]
        is_pos = data.targets == cls
        by_value = np.argsort(values, kind="stable")
        ranks = midranks(values, segment, by_value)
        within = midranks(values, 2 * segment + is_pos, by_value)
        n_pos = np.bincount(segment, weights=is_pos, minlength=n_segments).astype(np.int64)
        n_neg = sizes - n_pos
        rank_sum = np.bincount(segment, weights=np.where(is_pos, ranks, 0.0), minlength=n_segments)
        defined = (n_pos > 0) & (n_neg > 0)
        pairs = (n_pos * n_neg).astype(np.float64)
        u = rank_sum - n_pos * (n_pos + 1) / 2.0
        np.divide(u, pairs, out=auc[:, k], where=defined)
        pos[:, k], neg[:, k] = n_pos, n_neg
        row_pos, row_neg = n_pos[segment], n_neg[segment]
        lower = ranks - within  # other-class rows ranked below (ties ½)
        v10[:, k] = np.where(is_pos & (row_neg > 0), lower / np.maximum(row_neg, 1), np.nan)
        v01[:, k] = np.where(~is_pos & (row_pos > 0), 1.0 - lower / np.maximum(row_pos, 1), np.nan)
    return RankAuc(auc, pos, neg, v10, v01)


def macro_auc(ranked: RankAuc) -> FloatArray:
    """Mean AUROC over the classes defined in each segment: ``[S, C'] -> [S]`` (NaN if none)."""
    defined = ~np.isnan(ranked.auc)
    count = defined.sum(axis=1)
    total = np.where(defined, ranked.auc, 0.0).sum(axis=1)
    return ratio(total, count)


def auroc_reasons(data: ScoreData, ranked: RankAuc, reasons: list[str] | None) -> None:
    """Append why a group's AUROC is undefined or averages fewer classes (per-group ``ranked``)."""
    if reasons is None:
        return
    cells = np.bincount(data.group * data.n_classes + data.targets, minlength=data.n_groups * data.n_classes)
    per_group = cells.reshape(data.n_groups, data.n_classes)
    for label, counts in zip(data.groups.tolist(), per_group, strict=True):
        present = np.flatnonzero(counts)
        if present.size < 2:
            reasons.append(ONE_CLASS.format(group=label, cls=int(present[0]), count=int(counts.sum())))
        elif data.positive is None and present.size < data.n_classes:
            absent = np.setdiff1d(np.arange(data.n_classes), present)
            reasons.append(ABSENT_CLASSES.format(group=label, classes=absent.tolist()))
    if np.all(np.isnan(macro_auc(ranked))):
        reasons.append(NO_AUROC)


def _single_group(data: ScoreData, reasons: list[str] | None) -> None:
    """Record that a gap over a single group is 0."""
    if data.n_groups == 1 and reasons is not None:
        reasons.append(SINGLE_GROUP.format(group=data.groups[0]))


def spread(values: FloatArray) -> FloatArray:
    """Max − min over the last axis ignoring NaN; NaN where every entry is NaN: ``[..., G] -> [...]``."""
    return np.asarray(np.fmax.reduce(values, axis=-1) - np.fmin.reduce(values, axis=-1), dtype=np.float64)


def worst(values: FloatArray) -> FloatArray:
    """Min over the last axis ignoring NaN; NaN where every entry is NaN: ``[..., G] -> [...]``."""
    return np.asarray(np.fmin.reduce(values, axis=-1), dtype=np.float64)


@dataclass(frozen=True)
class GroupValues:
    """A metric per sensitive group.

    Attributes:
        groups: Sorted group labels ``[G]``.
        values: The metric per group ``[G]``, NaN where undefined.

    """

    groups: npt.NDArray[Any]
    values: FloatArray


def auroc(targets: LabelsLike, scores: ScoresLike, *, reasons: list[str] | None = None) -> float:
    """AUROC of all rows: binary, or one-vs-rest macro for ``C > 2`` classes.

    Args:
        targets: True classes ``[n]``.
        scores: Positive-class scores ``[n]`` or class probabilities ``[n, C]``.
        reasons: If given, why the value is undefined is appended to it.

    Returns:
        The AUROC in ``[0, 1]``; NaN with one class only.

    Example:
        >>> auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        0.75

    """
    data = score_data(targets, scores)
    value = float(macro_auc(rank_auc(data, data.group, 1))[0])
    if np.isnan(value) and reasons is not None:
        reasons.append(ONE_CLASS_OVERALL.format(cls=int(data.targets[0])))
    return value


def group_auroc(
    targets: LabelsLike, scores: ScoresLike, sensitive: LabelsLike, *, reasons: list[str] | None = None
) -> GroupValues:
    """AUROC per sensitive group (the :func:`auroc` of each group's rows).

    Args:
        targets: True classes ``[n]``.
        scores: Positive-class scores ``[n]`` or class probabilities ``[n, C]``.
        sensitive: Group labels ``[n]``.
        reasons: If given, the groups whose AUROC is undefined (one class) or averages fewer
            classes are appended to it.

    Returns:
        :class:`GroupValues` with values ``[G]``.

    """
    data = score_data(targets, scores, sensitive)
    ranked = rank_auc(data, data.group, data.n_groups)
    auroc_reasons(data, ranked, reasons)
    return GroupValues(data.groups, macro_auc(ranked))


def worst_group_auroc(
    targets: LabelsLike, scores: ScoresLike, sensitive: LabelsLike, *, reasons: list[str] | None = None
) -> float:
    """Smallest group AUROC over the groups where it is defined (NaN if none is)."""
    return float(worst(group_auroc(targets, scores, sensitive, reasons=reasons).values))


def auroc_gap(
    targets: LabelsLike, scores: ScoresLike, sensitive: LabelsLike, *, reasons: list[str] | None = None
) -> float:
    """Max − min of the group AUROCs where defined (0 for one such group, NaN for none)."""
    data = score_data(targets, scores, sensitive)
    ranked = rank_auc(data, data.group, data.n_groups)
    auroc_reasons(data, ranked, reasons)
    _single_group(data, reasons)
    return float(spread(macro_auc(ranked)))


# --- calibration ------------------------------------------------------------------------------


def confidence_and_correct(data: ScoreData) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Top-label confidence ``[n]`` and correctness of the predicted class ``[n]``.

    The predicted class is the first largest probability (for a binary target ``p > 0.5``).
    """
    predicted = np.argmax(data.probabilities, axis=1)
    confidence = data.probabilities[np.arange(data.targets.size), predicted]
    return confidence, predicted == data.targets


def confidence_bins(confidence: FloatArray) -> IntArray:
    """Bin index ``[n]`` in ``0..9`` of each confidence: ``b/10 ≤ c < (b + 1)/10``, 1.0 in bin 9."""
    bins = np.searchsorted(BIN_EDGES, confidence, side="right") - 1
    return np.minimum(bins, ECE_BINS - 1).astype(np.int64)


def bin_gaps(data: ScoreData, segment: IntArray, n_segments: int) -> tuple[FloatArray, IntArray]:
    """Per (segment, bin) sum of ``confidence − correct`` and row count, ``[S, 10]`` each."""
    confidence, correct = confidence_and_correct(data)
    cell = segment * ECE_BINS + confidence_bins(confidence)
    size = n_segments * ECE_BINS
    gaps = np.asarray(np.bincount(cell, weights=confidence - correct, minlength=size), dtype=np.float64)
    counts = np.bincount(cell, minlength=size).astype(np.int64)
    return gaps.reshape(n_segments, ECE_BINS), counts.reshape(n_segments, ECE_BINS)


def ece_from_bins(gaps: FloatArray, counts: IntArray) -> FloatArray:
    """``Σ_b |gap_b| / Σ_b n_b`` over the last axis: ``[..., 10] -> [...]`` (NaN without rows)."""
    total = counts.sum(axis=-1)
    return ratio(np.abs(gaps).sum(axis=-1), total)


def ece(targets: LabelsLike, scores: ScoresLike) -> float:
    """Expected calibration error: top-label confidence, 10 equal-width bins on ``[0, 1]``.

    Bin ``b`` holds confidences ``b/10 ≤ c < (b + 1)/10`` and the last bin also ``c = 1``;
    ``ECE = Σ_b (n_b / n) |mean confidence_b − accuracy_b|``.

    Args:
        targets: True classes ``[n]``.
        scores: Positive-class scores ``[n]`` or class probabilities ``[n, C]``.

    Returns:
        The ECE in ``[0, 1]``.

    """
    data = score_data(targets, scores)
    return float(ece_from_bins(*bin_gaps(data, data.group, 1))[0])


def group_ece(targets: LabelsLike, scores: ScoresLike, sensitive: LabelsLike) -> GroupValues:
    """:func:`ece` within each sensitive group: values ``[G]``."""
    data = score_data(targets, scores, sensitive)
    return GroupValues(data.groups, ece_from_bins(*bin_gaps(data, data.group, data.n_groups)))


def ece_gap(
    targets: LabelsLike, scores: ScoresLike, sensitive: LabelsLike, *, reasons: list[str] | None = None
) -> float:
    """Max − min over groups of the group ECE (0 for a single group)."""
    data = score_data(targets, scores, sensitive)
    _single_group(data, reasons)
    return float(spread(ece_from_bins(*bin_gaps(data, data.group, data.n_groups))))


# --- score distributions ----------------------------------------------------------------------


def cell_means(values: FloatArray, cell: IntArray, n_cells: int) -> tuple[FloatArray, IntArray]:
    """Mean of ``values`` ``[n]`` per cell code, ``[K]`` (NaN for an empty cell), and the counts ``[K]``."""
    counts = np.bincount(cell, minlength=n_cells).astype(np.int64)
    return ratio(np.bincount(cell, weights=values, minlength=n_cells), counts), counts


def class_group_means(data: ScoreData, positive: FloatArray) -> tuple[FloatArray, IntArray]:
    """Mean positive-class score per (true class, group) ``[2, G]``, NaN for an empty cell, and counts."""
    means, counts = cell_means(positive, data.targets * data.n_groups + data.group, 2 * data.n_groups)
    return means.reshape(2, data.n_groups), counts.reshape(2, data.n_groups)


def score_gap(
    targets: LabelsLike,
    scores: ScoresLike,
    sensitive: LabelsLike,
    *,
    form: GapForm = "overall",
    reasons: list[str] | None = None,
) -> float:
    """Gap in mean positive-class score between sensitive groups (FFB's ``dpe``).

    ``form="overall"``: max − min over groups of the mean score. ``form="eo"``: that gap within
    each true class (over the groups holding the class), then the max over the classes.

    Args:
        targets: Binary true classes ``[n]``.
        scores: Positive-class scores ``[n]`` (or ``[n, 2]``).
        sensitive: Group labels ``[n]``.
        form: ``"overall"`` or ``"eo"``.
        reasons: If given, empty (class, group) cells of the ``eo`` form are appended to it.

    Returns:
        The gap in ``[0, 1]``.

    Raises:
        CecoFairError: For scores of more than two classes or an unknown ``form``.

    """
    if form not in ("overall", "eo"):
        raise CecoFairError(BAD_FORM.format(form=form))
    data = score_data(targets, scores, sensitive)
    positive = require_binary(data, "score_gap")
    _single_group(data, reasons)
    if form == "overall":
        return float(spread(cell_means(positive, data.group, data.n_groups)[0]))
    means, counts = class_group_means(data, positive)
    if reasons is not None:
        for cls, g in zip(*np.nonzero(counts == 0), strict=True):
            reasons.append(EMPTY_CELL.format(cls=int(cls), group=data.groups[g]))
    return float(np.nanmax(spread(means)))


def score_cdfs(values: FloatArray, group: IntArray, n_groups: int) -> tuple[FloatArray, FloatArray]:
    """Every group's empirical CDF on the pooled distinct values.

    Args:
        values: Scores ``[n]``.
        group: Group codes ``[n]`` in ``0..G-1``.
        n_groups: ``G``.

    Returns:
        ``(points [U], cdf [G, U])``: the sorted distinct values and ``cdf[g, k]`` the share of
        group ``g``'s rows ``≤ points[k]`` (memory ``G × U``).

    """
    points, index = np.unique(values, return_inverse=True)
    counts = np.bincount(group * points.size + index.reshape(-1), minlength=n_groups * points.size)
    cumulative = np.cumsum(counts.reshape(n_groups, points.size), axis=1)
    return points, cumulative / cumulative[:, -1:]


def pairwise_w1(values: FloatArray, group: IntArray, n_groups: int) -> FloatArray:
    """Wasserstein-1 distance between the score distributions of every pair of groups.

    Args:
        values: Scores ``[n]``.
        group: Group codes ``[n]`` in ``0..G-1``, every group non-empty.
        n_groups: ``G``.

    Returns:
        ``[P]`` over the pairs ``i < j`` in :func:`numpy.triu_indices` order:
        ``Σ_k |F_i(t_k) − F_j(t_k)| (t_{k+1} − t_k)`` on the pooled distinct values ``t``.

    """
    points, cdf = score_cdfs(values, group, n_groups)
    first, second = np.triu_indices(n_groups, k=1)
    widths = np.diff(points)
    return np.asarray(np.abs(cdf[first, :-1] - cdf[second, :-1]) @ widths, dtype=np.float64)


def abcc(scores: ScoresLike, sensitive: LabelsLike) -> float:
    """Area between the groups' CDFs of the positive-class score (1-D Wasserstein-1 distance).

    With more than two groups, the largest pairwise value; 0 for a single group.

    Args:
        scores: Positive-class scores ``[n]`` (or ``[n, 2]``).
        sensitive: Group labels ``[n]``.

    Returns:
        ABCC in ``[0, 1]``, equal to ``scipy.stats.wasserstein_distance`` between two groups.

    Example:
        >>> abcc([0.1, 0.2, 0.6, 0.9], [0, 0, 1, 1])
        0.6

    """
    array = as_scores(scores)
    labels = as_label_array(sensitive, "sensitive")
    check_same_length(("scores", array), ("sensitive", labels))
    if array.ndim == 2 and array.shape[1] > 2:
        raise CecoFairError(NEEDS_BINARY.format(name="abcc", classes=array.shape[1]))
    positive = array if array.ndim == 1 else array[:, 1]
    group, groups = encode_labels(labels)
    if groups.size == 1:
        return 0.0
    return float(pairwise_w1(positive, group, groups.size).max())
