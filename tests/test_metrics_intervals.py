"""Simultaneous-band intervals and homogeneity p-values: against loops written from the
definitions, scipy's chi-square test, edge cases, and a coverage simulation with known truth."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from interval_simulation import Scenario, coverage, p_value_power, run_case
from scipy import stats

from ceco_fair.metrics import group_metrics
from ceco_fair.metrics.bootstrap import resample_counts
from ceco_fair.metrics.confusion import group_confusion
from ceco_fair.metrics.group import metrics_from_counts
from ceco_fair.metrics.intervals import (
    critical_values,
    homogeneity_p_values,
    interval_names,
    max_t_statistics,
    simultaneous_intervals,
    spread_names,
)

NAN = float("nan")


def random_table(n_groups: int, seed: int, n: int = 800, n_classes: int = 2) -> np.ndarray:
    """A count table ``[G, C, C]`` whose groups differ in size, base rate and error rate."""
    rng = np.random.default_rng(seed)
    sensitive = rng.choice(n_groups, size=n, p=rng.dirichlet(np.full(n_groups, 2.0)))
    y_true = (rng.random(n) < rng.uniform(0.2, 0.8, n_groups)[sensitive]).astype(np.int64)
    if n_classes > 2:
        y_true = rng.integers(0, n_classes, size=n)
    flip = rng.random(n) < rng.uniform(0.05, 0.4, n_groups)[sensitive]
    y_pred = np.where(flip, rng.integers(0, n_classes, size=n), y_true)
    return group_confusion(y_true, y_pred, sensitive, binary=n_classes == 2).counts


# --- slow references, written from the definitions with loops over groups and pairs ---------


def slow_units(table: np.ndarray, name: str) -> list[list[tuple[int, int, float]]]:
    """Blocks of (hits, trials, rate-if-no-trials) per group or cell, from the definitions."""
    groups, classes = table.shape[0], table.shape[1]
    if name == "worst_group_accuracy":
        return [[(int(table[g, c, c]), int(table[g, c].sum()), NAN) for g in range(groups) for c in range(classes)]]
    if name == "eo_fscl":
        return [[(int(table[g, c, c]), int(table[g, c].sum()), NAN) for g in range(groups)] for c in range(classes)]
    tpr = [(int(table[g, 1, 1]), int(table[g, 1].sum()), 0.0) for g in range(groups)]
    fpr = [(int(table[g, 0, 1]), int(table[g, 0].sum()), 0.0) for g in range(groups)]
    selection = [(int(table[g, :, 1].sum()), int(table[g].sum()), NAN) for g in range(groups)]
    return {
        "demographic_parity_difference": [selection],
        "equal_opportunity_difference": [tpr],
        "equalized_odds_difference": [tpr, fpr],
    }[name]


def slow_rate(unit: tuple[int, int, float]) -> float:
    hits, trials, empty = unit
    return hits / trials if trials else empty


def slow_scale(unit: tuple[int, int, float]) -> float:
    hits, trials, _ = unit
    smoothed = (hits + 1) / (trials + 2)
    return math.sqrt(smoothed * (1 - smoothed) / trials) if trials else 0.0


def slow_pairs(block: list[tuple[int, int, float]]) -> list[tuple[float, float]]:
    """(|r_i − r_j|, √(s_i² + s_j²)) over the pairs i < j with both rates defined."""
    out = []
    for a, b in itertools.combinations(block, 2):
        gap = abs(slow_rate(a) - slow_rate(b))
        if not math.isnan(gap):
            out.append((gap, math.hypot(slow_scale(a), slow_scale(b))))
    return out


def slow_interval(table: np.ndarray, name: str, c: float, c_low: list[float] | None = None) -> tuple[float, float]:
    """The implied interval; the worst group's lower end uses the per-cell ``c_low``."""
    blocks = slow_units(table, name)
    if name == "worst_group_accuracy":
        cells = [(u, q) for u, q in zip(blocks[0], c_low or [c] * len(blocks[0]), strict=True) if u[1] > 0]
        lows = [min(1.0, max(0.0, slow_rate(u) - q * slow_scale(u))) for u, q in cells]
        highs = [min(1.0, max(0.0, slow_rate(u) + c * slow_scale(u))) for u, _ in cells]
        return min(lows), min(highs)
    if name == "eo_fscl":
        class_lows, class_highs = [], []
        for block in blocks:
            pairs = slow_pairs(block)
            if pairs:
                class_lows.append(sum(max(0.0, g - c * s) for g, s in pairs) / len(pairs))
                class_highs.append(sum(min(1.0, g + c * s) for g, s in pairs) / len(pairs))
        if not class_lows:
            return 0.0, 0.0
        return sum(class_lows) / len(class_lows), sum(class_highs) / len(class_highs)
    pairs = [p for block in blocks for p in slow_pairs(block)]
    if not pairs:
        return 0.0, 0.0
    return max(max(0.0, g - c * s) for g, s in pairs), max(min(1.0, g + c * s) for g, s in pairs)


