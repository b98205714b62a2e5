"""Intervals and equality p-values of the score metrics, and :func:`score_metrics`, which reports them all.

Standard errors per group, from the data alone:

- AUROC: DeLong's variance (DeLong, DeLong & Clarke-Pearson 1988, *Biometrics* 44(3)) from the
  midrank structural components (:func:`~ceco_fair.metrics.scores.rank_auc`):
  ``Var = S₁₀ / n₊ + S₀₁ / n₋`` with ``S`` the sample variances (``ddof=1``) of the components over
  the positives and the negatives. For ``C > 2`` classes (the one-vs-rest macro mean over the ``C'``
  classes defined), rows are strata by true class and a row ``i`` of class ``k`` has the component
  ``φ_i = (1/C') Σ_c [k = c] v₁₀,c(i) / n_c + [k ≠ c] v₀₁,c(i) / m_c`` (``n_c`` rows of class ``c``,
  ``m_c`` others); ``Var = Σ_k n_k Var_k(φ)``, which is DeLong's for a single class. A stratum of
  one row adds no variance of its own (``ddof=1`` is undefined there).
- ECE: the delta method. With ``σ_b`` the sign of bin ``b``'s summed ``confidence − correct``,
  ``ECE = (1/n) Σ_i σ_{b(i)} (confidence_i − correct_i)`` locally, so its standard error is the
  standard deviation of those terms over ``√n``.
- Mean scores: the standard deviation over ``√n`` (of the group, or of the (class, group) cell).

Each scale is floored at ``1 / n_eff`` (``n_eff``: the smaller class for AUROC, else the rows), the
width add-one smoothing gives a rate at 0 or 1 in :mod:`ceco_fair.metrics.intervals`; it only acts
where the data leave no spread (all scores equal, AUROC 0 or 1).

Intervals, at level ``confidence``:

- ``auroc``, ``ece`` and the per-group values: bootstrap percentiles (row bootstrap stratified by
  group, :mod:`ceco_fair.metrics.score_bootstrap`); ``auroc`` also DeLong's ``AUROC ± z·SE``
  (clipped to ``[0, 1]``), under ``auroc_delong_ci_low`` / ``_ci_high``.
- ``worst_group_auroc``: one-sided bands on the group AUROCs, as ``worst_group_accuracy``;
- ``auroc_gap``, ``ece_gap``, ``score_gap``: simultaneous max-t bands on the signed pairwise
  differences of the group values, as the count spreads (:mod:`ceco_fair.metrics.intervals`);
  ``score_gap_eo`` takes the pairs within both classes in one family, as equalized odds.
- ``abcc``: a simultaneous band on every group's score CDF at ``grid_size`` pooled quantiles (max-t
  over groups and points, scale ``√(F̃(1 − F̃)/n_g)`` with add-one smoothing). CDFs are monotone,
  so on a grid cell ``[t_k, t_{k+1})`` each ``F_g`` lies in ``[L_g(t_k), U_g(t_{k+1})]``, and the
  area between two CDFs lies between the smallest and the largest area those boxes allow. Valid at
  zero disparity (the lower end is 0 when the bands overlap everywhere); conservative otherwise.

P-values of "no difference between groups": a Wald chi-square test of homogeneity,
``Σ_g (θ̂_g − θ̄)² / s_g²`` with ``θ̄`` the ``1/s²``-weighted mean and ``G − 1`` degrees of freedom
(summed over the classes for ``score_gap_eo``); for ``abcc`` the two-sample Kolmogorov-Smirnov
test of the pair with the smallest p-value, Bonferroni-corrected over the pairs. They need no
bootstrap. A test without degrees of freedom gives 1.0.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats  # type: ignore[import-untyped]

from ceco_fair.errors import CecoFairError
from ceco_fair.metrics.bootstrap import FloatArray, check_bootstrap_args, percentile_interval
from ceco_fair.metrics.confusion import IntArray, LabelsLike
from ceco_fair.metrics.intervals import (
    critical_value,
    max_valid,
    pair_differences,
    pair_scales,
    spread_bounds,
    worst_bounds,
)
from ceco_fair.metrics.score_bootstrap import score_replicates
from ceco_fair.metrics.scores import (
    EMPTY_CELL,
    SINGLE_GROUP,
    RankAuc,
    ScoreData,
    ScoresLike,
    auroc_reasons,
    bin_gaps,
    cell_means,
    confidence_and_correct,
    confidence_bins,
    ece_from_bins,
    macro_auc,
    pairwise_w1,
    rank_auc,
    ratio,
    score_data,
    spread,
    worst,
)
from ceco_fair.metrics.specs import ci_high_name, ci_low_name, p_value_name

GRID_SIZE = 1024
"""Default number of pooled score quantiles at which the ABCC band holds."""
BAD_GRID = "grid_size must be an integer >= 2, got {value!r}"
DELONG = "auroc_delong"
"""Key stem of the DeLong interval of ``auroc`` (``auroc_delong_ci_low`` / ``_ci_high``)."""


def _cell_variance(values: FloatArray, cell: IntArray, n_cells: int) -> tuple[FloatArray, IntArray]:
    """Sample variance (``ddof=1``) per cell ``[K]``, 0 for cells of fewer than two rows, and the counts."""
    means, counts = cell_means(values, cell, n_cells)
    squares = np.bincount(cell, weights=(values - means[cell]) ** 2, minlength=n_cells)
    variance = np.divide(squares, counts - 1, out=np.zeros(n_cells), where=counts > 1)
    return variance, counts


def delong_variance(data: ScoreData, ranked: RankAuc, segment: IntArray, n_segments: int) -> FloatArray:
    """DeLong's variance of the (macro) AUROC of each segment (module docstring).

    Args:
        data: Validated inputs.
        ranked: :func:`~ceco_fair.metrics.scores.rank_auc` of the same segments.
        segment: Segment codes ``[n]``.
        n_segments: ``S``.

    Returns:
        Variance ``[S]``; NaN where the AUROC is undefined.

    """
    defined = ~np.isnan(ranked.auc)  # [S, C']
    row_defined = defined[segment]
    with np.errstate(divide="ignore", invalid="ignore"):
        own = ranked.v10 / ranked.positives[segment]
        other = ranked.v01 / ranked.negatives[segment]
    parts = np.where(row_defined & ~np.isnan(own), own, 0.0) + np.where(row_defined & ~np.isnan(other), other, 0.0)
    count = defined.sum(axis=1)
    phi = parts.sum(axis=1) / np.maximum(count[segment], 1)
    cell = segment * data.n_classes + data.targets
    variance, sizes = _cell_variance(phi, cell, n_segments * data.n_classes)
    total = (sizes * variance).reshape(n_segments, data.n_classes).sum(axis=1)
    return np.where(count > 0, total, np.nan)


def ece_standard_error(data: ScoreData) -> FloatArray:
    """Delta-method standard error of each group's ECE ``[G]`` (module docstring)."""
    gaps, _ = bin_gaps(data, data.group, data.n_groups)
    confidence, correct = confidence_and_correct(data)
    terms = np.sign(gaps[data.group, confidence_bins(confidence)]) * (confidence - correct)
    variance, sizes = _cell_variance(terms, data.group, data.n_groups)
    return np.sqrt(variance / sizes)


