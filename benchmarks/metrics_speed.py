"""Group metrics from confusion counts vs fairlearn, side by side in one run.

1. Every metric of ``group_metrics`` on 1,000,000 predictions with 4 groups, against fairlearn
   computing the same values (its difference functions and ``MetricFrame``s).
2. A 1,000-resample bootstrap on 100,000 predictions: the multinomial count bootstrap against
   fairlearn's ``MetricFrame(n_boot=...)`` row bootstrap, timed on fewer resamples and
   extrapolated linearly (it is a Python loop over resamples).

Run from the repository root: ``PYTHONPATH=. python benchmarks/metrics_speed.py``.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score

from ceco_fair.metrics import group_metrics


def synthetic(n: int, n_groups: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sensitive = rng.choice(n_groups, size=n, p=rng.dirichlet(np.ones(n_groups)))
    y_true = (rng.random(n) < rng.uniform(0.2, 0.8, n_groups)[sensitive]).astype(np.int64)
    flip = rng.random(n) < rng.uniform(0.05, 0.3, n_groups)[sensitive]
    y_pred = np.where(flip, 1 - y_true, y_true)
    return y_true, y_pred, sensitive


def best_time(function: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


RATE_METRICS = {
    "accuracy": accuracy_score,
    "tpr": true_positive_rate,
    "fpr": false_positive_rate,
    "selection_rate": selection_rate,
}


def fairlearn_all(y_true: np.ndarray, y_pred: np.ndarray, sensitive: np.ndarray) -> dict[str, float]:
    """The same six metrics with fairlearn, used as efficiently as it allows.

    One MetricFrame over s gives every rate (and so DP, EOdds, EOpp through ``difference``,
    which is what ``demographic_parity_difference`` & co. compute, one frame each); one over
    the (y, s) cells gives the worst-group accuracy and FSCL's EO.
    """
    by_group = MetricFrame(metrics=RATE_METRICS, y_true=y_true, y_pred=y_pred, sensitive_features=sensitive)
    spread = by_group.difference()
    cells = MetricFrame(
        metrics=accuracy_score,
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=pd.DataFrame({"y": y_true, "s": sensitive}),
    ).by_group
    gaps_per_class = []
    for label in np.unique(y_true):
        row = cells.loc[label].dropna()
        gaps = [abs(a - b) for a, b in itertools.combinations(row.to_numpy(), 2)]
        if gaps:
            gaps_per_class.append(np.mean(gaps))
    return {
        "accuracy": float(by_group.overall["accuracy"]),
        "worst_group_accuracy": float(cells.min()),
        "demographic_parity_difference": float(spread["selection_rate"]),
        "equalized_odds_difference": float(max(spread["tpr"], spread["fpr"])),
        "equal_opportunity_difference": float(spread["tpr"]),
        "eo_fscl": float(np.mean(gaps_per_class)),
    }


def check_against_fairlearn_functions(
    y_true: np.ndarray, y_pred: np.ndarray, sensitive: np.ndarray, ours: dict[str, float]
) -> None:
    """The spreads also equal fairlearn's own difference functions (not timed)."""
    for name, function in (
        ("demographic_parity_difference", demographic_parity_difference),
        ("equalized_odds_difference", equalized_odds_difference),
        ("equal_opportunity_difference", equal_opportunity_difference),
    ):
        value = function(y_true, y_pred, sensitive_features=sensitive)
        assert abs(ours[name] - value) <= 1e-12, name


def compare_point_metrics(n: int, n_groups: int, repeats: int) -> None:
    y_true, y_pred, sensitive = synthetic(n, n_groups, seed=0)
    ours_time, ours = best_time(lambda: group_metrics(y_true, y_pred, sensitive), repeats)
    theirs_time, theirs = best_time(lambda: fairlearn_all(y_true, y_pred, sensitive), 1)
    worst = max(abs(ours[name] - value) for name, value in theirs.items())
    assert worst <= 1e-12, f"values differ by {worst}"
    check_against_fairlearn_functions(y_true, y_pred, sensitive, ours)
    print(f"\n1) all group metrics, {n:,} predictions, {n_groups} groups")
    print(f"   ceco_fair group_metrics : {ours_time * 1e3:9.1f} ms (best of {repeats})")
    print(f"   fairlearn (same values) : {theirs_time * 1e3:9.1f} ms")
    print(f"   speed-up                : {theirs_time / ours_time:9.1f}x   (target >= 20x)")
    print(f"   largest |difference|    : {worst:.1e}")
    for name, value in ours.items():
        print(f"     {name:32s} {value:.6f}")


def compare_bootstrap(n: int, n_groups: int, n_boot: int, fairlearn_boot: int) -> None:
    y_true, y_pred, sensitive = synthetic(n, n_groups, seed=1)
    ours_time, ours = best_time(lambda: group_metrics(y_true, y_pred, sensitive, n_boot=n_boot, seed=0), 3)
    start = time.perf_counter()
    frame = MetricFrame(
        metrics=RATE_METRICS,
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=sensitive,
        n_boot=fairlearn_boot,
        ci_quantiles=[0.025, 0.975],
        random_state=0,
    )
    theirs_time = time.perf_counter() - start
    extrapolated = theirs_time * n_boot / fairlearn_boot
    print(f"\n2) bootstrap, {n:,} predictions, {n_groups} groups, {n_boot:,} resamples")
    print(f"   ceco_fair group_metrics(n_boot={n_boot}) : {ours_time:8.3f} s (target <= 1 s)")
    print(
        f"   fairlearn MetricFrame(n_boot={fairlearn_boot})     : {theirs_time:8.3f} s measured, "
        f"{extrapolated:8.1f} s extrapolated linearly to {n_boot:,} resamples"
    )
    print(f"   speed-up (extrapolated)                 : {extrapolated / ours_time:8.0f}x")
    low, high = frame.overall_ci
    dp_low, dp_high = frame.difference_ci()
    print(
        "   95% intervals (ours: percentile for accuracy, simultaneous bands for the spread;"
        " fairlearn's: percentile, from its fewer resamples):"
    )
    for name, our_name, theirs_pair in (
        ("accuracy", "accuracy", (low["accuracy"], high["accuracy"])),
        (
            "demographic parity",
            "demographic_parity_difference",
            (dp_low["selection_rate"], dp_high["selection_rate"]),
        ),
    ):
        print(
            f"     {name:20s} [{ours[our_name + '_ci_low']:.4f}, {ours[our_name + '_ci_high']:.4f}]"
            f"   [{theirs_pair[0]:.4f}, {theirs_pair[1]:.4f}]"
        )
    assert ours["accuracy_ci_low"] < ours["accuracy"] < ours["accuracy_ci_high"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--boot-rows", type=int, default=100_000)
    parser.add_argument("--n-boot", type=int, default=1_000)
    parser.add_argument("--fairlearn-boot", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    compare_point_metrics(args.rows, args.groups, repeats=5)
    compare_bootstrap(args.boot_rows, args.groups, args.n_boot, args.fairlearn_boot)


if __name__ == "__main__":
    main()