def slow_worst_t(table: np.ndarray, drawn: np.ndarray) -> list[float]:
    """(â*_k − â_k) / s_k per cell, NaN for an empty cell or a cell emptied by the resample."""
    out = []
    observed, again = slow_units(table, "worst_group_accuracy")[0], slow_units(drawn, "worst_group_accuracy")[0]
    for o, a in zip(observed, again, strict=True):
        out.append((a[0] / a[1] - slow_rate(o)) / slow_scale(o) if o[1] and a[1] else NAN)
    return out


def slow_max_t(table: np.ndarray, drawn: np.ndarray, name: str) -> float:
    """max over a spread's pairs of |θ* − θ̂| / s, from loops (NaN if no pair is defined)."""
    values = []
    for observed, again in zip(slow_units(table, name), slow_units(drawn, name), strict=True):
        again_rates = [
            slow_rate(o) if o[1] == 0 else (a[0] / a[1] if a[1] else NAN) for o, a in zip(observed, again, strict=True)
        ]
        for i, j in itertools.combinations(range(len(observed)), 2):
            deviation = abs((again_rates[i] - again_rates[j]) - (slow_rate(observed[i]) - slow_rate(observed[j])))
            scale = math.hypot(slow_scale(observed[i]), slow_scale(observed[j]))
            if not math.isnan(deviation):
                values.append(deviation / scale if scale > 0 else 0.0)
    return max(values) if values else NAN


# --- equal to the references --------------------------------------------------------------


@pytest.mark.parametrize(("n_groups", "n_classes", "seed"), [(2, 2, 0), (3, 2, 1), (5, 2, 2), (4, 3, 3)])
def test_max_t_and_intervals_equal_the_loops(n_groups: int, n_classes: int, seed: int) -> None:
    table = random_table(n_groups, seed, n_classes=n_classes)
    rates = n_classes == 2
    drawn = resample_counts(table, 20, np.random.default_rng(seed))
    ours = max_t_statistics(table, drawn, rates=rates)
    check_against_loops(table, drawn, ours, rates=rates)


def check_against_loops(table: np.ndarray, drawn: np.ndarray, ours: dict[str, np.ndarray], *, rates: bool) -> None:
    worst_t = np.array([slow_worst_t(table, d) for d in drawn])  # [b, K]
    np.testing.assert_allclose(ours["worst_group_accuracy_low"], worst_t, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        ours["worst_group_accuracy_high"], [np.nanmax(-row) for row in worst_t], rtol=1e-12, atol=1e-12
    )
    spreads = interval_names(rates=rates)[1:]
    assert set(ours) == {"worst_group_accuracy_low", "worst_group_accuracy_high", *spreads}
    critical: dict[str, Any] = {name: np.float64(2.0 + 0.1 * k) for k, name in enumerate(spreads)}
    c_low = [1.9 + 0.01 * k for k in range(worst_t.shape[1])]
    critical.update(worst_group_accuracy_low=np.array(c_low), worst_group_accuracy_high=np.float64(2.6))
    intervals = simultaneous_intervals(table, critical, rates=rates)
    for name in spreads:
        expected = [slow_max_t(table, d, name) for d in drawn]
        np.testing.assert_allclose(ours[name], expected, rtol=1e-12, atol=1e-12, err_msg=name)
    for name in interval_names(rates=rates):
        c = float(critical["worst_group_accuracy_high" if name == "worst_group_accuracy" else name])
        low, high = slow_interval(table, name, c, c_low)
        assert intervals[name][0] == pytest.approx(low, abs=1e-12), name
        assert intervals[name][1] == pytest.approx(high, abs=1e-12), name


