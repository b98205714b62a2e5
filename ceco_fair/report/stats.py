"""Summaries over seeds: a mean and its interval, at the protocol's confidence level."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
from scipy import stats  # type: ignore[import-untyped]

DEFAULT_CONFIDENCE: Final = 0.95

IntervalKind = Literal["t", "range", "bootstrap", "single", "none"]


@dataclass(frozen=True)
class Interval:
    """A mean over seeds with its interval at the report's confidence level.

    Attributes:
        mean: Mean of the finite values (NaN when there are none).
        low: Lower end of the interval.
        high: Upper end of the interval.
        n: Number of finite values (seeds).
        kind: ``"t"`` Student-t interval (n ≥ 3), ``"range"`` min–max (n = 2),
            ``"bootstrap"`` the single run's own bootstrap CI (n = 1), ``"single"`` one value
            without an interval, ``"none"`` no value.

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
        "range": "min–max",
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

    With n ≥ 3 finite values the interval is mean ± t_{(1+confidence)/2, n−1} · s / √n (s the sample
    standard deviation); with n = 2 it is the min–max range (a t-interval on one degree of
    freedom is twelve standard errors wide); with n = 1 it is the run's own bootstrap CI when
    ``ci`` holds one, else the value itself.

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
    if n == 2:
        return Interval(mean, float(finite.min()), float(finite.max()), 2, "range")
    quantile = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1))
    half = quantile * float(finite.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, "t")


def summarize(table: pd.DataFrame, keys: Sequence[str], *, confidence: float = DEFAULT_CONFIDENCE) -> pd.DataFrame:
    """Summarise a tidy table over seeds with :func:`seed_interval`.

    Args:
        table: Tidy rows with the ``keys`` columns, ``value`` and optionally ``ci_low`` and
            ``ci_high`` (the bootstrap interval of each row).
        keys: Columns that identify one summarised quantity (e.g. ``method, condition,
            metric``); rows sharing them are the seeds.
        confidence: The level of the t-intervals.

    Returns:
        One row per distinct key, in order of first appearance: the ``keys`` columns plus
        ``mean, low, high, n, kind``.

    """
    columns = [*keys, "mean", "low", "high", "n", "kind"]
    rows: list[list[Any]] = []
    for key, group in table.groupby(list(keys), sort=False, dropna=False):
        key_values = list(key) if isinstance(key, tuple) else [key]
        ci: tuple[float, float] | None = None
        if len(group) == 1 and "ci_low" in group:
            ci = (float(group["ci_low"].iloc[0]), float(group["ci_high"].iloc[0]))
        interval = seed_interval(group["value"].astype(float), ci=ci, confidence=confidence)
        rows.append([*key_values, interval.mean, interval.low, interval.high, interval.n, interval.kind])
    summary: pd.DataFrame = pd.DataFrame(rows, columns=columns)
    return summary
