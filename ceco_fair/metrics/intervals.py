"""Valid intervals and homogeneity p-values for between-group spreads and the worst group.

Why not percentiles. A spread such as ``max_g p_g − min_g p_g`` is a non-smooth function of
the per-group rates: where groups tie (in particular at zero disparity) the plug-in estimate
is biased upward (it is ≥ 0 and almost surely > 0 while the truth is 0), and every bootstrap
replicate is ≥ 0 too, so a percentile interval never reaches the truth 0. The minimum over
groups (``worst_group_accuracy``) is biased downward at ties for the same reason. The
bootstrap is inconsistent for such extrema at ties (Andrews 2000, *Econometrica* 68(2)), and
fairlearn's intervals inherit it (fairlearn issues 1094 and 1443).

Construction: simultaneous confidence bands, then the interval they imply. A max-t bootstrap
(Romano & Wolf 2005, *JASA* 100(469), "Exact and approximate stepdown methods for multiple
hypothesis testing"; the sup-t bands of Montiel Olea & Plagborg-Møller 2019) gives one
critical value ``c`` such that, with probability ``confidence``, every estimated quantity
``θ̂_k`` lies within ``c · s_k`` of its truth at once: ``c`` is the ``confidence`` quantile of
``max_k |θ*_k − θ̂_k| / s_k`` over resampled count tables (the exact multinomial count
bootstrap of :mod:`ceco_fair.metrics.bootstrap`). Any function of the ``θ_k`` then lies in the
range the bands allow, with at least that probability, whatever the truth — at ties, at
zero and away from them, for any number of groups. ``c`` is floored at the normal quantile
``Φ⁻¹((1 + confidence) / 2)`` of a single member, which only acts where the resamples do not
vary (every rate at 0 or 1).

- Spreads (``demographic_parity_difference``, ``equal_opportunity_difference``,
  ``equalized_odds_difference``): ``θ_k`` are the pairwise differences ``p_i − p_j`` of the
  group rates (Tukey's all-pairs family), and a spread is ``max_{i<j} |p_i − p_j|``, so its
  interval is ``[max(0, max_k(|d̂_k| − c s_k)), max_k(|d̂_k| + c s_k)]`` (capped at 1). Bands
  on the differences rather than on each rate: for two groups the per-rate bands give a width
  ``2c(s_1 + s_2)`` with the two-rate ``c`` (2.24), the pairwise band ``2c·√(s_1² + s_2²)``
  with ``c`` = 1.96, 1.6 times narrower; with five groups still 1.3 times narrower. The
  lower end is 0 exactly when every pairwise band holds 0, and at zero disparity that is the
  simultaneous event itself, so the coverage there is the nominal one. Equalized odds takes
  the TPR and FPR differences in one family (one ``c``) and the larger of the two intervals'
  ends.
- ``eo_fscl`` (mean over classes of the mean over group pairs of ``|a_ci − a_cj|``, ``a`` the
  per-(class, group) accuracy): the same pairwise family over every class; each ``|d_k|`` lies
  in ``[max(0, |d̂_k| − c s_k), min(1, |d̂_k| + c s_k)]`` and, the means being monotone,
  averaging the ends (interval arithmetic) bounds ``eo_fscl``.
- ``worst_group_accuracy`` (minimum ``θ`` over the (class, group) cells of the cell
  accuracy ``a_k``): the interval is ``[min_k L_k, min_k U_k]`` with one-sided bands, each
  side at ``(1 − confidence) / 2``. ``min_k U_k < θ`` needs some cell with ``U_k < a_k``, so
  ``U_k = â_k + c s_k`` takes the simultaneous one-sided ``c`` (quantile of
  ``max_k (â_k − â*_k) / s_k``); ``min_k L_k > θ`` needs ``L_k > a_k`` at the minimising cell
  alone, so ``L_k = â_k − q_k s_k`` takes each cell's marginal quantile ``q_k`` of
  ``(â*_k − â_k) / s_k``, narrower than a simultaneous one. At a tie the lower end fails only
  if every tied cell misses at once, so the coverage there is above nominal.

Scale ``s``: the binomial standard error of each rate from add-one smoothed counts,
``p̃ = (x + 1) / (n + 2)``, ``s = √(p̃(1 − p̃) / n)`` (Agresti & Coull 1998, *Am. Stat.* 52(2)),
and ``√(s_i² + s_j²)`` for a difference. The smoothing is a variance floor: a rate at 0 or 1
in a small group keeps a band of nonzero width although its bootstrap replicates do not vary.
The scale is computed once from the observed table (not per resample), so it only weights the
members of the family; the bootstrap calibrates ``c``. A rate whose denominator is empty in
a resample (a group that lost all its positives) is left out of that resample's maximum; a
rate that is empty in the observed table keeps the fairlearn convention (TPR or FPR 0) as a
known constant, or is left out (an empty cell of ``eo_fscl`` or ``worst_group_accuracy``),
as the point estimate does.

Simultaneous bands are conservative away from ties: when one pair dominates a spread, only
its band matters, and it is wider than a marginal one. The coverage and widths measured in
``benchmarks/interval_coverage.py`` are in the README.

P-values for "no difference between groups": Pearson's chi-square test of homogeneity on the
counts, per rate: the ``2 × K`` table (hits, misses) of the groups whose denominator is not
empty. Demographic parity: selections per group; equal opportunity: true positives among
positives; equalized odds: the TPR and FPR statistics summed with their degrees of freedom
summed (the positive and negative rows are disjoint samples, so the two statistics are
asymptotically independent); ``eo_fscl``: per-class accuracy, summed over classes in the same
way (for a binary target this equals the equalized-odds test). A rate family with fewer than
two non-empty groups, or whose pooled rate is 0 or 1 (every group's rate then equals it),
contributes no statistic and no degree of freedom; with no degree of freedom left the p-value
is 1.0 (the observed rates do not differ at all).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats  # type: ignore[import-untyped]

from ceco_fair.metrics.bootstrap import FloatArray
from ceco_fair.metrics.confusion import IntArray
from ceco_fair.metrics.specs import BAND_INTERVALS, METRIC_SPECS, band_metrics


def spread_names() -> tuple[str, ...]:
    """Between-group spreads that get a simultaneous-band interval and a ``_p_value`` (from their specs, read now)."""
    return tuple(spec.name for spec in METRIC_SPECS.values() if spec.interval in BAND_INTERVALS)


WORST = next(spec.name for spec in METRIC_SPECS.values() if spec.interval == "worst")
"""The metric whose interval takes one-sided bands on the cells (the worst group's accuracy)."""
WORST_LOW = WORST + "_low"
"""Key of the per-cell one-sided statistics that set the worst group's lower end."""
WORST_HIGH = WORST + "_high"
"""Key of the one-sided max-t statistic that sets the worst group's upper end."""


@dataclass(frozen=True)
class RateBlock:
    """Rates ``hits / totals`` of ``K`` units compared with each other (a family's block).

    Attributes:
        hits: Successes ``[..., K]``.
        totals: Trials ``[..., K]``.
        empty: Rate of a unit without trials: 0.0 (fairlearn's TPR/FPR convention, a known
            constant that takes part in the comparison) or NaN (left out).

    """

    hits: IntArray
    totals: IntArray
    empty: float


def interval_names(*, rates: bool) -> tuple[str, ...]:
    """Metrics whose interval comes from simultaneous bands (the rest keep percentiles).

    Args:
        rates: Whether the binary rate-based spreads are computed.

    Returns:
        The worst group and the spreads of :func:`spread_names` that apply, in spec order.

    """
    return band_metrics(rates=rates)


def _rate_block(counts: IntArray, rate: str) -> RateBlock:
    """One per-group rate of a binary table ``[..., G, 2, 2]`` as a block over the groups."""
    per_class = counts.sum(axis=-1)  # [..., G, 2]
    if rate == "tpr":
        return RateBlock(counts[..., 1, 1], per_class[..., 1], 0.0)
    if rate == "fpr":
        return RateBlock(counts[..., 0, 1], per_class[..., 0], 0.0)
    if rate == "selection_rate":
        return RateBlock(counts[..., :, 1].sum(axis=-1), per_class.sum(axis=-1), np.nan)
    raise ValueError(f"no rate block for {rate!r}")


def metric_blocks(counts: IntArray, name: str) -> list[RateBlock]:
    """The rate blocks behind one metric.

    Args:
        counts: Count tables ``[..., G, C, C]`` (``C == 2`` for the rate-based spreads).
        name: One of :func:`interval_names`.

    Returns:
        The blocks: units are groups (spreads) or (group, class) cells (worst group).

    """
    spec = METRIC_SPECS[name]
    correct = np.diagonal(counts, axis1=-2, axis2=-1)  # [..., G, C]
    per_class = counts.sum(axis=-1)  # [..., G, C]
    if spec.interval == "worst":
        flat = (*correct.shape[:-2], -1)
        return [RateBlock(correct.reshape(flat), per_class.reshape(flat), np.nan)]
    if spec.interval == "mean_gap":
        return [RateBlock(correct[..., c], per_class[..., c], np.nan) for c in range(correct.shape[-1])]
    return [_rate_block(counts, rate) for rate in spec.rates]


def block_rates(block: RateBlock) -> FloatArray:
    """Observed rates ``[..., K]``: ``hits / totals``, ``block.empty`` where there are no trials."""
    out = np.full(block.hits.shape, block.empty, dtype=np.float64)
    np.divide(block.hits, block.totals, out=out, where=block.totals > 0)
    return out


def block_scales(block: RateBlock) -> FloatArray:
    """Binomial standard errors ``[..., K]`` from add-one smoothed rates; 0 without trials."""
    smoothed = (block.hits + 1.0) / (block.totals + 2.0)
    out = np.zeros(block.hits.shape, dtype=np.float64)
    np.divide(smoothed * (1.0 - smoothed), block.totals, out=out, where=block.totals > 0)
    return np.sqrt(out)


def _resampled_rates(observed: RateBlock, resampled: RateBlock) -> FloatArray:
    """Resampled rates ``[b, ..., K]``, NaN where a resample empties a unit.

    Units empty in the observed table keep their constant observed rate.
    """
    out = np.full(resampled.hits.shape, np.nan, dtype=np.float64)
    np.divide(resampled.hits, resampled.totals, out=out, where=resampled.totals > 0)
    return np.where(observed.totals == 0, block_rates(observed), out)


def pair_differences(values: FloatArray) -> FloatArray:
    """Differences ``v_i − v_j`` over the pairs ``i < j`` of the last axis: ``[..., K] -> [..., P]``."""
    first, second = np.triu_indices(values.shape[-1], k=1)
    return np.asarray(values[..., first] - values[..., second])


def pair_scales(scales: FloatArray) -> FloatArray:
    """Scales of the pairwise differences: ``√(s_i² + s_j²)``, ``[..., K] -> [..., P]``."""
    first, second = np.triu_indices(scales.shape[-1], k=1)
    return np.asarray(np.hypot(scales[..., first], scales[..., second]))


def _estimates(block: RateBlock, *, paired: bool) -> tuple[FloatArray, FloatArray]:
    """Estimates ``θ̂`` and scales ``s`` of one block's family members, ``[..., K or P]``."""
    rates, scales = block_rates(block), block_scales(block)
    if paired:
        return pair_differences(rates), pair_scales(scales)
    return rates, scales


def max_valid(values: FloatArray) -> FloatArray:
    """Max over the last axis ignoring NaN; NaN where every entry is NaN (or there is none)."""
    valid = ~np.isnan(values)
    out = np.max(values, axis=-1, initial=-np.inf, where=valid)
    return np.where(valid.any(axis=-1), out, np.nan)


def max_t_statistics(counts: IntArray, resampled: IntArray, *, rates: bool) -> dict[str, FloatArray]:
    """Per-resample maximum standardised deviation of each metric's family.

    Args:
        counts: Observed count tables ``[..., G, C, C]``.
        resampled: Resampled tables ``[b, ..., G, C, C]`` (bootstrap draws of ``counts``).
        rates: Whether the binary rate-based spreads are included.

    Returns:
        For each spread of :func:`interval_names`, ``max_k |θ*_k − θ̂_k| / s_k`` of shape
        ``[b, ...]`` (NaN where no member is defined in a resample); for the worst group
        :data:`WORST_LOW` ``[b, ..., K]`` and :data:`WORST_HIGH` ``[b, ...]``
        (:func:`_worst_statistics`).

    """
    result: dict[str, FloatArray] = {}
    for name in interval_names(rates=rates):
        if name == WORST:
            result.update(_worst_statistics(counts, resampled))
            continue
        parts = []
        for observed, drawn in zip(metric_blocks(counts, name), metric_blocks(resampled, name), strict=True):
            estimate, scale = _estimates(observed, paired=True)
            deviation = np.abs(pair_differences(_resampled_rates(observed, drawn)) - estimate)
            parts.append(np.divide(deviation, scale, out=np.zeros_like(deviation), where=scale > 0))
            parts[-1][np.isnan(deviation)] = np.nan
        result[name] = max_valid(np.concatenate(parts, axis=-1))
    return result


def _worst_statistics(counts: IntArray, resampled: IntArray) -> dict[str, FloatArray]:
    """The worst group's one-sided statistics (:func:`max_t_statistics`).

    ``t*_k = (â*_k − â_k) / s_k`` per cell ``[b, ..., K]`` (NaN for empty cells), whose
    quantiles set marginal lower bands, and ``max_k(−t*_k)`` ``[b, ...]``, whose quantile sets
    the simultaneous upper band.
    """
    (observed,), (drawn,) = metric_blocks(counts, WORST), metric_blocks(resampled, WORST)
    estimate, scale = _estimates(observed, paired=False)
    deviation = _resampled_rates(observed, drawn) - estimate
    standardised = np.divide(deviation, scale, out=np.full(deviation.shape, np.nan), where=scale > 0)
    return {WORST_LOW: standardised, WORST_HIGH: max_valid(-standardised)}


def critical_value(statistics: FloatArray, level: float, confidence: float) -> FloatArray:
    """The ``level`` quantile over axis 0 of max-t statistics ``[B, ...]``, floored at ``Φ⁻¹((1 + confidence) / 2)``.

    NaN resamples are ignored; NaN where all are.
    """
    floor = float(stats.norm.ppf((1.0 + confidence) / 2.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        quantile = np.asarray(np.nanquantile(statistics, level, axis=0), dtype=np.float64)
    return np.maximum(quantile, floor)


def critical_values(statistics: Mapping[str, FloatArray], confidence: float) -> dict[str, FloatArray]:
    """Critical values ``c``: the ``confidence`` quantile of each max-t sample over axis 0.

    The worst group's one-sided statistics take the ``(1 + confidence) / 2`` quantile.

    ``c`` is at least ``z = Φ⁻¹((1 + confidence) / 2)``, the critical value of a single
    member; the floor only acts where the resamples barely vary (every rate at 0 or 1).

    Args:
        statistics: Output of :func:`max_t_statistics` gathered over ``B`` resamples, ``[B, ...]``.
        confidence: Level in ``(0, 1)``.

    Returns:
        Name mapped to ``c`` of shape ``[...]``, NaN resamples ignored (NaN where all are).

    """
    one_sided = (1.0 + confidence) / 2.0
    return {
        name: critical_value(values, one_sided if name.startswith(WORST) else confidence, confidence)
        for name, values in statistics.items()
    }


def spread_bounds(gaps: FloatArray, scales: FloatArray, c: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Interval of ``max_k |d_k|`` from bands ``|d̂_k| ± c s_k`` on every member: ``[..., K] -> [...]``.

    Args:
        gaps: Observed ``|d̂_k|`` ``[..., K]`` (NaN members are left out).
        scales: Scales ``s_k`` ``[..., K]``.
        c: Critical values broadcasting against ``[..., 1]``.

    Returns:
        ``(max_k max(0, |d̂_k| − c s_k), max_k min(1, |d̂_k| + c s_k))``, each ``[...]``.

    """
    return max_valid(np.clip(gaps - c * scales, 0.0, 1.0)), max_valid(np.clip(gaps + c * scales, 0.0, 1.0))


def worst_bounds(
    estimate: FloatArray, scale: FloatArray, c_low: FloatArray, c_high: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Interval of ``min_k θ_k`` from one-sided bands: ``[min_k(θ̂_k − q_k s_k), min_k(θ̂_k + c s_k)]``.

    Args:
        estimate: ``θ̂_k`` ``[..., K]`` (NaN members are left out).
        scale: ``s_k`` ``[..., K]``.
        c_low: Marginal one-sided critical values ``q_k`` ``[..., K]``.
        c_high: Simultaneous one-sided critical value broadcasting against ``[..., 1]``.

    Returns:
        ``(low, high)`` within ``[0, 1]``, each ``[...]``.

    """
    low = np.fmin.reduce(np.clip(estimate - c_low * scale, 0.0, 1.0), axis=-1)
    high = np.fmin.reduce(np.clip(estimate + c_high * scale, 0.0, 1.0), axis=-1)
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


def _mean_over_pairs_and_classes(values: FloatArray) -> FloatArray:
    """Mean over valid pairs, then over classes with a valid pair; 0 if none: ``[..., C, P] -> [...]``."""
    valid = ~np.isnan(values)
    pair_count = valid.sum(axis=-1)
    class_mean = np.divide(
        np.where(valid, values, 0.0).sum(axis=-1),
        pair_count,
        out=np.zeros(pair_count.shape),
        where=pair_count > 0,
    )
    class_count = (pair_count > 0).sum(axis=-1)
    total = (class_mean * (pair_count > 0)).sum(axis=-1)
    return np.asarray(np.divide(total, class_count, out=np.zeros(total.shape), where=class_count > 0))


def mean_pair_gap(cell_accuracy: FloatArray) -> FloatArray:
    """FSCL's equalized odds from cell accuracies ``[..., G, C] -> [...]``.

    For each class, the mean of ``|a_i − a_j|`` over the group pairs whose cells both hold
    samples (NaN marks an empty cell), then the mean over the classes with such a pair; 0 if
    no class has one.
    """
    gaps = np.abs(pair_differences(np.swapaxes(cell_accuracy, -1, -2)))  # [..., C, P]
    return _mean_over_pairs_and_classes(gaps)


def simultaneous_intervals(
    counts: IntArray, critical: Mapping[str, FloatArray], *, rates: bool
) -> dict[str, tuple[FloatArray, FloatArray]]:
    """Intervals implied by the simultaneous bands ``θ̂_k ± c s_k`` (module docstring).

    Args:
        counts: Observed count tables ``[..., G, C, C]``.
        critical: Output of :func:`critical_values`: ``c`` ``[...]`` per spread, per-cell
            ``[..., K]`` and ``[...]`` values for the worst group's lower and upper ends.
        rates: Whether the binary rate-based spreads are included.

    Returns:
        For each name of :func:`interval_names`, ``(low, high)`` each of shape ``[...]``,
        within ``[0, 1]``; ``(0, 0)`` for a spread without any pair of groups.

    """
    result: dict[str, tuple[FloatArray, FloatArray]] = {}
    for name in interval_names(rates=rates):
        c = np.asarray(critical[WORST_HIGH if name == WORST else name], dtype=np.float64)[..., np.newaxis]
        blocks = metric_blocks(counts, name)
        members = [_estimates(block, paired=name != WORST) for block in blocks]
        if name == WORST:
            estimate, scale = members[0]
            low, high = worst_bounds(estimate, scale, np.asarray(critical[WORST_LOW], dtype=np.float64), c)
        elif METRIC_SPECS[name].interval == "mean_gap":
            gaps = np.stack([np.abs(e) for e, _ in members], axis=-2)  # [..., C, P]
            scales = np.stack([s for _, s in members], axis=-2)
            c2 = c[..., np.newaxis]
            low = _mean_over_pairs_and_classes(np.clip(gaps - c2 * scales, 0.0, 1.0))
            high = _mean_over_pairs_and_classes(np.clip(gaps + c2 * scales, 0.0, 1.0))
        else:
            gaps = np.concatenate([np.abs(e) for e, _ in members], axis=-1)
            scales = np.concatenate([s for _, s in members], axis=-1)
            low, high = spread_bounds(gaps, scales, c)
        # no pair of groups: the spread is 0 by definition; otherwise an undefined c stays NaN
        defined = np.concatenate([~np.isnan(e) for e, _ in members], axis=-1).any(axis=-1)
        unknown = np.isnan(c[..., 0]) & defined
        result[name] = (
            np.where(unknown, np.nan, np.where(defined, low, 0.0)),
            np.where(unknown, np.nan, np.where(defined, high, 0.0)),
        )
    return result


def chi_square_homogeneity(block: RateBlock) -> tuple[FloatArray, IntArray]:
    """Pearson's chi-square statistic of equal rates across the non-empty units of a block.

    Args:
        block: Hits and totals ``[..., K]``.

    Returns:
        ``(statistic, df)`` of shape ``[...]``: ``Σ (x − n p̄)² / (n p̄ (1 − p̄))`` over the units
        with ``n > 0`` (``p̄`` the pooled rate) and ``df`` = their number − 1; both 0 where
        fewer than two units have trials or ``p̄`` is 0 or 1.

    """
    present = block.totals > 0
    hits = np.where(present, block.hits, 0).astype(np.float64)
    totals = np.where(present, block.totals, 0).astype(np.float64)
    pooled_hits, pooled_totals = hits.sum(axis=-1), totals.sum(axis=-1)
    pooled = np.divide(pooled_hits, pooled_totals, out=np.zeros(pooled_hits.shape), where=pooled_totals > 0)
    variance = pooled * (1.0 - pooled)
    units = present.sum(axis=-1)
    informative = (units >= 2) & (variance > 0)
    safe_variance = np.where(informative, variance, 1.0)[..., np.newaxis]
    terms = (hits - totals * pooled[..., np.newaxis]) ** 2
    per_unit = np.divide(terms, totals * safe_variance, out=np.zeros(terms.shape), where=present)
    statistic = np.where(informative, per_unit.sum(axis=-1), 0.0)
    df = np.where(informative, units - 1, 0).astype(np.int64)
    return statistic, df


def homogeneity_p_values(counts: IntArray, *, rates: bool) -> dict[str, FloatArray]:
    """P-values of "no difference between groups" for each spread (module docstring).

    Args:
        counts: Count tables ``[..., G, C, C]``.
        rates: Whether the binary rate-based spreads are included.

    Returns:
        Each spread of :func:`interval_names` mapped to its p-value ``[...]``; 1.0 where the
        test has no degree of freedom.

    """
    result: dict[str, FloatArray] = {}
    for name in interval_names(rates=rates):
        if name == WORST:
            continue
        tests = [chi_square_homogeneity(block) for block in metric_blocks(counts, name)]
        statistic = np.sum([s for s, _ in tests], axis=0)
        df = np.sum([d for _, d in tests], axis=0)
        p_value = np.ones(np.shape(statistic))
        np.copyto(p_value, stats.chi2.sf(statistic, np.maximum(df, 1)), where=df > 0)
        result[name] = p_value
    return result
