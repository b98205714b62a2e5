"""The results folder of a protocol run or an audit: every file's name, columns and writer.

This module is the one owner of the layout. Writers (the runner, :mod:`ceco_fair.runner.experiment`,
:mod:`ceco_fair.evaluation.auditing`, :mod:`ceco_fair.results.folder`), the report's reader and the test fixtures
import the names from here; no other module spells a results file's name. Torch-free.

``results.json`` is the record of truth: one entry per run with its identifying fields
(:data:`RUN_COLUMNS`), ``status`` and ``metrics``. ``results.csv`` is derived from it (one tidy
row per run × metric), and so is each run's ``metrics.json``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

PROTOCOL_FILE: Final = "protocol.yaml"
MANIFEST_FILE: Final = "manifest.json"
RESULTS_CSV: Final = "results.csv"
RESULTS_JSON: Final = "results.json"
COMPARISONS_FILE: Final = "comparisons.csv"
LOG_FILE: Final = "run.log"
REPORT_FILE: Final = "report.html"
RUNS_DIR: Final = "runs"
RUN_FILE: Final = "run.json"
CHECKPOINT_FILE: Final = "checkpoint.pt"
ENCODER_FILE: Final = "encoder.pt"
HISTORY_FILE: Final = "history.csv"
CURVES_FILE: Final = "curves.csv"
METRICS_FILE: Final = "metrics.json"
PREDICTIONS_FILE: Final = "predictions.csv"
PROJECTION_FILE: Final = "projection.csv"
GROUP_TABLE_FILE: Final = "group_table.csv"
BIAS_MATRIX_FILE: Final = "bias_matrix.csv"
COUNTERFACTUAL_FILE: Final = "counterfactual.csv"
COLOUR_STRIP_FILE: Final = "counterfactual_strip.json"
SEARCH_CSV: Final = "search.csv"
"""One row per search trial: phase, trial, method, condition, run, seed, the drawn values, each rule's score."""
SELECTION_FILE: Final = "selection.json"
"""Each rule's picks: rule -> method -> condition -> ``{"trial", "run_id", "score", "values"}``."""
GRID_FILE: Final = "grid.json"
"""``{"runs": [run_id, ...]}`` in grid order: the order of the result tables and what a complete folder holds."""
LOCK_FILE: Final = ".lock"
"""Held (``flock``) while a process rebuilds the folder-level files or updates the manifest."""
CLAIM_FILE: Final = "claim.json"
"""Created exclusively by the process that trains a run: its shard, host, process id and time."""

RUN_COLUMNS: Final = (
    "run_id",
    "method",
    "loss",
    "dataset",
    "metric_kind",
    "rho",
    "target",
    "sensitive",
    "seed",
)
"""A run's identifying fields: in ``run.json``, in each ``results.json`` entry and in ``results.csv``."""
RUN_ORIGIN_COLUMNS: Final = ("shard", "host", "device")
"""Where a run was trained: ``--shard`` (``K/N``), host name and device, in ``run.json`` and ``results.json``."""
RUN_SEARCH_FIELDS: Final = ("phase", "trial", "values", "validation")
"""A protocol with a search adds to ``run.json``: ``phase`` (``search`` or ``final``), ``trial``, the drawn
``values`` (key -> value) and the ``validation`` scores (rule -> score)."""
PHASE_SEARCH: Final = "search"
PHASE_FINAL: Final = "final"
SEARCH_COLUMNS: Final = ("phase", "trial", "method", "condition", "run_id", "seed")
"""The leading columns of ``search.csv``; the drawn values and the rules' scores follow."""
SELECTION_COLUMN: Final = "selection"
"""Names the rule that picked a row's run (``fixed`` without a search; ``search`` for the trials)."""
SELECTION_FIXED: Final = "fixed"
"""The ``selection`` of the runs of a protocol without a search: the protocol's own values."""
RESULTS_COLUMNS: Final = (*RUN_COLUMNS, SELECTION_COLUMN, "metric", "value")
HISTORY_COLUMNS: Final = ("epoch", "loss")
"""Required columns of ``history.csv`` (training adds whatever else it tracks)."""
CURVES_COLUMNS: Final = (
    "epoch",
    "knn_accuracy",
    "knn_bias_conflicting_accuracy",
    "knn_worst_group_accuracy",
    "instance_retrieval_within_cell",
    "variance_ratio",
)
COMPARISONS_COLUMNS: Final = (
    SELECTION_COLUMN,
    "method",
    "baseline",
    "condition",
    "metric",
    "n_seeds",
    "mean_difference",
    "ci_low",
    "ci_high",
)
PREDICTIONS_COLUMNS: Final = ("target", "sensitive", "prediction")
COUNTERFACTUAL_COLUMNS: Final = ("index", "target", "sensitive", "colour", "prediction")
"""One row per (test image, background colour): the probe's prediction on the recoloured image."""
PROJECTION_COLUMNS: Final = ("x", "y", "target", "sensitive")
GROUP_TABLE_COLUMNS: Final = ("group", "count", "accuracy")
"""Required columns of ``group_table.csv`` (then ``group_name``, rates and their intervals)."""

