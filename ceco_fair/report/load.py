"""Read a protocol's results folder into typed tables, and summarise them over seeds.

The folder layout is the runner's contract (see :func:`load_results`). Files at the top of the
folder are written once, when a protocol finishes, so a malformed one is an error
(:class:`~ceco_fair.errors.DataError`). Files inside ``runs/<run_id>/`` may be missing or cut
short by an interrupted run: those are recorded in :attr:`Results.missing` and the rest of the
folder is still read, so that a report can show what exists and say what does not.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from scipy import stats  # type: ignore[import-untyped]
from tqdm import tqdm

from ceco_fair.errors import DataError

logger = logging.getLogger(__name__)

PROTOCOL_FILE = "protocol.yaml"
MANIFEST_FILE = "manifest.json"
RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
RUNS_DIR = "runs"
RUN_FILE = "run.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
BIAS_MATRIX_FILE = "bias_matrix.csv"
GROUP_TABLE_FILE = "group_table.csv"
PROJECTION_FILE = "projection.csv"

BIAS_METRICS = (
    "unbiased_accuracy",
    "bias_conflicting_accuracy",
    "bias_aligned_accuracy",
    "accuracy",
)
GROUP_METRICS = (
    "accuracy",
    "worst_group_accuracy",
    "equalized_odds_difference",
    "demographic_parity_difference",
    "equal_opportunity_difference",
    "eo_fscl",
)
LOWER_IS_BETTER = frozenset(
    {
        "demographic_parity_difference",
        "equalized_odds_difference",
        "equal_opportunity_difference",
        "eo_fscl",
    }
)
GROUP_RATES = ("accuracy", "tpr", "fpr", "selection_rate")
GROUP_DATASETS = frozenset({"colored_mnist", "utkface", "celeba"})
BIAS_DATASET = "biased_mnist"
RUN_STATUSES = ("complete", "failed", "incomplete")
CI_LOW_SUFFIX = "_ci_low"
CI_HIGH_SUFFIX = "_ci_high"
MAX_PROJECTION_POINTS = 2_000
CONFIDENCE = 0.95

RUN_ATTRIBUTES = ("method", "dataset", "rho", "target", "sensitive", "seed")
RUN_COLUMNS = ("run_id", *RUN_ATTRIBUTES, "status", "condition")
RESULTS_CSV_REQUIRED = ("run_id", "method", "metric", "value")
HISTORY_REQUIRED = ("epoch", "loss")
GROUP_TABLE_REQUIRED = ("group", "count", "accuracy")
PROJECTION_REQUIRED = ("x", "y", "target", "sensitive")
TEXT_COLUMNS = (
    "run_id",
    "method",
    "dataset",
    "target",
    "sensitive",
    "metric",
    "group",
    "group_name",
)

FOLDER_MISSING = "results folder not found: {path} (expected a protocol's output folder)"
NOTHING_TO_REPORT = (
    "no results in {path}: expected results.csv, results.json or runs/<run_id>/ folders"
)
UNREADABLE = "{path} cannot be read: {reason}"
MISSING_COLUMNS = "{path} lacks column(s) {missing}; expected at least {expected}"
NOT_NUMERIC = "{path}: column {column!r} holds {value!r}, expected a number"
WRONG_TYPE = "{path}: {key} is {value!r}, expected {expected}"
EMPTY_MATRIX = "{path} holds no accuracy values, expected a digit × colour table"

IntervalKind = Literal["t", "range", "bootstrap", "single", "none"]


@dataclass(frozen=True)
class Interval:
    """A mean over seeds with its 95% interval.

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


INTERVAL_DESCRIPTIONS: dict[str, str] = {
    "t": "95% t-interval",
    "range": "min–max",
    "bootstrap": "95% bootstrap, 1 run",
    "single": "1 run, no interval",
    "none": "no value",
}


@dataclass(frozen=True)
class MissingItem:
    """Something a complete results folder would hold but this one does not.

    Attributes:
        path: Path relative to the results folder (``"runs/<run_id>/metrics.json"``).
        reason: What is wrong with it (``"missing"``, ``"status failed"``, a parse error).
        run_id: The run it belongs to, or ``None`` for a file of the whole folder.

    """

    path: str
    reason: str
    run_id: str | None = None


