"""Parsers of a results folder's files: each returns a typed table or raises a one-line DataError."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import yaml

from ceco_fair.errors import DataError
from ceco_fair.metrics.specs import GROUP_RATES, ci_high_name, ci_low_name
from ceco_fair.results.layout import (
    COMPARISONS_COLUMNS,
    CURVES_COLUMNS,
    FINALS_COLUMN,
    FINALS_RESEED,
    GROUP_TABLE_COLUMNS,
    HISTORY_COLUMNS,
    PAIRED_TRIALS_COLUMNS,
    PRIMARY_READOUT,
    PROJECTION_COLUMNS,
    READOUT_COLUMN,
    SCORE_PREFIX,
    SCORES_COLUMNS,
    SCORES_FILE,
    SELECTION_COLUMN,
    SELECTION_FIXED,
)

MAX_PROJECTION_POINTS: Final = 2_000
TEXT_COLUMNS: Final = (
    "run_id",
    "method",
    "loss",
    "dataset",
    "metric_kind",
    "target",
    "sensitive",
    "metric",
    READOUT_COLUMN,
    "group",
    "group_name",
)

UNREADABLE = "{path} cannot be read: {reason}"
MISSING_COLUMNS = "{path} lacks column(s) {missing}; expected at least {expected}"
NOT_NUMERIC = "{path}: column {column!r} holds {value!r}, expected a number"
WRONG_TYPE = "{path}: {key} is {value!r}, expected {expected}"
EMPTY_MATRIX = "{path} holds no accuracy values, expected a digit × colour table"


def read_text(path: Path) -> str:
    """The UTF-8 text of a file; an unreadable file is a :class:`DataError`."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise unreadable(path, one_line(error)) from error


def read_json(path: Path) -> Any:
    """A parsed JSON file; invalid JSON is a :class:`DataError`."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as error:
        reason = f"invalid JSON ({error.msg} at line {error.lineno})"
        raise unreadable(path, reason) from error


def read_json_mapping(path: Path) -> dict[str, Any]:
    """A JSON file whose top level is an object."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise wrong_type(path=path, key="the top level", value=type(data).__name__, expected="a JSON object")
    return data


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """A YAML file whose top level is a mapping."""
    try:
        data = yaml.safe_load(read_text(path))
    except yaml.YAMLError as error:
        raise unreadable(path, one_line(error)) from error
    if not isinstance(data, dict):
        raise wrong_type(path=path, key="the top level", value=type(data).__name__, expected="a YAML mapping")
    return data


def read_csv(path: Path, required: Sequence[str], numeric: Sequence[str]) -> pd.DataFrame:
    """Read a CSV file, check its columns and make ``numeric`` columns float."""
    table = parse_csv(path, dtype={name: str for name in TEXT_COLUMNS})
    absent = [name for name in required if name not in table.columns]
    if absent:
        raise DataError(MISSING_COLUMNS.format(path=path, missing=", ".join(absent), expected=", ".join(required)))
    for name in numeric:
        if name in table.columns:
            table[name] = numeric_column(table[name], path, name)
    return table


def parse_csv(path: Path, **options: Any) -> pd.DataFrame:
    """Parse a CSV file with pandas; a file pandas cannot parse is a :class:`DataError`."""
    try:
        table: pd.DataFrame = pd.read_csv(path, **options)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise unreadable(path, one_line(error)) from error
    return table


def numeric_column(column: pd.Series, path: Path, name: str) -> pd.Series:
    """A column as floats; a non-empty cell that is not a number is a :class:`DataError`."""
    converted = pd.to_numeric(column, errors="coerce").astype(float)
    bad = converted.isna() & column.notna()
    if bad.any():
        raise DataError(NOT_NUMERIC.format(path=path, column=name, value=column[bad].iloc[0]))
    return converted


