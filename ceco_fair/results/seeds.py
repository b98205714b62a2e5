"""Statistics over seeds: one mean and one interval policy for the report, the summary and the comparisons.

The policy (:func:`seed_interval`), for n finite values of one quantity, one per seed:

- n ≥ 2: Student's t interval, mean ± t_{(1+c)/2, n−1} · s / √n (s the sample standard deviation,
  c the confidence level). With two seeds it is wide (t_{0.975, 1} = 12.7), as it should be: two runs
  say little. Paired differences between methods (``comparisons.csv``) are one quantity per seed too
  and get the same interval (:func:`paired_interval`).
- n = 1: the run's own bootstrap interval when it has one (group metrics), else none.
- n = 0: no value.

Torch-free.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from scipy import stats  # type: ignore[import-untyped]

DEFAULT_CONFIDENCE: Final = 0.95

IntervalKind = Literal["t", "bootstrap", "single", "none"]


@dataclass(frozen=True)
class Interval:
    """A mean over seeds with its interval at the report's confidence level.

    Attributes:
        mean: Mean of the finite values (NaN when there are none).
        low: Lower end of the interval.
        high: Upper end of the interval.
        n: Number of finite values (seeds).
        kind: ``"t"`` Student-t interval (n ≥ 2), ``"bootstrap"`` the single run's own bootstrap
            CI (n = 1), ``"single"`` one value without an interval, ``"none"`` no value.

    """

    mean: float
    low: float
    high: float
    n: int
    kind: IntervalKind


def interval_description(kind: str, confidence: float = DEFAULT_CONFIDENCE) -> str:
    """What an interval of ``kind`` is, for captions and tables (``"95% t-interval"``)."""
    level = f"{100 * confidence:g}%"
    return {
        "t": f"{level} t-interval",
        "bootstrap": f"{level} bootstrap, 1 run",
        "single": "1 run, no interval",
        "none": "no value",
    }[kind]


def seed_interval(
    values: Iterable[float],
    *,
    ci: tuple[float, float] | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Interval:
    """Summarise one quantity over seeds: mean and an interval at level ``confidence``.

    With n ≥ 2 finite values the interval is mean ± t_{(1+confidence)/2, n−1} · s / √n (s the sample
    standard deviation); with n = 1 it is the run's own bootstrap CI when ``ci`` holds one, else
    the value itself (kind ``single``). See the module's policy.

    Args:
        values: The quantity, one value per seed; NaN values are ignored.
        ci: The bootstrap interval (low, high) of the run, used only when one value is finite.
        confidence: The t-interval's level.

    Returns:
        The summary; all-NaN with kind ``"none"`` when no value is finite.

    """
    finite = np.array([v for v in values if math.isfinite(v)], dtype=np.float64)
    n = int(finite.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, "none")
    mean = float(finite.mean())
    if n == 1:
        if ci is not None and all(math.isfinite(bound) for bound in ci):
            return Interval(mean, float(ci[0]), float(ci[1]), 1, "bootstrap")
        return Interval(mean, mean, mean, 1, "single")
    quantile = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1))
    half = quantile * float(finite.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, "t")


def paired_interval(differences: Sequence[float], confidence: float) -> tuple[float, float, float]:
    """Mean of paired differences (one per seed) and its interval by :func:`seed_interval`.

    Returns:
        ``(mean, low, high)``; NaN bounds with fewer than two differences (one pair decides nothing),
        all NaN without any.
    """
    interval = seed_interval(differences, confidence=confidence)
    if interval.kind != "t":
        return interval.mean, math.nan, math.nan
    return interval.mean, interval.low, interval.high