@dataclass(frozen=True)
class Results:
    """A results folder as typed tables, each joined with its runs' attributes.

    Attributes:
        root: The results folder.
        protocol: The resolved protocol (empty when ``protocol.yaml`` is missing).
        manifest: The manifest (empty when ``manifest.json`` is missing).
        runs: One row per run: ``run_id, method, dataset, rho (float, NaN if none),
            target (str, "" if none), sensitive (str), seed (Int64, <NA> if unknown),
            status, condition`` (a label of ρ / target / sensitive), ordered by method,
            condition and seed.
        metrics: Tidy, one row per run × metric: the run columns plus ``metric, value,
            ci_low, ci_high`` (the ``*_ci_low``/``*_ci_high`` entries folded into the last two).
        histories: One row per run × epoch: the run columns plus the history columns
            (``epoch, loss`` and whatever else was tracked, e.g. ``probe_accuracy``).
        bias_matrices: ``run_id`` → digit × colour accuracy table (rows digits, columns
            colours, float fractions, NaN for empty cells).
        group_rates: Tidy, one row per run × group × rate: the run columns plus ``group,
            group_name, count, metric`` (one of ``accuracy, tpr, fpr, selection_rate``),
            ``value, ci_low, ci_high``.
        projections: One row per point: the run columns plus ``x, y, target_value,
            sensitive_value`` (labels as strings), at most 2,000 points per run.
        missing: What is missing or unreadable, in folder order.

    """

    root: Path
    protocol: dict[str, Any]
    manifest: dict[str, Any]
    runs: pd.DataFrame
    metrics: pd.DataFrame
    histories: pd.DataFrame
    bias_matrices: dict[str, pd.DataFrame]
    group_rates: pd.DataFrame
    projections: pd.DataFrame
    missing: tuple[MissingItem, ...]

    @property
    def name(self) -> str:
        """The protocol's name, else the folder's name."""
        name = self.protocol.get("name")
        return str(name) if name not in (None, "") else self.root.name

    @property
    def dataset(self) -> str:
        """The dataset named by the protocol, else the datasets of the runs, comma-separated."""
        data = self.protocol.get("data")
        if isinstance(data, Mapping) and data.get("dataset"):
            return str(data["dataset"])
        return ", ".join(name for name in self.runs["dataset"].unique() if name)

    @property
    def methods(self) -> tuple[str, ...]:
        """Method names in protocol order, then in order of appearance."""
        return tuple(dict.fromkeys(self.runs["method"]))

    @property
    def conditions(self) -> tuple[str, ...]:
        """Condition labels (ρ / target / sensitive combinations) in sorted order."""
        return tuple(_sorted_conditions(self.runs))


def condition_label(rho: float, target: str, sensitive: str) -> str:
    """Name one cell of the grid other than method and seed.

    Args:
        rho: Training bias ρ, NaN when the dataset has none.
        target: Target attribute, ``""`` when none.
        sensitive: Sensitive attribute, ``""`` when none.

    Returns:
        A label like ``"ρ = 0.99"`` or ``"target gender · sensitive race"``; ``"all runs"``
        when the run has none of the three.

    """
    parts = []
    if not math.isnan(rho):
        parts.append(f"ρ = {rho:g}")
    if target:
        parts.append(f"target {target}")
    if sensitive:
        parts.append(f"sensitive {sensitive}")
    return " · ".join(parts) if parts else "all runs"


