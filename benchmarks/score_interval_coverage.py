"""Coverage and width of the score-metric intervals on simulated data with known truth.

Simulated scores (``tests/score_simulation.py``): binary target, latent ``N(±1, 1)`` through a
sigmoid (miscalibrated), every group alike or group 0's positives shifted 0.4 lower (zero and
non-zero disparity in AUROC, ECE, mean score and score distribution); equal group sizes or group 0
holding 10% of the rows; 2 and 4 groups. For each case it draws ``--datasets`` datasets of
``--rows`` rows, runs ``score_metrics`` with ``--n-boot`` replicates on each, and prints:

1. coverage of the nominal 95% intervals (for the gaps with a per-group replicate, the percentile
   interval of the gap's replicates → the reported band), and the worst cell of the reported ones;
2. their mean widths;
3. the plug-in bias (mean estimate against the truth) and the share of p-values below 0.05.

Run from the repository root: ``PYTHONPATH=. python benchmarks/score_interval_coverage.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from score_simulation import NAMES, ScoreCase, ScoreScenario, coverage, mean_width, run_case

SHORT = {
    "worst_group_auroc": "worst-group AUROC",
    "auroc_gap": "AUROC gap",
    "ece_gap": "ECE gap",
    "score_gap": "score gap",
    "abcc": "ABCC",
}


def scenarios(rows: int) -> list[ScoreScenario]:
    return [ScoreScenario(g, shift, share, n=rows) for g in (2, 4) for shift in (0.0, 0.4) for share in (None, 0.1)]


def header(first: str, names: tuple[str, ...]) -> str:
    cells = [first, *(SHORT[name] for name in names)]
    return "| " + " | ".join(cells) + " |\n|" + "---|" * len(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=400)
    parser.add_argument("--n-boot", type=int, default=400)
    parser.add_argument("--rows", type=int, default=4_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    results: list[tuple[ScoreScenario, ScoreCase]] = []
    for index, scenario in enumerate(scenarios(args.rows)):
        results.append((scenario, run_case(scenario, args.datasets, args.n_boot, seed=args.seed + index)))
    elapsed = time.perf_counter() - start
    print(
        f"{args.datasets} datasets of {args.rows:,} rows per case, {args.n_boot} replicates, nominal 95% "
        f"({elapsed:.0f} s)\n"
    )

    print("Coverage, percentile → reported interval (reported only where the gap has no percentile column)\n")
    print(header("case", NAMES))
    worst = (1.0, "", "")
    for scenario, result in results:
        truth = scenario.truth()
        cells = []
        for name in NAMES:
            covered = coverage(result.bands[name], truth[name])
            worst = min(worst, (covered, scenario.label, name))
            before = f"{coverage(result.percentile[name], truth[name]):.0%} → " if name in result.percentile else ""
            cells.append(f"{before}{covered:.1%}")
        print(f"| {scenario.label} | " + " | ".join(cells) + " |")
    print(f"\nworst cell: {worst[0]:.1%} ({SHORT[worst[2]]}, {worst[1]})")

    print("\nMean width of the reported intervals\n")
    print(header("case", NAMES))
    for scenario, result in results:
        print(f"| {scenario.label} | " + " | ".join(f"{mean_width(result.bands[n]):.4f}" for n in NAMES) + " |")

    print("\nPlug-in estimate: mean over datasets (truth)\n")
    print(header("case", NAMES))
    for scenario, result in results:
        truth = scenario.truth()
        cells = [f"{np.mean(result.estimates[n]):.4f} ({truth[n]:.4f})" for n in NAMES]
        print(f"| {scenario.label} | " + " | ".join(cells) + " |")

    tested = tuple(name for name in NAMES if name != "worst_group_auroc")
    print("\nShare of p-values below 0.05 (at no disparity: the test's size)\n")
    print(header("case", tested))
    for scenario, result in results:
        print(f"| {scenario.label} | " + " | ".join(f"{np.mean(result.p_values[n] < 0.05):.1%}" for n in tested) + " |")


if __name__ == "__main__":
    main()
