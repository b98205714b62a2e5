"""Read a protocol's results folder into typed tables.

The folder layout is :mod:`ceco_fair.results.layout`'s (see :func:`load_results`); the runs' records are
parsed by :mod:`ceco_fair.results.record`, the other files by :mod:`ceco_fair.report.readers`. A
malformed ``protocol.yaml``, ``manifest.json`` or ``comparisons.csv`` is an error
(:class:`~ceco_fair.errors.DataError`). Files inside ``runs/<run_id>/`` may be missing or cut
short by an interrupted run: those are recorded in :attr:`Results.missing` and the rest of the
folder is still read, so that a report can show what exists and say what does not.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ceco_fair.common.progress import progress_bar
from ceco_fair.errors import DataError
from ceco_fair.metrics.specs import (
    CI_HIGH_SUFFIX,
    CI_LOW_SUFFIX,
    GROUP_RATES,
    METRIC_KINDS,
    METRIC_SPECS,
    ci_high_name,
    ci_low_name,
    split_derived,
)
from ceco_fair.report.readers import (
    as_float,
    read_bias_matrix,
    read_comparisons,
    read_curves,
    read_group_table,
    read_history,
    read_json_mapping,
    read_paired_trials,
    read_projection,
    read_yaml_mapping,
)
from ceco_fair.results.folder import read_grid
from ceco_fair.results.layout import (
    BIAS_MATRIX_FILE,
    COLOUR_STRIP_FILE,
    COMPARISONS_COLUMNS,
    COMPARISONS_FILE,
    CURVES_COLUMNS,
    CURVES_FILE,
    GROUP_TABLE_FILE,
    HISTORY_COLUMNS,
    HISTORY_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    PAIRED_TRIALS_FILE,
    PROJECTION_FILE,
    PROTOCOL_FILE,
    READOUT_COLUMN,
    READOUTS_FILE,
    RUN_COLUMNS,
    RUN_FILE,
    RUN_ORIGIN_COLUMNS,
    RUNS_DIR,
    SEARCH_CSV,
    SELECTION_COLUMN,
    SELECTION_FIXED,
    STATUS_COMPLETE,
    STATUS_INCOMPLETE,
    run_table_file,
)
from ceco_fair.results.record import RunRecord, read_metrics, read_readouts, read_run_file
from ceco_fair.results.seeds import DEFAULT_CONFIDENCE
from ceco_fair.results.selection import label_records, read_search_rows, read_selection

logger = logging.getLogger(__name__)

RUN_FACTS = ("target_name", "sensitive_name")
"""What datasets say about a run's attributes (``run.json``'s facts), as columns of :attr:`Results.runs`."""
RUNS_TABLE_COLUMNS = (*RUN_COLUMNS, *RUN_FACTS, "status", "condition")

FOLDER_MISSING = "results folder not found: {path} (expected a protocol's output folder)"
NOTHING_TO_REPORT = f"no results in {{path}}: expected {RUNS_DIR}/<run_id>/ folders"


@dataclass(frozen=True)
class MissingItem:
    """Something a complete results folder would hold but this one does not.

    Attributes:
        path: Path relative to the results folder (``"runs/<run_id>/metrics.json"``).
        reason: What is wrong with it (``"missing"``, ``"status failed: <the run's error>"``, a parse error).
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
        runs: One row per run: ``run_id, method, loss, dataset, metric_kind, rho (float,
            NaN if none), target (str, "" if none), sensitive (str), seed (Int64, <NA> if
            unknown), target_name, sensitive_name, status, condition`` (a label of ρ / target
            / sensitive), ordered by method, condition and seed.
        metrics: Tidy, one row per run × metric: the run columns plus ``metric, value,
            ci_low, ci_high`` (the ``*_ci_low``/``*_ci_high`` entries folded into the last two).
        histories: One row per run × epoch: the run columns plus the history columns
            (``epoch, loss`` and whatever else was tracked).
        bias_matrices: ``run_id`` → digit × colour accuracy table (rows digits, columns
            colours, float fractions, NaN for empty cells).
        group_rates: Tidy, one row per run × group × rate: the run columns plus ``group,
            group_name, count, metric`` (one of ``accuracy, tpr, fpr, selection_rate``),
            ``value, ci_low, ci_high``.
        projections: One row per point: the run columns plus ``x, y, target_value,
            sensitive_value`` (labels as strings), at most 2,000 points per run.
        missing: What is missing or unreadable, in folder order.
        curves: One row per run × tracked epoch: the run columns plus ``epoch`` and the tracked
            values of ``curves.csv``.
        strips: ``run_id`` → the run's colour strip (one test digit on every background colour).
        comparisons: The rows of ``comparisons.csv`` (empty without one).
        group_colours: ``run_id`` → one CSS colour per sensitive group, for runs whose
            dataset gave its groups colours (``run.json``'s ``group_colours``).
        origins: ``run_id`` → where the run was trained (``shard``, ``host``, ``device`` from
            ``run.json``), for runs that recorded it.
        readouts: Tidy, one row per run × read-out × metric: the run columns plus ``readout, metric,
            value, ci_low, ci_high`` (``linear`` is :attr:`metrics`; ``balanced`` and ``head`` from
            ``readouts.json`` / ``results.json``).
        selections: ``run_id`` → its ``selection`` labels (its trial against ``selection.json``): the rules that picked
            it, ``search`` for a search's trials; empty for a folder without a search.
        search: The rows of ``search.csv`` (empty without a search).
        picks: ``selection.json``: rule → method → condition → repeat → the picked trial and its values.
        paired_trials: ``paired_trials.csv`` (empty without a search): at the trials the methods share,
            each method's differences from the baseline.

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
    group_colours: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    strips: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    comparisons: pd.DataFrame = field(default_factory=pd.DataFrame)
    origins: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    readouts: pd.DataFrame = field(default_factory=pd.DataFrame)
    selections: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    search: pd.DataFrame = field(default_factory=pd.DataFrame)
    picks: Mapping[str, Any] = field(default_factory=dict)
    paired_trials: pd.DataFrame = field(default_factory=pd.DataFrame)

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
    def confidence(self) -> float:
        """The intervals' confidence level: the protocol's ``eval.confidence`` (default 0.95)."""
        evaluation = self.protocol.get("eval")
        if isinstance(evaluation, Mapping) and isinstance(evaluation.get("confidence"), int | float):
            return float(evaluation["confidence"])
        return DEFAULT_CONFIDENCE

    @property
    def methods(self) -> tuple[str, ...]:
        """Method names in protocol order, then in order of appearance."""
        return tuple(dict.fromkeys(self.runs["method"]))

    @property
    def conditions(self) -> tuple[str, ...]:
        """Condition labels (ρ / target / sensitive combinations) in sorted order."""
        return tuple(_sorted_conditions(self.runs))


def load_results(output_dir: Path) -> Results:
    """Read a protocol's results folder.

    Layout: see :mod:`ceco_fair.results.layout`. The runs are the run folders, each read from its
    record (``run.json`` and, for a complete run, ``metrics.json``); ``results.json`` and
    ``results.csv`` are derived from the same records and not read. Runs of ``grid.json`` without a
    folder are listed as missing.

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
    if not runs_dir.is_dir():
        raise DataError(NOTHING_TO_REPORT.format(path=root))

    missing: list[MissingItem] = []
    protocol = _read_optional(root, PROTOCOL_FILE, read_yaml_mapping, missing)
    manifest = _read_optional(root, MANIFEST_FILE, read_json_mapping, missing)
    has_comparisons = (root / COMPARISONS_FILE).is_file()
    comparisons = _read_optional(root, COMPARISONS_FILE, read_comparisons, missing) if has_comparisons else None
    folders = _read_run_folders(runs_dir, missing)
    not_started = [run_id for run_id in _grid(root) if run_id not in folders]
    missing += [MissingItem(f"{RUNS_DIR}/{run_id}/", "missing", run_id) for run_id in not_started]
    records = {run_id: folder.record for run_id, folder in folders.items()}
    raw_metrics = pd.concat(
        [_empty_metric_rows(), *(_metric_rows(run_id, record.metrics) for run_id, record in records.items())],
        ignore_index=True,
    )
    runs = _runs_table(records, protocol or {})
    _check_expected_files(runs, raw_metrics, folders, protocol or {}, missing)
    raw_readouts = pd.concat(
        [
            _empty_metric_rows().assign(**{READOUT_COLUMN: pd.Series(dtype=object)}),
            *(
                _metric_rows(run_id, values).assign(**{READOUT_COLUMN: readout})
                for run_id, record in records.items()
                for readout, values in record.readout_metrics().items()
            ),
        ],
        ignore_index=True,
    )
    projections = [
        folder.projection.assign(run_id=run_id) for run_id, folder in folders.items() if folder.projection is not None
    ]
    searched = (root / SEARCH_CSV).is_file()
    picks = read_selection(root)
    return Results(
        root=root,
        protocol=protocol or {},
        manifest=manifest or {},
        runs=runs,
        metrics=_join_runs(_fold_intervals(raw_metrics), runs),
        histories=_join_runs(
            _concat(
                [f.history.assign(run_id=r) for r, f in folders.items() if f.history is not None],
                ["run_id", *HISTORY_COLUMNS],
            ),
            runs,
        ),
        bias_matrices={
            run_id: folder.bias_matrix for run_id, folder in folders.items() if folder.bias_matrix is not None
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
        projections=_join_runs(_concat(projections, ["run_id", "x", "y", "target_value", "sensitive_value"]), runs),
        missing=tuple(missing),
        group_colours={
            run_id: tuple(str(colour) for colour in record.facts["group_colours"])
            for run_id, record in records.items()
            if isinstance(record.facts.get("group_colours"), list)
        },
        curves=_join_runs(
            _concat(
                [f.curves.assign(run_id=r) for r, f in folders.items() if f.curves is not None],
                ["run_id", *CURVES_COLUMNS[:1]],
            ),
            runs,
        ),
        strips={run_id: folder.strip for run_id, folder in folders.items() if folder.strip is not None},
        comparisons=comparisons if comparisons is not None else pd.DataFrame(columns=list(COMPARISONS_COLUMNS)),
        origins={
            run_id: {key: str(getattr(record, key)) for key in RUN_ORIGIN_COLUMNS if getattr(record, key) is not None}
            for run_id, record in records.items()
            if any(getattr(record, key) is not None for key in RUN_ORIGIN_COLUMNS)
        },
        readouts=_join_runs(_fold_intervals(raw_readouts, [READOUT_COLUMN]), runs),
        selections={
            record.run_id: tuple(record.selection or ())
            for record in label_records(list(records.values()), picks)
            if searched and record.selection
        },
        search=pd.DataFrame(read_search_rows(root / SEARCH_CSV)) if searched else pd.DataFrame(),
        picks=picks,
        paired_trials=(
            read_paired_trials(root / PAIRED_TRIALS_FILE) if (root / PAIRED_TRIALS_FILE).is_file() else pd.DataFrame()
        ),
    )


def for_selection(results: Results, selection: str) -> Results:
    """The results restricted to the runs one rule picked (``selection``), its comparisons only.

    A folder without a search, or ``fixed`` (a search not finished: no rule has picked yet), is
    returned unchanged.
    """
    if not results.selections or selection == SELECTION_FIXED:
        return results
    keep = {run_id for run_id, labels in results.selections.items() if selection in labels}

    def only(table: pd.DataFrame) -> pd.DataFrame:
        return table[table["run_id"].isin(keep)].reset_index(drop=True) if "run_id" in table.columns else table

    comparisons = results.comparisons
    if SELECTION_COLUMN in comparisons.columns:
        comparisons = comparisons[comparisons[SELECTION_COLUMN] == selection].reset_index(drop=True)
    return dataclasses.replace(
        results,
        runs=only(results.runs),
        metrics=only(results.metrics),
        histories=only(results.histories),
        bias_matrices={k: v for k, v in results.bias_matrices.items() if k in keep},
        group_rates=only(results.group_rates),
        projections=only(results.projections),
        missing=tuple(item for item in results.missing if item.run_id is None or item.run_id in keep),
        group_colours={k: v for k, v in results.group_colours.items() if k in keep},
        curves=only(results.curves),
        strips={k: v for k, v in results.strips.items() if k in keep},
        comparisons=comparisons,
        origins={k: v for k, v in results.origins.items() if k in keep},
        readouts=only(results.readouts),
    )


@dataclass
class _RunFolder:
    """What one ``runs/<run_id>/`` folder holds; ``None`` for a file missing or unreadable.

    ``record`` is the run's record; a run whose ``run.json`` is missing or unreadable, or whose
    metrics are, is ``incomplete``.
    """

    record: RunRecord
    history: pd.DataFrame | None
    bias_matrix: pd.DataFrame | None
    group_table: pd.DataFrame | None
    projection: pd.DataFrame | None
    curves: pd.DataFrame | None
    strip: dict[str, Any] | None
    present: frozenset[str]


def _read_run_folders(runs_dir: Path, missing: list[MissingItem]) -> dict[str, _RunFolder]:
    """Read every ``runs/<run_id>/`` folder, recording unreadable files in ``missing``."""
    folders = sorted(path for path in runs_dir.iterdir() if path.is_dir())
    result: dict[str, _RunFolder] = {}
    for folder in progress_bar(folders, desc="reading runs", unit="run", hidden=None):
        result[folder.name] = _RunFolder(
            record=_read_record(folder, missing),
            history=_read_run_file(folder, HISTORY_FILE, read_history, missing),
            bias_matrix=_read_run_file(folder, BIAS_MATRIX_FILE, read_bias_matrix, missing),
            group_table=_read_run_file(folder, GROUP_TABLE_FILE, read_group_table, missing),
            projection=_read_run_file(folder, PROJECTION_FILE, read_projection, missing),
            curves=_read_run_file(folder, CURVES_FILE, read_curves, missing),
            strip=_read_run_file(folder, COLOUR_STRIP_FILE, read_json_mapping, missing),
            present=frozenset(path.name for path in folder.iterdir()),
        )
    return result


def _read_record(folder: Path, missing: list[MissingItem]) -> RunRecord:
    """A run folder's record; unreadable files are recorded in ``missing`` and leave the run ``incomplete``.

    The metrics of a complete run are read; a missing ``run.json`` or ``metrics.json`` is left to
    :func:`_check_expected_files`.
    """
    unknown = RunRecord(run_id=folder.name, method="unknown", status=STATUS_INCOMPLETE)
    record = _read_run_file(folder, RUN_FILE, read_run_file, missing) or unknown
    if record.status != STATUS_COMPLETE:
        return record
    metrics = _read_run_file(folder, METRICS_FILE, read_metrics, missing)
    if metrics is None:
        return dataclasses.replace(record, status=STATUS_INCOMPLETE)
    return record.finish(metrics, _read_run_file(folder, READOUTS_FILE, read_readouts, missing))


def _grid(root: Path) -> list[str]:
    """The run ids of the folder's ``grid.json`` (none when it has none or it is unreadable)."""
    try:
        return read_grid(root)
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _read_run_file(folder: Path, name: str, reader: Callable[[Path], Any], missing: list[MissingItem]) -> Any:
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
    missing: list[MissingItem],
) -> None:
    """Record runs that did not complete and per-run files a complete run would hold."""
    trained = "train" in protocol or any(f.history is not None for f in folders.values())
    metric_names = metrics.groupby("run_id")["metric"].agg(set).to_dict()
    for run in runs.itertuples(index=False):
        run_id = str(run.run_id)
        if run.status != STATUS_COMPLETE:
            error = folders[run_id].record.error if run_id in folders else None
            reason = f"status {run.status}" + (f": {error}" if error else "")
            missing.append(MissingItem(f"{RUNS_DIR}/{run_id}/", reason, run_id))
        table = run_table_file(_run_kind(str(run.metric_kind), metric_names.get(run_id, set())))
        expected = [RUN_FILE, METRICS_FILE, PROJECTION_FILE]
        expected += [HISTORY_FILE] if trained else []
        expected += [table] if table is not None else []
        for name in expected:
            if name not in folders[run_id].present:
                missing.append(MissingItem(f"{RUNS_DIR}/{run_id}/{name}", "missing", run_id))