def seed_interval(values: Iterable[float], *, ci: tuple[float, float] | None = None) -> Interval:
    """Summarise one quantity over seeds: mean and a 95% interval.

    With n ≥ 3 finite values the interval is mean ± t_{0.975, n−1} · s / √n (s the sample
    standard deviation); with n = 2 it is the min–max range (a t-interval on one degree of
    freedom is twelve standard errors wide); with n = 1 it is the run's own bootstrap CI when
    ``ci`` holds one, else the value itself.

    Args:
        values: The quantity, one value per seed; NaN values are ignored.
        ci: The bootstrap interval (low, high) of the run, used only when one value is finite.

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
    quantile = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df=n - 1))
    half = quantile * float(finite.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, "t")


def summarize(table: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Summarise a tidy table over seeds with :func:`seed_interval`.

    Args:
        table: Tidy rows with the ``keys`` columns, ``value`` and optionally ``ci_low`` and
            ``ci_high`` (the bootstrap interval of each row).
        keys: Columns that identify one summarised quantity (e.g. ``method, condition,
            metric``); rows sharing them are the seeds.

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
        interval = seed_interval(group["value"].astype(float), ci=ci)
        rows.append(
            [*key_values, interval.mean, interval.low, interval.high, interval.n, interval.kind]
        )
    summary: pd.DataFrame = pd.DataFrame(rows, columns=columns)
    return summary


def load_results(output_dir: Path) -> Results:
    """Read a protocol's results folder.

    Layout: ``protocol.yaml``, ``manifest.json``, ``results.csv`` (tidy: ``run_id, method,
    dataset, rho, target, sensitive, seed, metric, value``), ``results.json``
    (``{"runs": [...]}``) and ``runs/<run_id>/`` holding ``run.json``, ``history.csv``,
    ``metrics.json``, ``bias_matrix.csv`` or ``group_table.csv``, and ``projection.csv``.
    A run's metrics come from ``results.csv`` when it lists the run, else from its
    ``metrics.json``, else from ``results.json``.

    Args:
        output_dir: The protocol's output folder.

    Returns:
        The folder's tables; what is missing is listed in :attr:`Results.missing`.

    Raises:
        DataError: If the folder does not exist, holds no results at all, or one of its
            top-level files is malformed.

    """
    root = Path(output_dir)
    if not root.is_dir():
        raise DataError(FOLDER_MISSING.format(path=root))
    runs_dir = root / RUNS_DIR
    top_files = (RESULTS_CSV, RESULTS_JSON)
    if not runs_dir.is_dir() and not any((root / name).is_file() for name in top_files):
        raise DataError(NOTHING_TO_REPORT.format(path=root))

    missing: list[MissingItem] = []
    protocol = _read_optional(root, PROTOCOL_FILE, _read_yaml_mapping, missing)
    manifest = _read_optional(root, MANIFEST_FILE, _read_json_mapping, missing)
    csv_rows = _read_optional(root, RESULTS_CSV, _read_results_csv, missing)
    json_runs = _read_optional(root, RESULTS_JSON, _read_results_json, missing)
    csv_table = csv_rows if csv_rows is not None else _empty_metric_rows()

    folders = _read_run_folders(runs_dir, missing) if runs_dir.is_dir() else {}
    if not runs_dir.is_dir():
        missing.append(MissingItem(f"{RUNS_DIR}/", "missing: no per-run files"))

    # A run's attributes: later sources win, and results.json holds the final status.
    records: dict[str, dict[str, Any]] = {}
    for run_id, group in csv_table.groupby("run_id", sort=False):
        _merge_record(records, str(run_id), {str(k): v for k, v in group.iloc[0].items()})
    for run_id, folder in folders.items():
        _merge_record(records, run_id, folder.info)
    for entry in json_runs or []:
        _merge_record(records, entry["run_id"], entry)

    metric_rows = [csv_table[["run_id", "metric", "value"]]]
    listed = set(csv_table["run_id"])
    json_metrics = {entry["run_id"]: entry.get("metrics") or {} for entry in json_runs or []}
    for run_id in records:
        if run_id in listed:
            continue
        folder_metrics = folders[run_id].metrics if run_id in folders else None
        source = folder_metrics if folder_metrics is not None else json_metrics.get(run_id, {})
        metric_rows.append(_metric_rows(run_id, source))
    raw_metrics = pd.concat(metric_rows, ignore_index=True)

    runs = _runs_table(records, raw_metrics, protocol or {})
    _check_expected_files(runs, raw_metrics, folders, protocol or {}, runs_dir.is_dir(), missing)
    projections = [
        folder.projection.assign(run_id=run_id)
        for run_id, folder in folders.items()
        if folder.projection is not None
    ]
    return Results(
        root=root,
        protocol=protocol or {},
        manifest=manifest or {},
        runs=runs,
        metrics=_join_runs(_fold_intervals(raw_metrics), runs),
        histories=_join_runs(
            _concat(
                [f.history.assign(run_id=r) for r, f in folders.items() if f.history is not None],
                ["run_id", *HISTORY_REQUIRED],
            ),
            runs,
        ),
        bias_matrices={
            run_id: folder.bias_matrix
            for run_id, folder in folders.items()
            if folder.bias_matrix is not None
        },
        group_rates=_join_runs(
            _concat(
                [
                    _tidy_group_table(folder.group_table).assign(run_id=run_id)
                    for run_id, folder in folders.items()
                    if folder.group_table is not None
                ],
                ["run_id", "group", "group_name", "count", "metric", "value", "ci_low", "ci_high"],
            ),
            runs,
        ),
        projections=_join_runs(
            _concat(projections, ["run_id", "x", "y", "target_value", "sensitive_value"]), runs
        ),
        missing=tuple(missing),
    )


@dataclass
class _RunFolder:
    """What one ``runs/<run_id>/`` folder holds; ``None`` for a file missing or unreadable."""

    info: dict[str, Any]
    metrics: dict[str, Any] | None
    history: pd.DataFrame | None
    bias_matrix: pd.DataFrame | None
    group_table: pd.DataFrame | None
    projection: pd.DataFrame | None
    present: frozenset[str]


def _read_run_folders(runs_dir: Path, missing: list[MissingItem]) -> dict[str, _RunFolder]:
    """Read every ``runs/<run_id>/`` folder, recording unreadable files in ``missing``."""
    folders = sorted(path for path in runs_dir.iterdir() if path.is_dir())
    result: dict[str, _RunFolder] = {}
    for folder in tqdm(folders, desc="reading runs", unit="run", disable=None):
        info = _read_run_file(folder, RUN_FILE, _read_json_mapping, missing)
        result[folder.name] = _RunFolder(
            info={**(info or {}), "run_id": folder.name},
            metrics=_read_run_file(folder, METRICS_FILE, _read_metrics_json, missing),
            history=_read_run_file(folder, HISTORY_FILE, _read_history, missing),
            bias_matrix=_read_run_file(folder, BIAS_MATRIX_FILE, _read_bias_matrix, missing),
            group_table=_read_run_file(folder, GROUP_TABLE_FILE, _read_group_table, missing),
            projection=_read_run_file(folder, PROJECTION_FILE, _read_projection, missing),
            present=frozenset(path.name for path in folder.iterdir()),
        )
    return result


def _read_run_file(
    folder: Path, name: str, reader: Callable[[Path], Any], missing: list[MissingItem]
) -> Any:
    """Read one file of a run folder; ``None`` when absent, or unreadable (then recorded)."""
    path = folder / name
    if not path.is_file():
        return None
    try:
        return reader(path)
    except DataError as error:
        missing.append(MissingItem(f"{RUNS_DIR}/{folder.name}/{name}", str(error), folder.name))
        return None


def _check_expected_files(
    runs: pd.DataFrame,
    metrics: pd.DataFrame,
    folders: Mapping[str, _RunFolder],
    protocol: Mapping[str, Any],
    have_runs_dir: bool,
    missing: list[MissingItem],
) -> None:
    """Record runs that did not complete and per-run files a complete run would hold."""
    trained = "train" in protocol or any(f.history is not None for f in folders.values())
    metric_names = metrics.groupby("run_id")["metric"].agg(set).to_dict()
    for run in runs.itertuples(index=False):
        run_id = str(run.run_id)
        if run.status != "complete":
            missing.append(MissingItem(f"{RUNS_DIR}/{run_id}/", f"status {run.status}", run_id))
        if run_id not in folders:
            if have_runs_dir:
                missing.append(MissingItem(f"{RUNS_DIR}/{run_id}/", "missing", run_id))
            continue
        kind = _run_kind(str(run.dataset), metric_names.get(run_id, set()))
        expected = [RUN_FILE, METRICS_FILE, PROJECTION_FILE]
        expected += [HISTORY_FILE] if trained else []
        expected += {"bias": [BIAS_MATRIX_FILE], "group": [GROUP_TABLE_FILE]}.get(kind, [])
        for name in expected:
            if name not in folders[run_id].present:
                missing.append(MissingItem(f"{RUNS_DIR}/{run_id}/{name}", "missing", run_id))


def _run_kind(dataset: str, metric_names: set[str]) -> str:
    """``"bias"``, ``"group"`` or ``""``: which per-run table a run should have written."""
    if "bias_aligned_accuracy" in metric_names:
        return "bias"
    if metric_names & (set(GROUP_METRICS) - {"accuracy"}):
        return "group"
    if dataset == BIAS_DATASET:
        return "bias"
    return "group" if dataset in GROUP_DATASETS else ""


def _read_optional(
    root: Path, name: str, reader: Callable[[Path], Any], missing: list[MissingItem]
) -> Any:
    """Read a top-level file, or record it as missing and return ``None``."""
    path = root / name
    if not path.is_file():
        missing.append(MissingItem(name, "missing"))
        return None
    return reader(path)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise _unreadable(path, _one_line(error)) from error


def _read_json(path: Path) -> Any:
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        reason = f"invalid JSON ({error.msg} at line {error.lineno})"
        raise _unreadable(path, reason) from error


def _read_json_mapping(path: Path) -> dict[str, Any]:
    data = _read_json(path)
    if not isinstance(data, dict):
        raise _wrong_type(
            path=path, key="the top level", value=type(data).__name__, expected="a JSON object"
        )
    return data


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(_read_text(path))
    except yaml.YAMLError as error:
        raise _unreadable(path, _one_line(error)) from error
    if not isinstance(data, dict):
        raise _wrong_type(
            path=path, key="the top level", value=type(data).__name__, expected="a YAML mapping"
        )
    return data


def _read_metrics_json(path: Path) -> dict[str, Any]:
    metrics = _read_json_mapping(path)
    for key, value in metrics.items():
        _as_float(value, path, f"metric {key!r}")
    return metrics


def _read_results_json(path: Path) -> list[dict[str, Any]]:
    data = _read_json_mapping(path)
    runs = data.get("runs")
    if not isinstance(runs, list):
        raise _wrong_type(path=path, key='"runs"', value=runs, expected="a list of runs")
    entries = []
    for index, entry in enumerate(runs):
        where = f"runs[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("run_id"), str):
            raise _wrong_type(
                path=path, key=where, value=entry, expected='an object with a "run_id" string'
            )
        status = entry.get("status", "complete")
        if status not in RUN_STATUSES:
            raise _wrong_type(
                path=path, key=f"{where}.status", value=status, expected=" or ".join(RUN_STATUSES)
            )
        metrics = entry.get("metrics") or {}
        if not isinstance(metrics, dict):
            raise _wrong_type(
                path=path,
                key=f"{where}.metrics",
                value=metrics,
                expected="an object of metric values",
            )
        for key, value in metrics.items():
            _as_float(value, path, f"{where}.metrics.{key}")
        entries.append(entry)
    return entries


def _read_csv(path: Path, required: Sequence[str], numeric: Sequence[str]) -> pd.DataFrame:
    """Read a CSV file, check its columns and make ``numeric`` columns float."""
    table = _parse_csv(path, dtype={name: str for name in TEXT_COLUMNS})
    absent = [name for name in required if name not in table.columns]
    if absent:
        raise DataError(
            MISSING_COLUMNS.format(
                path=path, missing=", ".join(absent), expected=", ".join(required)
            )
        )
    for name in numeric:
        if name in table.columns:
            table[name] = _numeric_column(table[name], path, name)
    return table


def _parse_csv(path: Path, **options: Any) -> pd.DataFrame:
    """Parse a CSV file with pandas; a file pandas cannot parse is a :class:`DataError`."""
    try:
        table: pd.DataFrame = pd.read_csv(path, **options)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise _unreadable(path, _one_line(error)) from error
    return table


def _numeric_column(column: pd.Series, path: Path, name: str) -> pd.Series:
    converted = pd.to_numeric(column, errors="coerce").astype(float)
    bad = converted.isna() & column.notna()
    if bad.any():
        raise DataError(NOT_NUMERIC.format(path=path, column=name, value=column[bad].iloc[0]))
    return converted


def _read_results_csv(path: Path) -> pd.DataFrame:
    return _read_csv(path, RESULTS_CSV_REQUIRED, ("rho", "seed", "value"))


def _read_history(path: Path) -> pd.DataFrame:
    table = _read_csv(path, HISTORY_REQUIRED, ())
    for name in table.columns:
        table[name] = _numeric_column(table[name], path, str(name))
    return table


def _read_bias_matrix(path: Path) -> pd.DataFrame:
    table = _parse_csv(path, index_col=0)
    if table.empty:
        raise DataError(EMPTY_MATRIX.format(path=path))
    for name in table.columns:
        table[name] = _numeric_column(table[name], path, str(name))
    table.index = pd.Index([_label_text(label) for label in table.index])
    table.columns = pd.Index([_label_text(label) for label in table.columns])
    return table


def _read_group_table(path: Path) -> pd.DataFrame:
    numeric = ["count", *GROUP_RATES]
    numeric += [
        f"{rate}{suffix}" for rate in GROUP_RATES for suffix in (CI_LOW_SUFFIX, CI_HIGH_SUFFIX)
    ]
    table = _read_csv(path, GROUP_TABLE_REQUIRED, numeric)
    if "group_name" not in table.columns:
        table["group_name"] = table["group"]
    table["group_name"] = table["group_name"].fillna(table["group"])
    return table


def _read_projection(path: Path) -> pd.DataFrame:
    table = _read_csv(path, PROJECTION_REQUIRED, ("x", "y"))
    if len(table) > MAX_PROJECTION_POINTS:
        keep = np.random.default_rng(0).choice(len(table), MAX_PROJECTION_POINTS, replace=False)
        table = table.iloc[np.sort(keep)]
    points: pd.DataFrame = pd.DataFrame(
        {
            "x": table["x"].to_numpy(dtype=float),
            "y": table["y"].to_numpy(dtype=float),
            "target_value": [_label_text(value) for value in table["target"]],
            "sensitive_value": [_label_text(value) for value in table["sensitive"]],
        }
    )
    return points


def _label_text(value: object) -> str:
    """Write a category label as text; integral floats (``3.0``) become ``"3"``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _tidy_group_table(table: pd.DataFrame) -> pd.DataFrame:
    """Turn a wide group table into one row per group × rate with its CI."""
    frames = []
    for rate in GROUP_RATES:
        if rate not in table.columns:
            continue
        frames.append(
            pd.DataFrame(
                {
                    "group": table["group"].astype(str),
                    "group_name": table["group_name"].astype(str),
                    "count": table["count"].astype(float),
                    "metric": rate,
                    "value": table[rate].astype(float),
                    "ci_low": _optional_column(table, f"{rate}{CI_LOW_SUFFIX}"),
                    "ci_high": _optional_column(table, f"{rate}{CI_HIGH_SUFFIX}"),
                }
            )
        )
    tidy: pd.DataFrame = pd.concat(frames, ignore_index=True)
    return tidy


