"""Model selection: the rules that pick a hyper-parameter trial per method and condition. Torch-free.

A protocol with a ``search`` trains ``trials`` configurations of every method under every
condition (ρ / attribute pair) at its first seed; a rule then picks, per method and condition,
the trial with the best score, ties going to the lower trial. Each rule is a named function of
one place, :data:`RULES`:

- ``val_accuracy``: mean accuracy on the validation split (no group labels needed; SubpopBench's
  "attribute no").
- ``val_worst_group``: worst (target, sensitive) cell accuracy on validation; on a bias dataset the
  unbiased accuracy over the cells present (group labels on validation: "attribute yes").
- ``oracle``: the test metric the report leads with; it reads the test set, so every table marks
  it as an upper bound, never as a result.

The validation rules read only the ``val_*`` scores a run recorded from its validation split;
the test set is never read for them. ``search.csv`` holds every trial's drawn values and scores,
``selection.json`` the picks (rule -> method -> condition -> trial and values).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from ceco_fair.common.io import atomic_write_json, atomic_write_text
from ceco_fair.errors import CecoFairError, DataError
from ceco_fair.metrics.specs import BIAS_METRICS, GROUP_METRICS, METRIC_SPECS, with_role
from ceco_fair.results.layout import (
    PHASE_SEARCH,
    SEARCH_COLUMNS,
    SEARCH_CSV,
    SELECTION_FILE,
    SELECTION_FIXED,
    STATUS_COMPLETE,
)
from ceco_fair.results.record import RunRecord

Labels = npt.NDArray[np.int64]


def val_accuracy(targets: Labels, predictions: Labels, sensitive: Labels, *, kind: str) -> float:
    """Mean accuracy on the validation split (all arrays ``[n]``); the groups are not read."""
    del sensitive, kind
    return float(np.mean(targets == predictions)) if len(targets) else math.nan


def val_worst_group(targets: Labels, predictions: Labels, sensitive: Labels, *, kind: str) -> float:
    """Worst (target, sensitive) cell accuracy on validation; for ``kind == "bias"`` the unbiased accuracy.

    Args:
        targets: ``[n]`` classes.
        predictions: ``[n]`` predicted classes.
        sensitive: ``[n]`` sensitive (bias) values.
        kind: the dataset's metric kind (``bias``: the mean over the (class, bias) cells present).

    Returns:
        The score (NaN for an empty split).
    """
    if not len(targets):
        return math.nan
    from ceco_fair.metrics import bias_metrics, group_metrics

    (metric,) = (name for name in with_role("group_selection") if METRIC_SPECS[name].kind == kind)
    if kind == "bias":
        return bias_metrics(targets, predictions, sensitive)[metric]
    return group_metrics(targets, predictions, sensitive, rates=False)[metric]


def oracle_metric(kind: str) -> str:
    """The test metric the oracle selects on: the one the report leads with for the dataset kind."""
    return BIAS_METRICS[0] if kind == "bias" else GROUP_METRICS[0]


@dataclass(frozen=True)
class SelectionRule:
    """A selection rule.

    Attributes:
        name: its name in ``select``, ``search.csv``, ``selection.json`` and the tables' ``selection`` column.
        description: one line for the report's tables.
        needs_groups: whether it reads the sensitive values of the validation split.
        reads_test: whether it reads the test set (the oracle: an upper bound, not a result).
        validation_score: the score of validation predictions (None for the oracle).
    """

    name: str
    description: str
    needs_groups: bool
    reads_test: bool
    validation_score: Callable[..., float] | None = None


RULES: Final[Mapping[str, SelectionRule]] = {
    "val_accuracy": SelectionRule("val_accuracy", "validation accuracy (no group labels)", False, False, val_accuracy),
    "val_worst_group": SelectionRule(
        "val_worst_group", "validation worst-group accuracy (group labels on validation)", True, False, val_worst_group
    ),
    "oracle": SelectionRule("oracle", "test-set oracle: an upper bound, not a result", False, True),
}
"""Every selection rule by name."""
VALIDATION_RULES: Final = tuple(name for name, rule in RULES.items() if not rule.reads_test)
FIXED: Final = SELECTION_FIXED


def describe(selection: str) -> str:
    """A selection label as the report's tables name it."""
    if selection in RULES:
        return f"{selection}: {RULES[selection].description}"
    return "fixed: the protocol's values (no search)" if selection == FIXED else selection


def validation_scores(
    targets: Labels, predictions: Labels, sensitive: Labels, *, kind: str, groups: bool
) -> dict[str, float]:
    """Every validation rule's score of validation predictions (``val_worst_group`` only with ``groups``)."""
    return {
        name: rule.validation_score(targets, predictions, sensitive, kind=kind)
        for name, rule in RULES.items()
        if rule.validation_score is not None and (groups or not rule.needs_groups)
    }


def rule_score(row: Mapping[str, Any], rule: str) -> float:
    """A ``search.csv`` row's score under ``rule`` (its column of the same name; NaN when absent)."""
    value = row.get(rule)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return number


def pick(rows: Sequence[Mapping[str, Any]], rule: str) -> Mapping[str, Any] | None:
    """The row with the best finite score under ``rule`` (higher is better; ties to the lower trial)."""
    scored = [row for row in rows if math.isfinite(rule_score(row, rule))]
    if not scored:
        return None
    return min(scored, key=lambda row: (-rule_score(row, rule), int(row["trial"])))


