"""Score-metric bootstrap, DeLong variance, bands and p-values: against resampled rows, O(n²) loops and scipy."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.stats import wasserstein_distance
from score_reference import binary_data, loop_ece, multiclass_data
from score_simulation import ScoreScenario, coverage, run_case
from sklearn.metrics import roc_auc_score

from ceco_fair.metrics.score_bootstrap import draw_weights, replicate_statistics, score_layout, score_replicates
from ceco_fair.metrics.score_intervals import (
    abcc_band,
    abcc_grid,
    delong_variance,
    group_cdfs,
    ks_p_value,
    score_metrics,
    wald_p_value,
)
from ceco_fair.metrics.scores import rank_auc, score_data

TOL = 1e-12
ROOT = Path(__file__).resolve().parents[1]


# --- DeLong ------------------------------------------------------------------------------------


def psi(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """``[m, k]``: 1 where the positive scores higher, ½ on ties (every pair: O(n²))."""
    return np.greater.outer(positive, negative) + 0.5 * np.equal.outer(positive, negative)


def slow_delong_binary(targets: np.ndarray, scores: np.ndarray) -> float:
    """DeLong et al. (1988): ``S₁₀ / m + S₀₁ / n`` from the pairwise kernel."""
    pairs = psi(scores[targets == 1], scores[targets == 0])
    v10, v01 = pairs.mean(axis=1), pairs.mean(axis=0)
    return float(np.var(v10, ddof=1) / v10.size + np.var(v01, ddof=1) / v01.size)


def slow_delong_macro(targets: np.ndarray, scores: np.ndarray) -> float:
    """The one-vs-rest macro mean's variance from per-row components (strata: true classes), by pairs."""
    n_classes = scores.shape[1]
    phi = np.zeros(targets.size)
    for c in range(n_classes):
        own, other = np.flatnonzero(targets == c), np.flatnonzero(targets != c)
        pairs = psi(scores[own, c], scores[other, c])
        phi[own] += pairs.mean(axis=1) / own.size
        phi[other] += pairs.mean(axis=0) / other.size
    phi /= n_classes
    return float(sum(np.sum(targets == k) * np.var(phi[targets == k], ddof=1) for k in range(n_classes)))


@pytest.mark.parametrize("decimals", [None, 1])
def test_delong_variance_equals_the_pairwise_definition(decimals: int | None) -> None:
    targets, scores, sensitive = binary_data(900, 3, 30, decimals)
    data = score_data(targets, scores, sensitive)
    ours = delong_variance(data, rank_auc(data, data.group, 3), data.group, 3)
    expected = [slow_delong_binary(targets[sensitive == g], scores[sensitive == g]) for g in range(3)]
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=TOL)
    whole = delong_variance(data, rank_auc(data, np.zeros_like(data.group), 1), np.zeros_like(data.group), 1)
    assert whole[0] == pytest.approx(slow_delong_binary(targets, scores), rel=1e-10)


def test_multiclass_delong_variance_equals_the_pairwise_components() -> None:
    targets, scores, sensitive = multiclass_data(700, 3, 2, 31)
    data = score_data(targets, scores, sensitive)
    ours = delong_variance(data, rank_auc(data, data.group, 2), data.group, 2)
    expected = [slow_delong_macro(targets[sensitive == g], scores[sensitive == g]) for g in range(2)]
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=TOL)


@pytest.mark.parametrize("multiclass", [False, True])
def test_delong_standard_error_agrees_with_the_bootstrap(multiclass: bool) -> None:
    """Within 15 %: the bootstrap SD of 600 replicates is itself within about 3 % of its limit."""
    if multiclass:
        targets, scores, sensitive = multiclass_data(2000, 3, 1, 32)
    else:
        targets, scores, sensitive = binary_data(2000, 1, 32)
    result = score_metrics(targets, scores, sensitive, n_boot=600, keep_replicates=True)
    delong = math.sqrt(delong_variance(score_data(targets, scores), *_whole(targets, scores))[0])
    assert np.std(result.replicates["auroc"], ddof=1) == pytest.approx(delong, rel=0.15)
    z = stats.norm.ppf(0.975)
    assert result.values["auroc_delong_ci_high"] == pytest.approx(result.values["auroc"] + z * delong, abs=TOL)