def mean_standard_error(values: FloatArray, cell: IntArray, n_cells: int) -> tuple[FloatArray, FloatArray, IntArray]:
    """Mean ``[K]``, its standard error ``[K]`` and the counts per cell (NaN mean for an empty cell)."""
    means, counts = cell_means(values, cell, n_cells)
    variance, _ = _cell_variance(values, cell, n_cells)
    return means, np.sqrt(np.divide(variance, counts, out=np.zeros(n_cells), where=counts > 0)), counts


def floored(scale: FloatArray, n_eff: IntArray) -> FloatArray:
    """``max(scale, 1 / n_eff)`` (the module's scale floor); NaN where ``n_eff`` is 0."""
    return np.asarray(np.fmax(scale, ratio(1.0, n_eff)), dtype=np.float64)


# --- intervals from the bootstrap -------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """Per-group estimates compared with each other, with their scales and bootstrap replicates.

    Attributes:
        estimate: ``θ̂_g`` ``[G]`` (NaN: undefined, left out).
        scale: ``s_g`` ``[G]``.
        replicates: ``θ*_g`` ``[B, G]`` (NaN: undefined in that replicate).

    """

    estimate: FloatArray
    scale: FloatArray
    replicates: FloatArray


def spread_band(blocks: list[Block], confidence: float) -> tuple[float, float]:
    """Interval of ``max`` over the blocks of the spread of ``θ``, from max-t bands on pairwise differences.

    Returns:
        ``(low, high)``; ``(0, 0)`` without any defined pair, NaN where no replicate is defined.

    """
    deviations, gaps, scales = [], [], []
    for block in blocks:
        estimate, scale = pair_differences(block.estimate), pair_scales(block.scale)
        deviation = np.abs(pair_differences(block.replicates) - estimate)
        deviations.append(deviation / scale)
        gaps.append(np.abs(estimate))
        scales.append(scale)
    gap, scale = np.concatenate(gaps), np.concatenate(scales)
    if np.all(np.isnan(gap)):
        return 0.0, 0.0
    c = critical_value(max_valid(np.concatenate(deviations, axis=1)), confidence, confidence)
    low, high = spread_bounds(gap, scale, c)
    return float(low), float(high)


def worst_band(block: Block, confidence: float) -> tuple[float, float]:
    """Interval of ``min_g θ_g`` from one-sided bands, as ``worst_group_accuracy``'s (NaN if none defined)."""
    if np.all(np.isnan(block.estimate)):
        return float("nan"), float("nan")
    one_sided = (1.0 + confidence) / 2.0
    standardised = (block.replicates - block.estimate) / block.scale
    c_low = critical_value(standardised, one_sided, confidence)
    c_high = critical_value(max_valid(-standardised), one_sided, confidence)
    low, high = worst_bounds(block.estimate, block.scale, c_low, c_high)
    return float(low), float(high)


