"""The protocol folder's result tables: ``results.json``, the record, and ``results.csv``, derived from it.

``results.json`` holds ``{"runs": [...]}``, each run with its :data:`~ceco_fair.layout.RUN_COLUMNS`,
``status`` and ``metrics``; ``results.csv`` has one row per run × metric with the columns
:data:`~ceco_fair.layout.RESULTS_COLUMNS`. See :mod:`ceco_fair.layout`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ceco_fair.io import atomic_write_json, atomic_write_text
from ceco_fair.layout import RESULTS_COLUMNS, RESULTS_CSV, RESULTS_JSON, tidy_rows


def tidy_results(runs: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per run × metric (runs without metrics contribute no rows)."""
    return pd.DataFrame(tidy_rows(runs), columns=list(RESULTS_COLUMNS))


def write_results(folder: Path, runs: list[dict[str, Any]]) -> None:
    """Write ``results.json`` for ``runs`` and ``results.csv`` derived from it, atomically."""
    atomic_write_json(folder / RESULTS_JSON, {"runs": runs})
    atomic_write_text(folder / RESULTS_CSV, tidy_results(runs).to_csv(index=False))


def read_results(folder: Path) -> list[dict[str, Any]]:
    """The runs recorded in ``folder/results.json`` (an empty list if there is none)."""
    path = folder / RESULTS_JSON
    if not path.exists():
        return []
    runs: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8")).get("runs", [])
    return runs
