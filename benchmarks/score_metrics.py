"""Score metrics with a 1,000-replicate stratified bootstrap vs a loop over scikit-learn's roc_auc_score.

1. Values on the data itself: ``score_metrics`` against scikit-learn (AUROC overall and per group),
   scipy (ABCC: Wasserstein-1 of every pair) and numpy loops (ECE per bin, mean scores).
2. Time: every score metric of ``score_metrics(n_boot=...)`` — the stratified row bootstrap of all
   of them, DeLong, bands and p-values — against resampling each group's rows and calling
   ``roc_auc_score`` per group and replicate (the AUROC part alone), timed on ``--sklearn-boot``
   replicates and scaled linearly to ``--n-boot``.

Run from the repository root: ``PYTHONPATH=. python benchmarks/score_metrics.py``.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import special
from scipy.stats import wasserstein_distance
from sklearn.metrics import roc_auc_score

from ceco_fair.metrics.score_intervals import score_metrics


def synthetic(n: int, n_groups: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Binary targets, groups of different sizes, base rates and separations; float32 scores."""
    rng = np.random.default_rng(seed)
    sensitive = rng.choice(n_groups, size=n, p=rng.dirichlet(np.full(n_groups, 4.0)))
    targets = (rng.random(n) < rng.uniform(0.2, 0.6, n_groups)[sensitive]).astype(np.int64)
    latent = rng.standard_normal(n) + rng.uniform(0.5, 1.5, n_groups)[sensitive] * (2 * targets - 1)
    return targets, special.expit(latent).astype(np.float32), sensitive


def numpy_ece(targets: np.ndarray, scores: np.ndarray) -> float:
    """Top-label ECE with a loop over the 10 bins (``b/10 ≤ c < (b + 1)/10``, 1.0 in the last)."""
    predicted = (scores > 0.5).astype(np.int64)
    confidence = np.where(predicted == 1, scores, 1.0 - scores)
    correct = predicted == targets
    total = 0.0
    for b in range(10):
        member = (confidence >= b / 10) & ((confidence < (b + 1) / 10) | ((b == 9) & (confidence == 1.0)))
        if member.any():
            total += member.mean() * abs(confidence[member].mean() - correct[member].mean())
    return total


def reference_values(targets: np.ndarray, scores: np.ndarray, sensitive: np.ndarray) -> dict[str, float]:
    groups = np.unique(sensitive)
    aucs = [roc_auc_score(targets[sensitive == g], scores[sensitive == g]) for g in groups]
    eces = [numpy_ece(targets[sensitive == g], scores[sensitive == g]) for g in groups]
    means = [scores[sensitive == g].mean() for g in groups]
    pairs = itertools.combinations(groups, 2)
    return {
        "auroc": roc_auc_score(targets, scores),
        "worst_group_auroc": min(aucs),
        "auroc_gap": max(aucs) - min(aucs),
        "ece": numpy_ece(targets, scores),
        "ece_gap": max(eces) - min(eces),
        "score_gap": max(means) - min(means),
        "abcc": max(wasserstein_distance(scores[sensitive == a], scores[sensitive == b]) for a, b in pairs),
    }


def timed(function: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall-clock and CPU seconds of one call, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def sklearn_loop(targets: np.ndarray, scores: np.ndarray, sensitive: np.ndarray, n_boot: int, seed: int) -> None:
    """``n_boot`` replicates: resample each group's rows, roc_auc_score per group."""
    rng = np.random.default_rng(seed)
    members = [(targets[sensitive == g], scores[sensitive == g]) for g in np.unique(sensitive)]
    for _ in range(n_boot):
        for t, s in members:
            rows = rng.integers(0, t.size, t.size)
            roc_auc_score(t[rows], s[rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--n-boot", type=int, default=1_000)
    parser.add_argument("--sklearn-boot", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    targets, scores, sensitive = synthetic(args.rows, args.groups, args.seed)

    point = score_metrics(targets, scores, sensitive).values
    expected = reference_values(targets, scores.astype(np.float64), sensitive)
    worst = max(abs(point[name] - value) for name, value in expected.items())
    assert worst <= 1e-12, f"values differ by {worst}"
    print(f"1) {args.rows:,} rows, {args.groups} groups: values equal sklearn / scipy / numpy loops")
    print(f"   largest |difference|: {worst:.1e}")
    for name, _value in expected.items():
        print(f"     {name:20s} {point[name]:.6f}")

    # the loop is timed in two halves, before and after ours, so that a change of load hits both sides
    half = max(1, args.sklearn_boot // 2)
    before = timed(lambda: sklearn_loop(targets, scores, sensitive, half, args.seed))
    wall, cpu, result = timed(lambda: score_metrics(targets, scores, sensitive, n_boot=args.n_boot, seed=args.seed))
    after = timed(lambda: sklearn_loop(targets, scores, sensitive, half, args.seed + 1))
    scale = args.n_boot / (2 * half)
    loop_wall, loop_cpu = scale * (before[0] + after[0]), scale * (before[1] + after[1])
    print(f"\n2) bootstrap, {args.n_boot:,} replicates stratified by group (wall-clock / CPU seconds)")
    print(f"   ceco_fair score_metrics, every score metric   : {wall:8.2f} / {cpu:8.2f}")
    print(
        f"   sklearn roc_auc_score per group and replicate : {loop_wall:8.1f} / {loop_cpu:8.1f}"
        f"   ({2 * half} replicates measured, scaled to {args.n_boot:,})"
    )
    print(
        f"   speed-up                                      : {loop_wall / wall:7.1f}x / {loop_cpu / cpu:6.1f}x"
        "   (target >= 20x)"
    )
    print("   95% intervals:")
    for name in ("auroc", "worst_group_auroc", "auroc_gap", "ece_gap", "score_gap", "abcc"):
        values = result.values
        print(f"     {name:20s} {values[name]:.4f} [{values[name + '_ci_low']:.4f}, {values[name + '_ci_high']:.4f}]")


if __name__ == "__main__":
    main()
