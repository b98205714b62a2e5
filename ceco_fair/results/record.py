"""A run's record: what the run is, where it ran, how it ended and what it measured.

On disk a record is its run folder's ``run.json`` (every field but the metrics) and, once the run
is complete, ``metrics.json`` (metric name -> value, measured through the primary read-out,
:data:`~ceco_fair.results.layout.PRIMARY_READOUT`) and ``readouts.json`` (the other read-outs' metrics,
when measured): :meth:`RunRecord.write` writes them, the
metrics first, so that a ``run.json`` that says ``complete`` always has its metrics beside it, and
:meth:`RunRecord.read` reads both. ``results.json`` lists the finished runs' records with their
metrics (:meth:`RunRecord.to_json`). Every record is parsed by :meth:`RunRecord.from_json`, strictly:
a field of the wrong type is a one-line :class:`RecordError` that names the file and the field.

Adding a field: one attribute with a default below (its type annotation is the parser's check,
see :func:`check_value`), and its name in :mod:`ceco_fair.results.layout` if it is a column.
Keys a record does not know (what a dataset says about itself: ``target_name``, ``group_names``,
``group_colours``, ...) are kept in :attr:`RunRecord.facts` as they are.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal

from ceco_fair.common.io import atomic_write_json
from ceco_fair.errors import DataError
from ceco_fair.results.layout import (
    FINAL_STATUSES,
    LIST_SEPARATOR,
    METRICS_FILE,
    PRIMARY_READOUT,
    READOUT_COLUMN,
    READOUTS_FILE,
    RUN_COLUMNS,
    RUN_FILE,
    SELECTION_COLUMN,
    SELECTION_FIXED,
    STATUS_COMPLETE,
    STATUS_FAILED,
    STATUS_INCOMPLETE,
    MetricKind,
    Phase,
    RunStatus,
)

METRICS_KEY: Final = "metrics"
"""The key of a record's metrics in a ``results.json`` entry (``run.json`` has none: they are in ``metrics.json``)."""
READOUTS_KEY: Final = "readouts"
"""The key of a record's other read-outs (read-out -> its metrics) in a ``results.json`` entry."""
FACTS_KEY: Final = "facts"

WRONG_TYPE: Final = "{path}: {key} is {value!r}, expected {expected}"
MISSING: Final = "{path}: missing{why}"


