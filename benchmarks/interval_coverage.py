"""Coverage and width of the group-fairness intervals: percentile (before) vs simultaneous bands (after).

Simulated data with known rates (``tests/interval_simulation.py``): 6,000 predictions, binary
target, every group at TPR 0.8 / FPR 0.2 (so all groups tie), or group 0 five points lower;
equal group sizes or group 0 holding 10% of the rows; 2, 3 and 5 groups. For each case it draws
``--datasets`` count tables, bootstraps each ``--n-boot`` times (the multinomial count
bootstrap), and prints three markdown tables:

1. coverage of the nominal 95% intervals, percentile → simultaneous bands;
2. their mean widths, percentile / bands;
3. the plug-in bias (mean estimate against the truth) and the share of homogeneity p-values
   below 0.05 with its asymptotic power.

Run from the repository root: ``PYTHONPATH=. python benchmarks/interval_coverage.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from interval_simulation import (
    CaseResult,
    Scenario,
    coverage,
    mean_width,
    p_value_power,
    run_case,
)

from ceco_fair.metrics.intervals import interval_names, spread_names

SHORT = {
    "worst_group_accuracy": "worst-group acc.",
    "demographic_parity_difference": "DP diff.",
    "equalized_odds_difference": "EOdds diff.",
    "equal_opportunity_difference": "EOpp diff.",
    "eo_fscl": "eo_fscl",
}


def scenarios() -> list[Scenario]:
    return [Scenario(g, gap, share) for g in (2, 3, 5) for gap in (0.0, 0.05) for share in (None, 0.1)]


def header(first: str, names: tuple[str, ...]) -> str:
    cells = [first, *(SHORT[name] for name in names)]
    return "| " + " | ".join(cells) + " |\n|" + "---|" * len(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--n-boot", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    names = interval_names(rates=True)
    start = time.perf_counter()
    results: list[tuple[Scenario, CaseResult]] = []
    for index, scenario in enumerate(scenarios()):
        results.append((scenario, run_case(scenario, args.datasets, args.n_boot, seed=args.seed + index)))
    elapsed = time.perf_counter() - start
    print(f"{args.datasets} datasets per case, {args.n_boot} resamples, nominal 95% ({elapsed:.0f} s)\n")

    print("Coverage, percentile → simultaneous bands\n")
    print(header("case", names))
    for scenario, result in results:
        truth = scenario.truth()
        cells = [
            f"{coverage(result.percentile[n], truth[n]):.0%} → {coverage(result.simultaneous[n], truth[n]):.0%}"
            for n in names
        ]
        print(f"| {scenario.label} | " + " | ".join(cells) + " |")

    print("\nMean width, percentile / simultaneous bands\n")
    print(header("case", names))
    for scenario, result in results:
        cells = [f"{mean_width(result.percentile[n]):.3f} / {mean_width(result.simultaneous[n]):.3f}" for n in names]
        print(f"| {scenario.label} | " + " | ".join(cells) + " |")

    print("\nPlug-in estimate: mean over datasets (truth)\n")
    print(header("case", names))
    for scenario, result in results:
        truth = scenario.truth()
        cells = [f"{np.mean(result.estimates[n]):.4f} ({truth[n]:.4f})" for n in names]
        print(f"| {scenario.label} | " + " | ".join(cells) + " |")

    print("\nShare of p-values below 0.05 (asymptotic chi-square power)\n")
    print(header("case", spread_names()))
    for scenario, result in results:
        cells = [f"{np.mean(result.p_values[n] < 0.05):.1%} ({p_value_power(scenario, n):.1%})" for n in spread_names()]
        print(f"| {scenario.label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
