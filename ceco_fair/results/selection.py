"""Model selection: the rules that pick a hyper-parameter trial per method and condition. Torch-free.

A protocol with a ``search`` trains ``trials`` configurations of every method under every
condition (ρ / attribute pair) at its first seed; a rule then picks, per method and condition,
the trial with the best score, ties going to the lower trial. Each rule is a named function of
one place, :data:`RULES`:

- ``val_accuracy``: mean accuracy on the validation split (no group labels needed; SubpopBench's
  "attribute no").
- ``val_worst_class``: the lowest per-class accuracy (recall) on validation, no group labels either
  (SubpopBench's ``ValWorstAccAttributeNo``).
- ``val_worst_group``: worst (target, sensitive) cell accuracy on validation; on a bias dataset the
  unbiased accuracy over the cells present (group labels on validation: "attribute yes").
- ``oracle``: the test metric the report leads with; it reads the test set, so every table marks
  it as an upper bound, never as a result.

The validation rules read only the ``val_*`` scores a run recorded from its validation split;
the test set is never read for them. ``search.csv`` holds every trial's drawn values, every rule's
score and the trial's test metrics (``test:<metric>``, linear read-out: the paired per-trial view);
``selection.json`` the picks, rule -> method -> condition -> repeat -> trial and values (one repeat,
``"0"``, without ``search.repeats``). A search repeated R times picks once per repeat.
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
from ceco_fair.metrics.specs import METRIC_SPECS, headline_metrics, outcome_metrics, with_role
from ceco_fair.results.layout import (
    FINALS_REPEAT,
    FINALS_RESEED,
    PHASE_SEARCH,
    SEARCH_COLUMNS,
    SEARCH_CSV,
    SELECTION_FILE,
    SELECTION_FIXED,
    STATUS_COMPLETE,
)
from ceco_fair.results.record import RunRecord

Labels = npt.NDArray[np.int64]
Picks = dict[str, dict[str, dict[str, dict[str, Any]]]]
"""One rule's picks: method -> condition -> repeat (``"0"``, ...) -> ``{"trial", "run_id", "score", "values"}``."""
TEST_PREFIX: Final = "test:"
"""``search.csv``'s test-metric columns: ``test:unbiased_accuracy`` (the linear read-out's, never used to select)."""


def val_accuracy(targets: Labels, predictions: Labels, sensitive: Labels, *, kind: str) -> float:
    """Mean accuracy on the validation split (all arrays ``[n]``); the groups are not read."""
    del sensitive, kind
    return float(np.mean(targets == predictions)) if len(targets) else math.nan


def val_worst_class(targets: Labels, predictions: Labels, sensitive: Labels, *, kind: str) -> float:
    """The lowest per-class accuracy (recall) on validation, over the classes present; the groups are not read.

    Args:
        targets: ``[n]`` classes.
        predictions: ``[n]`` predicted classes.
        sensitive: ``[n]`` sensitive values (unused).
        kind: the dataset's metric kind (unused: the score is the same for every kind).

    Returns:
        ``min_c mean(predictions[targets == c] == c)`` (NaN for an empty split).
    """
    del sensitive, kind
    if not len(targets):
        return math.nan
    classes, inverse = np.unique(targets, return_inverse=True)
    correct = np.bincount(inverse, weights=(targets == predictions).astype(np.float64), minlength=len(classes))
    return float(np.min(correct / np.bincount(inverse, minlength=len(classes))))


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
    return outcome_metrics("bias" if kind == "bias" else "group")[0]


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
    "val_worst_class": SelectionRule(
        "val_worst_class", "validation worst-class accuracy (no group labels)", False, False, val_worst_class
    ),
    "val_worst_group": SelectionRule(
        "val_worst_group", "validation worst-group accuracy (group labels on validation)", True, False, val_worst_group
    ),
    "oracle": SelectionRule("oracle", "test-set oracle: an upper bound, not a result", False, True),
}
"""Every selection rule by name."""
VALIDATION_RULES: Final = tuple(name for name, rule in RULES.items() if not rule.reads_test)
FIXED: Final = SELECTION_FIXED


FINALS_TEXT: Final = {
    FINALS_REPEAT: "repeated searches, each repeat's pick one result (the selection's variance inside the interval)",
    FINALS_RESEED: "reseed: one search's pick retrained at every seed (seed variance only, not the selection's)",
}


def describe(selection: str, finals: str | None = None) -> str:
    """A selection label as the report's tables name it, with how its picks were trained (``finals``)."""
    if selection in RULES:
        mode = f"; {FINALS_TEXT[finals]}" if finals in FINALS_TEXT else ""
        return f"{selection}: {RULES[selection].description}{mode}"
    return "fixed: the protocol's values (no search)" if selection == FIXED else selection


