"""Count bootstrap: same distribution as row resampling, intervals that cover."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ceco_fair.metrics import bootstrap as bootstrap_module
from ceco_fair.metrics import group_metrics, group_table, metric_names
from ceco_fair.metrics.bootstrap import bootstrap_statistic, percentile_interval, resample_counts
from ceco_fair.metrics.confusion import group_confusion
from ceco_fair.metrics.group import metrics_from_counts
from ceco_fair.metrics.intervals import spread_names


def population_sample(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows from a fixed population: 3 groups (50/30/20 %) with different rates."""
    sensitive = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    y_true = (rng.random(n) < np.array([0.3, 0.5, 0.6])[sensitive]).astype(np.int64)
    tpr = np.array([0.9, 0.7, 0.8])[sensitive]
    fpr = np.array([0.1, 0.3, 0.2])[sensitive]
    y_pred = (rng.random(n) < np.where(y_true == 1, tpr, fpr)).astype(np.int64)
    return y_true, y_pred, sensitive


def test_resample_counts_keeps_shape_total_and_expectation() -> None:
    counts = np.array([[[5, 1], [2, 7]], [[0, 3], [4, 0]]], dtype=np.int64)
    draws = resample_counts(counts, 4000, np.random.default_rng(0))
    assert draws.shape == (4000, 2, 2, 2)
    assert np.all(draws.sum(axis=(1, 2, 3)) == counts.sum())
    assert np.all(draws[:, 1, 0, 0] == 0) and np.all(draws[:, 1, 1, 1] == 0)  # empty cells stay empty
    # E[draw] = counts; the standard error of each cell mean is below sqrt(N / B) / 2
    np.testing.assert_allclose(draws.mean(axis=0), counts, atol=4 * math.sqrt(22 / 4000))
    again = resample_counts(counts, 4000, np.random.default_rng(0))
    np.testing.assert_array_equal(draws, again)


def test_count_bootstrap_matches_row_resampling() -> None:
    rng = np.random.default_rng(1)
    y_true, y_pred, sensitive = population_sample(400, rng)
    n_boot = 4000
    counts = group_confusion(y_true, y_pred, sensitive, binary=True).counts
    by_counts = bootstrap_statistic(
        counts, lambda c: metrics_from_counts(c, rates=True), n_boot, np.random.default_rng(2)
    )
    # row resampling, metrics straight from the resampled rows
    row_dp = np.empty(n_boot)
    row_accuracy = np.empty(n_boot)
    for b in range(n_boot):
        rows = rng.integers(0, len(y_true), size=len(y_true))
        t, p, s = y_true[rows], y_pred[rows], sensitive[rows]
        rates = [p[s == g].mean() for g in np.unique(s)]
        row_dp[b] = max(rates) - min(rates)
        row_accuracy[b] = np.mean(t == p)
    for name, row_values in (
        ("demographic_parity_difference", row_dp),
        ("accuracy", row_accuracy),
    ):
        count_values = by_counts[name]
        mean_se = math.sqrt((count_values.var() + row_values.var()) / n_boot)
        assert abs(count_values.mean() - row_values.mean()) < 4 * mean_se, name
        # sd of a sample sd is about sd / sqrt(2 B); allow 4 of them on the ratio
        assert count_values.std() / row_values.std() == pytest.approx(1.0, abs=4 * math.sqrt(2.0 / (2 * n_boot))), name
        assert stats.ks_2samp(count_values, row_values).pvalue > 1e-3, name


def test_percentile_interval_equals_numpy_quantile_and_skips_nan() -> None:
    samples = np.random.default_rng(3).normal(size=(501, 3))
    low, high = percentile_interval(samples, 0.9)
    np.testing.assert_allclose(low, np.quantile(samples, 0.05, axis=0), atol=1e-15)
    np.testing.assert_allclose(high, np.quantile(samples, 0.95, axis=0), atol=1e-15)
    samples[:100, 0] = np.nan
    samples[:, 2] = np.nan
    low, high = percentile_interval(samples, 0.9)
    assert low[0] == pytest.approx(np.quantile(samples[100:, 0], 0.05))
    assert math.isnan(low[2]) and math.isnan(high[2])