def _whole(targets: np.ndarray, scores: np.ndarray) -> tuple:
    data = score_data(targets, scores)
    return rank_auc(data, data.group, 1), data.group, 1


# --- the bootstrap -----------------------------------------------------------------------------


def test_draws_keep_group_sizes_and_are_uniform() -> None:
    sizes = np.array([3, 70_000, 5])  # the large group is counted one replicate at a time
    weights = draw_weights(sizes, 40, np.random.default_rng(0))
    blocks = np.split(weights, np.cumsum(sizes)[:-1], axis=1)
    for size, block in zip(sizes, blocks, strict=True):
        assert np.all(block.sum(axis=1) == size) and block.min() >= 0
    assert abs(blocks[1].mean() - 1.0) < 0.01 and abs(np.var(blocks[1]) - (1 - 1 / 70_000)) < 0.01


def resampled_rows(layout: object, weights: np.ndarray) -> list[np.ndarray]:
    rows = np.concatenate([group.rows for group in layout.groups])  # type: ignore[attr-defined]
    return [np.repeat(rows, w) for w in weights]


@pytest.mark.parametrize("decimals", [None, 2])
def test_binary_replicates_equal_the_metrics_of_the_resampled_rows(decimals: int | None) -> None:
    targets, scores, sensitive = binary_data(500, 3, 33, decimals)
    data = score_data(targets, scores, sensitive)
    grid = abcc_grid(scores, 16)
    layout = score_layout(data, grid)
    weights = draw_weights(np.bincount(sensitive), 12, np.random.default_rng(1))
    ours = replicate_statistics(layout, weights)
    for r, rows in enumerate(resampled_rows(layout, weights)):
        t, p, s = targets[rows], scores[rows], sensitive[rows]
        assert np.bincount(s).tolist() == np.bincount(sensitive).tolist()
        assert ours["auroc"][r] == pytest.approx(roc_auc_score(t, p), abs=TOL)
        assert ours["ece"][r] == pytest.approx(loop_ece(t, p), abs=TOL)
        for g in range(3):
            member = s == g
            assert ours["group_auroc"][r, g] == pytest.approx(roc_auc_score(t[member], p[member]), abs=TOL)
            assert ours["group_ece"][r, g] == pytest.approx(loop_ece(t[member], p[member]), abs=TOL)
            assert ours["group_mean"][r, g] == pytest.approx(p[member].mean(), abs=TOL)
            for y in (0, 1):
                assert ours["cell_mean"][r, y, g] == pytest.approx(p[member & (t == y)].mean(), abs=TOL)
            np.testing.assert_allclose(ours["cdf"][r, g], [(p[member] <= x).mean() for x in grid], atol=TOL)


def test_multiclass_replicates_equal_the_metrics_of_the_resampled_rows() -> None:
    targets, scores, sensitive = multiclass_data(400, 4, 2, 34)
    layout = score_layout(score_data(targets, scores, sensitive))
    weights = draw_weights(np.bincount(sensitive), 8, np.random.default_rng(2))
    ours = replicate_statistics(layout, weights)
    for r, rows in enumerate(resampled_rows(layout, weights)):
        t, p, s = targets[rows], scores[rows], sensitive[rows]
        assert ours["auroc"][r] == pytest.approx(np.mean([roc_auc_score(t == c, p[:, c]) for c in range(4)]), abs=TOL)
        assert ours["ece"][r] == pytest.approx(loop_ece(t, p), abs=TOL)
        for g in range(2):
            member = s == g
            present = [c for c in range(4) if np.any(t[member] == c)]
            expected = np.mean([roc_auc_score(t[member] == c, p[member, c]) for c in present])
            assert ours["group_auroc"][r, g] == pytest.approx(expected, abs=TOL)


