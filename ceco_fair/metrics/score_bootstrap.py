"""Row bootstrap of the score metrics, stratified by sensitive group, vectorised over replicates.

A replicate resamples ``n_g`` rows with replacement within every group ``g``, so group sizes are
kept. It is stored as counts: ``w[r]`` = how often row ``r`` is drawn, ``Multinomial(n_g, 1/n_g)``
within each group (``n_g`` uniform indices, counted by :func:`numpy.bincount`). Every statistic
is then a function of sums of ``w`` over rows laid out once, per group, in a fixed order:

- AUROC (weighted Mann-Whitney count): the rows of one class (positives) ascending by their score,
  then the other rows (negatives) ascending. With ``Cp``, ``Cn`` the cumulative counts of the two
  parts (a leading 0), a positive whose score has ``lo`` negatives strictly below it and ``hi``
  at or below it adds ``w · (Cn[lo] + Cn[hi]) / 2`` (a tie counts ½); positives sharing
  ``(lo, hi)`` form runs, so ``2U = Σ_runs (Cp[end] − Cp[start]) (Cn[lo] + Cn[hi])`` — exact in
  int64, and ``AUROC = U / (N₊ N₋)`` with the replicate's class counts.
- ECE bins and mean scores: the layout's rows form segments of constant (class part, confidence
  bin); per segment one matrix product ``w[:, segment] @ v[segment]`` sums ``confidence − correct``
  and the positive-class score.
- ABCC bands: a group's CDF at grid points ``t`` is ``(Cp[cut₊(t)] + Cn[cut₋(t)]) / n_g``.

The whole data's AUROC uses the same count over all groups' rows. With unit counts every
statistic equals the point value of :mod:`ceco_fair.metrics.scores`. A resample that loses a
class leaves that AUROC (or that cell's mean) NaN; interval code ignores NaN replicates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ceco_fair.common.progress import progress_bar
from ceco_fair.metrics.bootstrap import FloatArray
from ceco_fair.metrics.confusion import IntArray
from ceco_fair.metrics.scores import (
    ECE_BINS,
    ScoreData,
    confidence_and_correct,
    confidence_bins,
    ratio,
)

VALUES_PER_CHUNK = 1 << 22
"""Row counts held per chunk of replicates (8-byte values: 32 MiB per copy)."""
ROW_BINCOUNT = 1 << 16
"""Groups of at least this many rows are counted one replicate at a time (the counts stay in cache)."""


@dataclass(frozen=True)
class AucLayout:
    """How to read one weighted Mann-Whitney count off a weight matrix.

    Attributes:
        perm: Columns of the weight matrix in [positives ascending | negatives ascending] order;
            ``None`` when the columns are already in that order.
        n_pos: Number of positive columns ``m₊``.
        bounds: Boundaries ``[R + 1]`` of the runs of positives sharing ``(lo, hi)``: run ``r`` is
            ``bounds[r]:bounds[r + 1]``.
        lo: Negatives strictly below each run's score ``[R]``.
        hi: Negatives at or below each run's score ``[R]``; ``None`` when no score of a positive
            equals one of a negative (then ``hi = lo``).

    """

    perm: IntArray | None
    n_pos: int
    bounds: IntArray
    lo: IntArray
    hi: IntArray | None


def auc_layout(values: FloatArray, positive: npt.NDArray[np.bool_], columns: IntArray) -> AucLayout | None:
    """The layout of one AUROC problem, or ``None`` if a class is absent.

    Args:
        values: Scores ``[m]`` of the columns.
        positive: Whether each column is a positive ``[m]``.
        columns: The weight-matrix columns ``[m]`` of these rows.

    Returns:
        The :class:`AucLayout`.

    """
    pos_order = np.flatnonzero(positive)[np.argsort(values[positive], kind="stable")]
    neg_order = np.flatnonzero(~positive)[np.argsort(values[~positive], kind="stable")]
    if pos_order.size == 0 or neg_order.size == 0:
        return None
    pos_values, neg_values = values[pos_order], values[neg_order]
    lo = np.searchsorted(neg_values, pos_values, side="left")
    hi = np.searchsorted(neg_values, pos_values, side="right")
    change = np.ones(lo.size, dtype=np.bool_)
    change[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    starts = np.flatnonzero(change)
    perm = columns[np.concatenate([pos_order, neg_order])]
    return AucLayout(
        perm=None if np.array_equal(perm, np.arange(perm.size)) else perm,
        n_pos=int(pos_order.size),
        bounds=np.append(starts, pos_order.size),
        lo=lo[starts],
        hi=hi[starts] if np.any(hi != lo) else None,
    )


def cumulative(weights: IntArray) -> IntArray:
    """Cumulative sums along axis 1 with a leading zero: ``[b, m] -> [b, m + 1]``."""
    out = np.empty((weights.shape[0], weights.shape[1] + 1), dtype=np.int64)
    out[:, 0] = 0
    np.cumsum(weights, axis=1, out=out[:, 1:])
    return out


def pair_count(cum_pos: IntArray, cum_neg: IntArray, layout: AucLayout) -> IntArray:
    """Twice the weighted Mann-Whitney count ``2U`` ``[b]`` from the parts' cumulative counts."""
    at_bounds: IntArray = np.take(cum_pos, layout.bounds, axis=1)
    run_weights = at_bounds[:, 1:] - at_bounds[:, :-1]
    below: IntArray = np.take(cum_neg, layout.lo, axis=1)
    if layout.hi is None:
        below *= 2
    else:
        below += np.take(cum_neg, layout.hi, axis=1)
    twice_u: IntArray = np.einsum("br,br->b", run_weights, below)
    return twice_u