def _run_kind(recorded: str, metric_names: set[str]) -> str:
    """Which per-run table a run should have written: ``"bias"``, ``"group"`` or ``""``.

    The run's recorded ``metric_kind``, else the one kind of run that records some of its metrics
    (a folder written before runs recorded their kind).
    """
    if recorded:
        return recorded
    kinds = {METRIC_SPECS[name].runs for name in metric_names if name in METRIC_SPECS}
    return next((kind for kind in METRIC_KINDS if (kind,) in kinds), "")


def _read_optional(root: Path, name: str, reader: Callable[[Path], Any], missing: list[MissingItem]) -> Any:
    """Read a top-level file, or record it as missing and return ``None``."""
    path = root / name
    if not path.is_file():
        missing.append(MissingItem(name, "missing"))
        return None
    return reader(path)


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
                    "ci_low": _optional_column(table, ci_low_name(rate)),
                    "ci_high": _optional_column(table, ci_high_name(rate)),
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
            "value": [as_float(value, Path(METRICS_FILE), str(name)) for name, value in metrics.items()],
        }
    )
    return rows


def _empty_metric_rows() -> pd.DataFrame:
    empty: pd.DataFrame = pd.DataFrame({"run_id": [], "metric": [], "value": []}).astype(
        {"run_id": str, "metric": str, "value": float}
    )
    return empty