def test_chunked_bootstrap_returns_all_resamples(monkeypatch: pytest.MonkeyPatch) -> None:
    counts = np.array([[[3, 1], [2, 4]], [[5, 2], [1, 6]]], dtype=np.int64)
    monkeypatch.setattr(bootstrap_module, "_VALUES_PER_CHUNK", 8 * 64)  # 64 resamples per chunk
    values = bootstrap_statistic(
        counts,
        lambda c: {"total": c.sum(axis=(1, 2, 3)).astype(float)},
        1000,
        np.random.default_rng(0),
    )
    assert values["total"].shape == (1000,)
    np.testing.assert_array_equal(values["total"], 24.0)


def test_group_metrics_intervals_are_seeded_and_ordered() -> None:
    y_true, y_pred, sensitive = population_sample(500, np.random.default_rng(4))
    result = group_metrics(y_true, y_pred, sensitive, n_boot=300, seed=7)
    assert list(result) == [
        key
        for name in metric_names()
        for key in (name, f"{name}_ci_low", f"{name}_ci_high", f"{name}_p_value")
        if not key.endswith("_p_value") or name in spread_names()
    ]
    for name in metric_names():
        assert result[f"{name}_ci_low"] <= result[f"{name}_ci_high"]
    assert result["accuracy_ci_low"] < result["accuracy"] < result["accuracy_ci_high"]
    assert group_metrics(y_true, y_pred, sensitive, n_boot=300, seed=7) == result
    other_seed = group_metrics(y_true, y_pred, sensitive, n_boot=300, seed=8)
    assert other_seed["accuracy_ci_low"] != result["accuracy_ci_low"]
    narrower = group_metrics(y_true, y_pred, sensitive, n_boot=300, seed=7, confidence=0.5)
    assert narrower["accuracy_ci_high"] - narrower["accuracy_ci_low"] < (
        result["accuracy_ci_high"] - result["accuracy_ci_low"]
    )


def test_group_table_intervals_bracket_the_group_rates() -> None:
    y_true, y_pred, sensitive = population_sample(800, np.random.default_rng(5))
    table = group_table(y_true, y_pred, sensitive, n_boot=400)
    for rate in ("accuracy", "tpr", "fpr", "selection_rate"):
        assert np.all(table[f"{rate}_ci_low"] <= table[rate])
        assert np.all(table[rate] <= table[f"{rate}_ci_high"])
        assert np.all(table[f"{rate}_ci_low"] < table[f"{rate}_ci_high"])


def test_intervals_cover_the_population_value() -> None:
    """200 datasets from a known population, groups apart: 95 % intervals cover ~95 % of the time.

    ``accuracy`` has a percentile interval (about 95 %); the others come from simultaneous
    bands, which are conservative away from ties (at least 95 %).
    """
    truth = {
        "accuracy": (0.5 * (0.3 * 0.9 + 0.7 * 0.9) + 0.3 * (0.5 * 0.7 + 0.5 * 0.7)
                     + 0.2 * (0.6 * 0.8 + 0.4 * 0.8)),
        "equal_opportunity_difference": 0.9 - 0.7,
        "equalized_odds_difference": max(0.9 - 0.7, 0.3 - 0.1),
        "demographic_parity_difference": (0.6 * 0.8 + 0.4 * 0.2) - (0.3 * 0.9 + 0.7 * 0.1),
        "worst_group_accuracy": 0.7,  # both cells of group 1 (TPR 0.7, 1 − FPR 0.7)
        "eo_fscl": (0.2 + 0.1 + 0.1) / 3,  # same gaps in both classes
    }  # fmt: skip
    rng = np.random.default_rng(6)
    n_datasets = 200
    covered = dict.fromkeys(truth, 0)
    for _ in range(n_datasets):
        y_true, y_pred, sensitive = population_sample(1500, rng)
        result = group_metrics(y_true, y_pred, sensitive, n_boot=500, seed=int(rng.integers(1 << 31)))
        for name, value in truth.items():
            covered[name] += result[f"{name}_ci_low"] <= value <= result[f"{name}_ci_high"]
    for name, hits in covered.items():
        # binomial(200, 0.95): 0.89 and 0.99 lie about 3.9 and 2.6 standard errors away
        assert 0.89 <= hits / n_datasets, (name, hits)
        if name == "accuracy":
            assert hits / n_datasets <= 0.99, (name, hits)