def weighted_auc(weights: IntArray, layout: AucLayout) -> tuple[FloatArray, IntArray, IntArray]:
    """AUROC ``[b]`` of weighted rows (NaN where a class drew no row), with the parts' cumulative counts."""
    arranged = weights if layout.perm is None else np.take(weights, layout.perm, axis=1)
    cum_pos = cumulative(arranged[:, : layout.n_pos])
    cum_neg = cumulative(arranged[:, layout.n_pos :])
    return auc_ratio(pair_count(cum_pos, cum_neg, layout), cum_pos[:, -1], cum_neg[:, -1]), cum_pos, cum_neg


def auc_ratio(twice_u: IntArray, n_pos: IntArray, n_neg: IntArray) -> FloatArray:
    """``U / (N₊ N₋)`` ``[b]``, NaN where ``N₊ N₋ = 0``."""
    return ratio(twice_u, 2.0 * n_pos.astype(np.float64) * n_neg)


@dataclass(frozen=True)
class GroupLayout:
    """One group's rows laid out for the bootstrap.

    Attributes:
        rows: Data rows ``[n_g]`` in layout order (binary: positives then negatives, each ascending
            by score; otherwise by confidence bin).
        aucs: One :class:`AucLayout` per class with positives and negatives in the group (binary:
            at most one, whose columns are the layout itself).
        n_pos: Rows of the positive part (binary), else 0.
        bounds: Segment boundaries ``[S + 1]`` in layout order.
        to_bins: ``[S, 10]`` one-hot map of each segment to its confidence bin.
        to_classes: ``[S, 2]`` one-hot map of each segment to its class part (binary: 0 or 1).
        linear: Per row ``[n_g, k]``: ``confidence − correct`` and, for a binary target, the score.
        cuts: ABCC grid positions in the positive and negative parts, ``[2, K]`` (binary with a grid).

    """

    rows: IntArray
    aucs: tuple[AucLayout, ...]
    n_pos: int
    bounds: IntArray
    to_bins: FloatArray
    to_classes: FloatArray
    linear: FloatArray
    cuts: IntArray | None

    @property
    def size(self) -> int:
        """Rows ``n_g``."""
        return int(self.rows.size)


@dataclass(frozen=True)
class ScoreLayout:
    """Every group's layout and the whole data's AUROC problems over the concatenated columns.

    The weight matrix's columns are the groups' layout rows, concatenated in group order
    (``offsets[g]:offsets[g + 1]`` for group ``g``).
    """

    groups: tuple[GroupLayout, ...]
    offsets: IntArray
    pooled: tuple[AucLayout, ...]
    binary: bool


def _segments(keys: IntArray) -> IntArray:
    """Boundaries ``[S + 1]`` of the runs of equal ``keys`` ``[m]``."""
    change = np.ones(keys.size, dtype=np.bool_)
    change[1:] = keys[1:] != keys[:-1]
    return np.append(np.flatnonzero(change), keys.size)