class RecordError(DataError):
    """A run record that cannot be read: the message names the file and the field.

    Attributes:
        path: The file at fault (``run.json``, ``metrics.json`` or ``results.json``).
    """

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class RunRecord:
    """One run of a results folder.

    Attributes:
        run_id: The run's name, also its folder's name (``runs/<run_id>/``).
        method: The method's label.
        loss: The loss the method trains with (``None`` for an audited encoder).
        dataset: The dataset's name.
        metric_kind: ``bias`` or ``group``: which metrics and per-run table the run has.
        rho: The training split's bias ρ (``None`` for datasets without one).
        target: The target attribute (``None`` for datasets with one target).
        sensitive: The sensitive attribute(s).
        seed: The run's seed.
        status: ``running``, ``complete``, ``failed`` or ``incomplete`` (a ``run.json`` without one).
        error: Why a failed run failed.
        shard: The ``--shard`` (``K/N``) of the process that trained it.
        host: The host it was trained on.
        device: The device it was trained on.
        phase: With a protocol ``search``: ``search`` (a trial at the first seed) or ``final`` (a picked
            configuration at every seed); ``None`` without a search.
        trial: The search trial whose values the run trained with.
        repeat: The repeated search the run belongs to (``search.repeats``; 0 under ``reseed`` finals).
        values: The trial's drawn values (search key -> value).
        validation: The run's validation scores (selection rule -> score), search runs only.
        selection: The rules that picked the run's trial (``search`` for a trial run), set when a folder's
            tables are built (``results.json``, not ``run.json``); ``None`` reads as ``fixed``.
        metrics: Metric name -> value (fractions; ``None`` or NaN where undefined), complete runs only,
            measured through the primary read-out (:data:`~ceco_fair.results.layout.PRIMARY_READOUT`).
        readouts: Every other read-out the run measured -> its metrics.
        facts: Every other key of ``run.json`` (what the dataset says about itself, the encoder's name).
    """

    run_id: str
    method: str
    loss: str | None = None
    dataset: str | None = None
    metric_kind: MetricKind | None = None
    rho: float | None = None
    target: str | None = None
    sensitive: str | list[str] | None = None
    seed: int | None = None
    status: RunStatus = STATUS_INCOMPLETE
    error: str | None = None
    shard: str | None = None
    host: str | None = None
    device: str | None = None
    phase: Phase | None = None
    trial: int | None = None
    repeat: int | None = None
    values: dict[str, Any] | None = None
    validation: dict[str, float | None] | None = None
    selection: list[str] | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    readouts: dict[str, dict[str, float | None]] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        """Whether the run is done (complete or failed): the result tables list it, no process trains it again."""
        return self.status in FINAL_STATUSES

    def with_facts(self, data: Mapping[str, Any]) -> RunRecord:
        """This record with ``data`` merged in: its record fields replace the record's, the rest are facts.

        Raises:
            RecordError: A record field of ``data`` has the wrong type.
        """
        names, hints, where = set(_field_names()), _field_types(), Path(RUN_FILE)
        known = {key: check_value(value, hints[key], where, key) for key, value in data.items() if key in names}
        facts = {
            key: value for key, value in data.items() if key not in names and key not in (METRICS_KEY, READOUTS_KEY)
        }
        return dataclasses.replace(self, **known, facts={**self.facts, **facts})

    def finish(
        self,
        metrics: Mapping[str, float | None],
        readouts: Mapping[str, Mapping[str, float | None]] | None = None,
    ) -> RunRecord:
        """This record, complete, with its ``metrics`` (the primary read-out's) and the other ``readouts``' metrics."""
        others = {str(name): dict(values) for name, values in (readouts or {}).items()}
        return dataclasses.replace(self, status=STATUS_COMPLETE, error=None, metrics=dict(metrics), readouts=others)

    def readout_metrics(self) -> dict[str, dict[str, float | None]]:
        """Read-out -> its metrics: the primary read-out (:attr:`metrics`) first, then :attr:`readouts`."""
        return split_readouts(self.metrics, self.readouts)

    def fail(self, error: str) -> RunRecord:
        """This record, failed, with the reason."""
        return dataclasses.replace(self, status=STATUS_FAILED, error=error, metrics={}, readouts={})

    @property
    def condition(self) -> str:
        """The run's grid condition (see :func:`condition_label`)."""
        return condition_label(self.rho, self.target, self.sensitive)

    def columns(self) -> dict[str, Any]:
        """The :data:`~ceco_fair.results.layout.RUN_COLUMNS` as table cells (attribute lists joined with ``+``)."""
        return {column: cell(getattr(self, column)) for column in RUN_COLUMNS}

    def to_json(self, *, metrics: bool = True) -> dict[str, Any]:
        """The record as JSON: its fields, then its facts, then (with ``metrics``) its metrics.

        A field outside :data:`~ceco_fair.results.layout.RUN_COLUMNS` is left out when unset (``error``, the
        origin, a field added later); ``run.json`` is ``to_json(metrics=False)``.
        """
        data: dict[str, Any] = {}
        for name in _field_names():
            value = getattr(self, name)
            if value is None and name not in RUN_COLUMNS:
                continue
            data[name] = value
        data.update(self.facts)
        if metrics:
            data[METRICS_KEY] = dict(self.metrics)
            if self.readouts:
                data[READOUTS_KEY] = {name: dict(values) for name, values in self.readouts.items()}
        return data

    @classmethod
    def from_json(cls, data: Any, path: Path, *, where: str = "", metrics: bool = True) -> RunRecord:
        """Parse a record, checking every known field's type.

        Args:
            data: A ``run.json`` object or one entry of ``results.json``.
            path: The file it comes from, for the error message.
            where: The entry's place in the file (``runs[3]``), prefixed to field names.
            metrics: Whether ``data`` may hold the record's metrics (``results.json``; ``run.json`` does not).

        Returns:
            The record; a missing ``status`` reads as ``incomplete``.

        Raises:
            RecordError: ``data`` is not an object, lacks ``run_id`` or ``method``, or a field has the wrong type.
        """
        prefix = f"{where}." if where else ""
        if not isinstance(data, Mapping):
            raise _wrong(path, where or "the top level", type(data).__name__, "a JSON object")
        hints = _field_types()
        values: dict[str, Any] = {}
        facts: dict[str, Any] = {}
        for key, value in data.items():
            if key in hints and key not in (METRICS_KEY, READOUTS_KEY, FACTS_KEY):
                values[key] = check_value(value, hints[key], path, f"{prefix}{key}")
            elif key == METRICS_KEY and metrics:
                values[key] = check_metrics(value, path, f"{prefix}{key}")
            elif key == READOUTS_KEY and metrics:
                values[key] = check_readouts(value, path, f"{prefix}{key}")
            else:
                facts[str(key)] = value
        for required in ("run_id", "method"):
            if not isinstance(values.get(required), str):
                raise _wrong(path, f"{prefix}{required}", values.get(required), "a string")
        return cls(**values, facts=facts)

    @classmethod
    def read(cls, run_dir: Path) -> RunRecord:
        """Read a run folder's record: ``run.json`` and, for a complete run, ``metrics.json`` (and ``readouts.json``).

        Raises:
            RecordError: A file is missing or malformed, or ``run_id`` is not the folder's name.
        """
        record = read_run_file(run_dir / RUN_FILE)
        if record.status == STATUS_COMPLETE:
            readouts_path = run_dir / READOUTS_FILE
            readouts = read_readouts(readouts_path) if readouts_path.is_file() else {}
            record = dataclasses.replace(record, metrics=read_metrics(run_dir / METRICS_FILE), readouts=readouts)
        return record

    def write(self, run_dir: Path) -> None:
        """Write the record into ``run_dir`` atomically: a complete run's metrics and read-outs, then ``run.json``."""
        run_dir.mkdir(parents=True, exist_ok=True)
        if self.status == STATUS_COMPLETE:
            atomic_write_json(run_dir / METRICS_FILE, dict(self.metrics))
            if self.readouts:
                atomic_write_json(run_dir / READOUTS_FILE, {name: dict(v) for name, v in self.readouts.items()})
            else:
                (run_dir / READOUTS_FILE).unlink(missing_ok=True)
        atomic_write_json(run_dir / RUN_FILE, self.to_json(metrics=False))


