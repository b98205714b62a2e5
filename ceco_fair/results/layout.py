"""The results folder of a protocol run or an audit: every file's name, columns and writer.

This module is the one owner of the layout. Writers (the runner, :mod:`ceco_fair.runner.experiment`,
:mod:`ceco_fair.results.run_files`, :mod:`ceco_fair.results.folder`), the report's reader and the test fixtures
import the names from here; no other module spells a results file's name. Torch-free.

The run folders are the record of truth: each run's process writes its own ``runs/<run_id>/``, and
its record (:class:`~ceco_fair.results.record.RunRecord`) is ``run.json`` (the run's fields
:data:`RUN_COLUMNS`, its origin, ``status``, ``error``) plus, once complete, ``metrics.json``
and ``readouts.json``. The folder's tables are derived from the run folders by
:func:`~ceco_fair.results.folder.rebuild_folder`: ``results.json`` (the finished runs' records, metrics
included, in grid order), ``results.csv`` (one tidy row per run × read-out × metric) and
``comparisons.csv``. The report reads the run folders.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from ceco_fair.metrics.specs import GROUP_ACCURACY, curve_metrics
from ceco_fair.metrics.specs import METRIC_KINDS as METRIC_KINDS  # re-exported: the one owner is metrics.specs
from ceco_fair.metrics.specs import MetricKind as MetricKind

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
READOUTS_FILE: Final = "readouts.json"
"""``{readout: {metric: value}}``: the metrics of the read-outs other than the primary one (whose are
``metrics.json``)."""
PREDICTIONS_FILE: Final = "predictions.csv"
"""One row per test sample: ``target``, ``sensitive`` and the primary read-out's ``prediction``."""
SCORES_FILE: Final = "scores.csv"
"""Every read-out's class probabilities, one row per (read-out, test sample): ``readout``, ``index`` (the row of
``predictions.csv``), ``target``, ``sensitive``, ``prediction`` (the read-out's class), then ``score_0`` …
``score_{C-1}`` (its probabilities, summing to 1). Rows come read-out by read-out in measuring order, samples in
test order. Run folders written before it have none; readers treat it as optional."""
SCORE_PREFIX: Final = "score_"
"""The prefix of ``scores.csv``'s probability columns: ``score_<class>``."""
PROJECTION_FILE: Final = "projection.csv"
GROUP_TABLE_FILE: Final = "group_table.csv"
BIAS_MATRIX_FILE: Final = "bias_matrix.csv"
COUNTERFACTUAL_FILE: Final = "counterfactual.csv"
COLOUR_STRIP_FILE: Final = "counterfactual_strip.json"
SEARCH_CSV: Final = "search.csv"
PAIRED_TRIALS_FILE: Final = "paired_trials.csv"
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
"""A run's identifying fields: in ``run.json``, in each ``results.json`` entry and in ``results.csv``
(the first fields of :class:`~ceco_fair.results.record.RunRecord`)."""
RUN_ORIGIN_COLUMNS: Final = ("shard", "host", "device")
"""Where a run was trained: ``--shard`` (``K/N``), host name and device, in ``run.json`` and ``results.json``."""
READOUT_COLUMN: Final = "readout"
LINEAR_READOUT: Final = "linear"
"""The ERM linear probe on the training features."""
BALANCED_READOUT: Final = "balanced"
"""The same probe with every (target, sensitive) cell weighted equally (DFR's last-layer retraining)."""
HEAD_READOUT: Final = "head"
"""The classifier the method trained with the encoder (``ce``, the subgroup baselines, a CE term)."""
READOUTS: Final = (LINEAR_READOUT, BALANCED_READOUT, HEAD_READOUT)
"""The built-in read-outs of an encoder, in the order tables show them (a registered read-out follows them);
their classes are :data:`ceco_fair.evaluation.readouts.READOUTS`."""
PRIMARY_READOUT: Final = LINEAR_READOUT
"""The read-out a run's ``metrics.json`` holds (with the encoder's diagnostics), whose classes are
``predictions.csv``'s ``prediction``, the counterfactual flips' and the validation rules'. Its rows of
``results.csv`` are those of a table written before read-outs existed."""
READOUT_LABELS: Final = {
    LINEAR_READOUT: "linear probe",
    BALANCED_READOUT: "group-balanced probe",
    HEAD_READOUT: "the method's own head",
}
"""How tables and figures name each built-in read-out (a registered one is named by its name)."""
PHASE_SEARCH: Final = "search"
"""The ``phase`` of a search's trial runs (:class:`~ceco_fair.results.record.RunRecord`), also their ``selection``."""
PHASE_FINAL: Final = "final"
"""The ``phase`` of the runs of a picked configuration at every seed."""
Phase = Literal["search", "final"]
SEARCH_COLUMNS: Final = ("phase", "repeat", "trial", "method", "condition", "run_id", "seed")
"""The leading columns of ``search.csv``; the drawn values and the rules' scores follow."""
SELECTION_COLUMN: Final = "selection"
"""Names the rule that picked a row's run (``fixed`` without a search; ``search`` for the trials)."""
SELECTION_FIXED: Final = "fixed"
"""The ``selection`` of the runs of a protocol without a search: the protocol's own values."""
RESULTS_COLUMNS: Final = (*RUN_COLUMNS, SELECTION_COLUMN, READOUT_COLUMN, "metric", "value")
HISTORY_COLUMNS: Final = ("epoch", "loss")
"""Required columns of ``history.csv`` (training adds whatever else it tracks)."""
CURVES_COLUMNS: Final = ("epoch",)
"""Required columns of ``curves.csv``: the epoch (the per-epoch values of :func:`curves_columns` follow)."""
FINALS_REPEAT: Final = "repeat"
"""``search.finals``: each repeated search's pick is one result (the selection's variance inside the intervals)."""
FINALS_RESEED: Final = "reseed"
"""``search.finals``: the pick of one search retrained at every seed (seed variance only)."""
FINALS: Final = (FINALS_REPEAT, FINALS_RESEED)
FINALS_COLUMN: Final = "finals"
"""How a selected result was trained: ``repeat`` (each repeated search's pick), ``reseed`` (one pick retrained
per seed: no selection variance in the interval) or ``fixed`` (no search)."""
COMPARISONS_COLUMNS: Final = (
    SELECTION_COLUMN,
    FINALS_COLUMN,
    "method",
    "baseline",
    "condition",
    READOUT_COLUMN,
    "metric",
    "n_seeds",
    "mean_difference",
    "ci_low",
    "ci_high",
)
PAIRED_TRIALS_COLUMNS: Final = (
    "method",
    "baseline",
    "condition",
    "metric",
    "n_trials",
    "median",
    "win_share",
    "worst",
    "best",
)
"""``paired_trials.csv``: per method, condition and metric, its per-trial differences from the baseline."""
PREDICTIONS_COLUMNS: Final = ("target", "sensitive", "prediction")
SCORES_COLUMNS: Final = (READOUT_COLUMN, "index", "target", "sensitive", "prediction")
"""The leading columns of ``scores.csv``; the probabilities ``score_<class>`` follow."""
COUNTERFACTUAL_COLUMNS: Final = ("index", "target", "sensitive", "colour", "prediction")
"""One row per (test image, background colour): the probe's prediction on the recoloured image."""
PROJECTION_COLUMNS: Final = ("x", "y", "target", "sensitive")
GROUP_TABLE_COLUMNS: Final = ("group", "count", GROUP_ACCURACY)
"""Required columns of ``group_table.csv`` (then ``group_name``, rates and their intervals)."""

