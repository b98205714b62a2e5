"""The protocol folder's result tables, derived from its run folders' records.

``results.json`` holds ``{"runs": [...]}``, the finished runs' records
(:meth:`~ceco_fair.results.record.RunRecord.to_json`, metrics included); ``results.csv`` has one row
per run × selection × metric with the columns :data:`~ceco_fair.results.layout.RESULTS_COLUMNS`. See
:mod:`ceco_fair.results.layout`.

A protocol folder's tables are rebuilt from its run folders (:func:`rebuild_folder`): each run owns
``runs/<run_id>/``, so any number of processes can train runs of one grid into one folder, and
whichever rebuilds last leaves every finished run in the tables, once, in grid order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ceco_fair.common.io import atomic_write_json, atomic_write_text, locked
from ceco_fair.results.comparisons import default_baseline, write_comparisons
from ceco_fair.results.layout import (
    GRID_FILE,
    LOCK_FILE,
    PROTOCOL_FILE,
    RESULTS_COLUMNS,
    RESULTS_CSV,
    RESULTS_JSON,
    RUN_FILE,
    RUNS_DIR,
)
from ceco_fair.results.record import RunRecord, tidy_rows
from ceco_fair.results.selection import finals_mode, label_records, search_rows, write_search_files
from ceco_fair.results.trials import write_paired_trials


def tidy_results(records: Iterable[RunRecord]) -> pd.DataFrame:
    """One row per run × metric (runs without metrics contribute no rows)."""
    return pd.DataFrame(tidy_rows(records), columns=list(RESULTS_COLUMNS))


def write_results(folder: Path, records: Sequence[RunRecord]) -> None:
    """Write ``results.json`` for ``records`` and ``results.csv`` derived from it, atomically."""
    atomic_write_json(folder / RESULTS_JSON, {"runs": [record.to_json() for record in records]})
    atomic_write_text(folder / RESULTS_CSV, tidy_results(records).to_csv(index=False))


def write_grid(folder: Path, run_ids: Iterable[str]) -> None:
    """Write ``grid.json``: the run ids of the whole grid, in grid order."""
    atomic_write_json(folder / GRID_FILE, {"runs": list(run_ids)})


def read_grid(folder: Path) -> list[str]:
    """The grid's run ids in order, from ``grid.json`` (empty when the folder has none)."""
    path = folder / GRID_FILE
    if not path.exists():
        return []
    return [str(run_id) for run_id in json.loads(path.read_text(encoding="utf-8"))["runs"]]


def finished_record(run_folder: Path) -> RunRecord | None:
    """The record of a finished run (complete, with its metrics, or failed), else None.

    None for a run folder without ``run.json`` (claimed, not started) or whose status is ``running``
    (still training, or killed).

    Raises:
        RecordError: ``run.json`` or, for a complete run, ``metrics.json`` is malformed.
    """
    if not (run_folder / RUN_FILE).is_file():
        return None
    record = RunRecord.read(run_folder)
    return record if record.finished else None


@dataclass(frozen=True)
class FolderState:
    """What :func:`rebuild_folder` found.

    Attributes:
        records: The finished runs (complete or failed), in grid order, as written to ``results.json``.
        missing: The grid's run ids that are not finished (not started, running, or killed).
    """

    records: list[RunRecord]
    missing: list[str]


def rebuild_folder(folder: Path) -> FolderState:
    """Rebuild ``results.json``, ``results.csv`` and ``comparisons.csv`` from the run folders.

    A protocol with a ``search`` also gets ``search.csv`` and ``selection.json``, and each record
    its ``selection`` labels (the rules that picked its trial).

    Holds the folder's lock for the whole read-and-write, so a rebuild that read an older state
    never overwrites a newer one; each file is still replaced atomically. Runs are ordered as in
    ``grid.json`` (runs it does not list come last, by name). The comparisons take their baseline and
    confidence from the folder's ``protocol.yaml`` (``eval``) and their metric kind from the runs.

    Args:
        folder: A protocol's output folder.

    Returns:
        The finished runs and the grid's unfinished ones.
    """
    with locked(folder / LOCK_FILE):
        order = read_grid(folder)
        runs_dir = folder / RUNS_DIR
        found: dict[str, RunRecord] = {}
        for run_folder in sorted(runs_dir.iterdir()) if runs_dir.is_dir() else []:
            record = finished_record(run_folder) if run_folder.is_dir() else None
            if record is not None:
                found[run_folder.name] = record
        listed = set(order)
        ids = [run_id for run_id in order if run_id in found] + [r for r in found if r not in listed]
        records = [found[run_id] for run_id in ids]
        protocol = _read_yaml(folder / PROTOCOL_FILE)
        search = protocol.get("search") if isinstance(protocol, dict) else None
        rules = list(search.get("select") or []) if isinstance(search, dict) else []
        evaluation = protocol.get("eval") if isinstance(protocol, dict) else None
        baseline = evaluation.get("baseline") if isinstance(evaluation, dict) else None
        baseline = baseline or default_baseline(record.to_json(metrics=False) for record in records)
        if isinstance(search, dict):
            rows = search_rows(records, oracle="oracle" in rules)
            records = label_records(records, write_search_files(folder, rows, rules))
            write_paired_trials(folder, rows, baseline)
        write_results(folder, records)
        if records and isinstance(evaluation, dict) and "confidence" in evaluation:
            write_comparisons(
                folder,
                [record.to_json() for record in records],
                kind=str(records[-1].metric_kind),
                baseline=baseline,
                confidence=float(evaluation["confidence"]),
                order=rules,
                finals=finals_mode(search),
            )
    return FolderState(records, [run_id for run_id in order if run_id not in found])


def _read_yaml(path: Path) -> Any:
    """``path``'s YAML, or None when it is missing."""
    if not path.exists():
        return None
    return yaml.safe_load(path.read_text(encoding="utf-8"))
