"""The report's tables over seeds: :func:`summarize` groups a tidy table and applies the seed interval."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from ceco_fair.results.seeds import DEFAULT_CONFIDENCE, seed_interval


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