RunStatus = Literal["running", "complete", "failed", "incomplete"]
STATUS_RUNNING: Final = "running"
STATUS_COMPLETE: Final = "complete"
STATUS_FAILED: Final = "failed"
STATUS_INCOMPLETE: Final = "incomplete"
RUN_STATUSES: Final = (STATUS_RUNNING, STATUS_COMPLETE, STATUS_FAILED, STATUS_INCOMPLETE)
"""``running`` (written when a run starts), ``complete``, ``failed`` (training diverged or user code raised;
``run.json`` holds the ``error``) and ``incomplete`` (the reader's word for a run folder without a
status or metrics)."""
FINAL_STATUSES: Final = (STATUS_COMPLETE, STATUS_FAILED)
"""A run with one of these statuses is done: the result tables list it; only ``--resume`` retries a failed one."""

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
    ResultFile(PAIRED_TRIALS_FILE, "folder", "ceco_fair.results.trials", PAIRED_TRIALS_COLUMNS),
    ResultFile(LOG_FILE, "folder", "ceco_fair.run"),
    ResultFile(GRID_FILE, "folder", "ceco_fair.run"),
    ResultFile(LOCK_FILE, "folder", "ceco_fair.results.folder"),
    ResultFile(REPORT_FILE, "folder", "ceco_fair.report"),
    ResultFile(RUN_FILE, "run", "ceco_fair.results.record", RUN_COLUMNS),
    ResultFile(CLAIM_FILE, "run", "ceco_fair.runner.shards"),
    ResultFile(CHECKPOINT_FILE, "run", "ceco_fair.training.state"),
    ResultFile(ENCODER_FILE, "run", "ceco_fair.models.files"),
    ResultFile(HISTORY_FILE, "run", "ceco_fair.runner.experiment", HISTORY_COLUMNS),
    ResultFile(CURVES_FILE, "run", "ceco_fair.runner.experiment", CURVES_COLUMNS),
    ResultFile(METRICS_FILE, "run", "ceco_fair.results.record"),
    ResultFile(READOUTS_FILE, "run", "ceco_fair.results.record"),
    ResultFile(PREDICTIONS_FILE, "run", "ceco_fair.results.run_files", PREDICTIONS_COLUMNS),
    ResultFile(SCORES_FILE, "run", "ceco_fair.results.run_files", SCORES_COLUMNS),
    ResultFile(PROJECTION_FILE, "run", "ceco_fair.results.run_files", PROJECTION_COLUMNS),
    ResultFile(GROUP_TABLE_FILE, "run", "ceco_fair.results.run_files", GROUP_TABLE_COLUMNS, "group"),
    ResultFile(BIAS_MATRIX_FILE, "run", "ceco_fair.results.run_files", (), "bias"),
    ResultFile(COUNTERFACTUAL_FILE, "run", "ceco_fair.results.run_files", COUNTERFACTUAL_COLUMNS),
    ResultFile(COLOUR_STRIP_FILE, "run", "ceco_fair.results.run_files"),
)
"""Every file a results folder may hold."""


def run_dir(folder: Path, run_id: str) -> Path:
    """The folder of one run: ``folder/runs/<run_id>``."""
    return folder / RUNS_DIR / run_id


def curves_columns() -> tuple[str, ...]:
    """Every column ``curves.csv`` may hold: the epoch, then each metric whose spec has ``curve`` (read now)."""
    return (*CURVES_COLUMNS, *curve_metrics())


def readout_label(readout: str) -> str:
    """How tables and figures name a read-out: its :data:`READOUT_LABELS` entry, else its name."""
    return READOUT_LABELS.get(readout, readout)


def ordered_readouts(found: Iterable[str]) -> list[str]:
    """The read-outs ``found`` (each once): the built-in ones in :data:`READOUTS` order, then the others as found."""
    names = list(dict.fromkeys(found))
    return [name for name in READOUTS if name in names] + [name for name in names if name not in READOUTS]


def run_table_file(kind: str) -> str | None:
    """The per-run table that runs of a metric kind write (``bias_matrix.csv`` / ``group_table.csv``)."""
    return next((f.name for f in FILES if f.kind == kind), None)