def wald_p_value(blocks: list[tuple[FloatArray, FloatArray]]) -> float:
    """Wald chi-square p-value of equal ``θ`` across the groups of each ``(estimate, scale)`` block, tests summed."""
    statistic, df = 0.0, 0
    for estimate, scale in blocks:
        used = ~np.isnan(estimate) & (scale > 0)
        if used.sum() < 2:
            continue
        weight = 1.0 / scale[used] ** 2
        centre = np.sum(weight * estimate[used]) / np.sum(weight)
        statistic += float(np.sum(weight * (estimate[used] - centre) ** 2))
        df += int(used.sum()) - 1
    return float(stats.chi2.sf(statistic, df)) if df > 0 else 1.0


# --- ABCC -------------------------------------------------------------------------------------


def abcc_grid(positive: FloatArray, size: int) -> FloatArray:
    """``0``, ``1`` and up to ``size`` pooled score quantiles (data values), sorted and distinct ``[K]``."""
    levels = np.linspace(0.0, 1.0, size)
    quantiles = np.quantile(positive, levels, method="inverted_cdf")
    return np.unique(np.concatenate([[0.0, 1.0], quantiles]))


def group_cdfs(positive: FloatArray, group: IntArray, n_groups: int, grid: FloatArray) -> tuple[FloatArray, IntArray]:
    """Each group's empirical CDF at the grid ``[G, K]`` and the group sizes ``[G]``."""
    cdf = np.empty((n_groups, grid.size))
    sizes = np.bincount(group, minlength=n_groups)
    for g in range(n_groups):
        values = np.sort(positive[group == g])
        cdf[g] = np.searchsorted(values, grid, side="right") / values.size
    return cdf, sizes


