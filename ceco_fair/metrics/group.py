"""Group-fairness metrics with bootstrap intervals and homogeneity p-values.

Definitions, for a target ``y``, a prediction ``ŷ`` and a sensitive attribute
``s`` with any number of groups:

- ``accuracy``: ``P(ŷ = y)``;
- ``worst_group_accuracy``: min over the (y, s) cells holding at least one sample of
  ``P(ŷ = y | y, s)``;
- ``demographic_parity_difference``: max − min over groups of the selection rate
  ``P(ŷ = 1 | s)`` (fairlearn's ``demographic_parity_difference``);
- ``equal_opportunity_difference``: max − min over groups of the true positive rate
  ``P(ŷ = 1 | y = 1, s)`` (fairlearn's ``equal_opportunity_difference``);
- ``equalized_odds_difference``: max of the TPR spread and the FPR spread (fairlearn's
  ``equalized_odds_difference``, ``agg="worst_case"``);
- ``eo_fscl``: FSCL's equalized odds: for each target class, the mean of
  ``|P(ŷ = y | y, s_i) − P(ŷ = y | y, s_j)|`` over the group pairs ``i < j`` whose cells both
  hold samples, then the mean over the classes that have such a pair (for a binary target and
  two groups: ``½(|ΔTPR| + |ΔFPR|)``). If no class has such a pair it is 0.

The three rate-based spreads need a binary target in ``{0, 1}``; ``rates=False`` drops them
and accepts any number of classes.

Undefined rates follow fairlearn exactly: a group without positive samples has a TPR of 0
(and one without negatives an FPR of 0), as ``sklearn.metrics.confusion_matrix(...,
normalize="true")`` yields, and these zeros take part in the spreads; a warning names such
groups. With a single group every spread is 0, as in fairlearn, and a warning is logged.
In a bootstrap resample a group may lose all its rows; it is then left out of that
resample's statistics (as fairlearn's row bootstrap does).

Intervals: ``accuracy`` gets a bootstrap percentile interval; ``worst_group_accuracy`` and the
spreads get the interval implied by simultaneous max-t bootstrap bands, which keeps its level
at zero disparity and at ties between groups, where percentile intervals of a max − min or a
minimum fail; each spread also gets a chi-square p-value for "no difference between groups"
(:mod:`ceco_fair.metrics.intervals`). The plug-in values are fairlearn's, unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from ceco_fair.errors import CecoFairError
from ceco_fair.metrics.bootstrap import (
    FloatArray,
    bootstrap_statistic,
    check_bootstrap_args,
    percentile_interval,
)
from ceco_fair.metrics.confusion import IntArray, LabelsLike, group_confusion
from ceco_fair.metrics.intervals import (
    critical_values,
    homogeneity_p_values,
    max_t_statistics,
    mean_pair_gap,
    simultaneous_intervals,
)
from ceco_fair.metrics.specs import (
    GROUP_RATES,
    METRIC_SPECS,
    MetricSpec,
    ci_high_name,
    ci_low_name,
    outcome_metrics,
    p_value_name,
    register_spec,
    unregister_spec,
)

logger = logging.getLogger(__name__)

GroupCompute = Callable[[IntArray], FloatArray]
"""A group metric's function: per-group confusion counts ``[..., G, C, C] -> [...]`` (rows: true class)."""

GROUP_METRIC_KIND = "group"
"""The :class:`~ceco_fair.metrics.specs.MetricSpec` kind of a metric computed from the counts."""
BAD_KIND = "metric {name!r}: a group metric needs a spec of kind 'group', got {kind!r}"
BAD_RUNS = "metric {name!r}: a group metric's spec must list 'group' in its runs, got {runs!r}"
BAD_INTERVAL = "metric {name!r}: a registered group metric takes interval 'none' or 'percentile', got {interval!r}"
REGISTERED_INTERVALS = ("none", "percentile")
"""The intervals a run-time group metric may ask for (the bands need a family of rates, :mod:`.intervals`)."""