def test_unit_weights_give_the_point_values() -> None:
    targets, scores, sensitive = binary_data(800, 4, 35, decimals=2)
    layout = score_layout(score_data(targets, scores, sensitive))
    ours = replicate_statistics(layout, np.ones((1, 800), dtype=np.int64))
    result = score_metrics(targets, scores, sensitive)
    for name, key in (("auroc", "group_auroc"), ("ece", "group_ece"), ("mean_score", "group_mean")):
        np.testing.assert_allclose(ours[key][0], result.by_group[name], rtol=0, atol=TOL)
    assert ours["auroc"][0] == pytest.approx(result.values["auroc"], abs=TOL)
    assert ours["ece"][0] == pytest.approx(result.values["ece"], abs=TOL)


def test_the_bootstrap_is_reproducible_with_a_seed() -> None:
    targets, scores, sensitive = binary_data(600, 3, 36)
    first = score_metrics(targets, scores, sensitive, n_boot=100, seed=7)
    again = score_metrics(targets, scores, sensitive, n_boot=100, seed=7)
    other = score_metrics(targets, scores, sensitive, n_boot=100, seed=8)
    assert first.values == again.values and first.values != other.values
    data = score_data(targets, scores, sensitive)
    a = score_replicates(data, 30, np.random.default_rng(3))
    b = score_replicates(data, 30, np.random.default_rng(3))
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


# --- bands and p-values --------------------------------------------------------------------------


def test_intervals_hold_the_point_values() -> None:
    targets, scores, sensitive = binary_data(3000, 4, 37)
    result = score_metrics(targets, scores, sensitive, n_boot=300, seed=1)
    for name in ("auroc", "worst_group_auroc", "auroc_gap", "ece", "ece_gap", "score_gap", "score_gap_eo", "abcc"):
        low, high = result.values[f"{name}_ci_low"], result.values[f"{name}_ci_high"]
        assert 0.0 <= low <= result.values[name] <= high <= 1.0, name
    for name in ("auroc", "ece", "mean_score"):
        assert np.all(result.by_group[f"{name}_ci_low"] <= result.by_group[name])
        assert np.all(result.by_group[name] <= result.by_group[f"{name}_ci_high"])


def test_wald_p_value_equals_the_chi_square_formula() -> None:
    estimate, scale = np.array([0.7, 0.74, 0.69, np.nan]), np.array([0.01, 0.02, 0.015, 0.01])
    weight = 1 / scale[:3] ** 2
    centre = np.sum(weight * estimate[:3]) / weight.sum()
    statistic = np.sum(weight * (estimate[:3] - centre) ** 2)
    assert wald_p_value([(estimate, scale)]) == pytest.approx(stats.chi2.sf(statistic, 2), rel=1e-12)
    two = wald_p_value([(estimate, scale), (estimate[:2], scale[:2])])
    extra = (0.7 - 0.74) ** 2 / (0.01**2 + 0.02**2)
    assert two == pytest.approx(stats.chi2.sf(statistic + extra, 3), rel=1e-12)
    assert wald_p_value([(np.array([0.5]), np.array([0.1]))]) == 1.0


def test_ks_p_value_is_the_bonferroni_smallest_pair() -> None:
    _, scores, sensitive = binary_data(900, 3, 38)
    expected = min(
        stats.ks_2samp(scores[sensitive == a], scores[sensitive == b], method="asymp").pvalue
        for a, b in itertools.combinations(range(3), 2)
    )
    assert ks_p_value(scores, sensitive, 3) == pytest.approx(min(1.0, 3 * expected), rel=1e-12)