def _optional_column(table: pd.DataFrame, name: str) -> pd.Series:
    if name in table.columns:
        column: pd.Series = table[name].astype(float)
        return column
    empty: pd.Series = pd.Series(np.full(len(table), np.nan), index=table.index, dtype=float)
    return empty


def _metric_rows(run_id: str, metrics: Mapping[str, Any]) -> pd.DataFrame:
    rows: pd.DataFrame = pd.DataFrame(
        {
            "run_id": [run_id] * len(metrics),
            "metric": [str(name) for name in metrics],
            "value": [
                _as_float(value, Path(METRICS_FILE), str(name)) for name, value in metrics.items()
            ],
        }
    )
    return rows


def _empty_metric_rows() -> pd.DataFrame:
    empty: pd.DataFrame = pd.DataFrame({"run_id": [], "metric": [], "value": []}).astype(
        {"run_id": str, "metric": str, "value": float}
    )
    return empty


def _fold_intervals(raw: pd.DataFrame) -> pd.DataFrame:
    """Move ``<metric>_ci_low``/``_ci_high`` rows into ``ci_low``/``ci_high`` columns."""
    names = set(raw["metric"])

    def base_of(name: str) -> str | None:
        for suffix in (CI_LOW_SUFFIX, CI_HIGH_SUFFIX):
            if name.endswith(suffix) and name[: -len(suffix)] in names:
                return name[: -len(suffix)]
        return None

    is_bound = raw["metric"].map(lambda name: base_of(str(name)) is not None).astype(bool)
    values = raw[~is_bound].drop_duplicates(["run_id", "metric"], keep="first")
    for column, suffix in (("ci_low", CI_LOW_SUFFIX), ("ci_high", CI_HIGH_SUFFIX)):
        bounds = raw[is_bound & raw["metric"].str.endswith(suffix)]
        bounds = bounds.assign(metric=bounds["metric"].str.slice(stop=-len(suffix)))
        bounds = bounds.drop_duplicates(["run_id", "metric"], keep="first")
        values = values.merge(
            bounds.rename(columns={"value": column}), on=["run_id", "metric"], how="left"
        )
    folded: pd.DataFrame = values.reset_index(drop=True)
    return folded