def read_run_file(path: Path) -> RunRecord:
    """A record from one ``run.json`` (without metrics); its ``run_id`` must be its folder's name.

    Raises:
        RecordError: The file is missing, not JSON, or a field has the wrong type.
    """
    record = RunRecord.from_json(_read_json(path), path, metrics=False)
    if record.run_id != path.parent.name:
        raise _wrong(path, "run_id", record.run_id, f"{path.parent.name!r}, the name of its folder")
    return record


def read_metrics(path: Path) -> dict[str, float | None]:
    """A ``metrics.json``: metric name -> number (or null).

    Raises:
        RecordError: The file is missing, not JSON, not an object, or a value is not a number.
    """
    return check_metrics(_read_json(path), path)


def read_readouts(path: Path) -> dict[str, dict[str, float | None]]:
    """A ``readouts.json``: read-out -> metric name -> number (or null).

    Raises:
        RecordError: The file is missing, not JSON, not an object, or a value is not a number.
    """
    return check_readouts(_read_json(path), path)


def split_readouts(
    metrics: Mapping[str, Any] | None, readouts: Mapping[str, Mapping[str, Any]] | None
) -> dict[str, dict[str, Any]]:
    """Read-out -> its metrics, from the on-disk split: ``metrics`` (the primary read-out's), then ``readouts``."""
    others = {str(name): dict(values) for name, values in (readouts or {}).items()}
    return {PRIMARY_READOUT: dict(metrics or {}), **others}


