"""The protocol folder's result tables: a tidy ``results.csv`` and ``results.json``.

``results.csv`` has one row per run × metric with the columns ``run_id, method, dataset, rho,
target, sensitive, seed, metric, value``; ``results.json`` holds the same runs with their status.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ceco_fair.checkpoint import atomic_write_json, atomic_write_text

RUN_COLUMNS = ("run_id", "method", "dataset", "rho", "target", "sensitive", "seed")
COLUMNS = (*RUN_COLUMNS, "metric", "value")


def _cell(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return "+".join(str(v) for v in value)
    return value


def tidy_results(runs: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per run × metric (runs without metrics contribute no rows)."""
    rows = [
        {
            **{column: _cell(run.get(column)) for column in RUN_COLUMNS},
            "metric": metric,
            "value": value,
        }
        for run in runs
        for metric, value in (run.get("metrics") or {}).items()
    ]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def write_results(folder: Path, runs: list[dict[str, Any]]) -> None:
    """Write ``results.csv`` and ``results.json`` for ``runs`` into ``folder`` atomically."""
    table = tidy_results(runs)
    atomic_write_text(folder / "results.csv", table.to_csv(index=False))
    atomic_write_json(folder / "results.json", {"runs": runs})


def read_results(folder: Path) -> list[dict[str, Any]]:
    """The runs recorded in ``folder/results.json`` (an empty list if there is none)."""
    path = folder / "results.json"
    if not path.exists():
        return []
    runs: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8")).get("runs", [])
    return runs