def with_readout(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with a ``readout`` column (``linear`` where it has none, or an empty cell)."""
    if READOUT_COLUMN not in table.columns:
        return table.assign(**{READOUT_COLUMN: PRIMARY_READOUT})
    return table.assign(**{READOUT_COLUMN: table[READOUT_COLUMN].fillna(PRIMARY_READOUT)})


def read_history(path: Path) -> pd.DataFrame:
    """A run's ``history.csv``, every column numeric."""
    return read_numeric_table(path, HISTORY_COLUMNS)


def read_curves(path: Path) -> pd.DataFrame:
    """A run's ``curves.csv`` (``epoch`` and the tracked values), every column numeric."""
    return read_numeric_table(path, CURVES_COLUMNS[:1])


def read_numeric_table(path: Path, required: Sequence[str]) -> pd.DataFrame:
    """A CSV file with the ``required`` columns whose every column is numeric."""
    table = read_csv(path, required, ())
    for name in table.columns:
        table[name] = numeric_column(table[name], path, str(name))
    return table


def read_comparisons(path: Path) -> pd.DataFrame:
    """The folder's ``comparisons.csv``: paired differences against the baseline.

    A file written before the ``selection`` column (no search) reads as ``fixed``, one written before
    the ``readout`` column as the ``linear`` read-out, one written before the ``finals`` column as
    ``reseed`` for a rule's rows (the only mode then) and ``fixed`` for the others.
    """
    later = (SELECTION_COLUMN, FINALS_COLUMN, READOUT_COLUMN)
    required = tuple(column for column in COMPARISONS_COLUMNS if column not in later)
    table = with_readout(read_csv(path, required, ("n_seeds", "mean_difference", "ci_low", "ci_high")))
    if SELECTION_COLUMN not in table.columns:
        table.insert(0, SELECTION_COLUMN, SELECTION_FIXED)
    if FINALS_COLUMN not in table.columns:
        fixed = table[SELECTION_COLUMN] == SELECTION_FIXED
        table.insert(1, FINALS_COLUMN, fixed.map({True: SELECTION_FIXED, False: FINALS_RESEED}))
    return table


def read_bias_matrix(path: Path) -> pd.DataFrame:
    """A run's ``bias_matrix.csv``: accuracy per (target, bias value) cell, labels as text."""
    table = parse_csv(path, index_col=0)
    if table.empty:
        raise DataError(EMPTY_MATRIX.format(path=path))
    for name in table.columns:
        table[name] = numeric_column(table[name], path, str(name))
    table.index = pd.Index([label_text(label) for label in table.index])
    table.columns = pd.Index([label_text(label) for label in table.columns])
    return table


def read_group_table(path: Path) -> pd.DataFrame:
    """A run's ``group_table.csv``; ``group_name`` defaults to the group's label."""
    numeric = ["count", *GROUP_RATES]
    numeric += [bound(rate) for rate in GROUP_RATES for bound in (ci_low_name, ci_high_name)]
    table = read_csv(path, GROUP_TABLE_COLUMNS, numeric)
    if "group_name" not in table.columns:
        table["group_name"] = table["group"]
    table["group_name"] = table["group_name"].fillna(table["group"])
    return table


def read_projection(path: Path) -> pd.DataFrame:
    """A run's ``projection.csv``, subsampled to at most :data:`MAX_PROJECTION_POINTS` points."""
    table = read_csv(path, PROJECTION_COLUMNS, ("x", "y"))
    if len(table) > MAX_PROJECTION_POINTS:
        keep = np.random.default_rng(0).choice(len(table), MAX_PROJECTION_POINTS, replace=False)
        table = table.iloc[np.sort(keep)]
    points: pd.DataFrame = pd.DataFrame(
        {
            "x": table["x"].to_numpy(dtype=float),
            "y": table["y"].to_numpy(dtype=float),
            "target_value": [label_text(value) for value in table["target"]],
            "sensitive_value": [label_text(value) for value in table["sensitive"]],
        }
    )
    return points


def read_scores(run_dir: Path) -> pd.DataFrame | None:
    """A run folder's ``scores.csv`` (every read-out's class probabilities), or None for a folder written before it.

    Returns:
        The table (:data:`~ceco_fair.results.layout.SCORES_COLUMNS`, then ``score_<class>`` as floats).

    Raises:
        DataError: the file exists but lacks a column or holds a value that is not a number.
    """
    path = run_dir / SCORES_FILE
    if not path.is_file():
        return None
    table = read_csv(path, SCORES_COLUMNS, ())
    for name in [column for column in table.columns if str(column).startswith(SCORE_PREFIX)]:
        table[name] = numeric_column(table[name], path, name)
    return table


def label_text(value: object) -> str:
    """Write a category label as text; integral floats (``3.0``) become ``"3"``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def as_float(value: Any, path: Path, key: str) -> float:
    """Convert a JSON/CSV number to float; ``None`` becomes NaN."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise wrong_type(path=path, key=key, value=value, expected="a number")
    try:
        return float(value)
    except ValueError as error:
        raise wrong_type(path=path, key=key, value=value, expected="a number") from error


def wrong_type(*, path: Path, key: str, value: Any, expected: str) -> DataError:
    """The :class:`DataError` of a value of the wrong type."""
    return DataError(WRONG_TYPE.format(path=path, key=key, value=value, expected=expected))


def unreadable(path: Path, reason: str) -> DataError:
    """The :class:`DataError` of a file that cannot be read."""
    return DataError(UNREADABLE.format(path=path, reason=reason))


def one_line(error: BaseException) -> str:
    """Return an exception's message on one line."""
    return " ".join(str(error).split())


def read_paired_trials(path: Path) -> pd.DataFrame:
    """The folder's ``paired_trials.csv``: per method, condition and metric, the per-trial differences."""
    return read_csv(path, PAIRED_TRIALS_COLUMNS, ("n_trials", "median", "win_share", "worst", "best"))