def _group_layout(
    data: ScoreData, rows: IntArray, bins: IntArray, error: FloatArray, grid: FloatArray | None
) -> GroupLayout:
    """Lay out one group's rows (:class:`GroupLayout`)."""
    targets = data.targets[rows]
    if data.positive is not None:
        values = data.positive[rows]
        is_pos = targets == 1
        order = np.concatenate(
            [
                np.flatnonzero(is_pos)[np.argsort(values[is_pos], kind="stable")],
                np.flatnonzero(~is_pos)[np.argsort(values[~is_pos], kind="stable")],
            ]
        )
        rows, values, is_pos = rows[order], values[order], is_pos[order]
        n_pos = int(is_pos.sum())
        layout = auc_layout(values, is_pos, np.arange(rows.size))
        part = is_pos.astype(np.int64)
        linear = np.stack([error[rows], values], axis=1)
        cuts = None
        if grid is not None:
            cuts = np.stack(
                [
                    np.searchsorted(values[:n_pos], grid, side="right"),
                    np.searchsorted(values[n_pos:], grid, side="right"),
                ]
            )
        aucs: tuple[AucLayout, ...] = () if layout is None else (layout,)
    else:
        rows = rows[np.argsort(bins[rows], kind="stable")]
        targets, part = data.targets[rows], np.zeros(rows.size, dtype=np.int64)
        linear, cuts = error[rows][:, np.newaxis], None
        columns = np.arange(rows.size)
        found = (auc_layout(data.probabilities[rows, c], targets == c, columns) for c in range(data.n_classes))
        aucs = tuple(layout for layout in found if layout is not None)
    bounds = _segments(part * ECE_BINS + bins[rows])
    return GroupLayout(
        rows=rows,
        aucs=aucs,
        n_pos=int(part.sum()),
        bounds=bounds,
        to_bins=np.eye(ECE_BINS)[bins[rows][bounds[:-1]]],
        to_classes=np.eye(2)[part[bounds[:-1]]],
        linear=np.ascontiguousarray(linear),
        cuts=cuts,
    )


def score_layout(data: ScoreData, grid: FloatArray | None = None) -> ScoreLayout:
    """Lay out the rows of every group for :func:`replicate_statistics`.

    Args:
        data: Validated inputs.
        grid: Points ``[K]`` at which to evaluate every group's score CDF (binary targets), or ``None``.

    Returns:
        The :class:`ScoreLayout`.

    """
    confidence, correct = confidence_and_correct(data)
    bins = confidence_bins(confidence)
    error = confidence - correct
    members = np.argsort(data.group, kind="stable")
    sizes = np.bincount(data.group, minlength=data.n_groups)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    groups = tuple(
        _group_layout(data, members[offsets[g] : offsets[g + 1]], bins, error, grid) for g in range(data.n_groups)
    )
    rows = np.concatenate([group.rows for group in groups])
    columns = np.arange(rows.size)
    if data.positive is not None:
        problems = [auc_layout(data.positive[rows], data.targets[rows] == 1, columns)]
    else:
        problems = [
            auc_layout(data.probabilities[rows, c], data.targets[rows] == c, columns) for c in range(data.n_classes)
        ]
    return ScoreLayout(groups, offsets, tuple(p for p in problems if p is not None), data.positive is not None)


def _macro(values: list[FloatArray], b: int) -> FloatArray:
    """Mean over the defined entries of per-class AUROCs ``C' × [b] -> [b]`` (NaN if none)."""
    if not values:
        return np.full(b, np.nan)
    stacked = np.stack(values, axis=1)
    defined = ~np.isnan(stacked)
    count = defined.sum(axis=1)
    total = np.where(defined, stacked, 0.0).sum(axis=1)
    return ratio(total, count)


def _segment_sums(weights: FloatArray, group: GroupLayout) -> FloatArray:
    """``Σ w · linear`` per segment: ``[b, n_g] -> [b, S, k]``."""
    bounds = group.bounds
    sums = np.empty((weights.shape[0], bounds.size - 1, group.linear.shape[1]))
    for s in range(bounds.size - 1):
        sums[:, s] = weights[:, bounds[s] : bounds[s + 1]] @ group.linear[bounds[s] : bounds[s + 1]]
    return sums