def slow_abcc_band(cdf: np.ndarray, sizes: np.ndarray, c: float, grid: np.ndarray) -> tuple[float, float]:
    """The module's construction with loops: bands, monotone envelopes, box distances per cell."""
    n_groups, k = cdf.shape
    low, high = np.ones_like(cdf), np.ones_like(cdf)
    for g in range(n_groups):
        for j in range(k):
            if grid[j] < 1:
                f = (cdf[g, j] * sizes[g] + 1) / (sizes[g] + 2)
                s = math.sqrt(f * (1 - f) / sizes[g])
                low[g, j] = min(1.0, max(0.0, cdf[g, j] - c * s))
                high[g, j] = min(1.0, max(0.0, cdf[g, j] + c * s))
        low[g] = [max(low[g, : j + 1]) for j in range(k)]
        high[g] = [min(high[g, j:]) for j in range(k)]
    lows, highs = [], []
    for a, b in itertools.combinations(range(n_groups), 2):
        lo = hi = 0.0
        for j in range(k - 1):
            width = grid[j + 1] - grid[j]
            lo += width * max(0.0, low[a, j] - high[b, j + 1], low[b, j] - high[a, j + 1])
            hi += width * max(0.0, high[a, j + 1] - low[b, j], high[b, j + 1] - low[a, j])
        lows.append(lo)
        highs.append(hi)
    return max(lows), max(highs)


def test_abcc_band_equals_the_loop_and_brackets_the_exact_value() -> None:
    targets, scores, sensitive = binary_data(1200, 3, 39)
    grid = abcc_grid(scores, 40)
    cdf, sizes = group_cdfs(scores, sensitive, 3, grid)
    replicates = score_replicates(score_data(targets, scores, sensitive), 200, np.random.default_rng(4), grid=grid)
    low, high = abcc_band(cdf, sizes, replicates["cdf"], grid, 0.95)
    inner = grid < 1
    scale = np.sqrt(
        (cdf * sizes[:, None] + 1)
        / (sizes[:, None] + 2)
        * (1 - (cdf * sizes[:, None] + 1) / (sizes[:, None] + 2))
        / sizes[:, None]
    )
    t = np.max(np.abs(replicates["cdf"][:, :, inner] - cdf[:, inner]) / scale[:, inner], axis=(1, 2))
    c = max(float(np.quantile(t, 0.95)), stats.norm.ppf(0.975))
    assert (low, high) == pytest.approx(slow_abcc_band(cdf, sizes, c, grid), abs=TOL)
    exact = max(
        wasserstein_distance(scores[sensitive == a], scores[sensitive == b])
        for a, b in itertools.combinations(range(3), 2)
    )
    assert low <= exact <= high


# --- coverage, small ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scenario", [ScoreScenario(2, n=2000), ScoreScenario(3, shift=0.4, n=2000)], ids=lambda s: s.label
)
def test_intervals_keep_their_level_in_a_small_simulation(scenario: ScoreScenario) -> None:
    """150 datasets, 150 replicates, nominal 95 %: each interval covers the truth in ≥ 88 % of them.

    (binomial(150, 0.95) falls below 0.88 with probability 0.2 %; the full table is
    ``benchmarks/score_interval_coverage.py``.)
    """
    result = run_case(scenario, n_datasets=150, n_boot=150, seed=scenario.n_groups)
    for name, value in scenario.truth().items():
        assert coverage(result.bands[name], value) >= 0.88, (name, coverage(result.bands[name], value))


# --- the benchmarks run ----------------------------------------------------------------------------


def run_benchmark(name: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_the_speed_benchmark_checks_values_and_prints_the_ratio() -> None:
    out = run_benchmark("score_metrics.py", "--rows", "4000", "--n-boot", "20", "--sklearn-boot", "2")
    assert "values equal sklearn" in out and "speed-up" in out


def test_the_coverage_benchmark_prints_a_table_with_its_worst_cell() -> None:
    out = run_benchmark("score_interval_coverage.py", "--datasets", "4", "--n-boot", "20", "--rows", "600")
    assert "| case |" in out and "worst cell" in out