def search_rows(records: Iterable[RunRecord], *, oracle: bool) -> list[dict[str, Any]]:
    """``search.csv``'s rows from run records (their ``phase``, ``trial``, ``values``, ``validation``).

    Args:
        records: run records; the complete runs of the search phase give a row.
        oracle: add the ``oracle`` column (the test metric the oracle selects on).

    Returns:
        One row per complete search run: :data:`SEARCH_COLUMNS`, every drawn value, every rule's score.
    """
    rows = []
    for record in records:
        if record.phase != PHASE_SEARCH or record.status != STATUS_COMPLETE:
            continue
        row: dict[str, Any] = {column: getattr(record, column) for column in SEARCH_COLUMNS if column != "condition"}
        row["condition"] = record.condition
        row.update(record.values or {})
        row.update(record.validation or {})
        if oracle:
            row["oracle"] = record.metrics.get(oracle_metric(str(record.metric_kind)))
        rows.append(row)
    return rows


def select_rows(rows: Sequence[Mapping[str, Any]], rule: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Apply ``rule`` to ``search.csv`` rows: method -> condition -> ``{"trial", "run_id", "score", "values"}``.

    Raises:
        CecoFairError: ``rule`` is not a key of :data:`RULES`.
    """
    if rule not in RULES:
        raise CecoFairError(f"rule: unknown selection rule {rule!r}; expected one of {', '.join(RULES)}")
    fixed = set(SEARCH_COLUMNS) | set(RULES)
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault((str(row["method"]), str(row["condition"])), []).append(row)
    chosen: dict[str, dict[str, dict[str, Any]]] = {}
    for (method, condition), members in groups.items():
        best = pick(members, rule)
        if best is None:
            continue
        values = {key: _plain(value) for key, value in best.items() if key not in fixed and not _missing(value)}
        chosen.setdefault(method, {})[condition] = {
            "trial": int(best["trial"]),
            "run_id": str(best["run_id"]),
            "score": rule_score(best, rule),
            "values": values,
        }
    return chosen


def selections(rows: Sequence[Mapping[str, Any]], rules: Sequence[str]) -> dict[str, Any]:
    """``selection.json``: rule -> method -> condition -> the pick (see :func:`select_rows`)."""
    return {rule: select_rows(rows, rule) for rule in rules}


def select(results_dir: str | Path, rule: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Re-select the trials of an existing results folder under ``rule``, without training.

    Reads the folder's ``search.csv`` (the trials' drawn values and validation scores; the oracle's
    column is there only when the search asked for it).

    Args:
        results_dir: a protocol's output folder of a run with a ``search``.
        rule: ``val_accuracy``, ``val_worst_group`` or ``oracle``.

    Returns:
        method -> condition -> ``{"trial", "run_id", "score", "values"}``: the chosen configuration.

    Raises:
        CecoFairError: an unknown rule, or a folder without ``search.csv`` or without the rule's scores.
    """
    if rule not in RULES:
        raise CecoFairError(f"rule: unknown selection rule {rule!r}; expected one of {', '.join(RULES)}")
    path = Path(results_dir) / SEARCH_CSV
    if not path.is_file():
        raise DataError(f"{path}: not found (the folder of a protocol run with a search holds it)")
    rows = read_search_rows(path)
    if rows and rule not in rows[0]:
        raise DataError(f"{path}: no {rule!r} column (the search did not record that rule's scores)")
    return select_rows(rows, rule)


def read_search_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``search.csv`` as dictionaries (empty cells dropped)."""
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: unreadable ({error})") from None
    return [{str(key): value for key, value in row.items() if not _missing(value)} for row in frame.to_dict("records")]


def search_frame(rows: Sequence[Mapping[str, Any]], rules: Sequence[str]) -> pd.DataFrame:
    """``search.csv`` as a table: the fixed columns, the drawn values in first-seen order, then the scores."""
    values = [key for row in rows for key in row if key not in SEARCH_COLUMNS and key not in RULES]
    scores = [rule for rule in RULES if rule in rules or any(rule in row for row in rows)]
    columns = [*SEARCH_COLUMNS, *dict.fromkeys(values), *scores]
    return pd.DataFrame([dict(row) for row in rows], columns=columns)


def read_selection(folder: Path) -> dict[str, Any]:
    """A folder's ``selection.json`` (empty without one)."""
    path = folder / SELECTION_FILE
    if not path.is_file():
        return {}
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None
    return loaded if isinstance(loaded, dict) else {}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> Any:
    """Numpy scalars as Python numbers (for JSON)."""
    return value.item() if isinstance(value, np.generic) else value


def write_search_files(folder: Path, records: Sequence[RunRecord], rules: Sequence[str]) -> dict[str, Any]:
    """Write ``search.csv`` and ``selection.json`` from a folder's run records; return the picks.

    Args:
        folder: the protocol's output folder.
        records: its finished runs' records.
        rules: the protocol's ``search.select``.

    Returns:
        ``selection.json``'s content: rule -> method -> condition -> pick.
    """
    rows = search_rows(records, oracle="oracle" in rules)
    atomic_write_text(folder / SEARCH_CSV, search_frame(rows, rules).to_csv(index=False))
    picks = selections(rows, rules)
    atomic_write_json(folder / SELECTION_FILE, picks)
    return picks


def label_records(records: Sequence[RunRecord], picks: Mapping[str, Any]) -> list[RunRecord]:
    """The records with their ``selection`` list: ``search`` for trials, and each rule that picked their trial."""
    labelled = []
    for record in records:
        labels = [PHASE_SEARCH] if record.phase == PHASE_SEARCH else []
        for rule, by_method in picks.items():
            chosen = (by_method.get(record.method) or {}).get(record.condition)
            if chosen is not None and record.trial is not None and chosen["trial"] == record.trial:
                labels.append(rule)
        labelled.append(dataclasses.replace(record, selection=labels))
    return labelled