def finals_mode(search: Any) -> str:
    """How a folder's picks were trained, from its ``protocol.yaml`` search section (``fixed`` without one).

    A protocol resolved before ``search.finals`` existed retrained its picks at every seed: ``reseed``.
    """
    if not isinstance(search, Mapping):
        return FIXED
    return str(search.get("finals") or FINALS_RESEED)


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
    """``search.csv``'s rows from run records (their ``phase``, ``repeat``, ``trial``, ``values``, ``validation``).

    Args:
        records: run records; the complete runs of the search phase give a row.
        oracle: add the ``oracle`` column (the test metric the oracle selects on).

    Returns:
        One row per complete search run: :data:`SEARCH_COLUMNS`, every drawn value, every rule's score,
        then the run's headline test metrics (``test:<metric>``, linear read-out).
    """
    rows = []
    for record in records:
        if record.phase != PHASE_SEARCH or record.status != STATUS_COMPLETE:
            continue
        row: dict[str, Any] = {column: getattr(record, column) for column in SEARCH_COLUMNS if column != "condition"}
        row["condition"] = record.condition
        row["repeat"] = record.repeat or 0
        row.update(record.values or {})
        row.update(record.validation or {})
        if oracle:
            row["oracle"] = record.metrics.get(oracle_metric(str(record.metric_kind)))
        for metric in headline_metrics(str(record.metric_kind)):
            row[TEST_PREFIX + metric] = record.metrics.get(metric)
        rows.append(row)
    return rows


def _not_value(column: str) -> bool:
    """Whether a ``search.csv`` column is fixed, a score or a test metric rather than a drawn value."""
    return column in SEARCH_COLUMNS or column in RULES or column.startswith(TEST_PREFIX)


def select_rows(rows: Sequence[Mapping[str, Any]], rule: str) -> Picks:
    """Apply ``rule`` to ``search.csv`` rows, per method, condition and repeat.

    Returns:
        method -> condition -> repeat (a string) -> ``{"trial", "run_id", "score", "values"}``.

    Raises:
        CecoFairError: ``rule`` is not a key of :data:`RULES`.
    """
    if rule not in RULES:
        raise CecoFairError(f"rule: unknown selection rule {rule!r}; expected one of {', '.join(RULES)}")
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        key = (str(row["method"]), str(row["condition"]), str(int(row.get("repeat", 0))))
        groups.setdefault(key, []).append(row)
    chosen: Picks = {}
    for (method, condition, repeat), members in groups.items():
        best = pick(members, rule)
        if best is None:
            continue
        values = {key: _plain(value) for key, value in best.items() if not _not_value(key) and not _missing(value)}
        chosen.setdefault(method, {}).setdefault(condition, {})[repeat] = {
            "trial": int(best["trial"]),
            "run_id": str(best["run_id"]),
            "score": rule_score(best, rule),
            "values": values,
        }
    return chosen


def selections(rows: Sequence[Mapping[str, Any]], rules: Sequence[str]) -> dict[str, Picks]:
    """``selection.json``: rule -> method -> condition -> repeat -> the pick (see :func:`select_rows`)."""
    return {rule: select_rows(rows, rule) for rule in rules}


def select(results_dir: str | Path, rule: str) -> Picks:
    """Re-select the trials of an existing results folder under ``rule``, without training.

    Reads the folder's ``search.csv`` (the trials' drawn values and validation scores; the oracle's
    column is there only when the search asked for it).

    Args:
        results_dir: a protocol's output folder of a run with a ``search``.
        rule: ``val_accuracy``, ``val_worst_class``, ``val_worst_group`` or ``oracle``.

    Returns:
        method -> condition -> repeat (``"0"`` for a search run once) -> ``{"trial", "run_id", "score",
        "values"}``: the chosen configuration.

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
    values = [key for row in rows for key in row if not _not_value(key)]
    scores = [rule for rule in RULES if rule in rules or any(rule in row for row in rows)]
    tests = [key for row in rows for key in row if key.startswith(TEST_PREFIX)]
    columns = [*SEARCH_COLUMNS, *dict.fromkeys(values), *scores, *dict.fromkeys(tests)]
    return pd.DataFrame([dict(row) for row in rows], columns=columns)


def read_selection(folder: Path) -> dict[str, Picks]:
    """A folder's ``selection.json`` (empty without one), rule -> method -> condition -> repeat -> pick.

    A file written before repeats (rule -> method -> condition -> pick) reads as repeat ``"0"``.
    """
    path = folder / SELECTION_FILE
    if not path.is_file():
        return {}
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(loaded, dict):
        return {}
    return {
        str(rule): {
            str(method): {
                str(condition): ({"0": chosen} if "trial" in chosen else dict(chosen))
                for condition, chosen in by_condition.items()
            }
            for method, by_condition in by_method.items()
        }
        for rule, by_method in loaded.items()
    }


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> Any:
    """Numpy scalars as Python numbers (for JSON)."""
    return value.item() if isinstance(value, np.generic) else value


def write_search_files(folder: Path, rows: Sequence[Mapping[str, Any]], rules: Sequence[str]) -> dict[str, Picks]:
    """Write ``search.csv`` and ``selection.json`` from a folder's search rows; return the picks.

    Args:
        folder: the protocol's output folder.
        rows: its search runs' rows (:func:`search_rows`).
        rules: the protocol's ``search.select``.

    Returns:
        ``selection.json``'s content: rule -> method -> condition -> repeat -> pick.
    """
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
            by_repeat = (by_method.get(record.method) or {}).get(record.condition) or {}
            chosen = by_repeat.get(str(record.repeat or 0))
            if chosen is not None and record.trial is not None and chosen["trial"] == record.trial:
                labels.append(rule)
        labelled.append(dataclasses.replace(record, selection=labels))
    return labelled