def entry_readouts(entry: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A ``results.json`` entry's metrics per read-out (see :func:`split_readouts`)."""
    return split_readouts(entry.get(METRICS_KEY), entry.get(READOUTS_KEY))


def read_results(path: Path) -> list[RunRecord]:
    """The records of a ``results.json`` (``{"runs": [...]}``), each with its metrics.

    Raises:
        RecordError: The file is missing, not JSON, or an entry is malformed.
    """
    data = _read_json(path)
    runs = data.get("runs") if isinstance(data, Mapping) else None
    if not isinstance(runs, list):
        raise _wrong(path, '"runs"', runs, "a list of runs")
    return [RunRecord.from_json(entry, path, where=f"runs[{index}]") for index, entry in enumerate(runs)]


def tidy_rows(records: Iterable[RunRecord]) -> list[dict[str, Any]]:
    """``results.csv``'s rows (:data:`~ceco_fair.results.layout.RESULTS_COLUMNS`).

    One row per run × selection × read-out × metric. A run picked by two rules appears under each
    (filter on ``selection`` to read one rule's table).
    """
    return [
        {**record.columns(), SELECTION_COLUMN: selection, READOUT_COLUMN: readout, "metric": metric, "value": value}
        for record in records
        for selection in selections_of(record)
        for readout, metrics in record.readout_metrics().items()
        for metric, value in metrics.items()
    ]


def selections_of(run: RunRecord | Mapping[str, Any]) -> list[str]:
    """The ``selection`` labels of a record or a ``results.json`` entry (``fixed`` when it has none)."""
    labels = run.selection if isinstance(run, RunRecord) else run.get(SELECTION_COLUMN)
    return [str(label) for label in labels] if isinstance(labels, list | tuple) and labels else [SELECTION_FIXED]


def condition_label(rho: float | None, target: str | None, sensitive: str | Iterable[str] | None) -> str:
    """The one label of a grid condition (the grid cell but for method and seed).

    Used wherever a condition is named: ``comparisons.csv``'s ``condition`` column, the report and
    the summary tables. Missing parts may be ``None``, NaN or ``""``.

    Args:
        rho: The training bias ρ.
        target: The target attribute.
        sensitive: The sensitive attribute, or several (joined with ``+``).

    Returns:
        ``rho=0.9``, ``Attractive-vs-Male``, both joined by ``", "`` (``rho=0.9, Attractive-vs-Male``),
        or ``all`` when the run has none of them.
    """
    parts = []
    if rho is not None and _given(rho):
        parts.append(f"rho={float(rho):g}")
    if _given(target):
        parts.append(f"{target}-vs-{cell(sensitive)}")
    return ", ".join(parts) or "all"


def _given(value: object) -> bool:
    """Whether a condition part is set: not None, NaN or empty."""
    return value is not None and value != "" and not (isinstance(value, float) and math.isnan(value))


def cell(value: Any) -> Any:
    """A field as one table cell: lists of attributes are joined with ``+``."""
    if isinstance(value, list | tuple):
        return LIST_SEPARATOR.join(str(item) for item in value)
    return value


def check_value(value: Any, expected: Any, path: Path, key: str) -> Any:
    """``value`` if it has the type ``expected`` (a field's annotation), else a :class:`RecordError`.

    Understands ``str``, ``int`` (not ``bool``), ``float`` (an int is one too, kept as it is, so that a
    record read and written again is unchanged), ``None``, ``Literal``, ``list[X]``, ``dict[str, X]`` and
    unions of these.
    """
    if not _matches(value, expected):
        raise _wrong(path, key, value, _describe(expected))
    return value


def check_metrics(value: Any, path: Path, key: str = "") -> dict[str, float | None]:
    """A metrics object (``key`` in ``path``, the whole file when empty): names -> numbers or null.

    Raises:
        RecordError: ``value`` is not an object, or a value is not a number or null.
    """
    if not isinstance(value, Mapping):
        raise _wrong(path, key or "the top level", value, "an object of metric values")
    prefix = f"{key}." if key else ""
    return {str(name): check_value(number, float | None, path, f"{prefix}{name}") for name, number in value.items()}


def check_readouts(value: Any, path: Path, key: str = "") -> dict[str, dict[str, float | None]]:
    """A read-outs object (``key`` in ``path``, the whole file when empty): read-out -> metrics.

    Raises:
        RecordError: ``value`` is not an object, or one read-out's metrics are malformed.
    """
    if not isinstance(value, Mapping):
        raise _wrong(path, key or "the top level", value, "an object of read-outs")
    prefix = f"{key}." if key else ""
    return {str(name): check_metrics(metrics, path, f"{prefix}{name}") for name, metrics in value.items()}


@cache
def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(RunRecord)


@cache
def _field_names() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(RunRecord) if f.name not in (METRICS_KEY, READOUTS_KEY, FACTS_KEY))


def _is_union(expected: Any) -> bool:
    return isinstance(expected, types.UnionType) or typing.get_origin(expected) is typing.Union


def _matches(value: Any, expected: Any) -> bool:
    if expected is Any:
        return True
    if expected is None or expected is type(None):
        return value is None
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected is str:
        return isinstance(value, str)
    origin = typing.get_origin(expected)
    if origin is Literal:
        return value in typing.get_args(expected)
    if _is_union(expected):
        return any(_matches(value, member) for member in typing.get_args(expected))
    if origin is list:
        (item,) = typing.get_args(expected)
        return isinstance(value, list) and all(_matches(element, item) for element in value)
    if origin is dict:
        _, item = typing.get_args(expected)
        return isinstance(value, Mapping) and all(isinstance(k, str) and _matches(v, item) for k, v in value.items())
    raise TypeError(f"RunRecord: no check for the field type {expected!r}")


def _describe(expected: Any) -> str:
    if expected is None or expected is type(None):
        return "null"
    if expected in (int, float):
        return "a number" if expected is float else "an integer"
    if expected is str:
        return "a string"
    if expected is bool:
        return "true or false"
    origin = typing.get_origin(expected)
    if origin is Literal:
        return " or ".join(str(option) for option in typing.get_args(expected))
    if _is_union(expected):
        return " or ".join(_describe(member) for member in typing.get_args(expected))
    if origin is list:
        return f"a list of {_describe(typing.get_args(expected)[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict:
        item = typing.get_args(expected)[1]
        return "an object" if item is Any else f"an object whose values are each {_describe(item)}"
    return str(expected)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise RecordError(MISSING.format(path=path, why=""), path) from error
    except (OSError, UnicodeDecodeError) as error:
        raise RecordError(f"{path} cannot be read: {' '.join(str(error).split())}", path) from error
    except json.JSONDecodeError as error:
        raise RecordError(f"{path} cannot be read: invalid JSON ({error.msg} at line {error.lineno})", path) from error


def _wrong(path: Path, key: str, value: Any, expected: str) -> RecordError:
    return RecordError(WRONG_TYPE.format(path=path, key=key, value=value, expected=expected), path)