def abcc_band(
    cdf: FloatArray, sizes: IntArray, replicates: FloatArray, grid: FloatArray, confidence: float
) -> tuple[float, float]:
    """Interval of ABCC from simultaneous bands on the groups' CDFs (module docstring).

    Args:
        cdf: Observed CDFs at the grid ``[G, K]`` (the grid ends at 1).
        sizes: Group sizes ``[G]``.
        replicates: Bootstrap CDFs ``[B, G, K]``.
        grid: Grid points ``[K]``.
        confidence: Level.

    Returns:
        ``(low, high)``; ``(0, 0)`` for a single group.

    """
    n_groups = cdf.shape[0]
    if n_groups < 2:
        return 0.0, 0.0
    counts = cdf * sizes[:, np.newaxis]
    smoothed = (counts + 1.0) / (sizes[:, np.newaxis] + 2.0)
    scale = np.sqrt(smoothed * (1.0 - smoothed) / sizes[:, np.newaxis])
    inner = grid < 1.0  # F(1) = 1 is known
    deviation = np.abs(replicates[:, :, inner] - cdf[:, inner]) / scale[:, inner]
    c = critical_value(max_valid(deviation.reshape(deviation.shape[0], -1)), confidence, confidence)
    low = np.where(inner, np.clip(cdf - c * scale, 0.0, 1.0), 1.0)
    high = np.where(inner, np.clip(cdf + c * scale, 0.0, 1.0), 1.0)
    low = np.maximum.accumulate(low, axis=1)  # F is non-decreasing
    high = np.minimum.accumulate(high[:, ::-1], axis=1)[:, ::-1]
    cell_low, cell_high = low[:, :-1], high[:, 1:]  # F on [t_k, t_{k+1}) lies in [L(t_k), U(t_{k+1})]
    widths = np.diff(grid)
    first, second = np.triu_indices(n_groups, k=1)
    apart = np.maximum(cell_low[first] - cell_high[second], cell_low[second] - cell_high[first])
    reach = np.maximum(cell_high[first] - cell_low[second], cell_high[second] - cell_low[first])
    return float((np.maximum(apart, 0.0) @ widths).max()), float((np.maximum(reach, 0.0) @ widths).max())


def ks_p_value(positive: FloatArray, group: IntArray, n_groups: int) -> float:
    """Smallest pairwise two-sample Kolmogorov-Smirnov p-value times the number of pairs, capped at 1."""
    samples = [positive[group == g] for g in range(n_groups)]
    pairs = list(itertools.combinations(range(n_groups), 2))
    if not pairs:
        return 1.0
    smallest = min(float(stats.ks_2samp(samples[a], samples[b], method="asymp").pvalue) for a, b in pairs)
    return min(1.0, len(pairs) * smallest)


# --- everything at once -----------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreResult:
    """What :func:`score_metrics` reports.

    Attributes:
        values: Each metric, then (with a bootstrap) ``<name>_ci_low`` / ``<name>_ci_high``, then
            ``<name>_p_value`` for the gaps; ``auroc_delong_ci_low`` / ``_ci_high`` always.
        by_group: One row per group: ``group, count, auroc, auroc_se, ece, ece_se`` and for a binary
            target ``mean_score, mean_score_se, mean_score_y0, mean_score_y1``; with a bootstrap the
            percentile ``_ci_low`` / ``_ci_high`` of ``auroc``, ``ece`` and ``mean_score``.
        reasons: Why values are NaN or conventions applied (one line each, no repeats).
        replicates: With ``keep_replicates``, the bootstrap replicates
            (:func:`~ceco_fair.metrics.score_bootstrap.replicate_statistics`), else empty.

    """

    values: dict[str, float]
    by_group: pd.DataFrame
    reasons: tuple[str, ...]
    replicates: dict[str, FloatArray]