def test_a_group_without_positives_is_a_known_zero_tpr() -> None:
    table = random_table(3, seed=4)
    table[1, 0] += table[1, 1]
    table[1, 1] = 0  # group 1: no positives, TPR 0 by fairlearn's convention
    drawn = resample_counts(table, 30, np.random.default_rng(0))
    check_against_loops(table, drawn, max_t_statistics(table, drawn, rates=True), rates=True)


def test_p_values_equal_scipy_chi2_contingency() -> None:
    for n_groups, seed in ((2, 5), (3, 6), (5, 7)):
        table = random_table(n_groups, seed)
        ours = homogeneity_p_values(table, rates=True)

        def pearson(block: list[tuple[int, int, float]]) -> tuple[float, int]:
            rows = [(h, n - h) for h, n, _ in block if n > 0]
            result = stats.chi2_contingency(np.array(rows), correction=False)
            return float(result.statistic), int(result.dof)

        for name in spread_names():
            tests = [pearson(block) for block in slow_units(table, name)]
            statistic, df = sum(t[0] for t in tests), sum(t[1] for t in tests)
            assert ours[name] == pytest.approx(stats.chi2.sf(statistic, df), rel=1e-9), name
        # binary target: per-class accuracy homogeneity is the TPR + FPR test
        assert ours["eo_fscl"] == pytest.approx(ours["equalized_odds_difference"], rel=1e-12)


def test_multiclass_eo_fscl_p_value_sums_the_classes() -> None:
    table = random_table(3, seed=8, n_classes=4)
    table[2, 3] = 0  # an empty (class, group) cell drops out of that class's test
    statistic, df = 0.0, 0
    for c in range(4):
        rows = np.array([(table[g, c, c], table[g, c].sum() - table[g, c, c]) for g in range(3) if table[g, c].sum()])
        result = stats.chi2_contingency(rows, correction=False)
        statistic, df = statistic + result.statistic, df + result.dof
    ours = homogeneity_p_values(table, rates=False)
    assert set(ours) == {"eo_fscl"}
    assert ours["eo_fscl"] == pytest.approx(stats.chi2.sf(statistic, df), rel=1e-9)


# --- degenerate cases ---------------------------------------------------------------------


def test_single_group_spreads_are_exactly_zero_with_p_value_one() -> None:
    rng = np.random.default_rng(9)
    y_true = rng.integers(0, 2, 300)
    y_pred = np.where(rng.random(300) < 0.8, y_true, 1 - y_true)
    result = group_metrics(y_true, y_pred, np.zeros(300, dtype=int), n_boot=200)
    for name in spread_names():
        assert result[name] == result[f"{name}_ci_low"] == result[f"{name}_ci_high"] == 0.0
        assert result[f"{name}_p_value"] == 1.0
    assert result["worst_group_accuracy_ci_low"] < result["worst_group_accuracy"]
    assert result["worst_group_accuracy"] < result["worst_group_accuracy_ci_high"]


def test_identical_predictions_everywhere_give_p_value_one() -> None:
    y_true = np.tile([0, 1, 1, 0], 50)
    sensitive = np.repeat([0, 1, 2, 3], 50)
    result = group_metrics(y_true, np.ones(200, dtype=int), sensitive, n_boot=100)
    # every group selects everyone and has TPR 1 and FPR 1: nothing to test
    for name in spread_names():
        assert result[name] == 0.0 and result[f"{name}_p_value"] == 1.0, name
        assert result[f"{name}_ci_low"] == 0.0 < result[f"{name}_ci_high"], name