def _merge_record(
    records: dict[str, dict[str, Any]], run_id: str, source: Mapping[str, Any]
) -> None:
    """Update a run's attributes with the non-empty ones of ``source`` (later sources win)."""
    record = records.setdefault(run_id, {})
    for key in (*RUN_ATTRIBUTES, "status"):
        value = source.get(key)
        if isinstance(value, list | tuple):
            value = "+".join(str(item) for item in value)
        if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
            continue
        record[key] = value


def _runs_table(
    records: Mapping[str, Mapping[str, Any]], metrics: pd.DataFrame, protocol: Mapping[str, Any]
) -> pd.DataFrame:
    """One normalised row per run, ordered by method (protocol order), condition and seed."""
    with_metrics = set(metrics["run_id"])
    rows = []
    for run_id, record in records.items():
        where = Path(RUNS_DIR) / run_id
        rho = _as_float(record.get("rho", math.nan), where, "rho")
        seed = record.get("seed")
        target = str(record.get("target", ""))
        sensitive = str(record.get("sensitive", ""))
        status = record.get("status") or ("complete" if run_id in with_metrics else "incomplete")
        rows.append(
            {
                "run_id": run_id,
                "method": str(record.get("method", "unknown")),
                "dataset": str(record.get("dataset", "")),
                "rho": rho,
                "target": target,
                "sensitive": sensitive,
                "seed": None if seed is None else int(_as_float(seed, where, "seed")),
                "status": str(status),
                "condition": condition_label(rho, target, sensitive),
            }
        )
    table = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    table["seed"] = table["seed"].astype("Int64")
    table["rho"] = table["rho"].astype(float)
    declared = [m.get("name") for m in protocol.get("methods") or [] if isinstance(m, Mapping)]
    method_order = {
        name: index for index, name in enumerate(dict.fromkeys([*declared, *table["method"]]))
    }
    condition_order = {label: index for index, label in enumerate(_sorted_conditions(table))}
    order = table.assign(
        _method=table["method"].map(method_order),
        _condition=table["condition"].map(condition_order),
    ).sort_values(["_method", "_condition", "seed"], na_position="last", kind="stable")
    ordered: pd.DataFrame = table.loc[order.index].reset_index(drop=True)
    return ordered