def _put(values: dict[str, float], name: str, value: float, interval: tuple[float, float] | None = None) -> None:
    """Store a metric and, if given, its interval under the derived keys."""
    values[name] = float(value)
    if interval is not None:
        values[ci_low_name(name)], values[ci_high_name(name)] = interval


def _percentile(samples: FloatArray, confidence: float) -> tuple[float, float]:
    low, high = percentile_interval(samples, confidence)
    return float(low), float(high)


def score_metrics(
    targets: LabelsLike,
    scores: ScoresLike,
    sensitive: LabelsLike,
    *,
    n_boot: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
    grid_size: int = GRID_SIZE,
    keep_replicates: bool = False,
) -> ScoreResult:
    """Every score metric of :mod:`ceco_fair.metrics.scores`, with intervals and p-values.

    Args:
        targets: True classes ``[n]``.
        scores: Positive-class scores ``[n]`` (``[n, 2]``) or class probabilities ``[n, C]``; the
            score gaps and ABCC need a binary target.
        sensitive: Group labels ``[n]``.
        n_boot: Bootstrap replicates (stratified by group); 0 gives the analytic parts only.
        confidence: Level of every interval, in ``(0, 1)``.
        seed: Seed of the bootstrap's random generator.
        grid_size: Pooled score quantiles at which the ABCC band holds.
        keep_replicates: Whether the result keeps the bootstrap replicates.

    Returns:
        The :class:`ScoreResult` (keys in the module docstring's order).

    Raises:
        CecoFairError: On invalid inputs or bootstrap arguments.

    """
    check_bootstrap_args(n_boot, confidence, seed)
    if isinstance(grid_size, bool) or not isinstance(grid_size, int) or grid_size < 2:
        raise CecoFairError(BAD_GRID.format(value=grid_size))
    data = score_data(targets, scores, sensitive)
    reasons: list[str] = []
    n_groups = data.n_groups
    if n_groups == 1:
        reasons.append(SINGLE_GROUP.format(group=data.groups[0]))
    ranked = rank_auc(data, data.group, n_groups)
    auroc_reasons(data, ranked, reasons)
    whole = rank_auc(data, np.zeros_like(data.group), 1)
    group_auc = macro_auc(ranked)
    smaller = np.where(np.isnan(ranked.auc), 0, np.minimum(ranked.positives, ranked.negatives)).max(axis=1)
    auc_se = np.sqrt(delong_variance(data, ranked, data.group, n_groups))
    auc_scale = floored(auc_se, smaller)
    gaps, counts = bin_gaps(data, data.group, n_groups)
    group_ece = ece_from_bins(gaps, counts)
    sizes = counts.sum(axis=1)
    ece_se = ece_standard_error(data)
    ece_scale = floored(ece_se, sizes)
    grid = abcc_grid(data.positive, grid_size) if data.positive is not None else None
    boot = score_replicates(data, n_boot, np.random.default_rng(seed), grid=grid) if n_boot > 0 else {}

    values: dict[str, float] = {}
    overall_auc = float(macro_auc(whole)[0])
    _put(values, "auroc", overall_auc, _percentile(boot["auroc"], confidence) if boot else None)
    delong_se = float(np.sqrt(delong_variance(data, whole, np.zeros_like(data.group), 1)[0]))
    z = float(stats.norm.ppf((1.0 + confidence) / 2.0))
    values[ci_low_name(DELONG)] = float(np.clip(overall_auc - z * delong_se, 0.0, 1.0))
    values[ci_high_name(DELONG)] = float(np.clip(overall_auc + z * delong_se, 0.0, 1.0))
    auc_block = Block(group_auc, auc_scale, boot.get("group_auroc", np.empty((0, n_groups))))
    _put(values, "worst_group_auroc", float(worst(group_auc)), worst_band(auc_block, confidence) if boot else None)
    _put(values, "auroc_gap", float(spread(group_auc)), spread_band([auc_block], confidence) if boot else None)
    values[p_value_name("auroc_gap")] = wald_p_value([(group_auc, auc_scale)])
    overall_ece = float(ece_from_bins(gaps.sum(axis=0), counts.sum(axis=0)))
    _put(values, "ece", overall_ece, _percentile(boot["ece"], confidence) if boot else None)
    ece_block = Block(group_ece, ece_scale, boot.get("group_ece", np.empty((0, n_groups))))
    _put(values, "ece_gap", float(spread(group_ece)), spread_band([ece_block], confidence) if boot else None)
    values[p_value_name("ece_gap")] = wald_p_value([(group_ece, ece_scale)])
    table = {
        "group": data.groups,
        "count": sizes,
        "auroc": group_auc,
        "auroc_se": auc_se,
        "ece": group_ece,
        "ece_se": ece_se,
    }
    if data.positive is not None and grid is not None:
        table.update(_binary_gaps(data, values, reasons, boot, grid, confidence))
    if boot:
        for name, key in (("auroc", "group_auroc"), ("ece", "group_ece"), ("mean_score", "group_mean")):
            if key in boot:
                low, high = percentile_interval(boot[key], confidence)
                table[ci_low_name(name)], table[ci_high_name(name)] = low, high
    frame: pd.DataFrame = pd.DataFrame(table)  # annotated: the pandas stubs' constructor is Any
    return ScoreResult(values, frame, tuple(dict.fromkeys(reasons)), boot if keep_replicates else {})