GROUP_RATE_NAMES: tuple[str, ...] = GROUP_RATES
"""Per-group rates of :func:`group_table` that get bootstrap intervals."""

BAD_RATES = "rates must be a bool, got {value!r}"
SINGLE_GROUP = "sensitive has a single group (%s): every between-group spread is 0"
NO_POSITIVES = "groups %s have no samples with y_true == 1: their TPR is taken as 0, as fairlearn does"
NO_NEGATIVES = "groups %s have no samples with y_true == 0: their FPR is taken as 0, as fairlearn does"
NO_PAIRS = "no target class is present in two or more groups: eo_fscl is 0"


def _ratio(numerator: npt.NDArray[Any], denominator: npt.NDArray[Any], empty: float) -> FloatArray:
    """Elementwise ``numerator / denominator`` as float64, ``empty`` where the denominator is 0."""
    out = np.full(np.broadcast(numerator, denominator).shape, empty, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _group_sizes(counts: IntArray) -> IntArray:
    """Rows per group: ``[..., G, C, C] -> [..., G]``."""
    sizes: IntArray = counts.sum(axis=(-2, -1))
    return sizes


def cell_accuracy(counts: IntArray) -> FloatArray:
    """``P(ŷ = y | y, s)`` per cell: ``[..., G, C, C] -> [..., G, C]``, NaN for empty cells."""
    correct = np.diagonal(counts, axis1=-2, axis2=-1)
    return _ratio(correct, counts.sum(axis=-1), np.nan)


def _group_accuracy(counts: IntArray) -> FloatArray:
    """Accuracy per group: ``[..., G, C, C] -> [..., G]``, NaN for groups without rows."""
    correct = np.diagonal(counts, axis1=-2, axis2=-1).sum(axis=-1)
    return _ratio(correct, _group_sizes(counts), np.nan)


def _binary_rates(counts: IntArray) -> dict[str, FloatArray]:
    """Per-group accuracy, TPR, FPR and selection rate of a binary table.

    Args:
        counts: Counts ``[..., G, 2, 2]`` (index 1 = positive class).

    Returns:
        ``{"accuracy", "tpr", "fpr", "selection_rate"}``, each ``[..., G]``: NaN for a group
        without rows; TPR (FPR) 0 for a group without positives (negatives), as in fairlearn.

    """
    tn, fp = counts[..., 0, 0], counts[..., 0, 1]
    fn, tp = counts[..., 1, 0], counts[..., 1, 1]
    absent = _group_sizes(counts) == 0
    rates = {
        "accuracy": _group_accuracy(counts),
        "tpr": _ratio(tp, tp + fn, 0.0),
        "fpr": _ratio(fp, fp + tn, 0.0),
        "selection_rate": _ratio(tp + fp, _group_sizes(counts), np.nan),
    }
    for name in ("tpr", "fpr"):
        rates[name][absent] = np.nan
    return rates


def _spread(values: FloatArray) -> FloatArray:
    """Max − min over the group axis, ignoring NaN groups: ``[..., G] -> [...]``."""
    return np.asarray(np.fmax.reduce(values, axis=-1) - np.fmin.reduce(values, axis=-1))


def odds_spreads(counts: IntArray) -> tuple[FloatArray, FloatArray]:
    """TPR spread and FPR spread over the groups of binary tables.

    The parts of equalized odds, with fairlearn's conventions (:func:`_binary_rates`).

    Args:
        counts: Counts ``[..., G, 2, 2]`` (index 1 = positive class).

    Returns:
        ``(tpr_spread, fpr_spread)``, each ``[...]``: max − min over the groups with rows.

    """
    return _odds_spreads(_binary_rates(counts))


def _odds_spreads(group_rates: dict[str, FloatArray]) -> tuple[FloatArray, FloatArray]:
    """TPR and FPR spreads from the per-group rates of :func:`_binary_rates`."""
    return _spread(group_rates["tpr"]), _spread(group_rates["fpr"])


def _overall_accuracy(counts: IntArray) -> FloatArray:
    """Accuracy of whole tables: ``[..., G, C, C] -> [...]``."""
    correct = np.diagonal(counts, axis1=-2, axis2=-1).sum(axis=(-2, -1))
    return _ratio(correct, counts.sum(axis=(-3, -2, -1)), np.nan)


def _worst_group_accuracy(counts: IntArray) -> FloatArray:
    """Min over the non-empty (y, s) cells of ``P(ŷ = y | y, s)``: ``[..., G, C, C] -> [...]``."""
    cells = cell_accuracy(counts)
    return np.asarray(np.fmin.reduce(cells.reshape(*cells.shape[:-2], -1), axis=-1))


def _rate_spread(rate: str) -> GroupCompute:
    """Max − min over groups of one rate of :func:`_binary_rates` (binary counts only)."""

    def compute(counts: IntArray) -> FloatArray:
        return _spread(_binary_rates(counts)[rate])

    return compute


def _equalized_odds(counts: IntArray) -> FloatArray:
    """The larger of the TPR and FPR spreads (fairlearn's ``agg="worst_case"``)."""
    tpr_spread, fpr_spread = odds_spreads(counts)
    return np.asarray(np.fmax(tpr_spread, fpr_spread))


def _equalized_odds_sum(counts: IntArray) -> FloatArray:
    """TPR spread + FPR spread (FFB's equalized odds)."""
    tpr_spread, fpr_spread = odds_spreads(counts)
    return np.asarray(tpr_spread + fpr_spread)


def _average_odds(counts: IntArray) -> FloatArray:
    """The mean of the TPR and FPR spreads (fairlearn's ``agg="mean"``, AAOD)."""
    tpr_spread, fpr_spread = odds_spreads(counts)
    return np.asarray((tpr_spread + fpr_spread) / 2)


def _adjusted_accuracy(counts: IntArray) -> FloatArray:
    """The unweighted mean of the (y, s) cells' accuracies over the cells holding rows (SubpopBench's)."""
    cells = cell_accuracy(counts)
    flat = np.sort(cells.reshape(*cells.shape[:-2], -1), axis=-1)  # sorted: the sum is the same in any group order
    present = np.isfinite(flat)
    return _ratio(np.where(present, flat, 0.0).sum(axis=-1), present.sum(axis=-1), np.nan)


def _eo_fscl(counts: IntArray) -> FloatArray:
    """FSCL's equalized odds: the mean gap between groups of the per-class accuracies."""
    return mean_pair_gap(cell_accuracy(counts))


@dataclass(frozen=True)
class GroupMetric:
    """One group metric: its name (a key of :data:`~ceco_fair.metrics.specs.METRIC_SPECS`) and its function.

    Attributes:
        name: the metric's name; its spec (kind ``group``) says its label, direction, interval and roles.
        compute: counts ``[..., G, C, C] -> [...]``, vectorised over the leading axes (the bootstrap
            passes resampled tables ``[B, G, C, C]``); a ``binary`` spec gets ``C == 2``.
    """

    name: str
    compute: GroupCompute


GROUP_METRIC_FUNCTIONS: Final[dict[str, GroupMetric]] = {
    metric.name: metric
    for metric in (
        GroupMetric("accuracy", _overall_accuracy),
        GroupMetric("worst_group_accuracy", _worst_group_accuracy),
        GroupMetric("demographic_parity_difference", _rate_spread("selection_rate")),
        GroupMetric("equalized_odds_difference", _equalized_odds),
        GroupMetric("equal_opportunity_difference", _rate_spread("tpr")),
        GroupMetric("eo_fscl", _eo_fscl),
        GroupMetric("equalized_odds_sum", _equalized_odds_sum),
        GroupMetric("average_odds_difference", _average_odds),
        GroupMetric("adjusted_accuracy", _adjusted_accuracy),
    )
}
"""Every group metric's function of the confusion counts, by name (the order is the specs')."""
_BUILT_IN: Final = frozenset(GROUP_METRIC_FUNCTIONS)


def metric_names(*, rates: bool = True) -> tuple[str, ...]:
    """Keys of :func:`group_metrics` (without the ``_ci_low`` / ``_ci_high`` / ``_p_value`` variants).

    Read at call time from the specs of a group run that have a function here, in spec order.

    Args:
        rates: Whether the metrics that need a binary target are included.
    """
    return tuple(
        name
        for name in outcome_metrics("group")
        if name in GROUP_METRIC_FUNCTIONS and (rates or not METRIC_SPECS[name].binary_only)
    )


def rate_metric_names() -> tuple[str, ...]:
    """Metrics that need a binary target; ``rates=False`` leaves them out."""
    return tuple(name for name in metric_names() if METRIC_SPECS[name].binary_only)


def register_group_metric(spec: MetricSpec, compute: GroupCompute) -> None:
    """Add a group metric at run time: its spec (:func:`~ceco_fair.metrics.specs.register_spec`) and function.

    It then reaches :func:`group_metrics`, so ``metrics.json``, ``results.csv``, the summary tables and
    the report's summary of every group run.

    Args:
        spec: the metric's spec: kind ``group``, ``group`` among its ``runs``, interval ``none`` or
            ``percentile`` (a bootstrap percentile interval of ``compute`` on resampled counts); its name new.
        compute: counts ``[..., G, C, C] -> [...]`` (:class:`GroupMetric`).

    Raises:
        ValueError: for another kind of spec, runs or interval, or a name already in use.
    """
    if spec.kind != GROUP_METRIC_KIND:
        raise ValueError(BAD_KIND.format(name=spec.name, kind=spec.kind))
    if GROUP_METRIC_KIND not in spec.runs:
        raise ValueError(BAD_RUNS.format(name=spec.name, runs=spec.runs))
    if spec.interval not in REGISTERED_INTERVALS:
        raise ValueError(BAD_INTERVAL.format(name=spec.name, interval=spec.interval))
    register_spec(spec)
    GROUP_METRIC_FUNCTIONS[spec.name] = GroupMetric(spec.name, compute)


def unregister_group_metric(name: str) -> None:
    """Remove a metric added with :func:`register_group_metric` (the built-in ones stay)."""
    if name in GROUP_METRIC_FUNCTIONS and name not in _BUILT_IN:
        del GROUP_METRIC_FUNCTIONS[name]
        unregister_spec(name)


def metrics_from_counts(counts: IntArray, *, rates: bool) -> dict[str, FloatArray]:
    """Every metric of :func:`metric_names` from count tables, vectorised over leading axes.

    Args:
        counts: Counts ``[..., G, C, C]`` (``C == 2`` when ``rates``), each table non-empty.
        rates: Whether to compute the binary rate-based spreads.

    Returns:
        Metric name mapped to an array of shape ``[...]``, in :func:`metric_names` order.

    """
    return {name: GROUP_METRIC_FUNCTIONS[name].compute(counts) for name in metric_names(rates=rates)}


def _names(groups: Iterable[Any], mask: npt.NDArray[np.bool_]) -> str:
    """Comma-separated labels of the groups selected by ``mask``."""
    return ", ".join(str(g) for g, m in zip(groups, mask, strict=True) if m)


def _warn_undefined(counts: IntArray, groups: npt.NDArray[Any], *, rates: bool) -> None:
    """Log the conventions that apply to the observed table ``[G, C, C]``."""
    if groups.size == 1:
        logger.warning(SINGLE_GROUP, groups[0])
        return
    if rates:
        positives = counts[:, 1, :].sum(axis=-1)
        negatives = counts[:, 0, :].sum(axis=-1)
        if np.any(positives == 0):
            logger.warning(NO_POSITIVES, _names(groups, positives == 0))
        if np.any(negatives == 0):
            logger.warning(NO_NEGATIVES, _names(groups, negatives == 0))
    groups_per_class = (counts.sum(axis=-1) > 0).sum(axis=0)
    if not np.any(groups_per_class >= 2):
        logger.warning(NO_PAIRS)


def _check_rates(rates: bool) -> None:
    """Reject a non-bool ``rates`` flag."""
    if not isinstance(rates, bool):
        raise CecoFairError(BAD_RATES.format(value=rates))


def _intervals(
    counts: IntArray, *, rates: bool, n_boot: int, confidence: float, seed: int
) -> dict[str, tuple[FloatArray, FloatArray]]:
    """Every metric's interval from one count bootstrap of the table ``[G, C, C]``.

    A ``percentile`` spec (``accuracy``): the percentiles of its function on the resampled tables;
    the worst group and the spreads: simultaneous-band intervals.
    """
    groups, classes = counts.shape[:2]
    percentile = [name for name in metric_names(rates=rates) if METRIC_SPECS[name].interval == "percentile"]
    samples = bootstrap_statistic(
        counts,
        lambda batch: {
            **{name: GROUP_METRIC_FUNCTIONS[name].compute(batch) for name in percentile},
            **max_t_statistics(counts, batch, rates=rates),
        },
        n_boot,
        np.random.default_rng(seed),
        values_per_resample=groups * classes * max(groups, classes) * 2,
    )
    replicates = {name: samples.pop(name) for name in percentile}
    intervals = simultaneous_intervals(counts, critical_values(samples, confidence), rates=rates)
    for name, values in replicates.items():
        intervals[name] = percentile_interval(values, confidence)
    return intervals


def group_metrics(
    y_true: LabelsLike,
    y_pred: LabelsLike,
    sensitive: LabelsLike,
    *,
    rates: bool = True,
    n_boot: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Accuracy and group-fairness metrics, p-values, optionally with bootstrap intervals.

    All metrics come from one table of per-group confusion counts. The bootstrap draws
    ``n_boot`` count tables from the multinomial distribution that row resampling with
    replacement induces. ``accuracy`` gets the ``(1 ± confidence) / 2`` percentiles of its
    replicates; ``worst_group_accuracy`` and the spreads get the interval implied by
    simultaneous max-t bands on the per-group rates' differences (or on the cell accuracies),
    valid at zero disparity and at ties. Each spread's ``_p_value`` is a chi-square test of
    homogeneity of its rates across groups (1.0 when no two groups can be compared).
    Definitions and conventions: see the module docstring and
    :mod:`ceco_fair.metrics.intervals`.

    Args:
        y_true: True classes ``[N]``: integers, ``{0, 1}`` when ``rates`` is true (numpy array,
            torch tensor on any device, or sequence).
        y_pred: Predicted classes ``[N]``, same convention.
        sensitive: Sensitive attribute ``[N]``: any sortable labels, any number of groups.
        rates: If false, only ``accuracy``, ``worst_group_accuracy`` and ``eo_fscl`` are
            computed and the target may have any number of classes.
        n_boot: Number of bootstrap resamples; 0 (default) gives no intervals.
        confidence: Level of the two-sided intervals, in ``(0, 1)``.
        seed: Seed of the numpy random generator used by the bootstrap.

    Returns:
        Each name of :func:`metric_names` (``rates`` as given) mapped to its value; with
        ``n_boot > 0`` also ``<name>_ci_low`` and ``<name>_ci_high`` right after it; for each
        spread then ``<name>_p_value``.

    Raises:
        CecoFairError: On non-1-D, empty, non-integer or unequal-length inputs, a target
            outside ``{0, 1}`` while ``rates`` is true (the message lists the values found),
            or invalid ``rates`` / ``n_boot`` / ``confidence`` / ``seed``.

    Example:
        >>> group_metrics([1, 0, 1, 0], [1, 0, 0, 0], ["a", "a", "b", "b"])["eo_fscl"]
        0.5

    """
    _check_rates(rates)
    check_bootstrap_args(n_boot, confidence, seed)
    confusion = group_confusion(y_true, y_pred, sensitive, binary=rates)
    counts = confusion.counts
    _warn_undefined(counts, confusion.groups, rates=rates)
    point = metrics_from_counts(counts, rates=rates)
    p_values = homogeneity_p_values(counts, rates=rates)
    intervals = _intervals(counts, rates=rates, n_boot=n_boot, confidence=confidence, seed=seed) if n_boot > 0 else {}
    result: dict[str, float] = {}
    for name, value in point.items():
        result[name] = float(value)
        if name in intervals:
            low, high = intervals[name]
            result.update({ci_low_name(name): float(low), ci_high_name(name): float(high)})
        if name in p_values:
            result[p_value_name(name)] = float(p_values[name])
    return result


def _group_rates(counts: IntArray, *, rates: bool) -> dict[str, FloatArray]:
    """Per-group rates of :func:`group_table`: ``[..., G, C, C] -> {name: [..., G]}``."""
    if rates:
        return _binary_rates(counts)
    return {"accuracy": _group_accuracy(counts)}


def group_table(
    y_true: LabelsLike,
    y_pred: LabelsLike,
    sensitive: LabelsLike,
    *,
    rates: bool = True,
    n_boot: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Per-group counts and rates, optionally with bootstrap percentile intervals.

    Args:
        y_true: True classes ``[N]``: integers, ``{0, 1}`` when ``rates`` is true.
        y_pred: Predicted classes ``[N]``, same convention.
        sensitive: Sensitive attribute ``[N]``: any sortable labels.
        rates: If false, only ``group``, ``count`` and ``accuracy`` columns are returned and
            the target may have any number of classes.
        n_boot: Number of bootstrap resamples; 0 (default) gives no intervals.
        confidence: Level of the two-sided percentile intervals, in ``(0, 1)``.
        seed: Seed of the numpy random generator used by the bootstrap.

    Returns:
        DataFrame with one row per group (``G`` rows, sorted by group label) and columns
        ``group, count, accuracy, tpr, fpr, selection_rate, n_pos, n_neg, tp, fp, tn, fn``
        (rates as in fairlearn's ``MetricFrame.by_group``: a TPR or FPR with an empty
        denominator is 0), then with ``n_boot > 0`` ``<rate>_ci_low`` and ``<rate>_ci_high``
        for each of :data:`GROUP_RATE_NAMES`. A group absent from a resample is left out of
        that rate's interval.

    Raises:
        CecoFairError: As :func:`group_metrics`.

    """
    _check_rates(rates)
    check_bootstrap_args(n_boot, confidence, seed)
    confusion = group_confusion(y_true, y_pred, sensitive, binary=rates)
    counts = confusion.counts
    point = _group_rates(counts, rates=rates)
    table: dict[str, npt.NDArray[Any]] = {"group": confusion.groups, "count": _group_sizes(counts)}
    table.update(point)
    if rates:
        table.update(
            n_pos=counts[:, 1, :].sum(axis=-1),
            n_neg=counts[:, 0, :].sum(axis=-1),
            tp=counts[:, 1, 1],
            fp=counts[:, 0, 1],
            tn=counts[:, 0, 0],
            fn=counts[:, 1, 0],
        )
    if n_boot > 0:
        samples = bootstrap_statistic(
            counts,
            lambda batch: _group_rates(batch, rates=rates),
            n_boot,
            np.random.default_rng(seed),
        )
        for name in point:
            low, high = percentile_interval(samples[name], confidence)
            table[ci_low_name(name)] = low
            table[ci_high_name(name)] = high
    frame: pd.DataFrame = pd.DataFrame(table)  # annotated: the pandas stubs' constructor is Any
    return frame