def _sorted_conditions(runs: pd.DataFrame) -> list[str]:
    """Condition labels ordered by ρ, then target, then sensitive attribute."""
    keys = runs.drop_duplicates("condition").sort_values(
        ["rho", "target", "sensitive"], na_position="last", kind="stable"
    )
    return [str(label) for label in keys["condition"]]


def _join_runs(table: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Prefix a per-run table with its runs' attributes, in run order; drop unknown runs."""
    joined = runs.merge(table, on="run_id", how="inner", sort=False)
    result: pd.DataFrame = joined.reset_index(drop=True)
    return result


def _concat(frames: list[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    table: pd.DataFrame = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({c: [] for c in columns})
    )
    return table


def _as_float(value: Any, path: Path, key: str) -> float:
    """Convert a JSON/CSV number to float; ``None`` becomes NaN."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _wrong_type(path=path, key=key, value=value, expected="a number")
    try:
        return float(value)
    except ValueError as error:
        raise _wrong_type(path=path, key=key, value=value, expected="a number") from error


def _wrong_type(*, path: Path, key: str, value: Any, expected: str) -> DataError:
    return DataError(WRONG_TYPE.format(path=path, key=key, value=value, expected=expected))


def _unreadable(path: Path, reason: str) -> DataError:
    return DataError(UNREADABLE.format(path=path, reason=reason))


def _one_line(error: BaseException) -> str:
    """Return an exception's message on one line."""
    return " ".join(str(error).split())
