"""One interval policy over seeds, shared by the report, the summary and the comparisons."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ceco_fair.report.stats import summarize
from ceco_fair.results.comparisons import paired_comparisons
from ceco_fair.results.seeds import interval_description, paired_interval, seed_interval
from ceco_fair.summary import seed_summary


def reference(values: list[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Student's t interval, written out: mean ± t · s / √n with s from an explicit sum of squares."""
    n = len(values)
    mean = sum(values) / n
    s = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * s / math.sqrt(n)
    return mean, mean - half, mean + half


@pytest.mark.parametrize("n", [2, 3, 5])
def test_every_reader_gives_the_same_interval(n: int) -> None:
    rng = np.random.default_rng(n)
    base = rng.uniform(0.3, 0.6, n)
    gain = rng.uniform(0.0, 0.1, n)
    runs = [
        {"method": method, "loss": method, "seed": seed, "rho": 0.9, "status": "complete", "metrics": metrics}
        for seed in range(n)
        for method, metrics in (
            ("supcon", {"unbiased_accuracy": float(base[seed])}),
            ("contex", {"unbiased_accuracy": float(base[seed] + gain[seed])}),
        )
    ]
    tidy = pd.DataFrame(
        {
            "method": [run["method"] for run in runs],
            "seed": [run["seed"] for run in runs],
            "rho": 0.9,
            "target": None,
            "sensitive": None,
            "metric": "unbiased_accuracy",
            "value": [run["metrics"]["unbiased_accuracy"] for run in runs],  # type: ignore[index]
        }
    )
    expected = reference(list(base))
    summary = seed_summary(tidy, ["unbiased_accuracy"], 0.95).set_index("method").loc["supcon"]
    report = summarize(tidy.assign(condition="rho=0.9"), ["method", "metric"]).set_index("method").loc["supcon"]
    for row in (summary, report):
        assert row["kind"] == "t" and (row["mean"], row["low"], row["high"]) == pytest.approx(expected, abs=1e-12)
    assert summary["condition"] == "rho=0.9"
    compared = paired_comparisons(runs, kind="bias", baseline="supcon").set_index("metric").loc["unbiased_accuracy"]
    differences = list(base + gain - base)
    assert compared["condition"] == "rho=0.9" and compared["n_seeds"] == n
    assert (compared["mean_difference"], compared["ci_low"], compared["ci_high"]) == pytest.approx(
        reference(differences), abs=1e-12
    )


def test_one_seed_has_no_t_interval() -> None:
    mean, low, high = paired_interval([0.25], 0.95)
    assert mean == 0.25 and math.isnan(low) and math.isnan(high)
    assert all(math.isnan(v) for v in paired_interval([], 0.95))
    assert seed_interval([0.5]).kind == "single"
    assert seed_interval([0.5], ci=(0.4, 0.6)).kind == "bootstrap"


def test_the_policy_is_described_for_each_kind() -> None:
    assert interval_description("t", 0.9) == "90% t-interval"
    assert interval_description("bootstrap") == "95% bootstrap, 1 run"
    assert interval_description("single") == "1 run, no interval"