def replicate_statistics(layout: ScoreLayout, weights: IntArray) -> dict[str, FloatArray]:
    """Every bootstrap statistic of weighted rows.

    Args:
        layout: From :func:`score_layout`.
        weights: Row counts ``[b, n]`` over the layout's concatenated columns (ones: the data itself).

    Returns:
        ``auroc`` ``[b]``, ``group_auroc`` ``[b, G]``, ``ece`` ``[b]``, ``group_ece`` ``[b, G]``;
        for a binary target also ``group_mean`` ``[b, G]`` (mean positive-class score),
        ``cell_mean`` ``[b, 2, G]`` (per true class) and, with a grid, ``cdf`` ``[b, G, K]``.

    """
    b, n_groups = weights.shape[0], len(layout.groups)
    group_auroc = np.full((b, n_groups), np.nan)
    group_ece = np.empty((b, n_groups))
    bin_totals = np.zeros((b, ECE_BINS))
    class_sums, class_counts = np.zeros((b, 2, n_groups)), np.zeros((b, 2, n_groups))
    cdfs = []
    for g, group in enumerate(layout.groups):
        block = weights[:, layout.offsets[g] : layout.offsets[g + 1]]
        sums = _segment_sums(block.astype(np.float64), group)
        bins = sums[:, :, 0] @ group.to_bins
        bin_totals += bins
        group_ece[:, g] = np.abs(bins).sum(axis=1) / group.size
        if layout.binary:
            cum_pos, cum_neg = cumulative(block[:, : group.n_pos]), cumulative(block[:, group.n_pos :])
            if group.aucs:
                (problem,) = group.aucs
                group_auroc[:, g] = auc_ratio(pair_count(cum_pos, cum_neg, problem), cum_pos[:, -1], cum_neg[:, -1])
            class_sums[:, :, g] = sums[:, :, 1] @ group.to_classes
            class_counts[:, 0, g], class_counts[:, 1, g] = cum_neg[:, -1], cum_pos[:, -1]
            if group.cuts is not None:
                below = np.take(cum_pos, group.cuts[0], axis=1) + np.take(cum_neg, group.cuts[1], axis=1)
                cdfs.append(below / group.size)
        else:
            group_auroc[:, g] = _macro([weighted_auc(block, problem)[0] for problem in group.aucs], b)
    total = int(layout.offsets[-1])
    result = {
        "auroc": _macro([weighted_auc(weights, problem)[0] for problem in layout.pooled], b),
        "group_auroc": group_auroc,
        "ece": np.abs(bin_totals).sum(axis=1) / total,
        "group_ece": group_ece,
    }
    if layout.binary:
        sizes = np.diff(layout.offsets).astype(np.float64)
        result["group_mean"] = class_sums.sum(axis=1) / sizes
        result["cell_mean"] = ratio(class_sums, class_counts)
        if cdfs:
            result["cdf"] = np.stack(cdfs, axis=1)
    return result


def draw_weights(sizes: IntArray, n_boot: int, rng: np.random.Generator) -> IntArray:
    """Row counts of ``n_boot`` replicates resampling each group's rows within the group.

    Args:
        sizes: Group sizes ``[G]``; the columns are the groups' rows concatenated in order.
        n_boot: Replicates ``b``.
        rng: Numpy random generator.

    Returns:
        Counts ``[b, Σ n_g]`` of int64; each group's block of every row sums to its size.

    """
    weights = np.empty((n_boot, int(sizes.sum())), dtype=np.int64)
    start = 0
    for size in sizes.tolist():
        draws = rng.integers(0, size, size=(n_boot, size), dtype=np.int32).astype(np.intp)
        if size >= ROW_BINCOUNT:
            for r in range(n_boot):
                weights[r, start : start + size] = np.bincount(draws[r], minlength=size)
        else:
            draws += (np.arange(n_boot, dtype=np.intp) * size)[:, np.newaxis]
            weights[:, start : start + size] = np.bincount(draws.reshape(-1), minlength=n_boot * size).reshape(
                n_boot, size
            )
        start += size
    return weights


def score_replicates(
    data: ScoreData, n_boot: int, rng: np.random.Generator, *, grid: FloatArray | None = None
) -> dict[str, FloatArray]:
    """Bootstrap replicates of every score statistic, resampling rows within each group.

    Replicates are drawn and evaluated in chunks of at most :data:`VALUES_PER_CHUNK` row counts;
    a progress bar shows when there is more than one chunk. The same seed gives the same replicates.

    Args:
        data: Validated inputs.
        n_boot: Number of replicates ``B`` (positive).
        rng: Numpy random generator.
        grid: ABCC grid points ``[K]`` (binary targets) or ``None``.

    Returns:
        The keys of :func:`replicate_statistics`, each with ``B`` replicates along axis 0.

    """
    layout = score_layout(data, grid)
    sizes = np.diff(layout.offsets)
    chunk = max(1, VALUES_PER_CHUNK // max(1, int(sizes.sum())))
    n_chunks = math.ceil(n_boot / chunk)
    parts: dict[str, list[FloatArray]] = {}
    starts = range(0, n_boot, chunk)
    for start in progress_bar(starts, total=n_chunks, desc="bootstrap", hidden=n_chunks < 2):
        weights = draw_weights(sizes, min(chunk, n_boot - start), rng)
        for name, values in replicate_statistics(layout, weights).items():
            parts.setdefault(name, []).append(values)
    return {name: np.concatenate(values, axis=0) for name, values in parts.items()}