def test_a_rate_at_one_in_a_small_group_keeps_a_band() -> None:
    """Add-one smoothing is a variance floor: all-correct cells still get a nonzero width."""
    y_true = np.tile([0, 1], 15)
    result = group_metrics(y_true, y_true, np.repeat([0, 1], 15), n_boot=200)
    assert result["worst_group_accuracy"] == 1.0 == result["worst_group_accuracy_ci_high"]
    assert result["worst_group_accuracy_ci_low"] < 0.95
    assert result["equalized_odds_difference_ci_high"] > 0.05


@pytest.mark.parametrize(("n_groups", "seed"), [(2, 10), (3, 11), (6, 12)])
def test_intervals_contain_the_plug_in_value(n_groups: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    table = random_table(n_groups, seed, n=400)
    drawn = resample_counts(table, 300, rng)
    point = metrics_from_counts(table, rates=True)
    critical = critical_values(max_t_statistics(table, drawn, rates=True), 0.95)
    for name, (low, high) in simultaneous_intervals(table, critical, rates=True).items():
        assert 0.0 <= low <= point[name] <= high <= 1.0, name


# --- coverage with known truth ------------------------------------------------------------

SCENARIOS = [Scenario(n_groups, gap, share) for n_groups in (2, 3, 5) for gap in (0.0, 0.05) for share in (None, 0.1)]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.label for s in SCENARIOS])
def test_simultaneous_intervals_keep_their_level(scenario: Scenario) -> None:
    """2,000 datasets of 6,000 predictions, 400 resamples each, nominal 95 %.

    Every interval covers the truth in ≥ 93 % of datasets (at a tie the level is the nominal one,
    measured 94.3–95.6 % on 3,000 datasets; binomial(2000, 0.943) lies below 0.93 with probability
    0.5 %; away from ties the bands are conservative).
    At zero disparity the percentile intervals of the spreads never cover the truth 0.
    """
    result: Any = run_case(scenario, n_datasets=2000, n_boot=400, seed=scenario.n_groups * 10 + int(scenario.gap > 0))
    truth = scenario.truth()
    for name, value in truth.items():
        assert coverage(result.simultaneous[name], value) >= 0.93, (name, coverage(result.simultaneous[name], value))
        if scenario.gap == 0.0 and name in spread_names():
            assert value == 0.0 and coverage(result.percentile[name], value) <= 0.01, name
    for name in spread_names():
        share = float(np.mean(result.p_values[name] < 0.05))
        if scenario.gap == 0.0:
            assert 0.02 <= share <= 0.08, (name, share)
            continue
        power = p_value_power(scenario, name)
        assert abs(share - power) <= 4 * math.sqrt(power * (1 - power) / 2000) + 0.02, (name, share, power)
        if power >= 0.6:
            assert share > 0.5, (name, share, power)


def test_multiclass_group_metrics_report_band_intervals_and_p_value() -> None:
    rng = np.random.default_rng(13)
    y_true = rng.integers(0, 4, 900)
    sensitive = rng.integers(0, 3, 900)
    y_pred = np.where(rng.random(900) < 0.7 + 0.1 * sensitive, y_true, rng.integers(0, 4, 900))
    result = group_metrics(y_true, y_pred, sensitive, rates=False, n_boot=300, seed=1)
    assert list(result) == [
        "accuracy", "accuracy_ci_low", "accuracy_ci_high",
        "worst_group_accuracy", "worst_group_accuracy_ci_low", "worst_group_accuracy_ci_high",
        "eo_fscl", "eo_fscl_ci_low", "eo_fscl_ci_high", "eo_fscl_p_value",
        "adjusted_accuracy", "adjusted_accuracy_ci_low", "adjusted_accuracy_ci_high",
    ]  # fmt: skip
    for name in ("worst_group_accuracy", "eo_fscl"):
        assert result[f"{name}_ci_low"] < result[name] < result[f"{name}_ci_high"], name
    assert result["eo_fscl_p_value"] < 0.05  # accuracy rises by 10 points per group