def _binary_gaps(
    data: ScoreData,
    values: dict[str, float],
    reasons: list[str],
    boot: dict[str, FloatArray],
    grid: FloatArray,
    confidence: float,
) -> dict[str, FloatArray]:
    """Fill ``score_gap``, ``score_gap_eo`` and ``abcc`` into ``values``; the per-group columns they add."""
    positive = data.positive
    assert positive is not None, "binary target"
    n_groups = data.n_groups
    means, se, sizes = mean_standard_error(positive, data.group, n_groups)
    scale = floored(se, sizes)
    empty = np.empty((0, n_groups))
    block = Block(means, scale, boot.get("group_mean", empty))
    _put(values, "score_gap", float(spread(means)), spread_band([block], confidence) if boot else None)
    values[p_value_name("score_gap")] = wald_p_value([(means, scale)])
    cell_mean, cell_se, cell_sizes = mean_standard_error(positive, data.targets * n_groups + data.group, 2 * n_groups)
    cell_mean, cell_sizes = cell_mean.reshape(2, n_groups), cell_sizes.reshape(2, n_groups)
    cell_scale = floored(cell_se, cell_sizes.reshape(-1)).reshape(2, n_groups)
    for cls, g in zip(*np.nonzero(cell_sizes == 0), strict=True):
        reasons.append(EMPTY_CELL.format(cls=int(cls), group=data.groups[g]))
    cell_boot = boot.get("cell_mean", np.empty((0, 2, n_groups)))
    blocks = [Block(cell_mean[c], cell_scale[c], cell_boot[:, c]) for c in range(2)]
    _put(values, "score_gap_eo", float(np.nanmax(spread(cell_mean))), spread_band(blocks, confidence) if boot else None)
    values[p_value_name("score_gap_eo")] = wald_p_value([(cell_mean[c], cell_scale[c]) for c in range(2)])
    point = float(pairwise_w1(positive, data.group, n_groups).max()) if n_groups > 1 else 0.0
    interval = None
    if boot:
        cdf, group_sizes = group_cdfs(positive, data.group, n_groups, grid)
        interval = abcc_band(cdf, group_sizes, boot["cdf"], grid, confidence)
    _put(values, "abcc", point, interval)
    values[p_value_name("abcc")] = ks_p_value(positive, data.group, n_groups)
    return {
        "mean_score": means,
        "mean_score_se": se,
        "mean_score_y0": cell_mean[0],
        "mean_score_y1": cell_mean[1],
    }