RunStatus = Literal["running", "complete", "failed", "incomplete"]
STATUS_RUNNING: Final = "running"
STATUS_COMPLETE: Final = "complete"
STATUS_FAILED: Final = "failed"
STATUS_INCOMPLETE: Final = "incomplete"
RUN_STATUSES: Final = (STATUS_RUNNING, STATUS_COMPLETE, STATUS_FAILED, STATUS_INCOMPLETE)
FINAL_STATUSES: Final = (STATUS_COMPLETE, STATUS_FAILED)
"""A run with one of these statuses is done: the result tables list it and no process trains it again."""
"""``running`` (written when a run starts), ``complete``, ``failed`` (training diverged) and
``incomplete`` (the reader's word for a run folder without a status or metrics)."""

MetricKind = Literal["bias", "group"]
METRIC_KINDS: Final = ("bias", "group")
LIST_SEPARATOR: Final = "+"
"""Joins a list of sensitive attributes into one cell (``gender+race``)."""


@dataclass(frozen=True)
class ResultFile:
    """One file of a results folder.

    Attributes:
        name: The file name.
        scope: ``folder`` (at the top) or ``run`` (in ``runs/<run_id>/``).
        writer: The module that writes it.
        columns: Its (required) columns, for tables.
        kind: The metric kind that writes it (``bias`` or ``group``), ``None`` for every run.
    """

    name: str
    scope: Literal["folder", "run"]
    writer: str
    columns: tuple[str, ...] = ()
    kind: MetricKind | None = None


FILES: Final = (
    ResultFile(PROTOCOL_FILE, "folder", "ceco_fair.run"),
    ResultFile(MANIFEST_FILE, "folder", "ceco_fair.run"),
    ResultFile(RESULTS_JSON, "folder", "ceco_fair.results.folder"),
    ResultFile(RESULTS_CSV, "folder", "ceco_fair.results.folder", RESULTS_COLUMNS),
    ResultFile(COMPARISONS_FILE, "folder", "ceco_fair.results.comparisons", COMPARISONS_COLUMNS),
    ResultFile(SEARCH_CSV, "folder", "ceco_fair.results.folder", SEARCH_COLUMNS),
    ResultFile(SELECTION_FILE, "folder", "ceco_fair.results.folder"),
    ResultFile(LOG_FILE, "folder", "ceco_fair.run"),
    ResultFile(GRID_FILE, "folder", "ceco_fair.run"),
    ResultFile(LOCK_FILE, "folder", "ceco_fair.results.folder"),
    ResultFile(REPORT_FILE, "folder", "ceco_fair.report"),
    ResultFile(RUN_FILE, "run", "ceco_fair.runner.experiment", RUN_COLUMNS),
    ResultFile(CLAIM_FILE, "run", "ceco_fair.runner.shards"),
    ResultFile(CHECKPOINT_FILE, "run", "ceco_fair.training.loop"),
    ResultFile(ENCODER_FILE, "run", "ceco_fair.models.files"),
    ResultFile(HISTORY_FILE, "run", "ceco_fair.runner.experiment", HISTORY_COLUMNS),
    ResultFile(CURVES_FILE, "run", "ceco_fair.runner.experiment", CURVES_COLUMNS),
    ResultFile(METRICS_FILE, "run", "ceco_fair.evaluation.auditing"),
    ResultFile(PREDICTIONS_FILE, "run", "ceco_fair.evaluation.auditing", PREDICTIONS_COLUMNS),
    ResultFile(PROJECTION_FILE, "run", "ceco_fair.evaluation.auditing", PROJECTION_COLUMNS),
    ResultFile(GROUP_TABLE_FILE, "run", "ceco_fair.evaluation.auditing", GROUP_TABLE_COLUMNS, "group"),
    ResultFile(BIAS_MATRIX_FILE, "run", "ceco_fair.evaluation.auditing", (), "bias"),
    ResultFile(COUNTERFACTUAL_FILE, "run", "ceco_fair.evaluation.auditing", COUNTERFACTUAL_COLUMNS),
    ResultFile(COLOUR_STRIP_FILE, "run", "ceco_fair.evaluation.auditing"),
)
"""Every file a results folder may hold."""


def run_dir(folder: Path, run_id: str) -> Path:
    """The folder of one run: ``folder/runs/<run_id>``."""
    return folder / RUNS_DIR / run_id


def run_table_file(kind: str) -> str | None:
    """The per-run table that runs of a metric kind write (``bias_matrix.csv`` / ``group_table.csv``)."""
    return next((f.name for f in FILES if f.kind == kind), None)


def cell(value: Any) -> Any:
    """A run field as one table cell: lists of attributes are joined with ``+``."""
    if isinstance(value, list | tuple):
        return LIST_SEPARATOR.join(str(item) for item in value)
    return value


def run_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`RUN_COLUMNS` of a record (missing ones as ``None``), in order."""
    return {column: record.get(column) for column in RUN_COLUMNS}


def selections_of(run: Mapping[str, Any]) -> list[str]:
    """The ``selection`` labels of a run record (its ``selection`` list; ``fixed`` when it has none)."""
    labels = run.get(SELECTION_COLUMN)
    return [str(label) for label in labels] if isinstance(labels, list | tuple) and labels else [SELECTION_FIXED]


def tidy_rows(runs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``results.csv``'s rows: one per run × selection × metric, the run fields as cells.

    A run picked by two rules appears under each (filter on ``selection`` to read one rule's table).
    """
    return [
        {
            **{column: cell(run.get(column)) for column in RUN_COLUMNS},
            SELECTION_COLUMN: selection,
            "metric": metric,
            "value": value,
        }
        for run in runs
        for selection in selections_of(run)
        for metric, value in (run.get("metrics") or {}).items()
    ]