def _fold_intervals(raw: pd.DataFrame, keys: Sequence[str] = ()) -> pd.DataFrame:
    """Move ``<metric>_ci_low``/``_ci_high`` rows into ``ci_low``/``ci_high`` columns (per run and ``keys``)."""
    names = set(raw["metric"])

    def is_bound_of_listed(name: str) -> bool:
        base, suffix = split_derived(name)
        return suffix in (CI_LOW_SUFFIX, CI_HIGH_SUFFIX) and base in names

    is_bound = raw["metric"].map(lambda name: is_bound_of_listed(str(name))).astype(bool)
    on = ["run_id", *keys, "metric"]
    values = raw[~is_bound].drop_duplicates(on, keep="first")
    for column, suffix in (("ci_low", CI_LOW_SUFFIX), ("ci_high", CI_HIGH_SUFFIX)):
        bounds = raw[is_bound & raw["metric"].str.endswith(suffix)]
        bounds = bounds.assign(metric=bounds["metric"].str.slice(stop=-len(suffix)))
        bounds = bounds.drop_duplicates(on, keep="first")
        values = values.merge(bounds.rename(columns={"value": column}), on=on, how="left")
    folded: pd.DataFrame = values.reset_index(drop=True)
    return folded


def _runs_table(records: Mapping[str, RunRecord], protocol: Mapping[str, Any]) -> pd.DataFrame:
    """One normalised row per run, ordered by method (protocol order), condition and seed."""
    rows = [
        {
            **{key: "" if value is None else str(value) for key, value in record.columns().items()},
            **{key: str(record.facts.get(key, "")) for key in RUN_FACTS},
            "run_id": run_id,
            "rho": math.nan if record.rho is None else float(record.rho),
            "seed": record.seed,
            "status": record.status,
            "condition": record.condition,
        }
        for run_id, record in records.items()
    ]
    table = pd.DataFrame(rows, columns=list(RUNS_TABLE_COLUMNS))
    table["seed"] = table["seed"].astype("Int64")
    table["rho"] = table["rho"].astype(float)
    declared = [m.get("label", m.get("name")) for m in protocol.get("methods") or [] if isinstance(m, Mapping)]
    method_order = {name: index for index, name in enumerate(dict.fromkeys([*declared, *table["method"]]))}
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
    """Prefix a per-run table with its runs' attributes, in run order; drop unknown runs.

    A column of the table named like a run attribute (a history's ``loss``) wins over it.
    """
    shared = [column for column in table.columns if column in runs.columns and column != "run_id"]
    joined = runs.drop(columns=shared).merge(table, on="run_id", how="inner", sort=False)
    result: pd.DataFrame = joined.reset_index(drop=True)
    return result


def _concat(frames: list[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    table: pd.DataFrame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({c: [] for c in columns})
    return table
