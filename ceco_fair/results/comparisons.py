"""Paired comparisons of methods against a baseline: ``comparisons.csv``.

A comparison pairs two methods' runs that share a seed and a condition (ρ, or a target/sensitive
pair), hence the same data colouring, split and initialisation, read out the same way (``linear``,
``balanced`` or ``head``; a read-out the baseline lacks is not compared). For each method other than the
baseline, each condition and each headline metric, the differences ``d_s = method_s − baseline_s``
over the n paired seeds give

    mean_difference = d̄,   interval = d̄ ± t_{(1+c)/2, n−1} · s_d / √n

(Student's t at confidence c, s_d the sample standard deviation of the differences; the seed
interval of :mod:`ceco_fair.results.seeds`). With one pair the interval is empty (NaN): one run
decides nothing. Failed runs, seeds that only one of the two methods completed and non-finite values
are left out of the pairs. Conditions are named by :func:`~ceco_fair.results.record.condition_label`.

Torch-free: the report rebuilds comparisons from ``results.json`` without training anything.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ceco_fair.common.io import atomic_write_text
from ceco_fair.metrics.specs import headline_metrics
from ceco_fair.results.layout import (
    COMPARISONS_COLUMNS,
    COMPARISONS_FILE,
    PHASE_SEARCH,
    SELECTION_FIXED,
    ordered_readouts,
)
from ceco_fair.results.record import condition_label, entry_readouts, selections_of
from ceco_fair.results.seeds import paired_interval

DEFAULT_BASELINE_LOSS = "supcon"


def default_baseline(runs: Iterable[Mapping[str, Any]]) -> str | None:
    """The label of the first method trained with SupCon, else the first method's label (None: no runs)."""
    runs = list(runs)
    for run in runs:
        if run.get("loss") == DEFAULT_BASELINE_LOSS:
            return str(run["method"])
    return str(runs[0]["method"]) if runs else None


def paired_comparisons(
    runs: Iterable[Mapping[str, Any]],
    *,
    kind: str,
    baseline: str | None = None,
    confidence: float = 0.95,
    selection: str = SELECTION_FIXED,
    finals: str = SELECTION_FIXED,
) -> pd.DataFrame:
    """Every method against ``baseline``, paired by seed, per condition and headline metric.

    Args:
        runs: run records (``method``, ``loss``, ``seed``, ``rho``, ``target``, ``sensitive``, ``status``,
            ``metrics``), as in ``results.json``.
        kind: ``bias`` or ``group``: which headline metrics are compared (their specs' ``headline``).
        baseline: the baseline method's label (default: :func:`default_baseline`).
        confidence: the intervals' confidence level.
        selection: the rule that picked these runs, written in the ``selection`` column.
        finals: how the picks were trained (``repeat``, ``reseed`` or ``fixed``), the ``finals`` column.

    Returns:
        One row per (method, condition, read-out, metric) with at least one pair, columns
        :data:`COMPARISONS_COLUMNS`.
    """
    complete = [run for run in runs if run.get("status", "complete") == "complete" and run.get("metrics")]
    baseline = baseline or default_baseline(complete)
    headline = headline_metrics(kind)
    values: dict[tuple[str, str, str, str], dict[Any, float]] = {}
    order: list[str] = []
    for run in complete:
        method = str(run["method"])
        if method not in order:
            order.append(method)
        for readout, metrics in entry_readouts(run).items():
            for metric in headline:
                value = metrics.get(metric)
                if value is not None and math.isfinite(float(value)):
                    values.setdefault((method, _condition(run), readout, metric), {})[run["seed"]] = float(value)
    conditions = list(dict.fromkeys(_condition(run) for run in complete))
    readouts = ordered_readouts(key[2] for key in values)
    rows = []
    for method in order:
        if method == baseline:
            continue
        for condition in conditions:
            for readout in readouts:
                for metric in headline:
                    mine = values.get((method, condition, readout, metric), {})
                    theirs = values.get((str(baseline), condition, readout, metric), {})
                    seeds = sorted(set(mine) & set(theirs))
                    if not seeds:
                        continue
                    mean, low, high = paired_interval([mine[s] - theirs[s] for s in seeds], confidence)
                    rows.append(
                        [selection, finals, method, baseline, condition, readout, metric, len(seeds), mean, low, high]
                    )
    return pd.DataFrame(rows, columns=list(COMPARISONS_COLUMNS))


def _condition(run: Mapping[str, Any]) -> str:
    return condition_label(run.get("rho"), run.get("target"), run.get("sensitive"))


def write_comparisons(
    folder: Path,
    runs: Iterable[Mapping[str, Any]],
    *,
    kind: str,
    baseline: str | None,
    confidence: float,
    order: Sequence[str] = (),
    finals: str = SELECTION_FIXED,
) -> pd.DataFrame:
    """Write ``folder/comparisons.csv`` atomically and return the table.

    The runs of each ``selection`` (a rule's picks, or ``fixed``) are compared apart
    (:func:`paired_comparisons`), in the ``order`` given (the protocol's ``search.select``), then as
    found; a search's trials (``search``) are not compared. ``finals`` names how a search's picks
    were trained (``repeat``: the pairs are repeated searches; ``reseed``: one pick retrained per seed).
    """
    runs = list(runs)
    found = [label for label in dict.fromkeys(s for run in runs for s in selections_of(run)) if label != PHASE_SEARCH]
    labels = [label for label in order if label in found] + [label for label in found if label not in order]
    tables = [
        paired_comparisons(
            [run for run in runs if label in selections_of(run)],
            kind=kind,
            baseline=baseline,
            confidence=confidence,
            selection=label,
            finals=SELECTION_FIXED if label == SELECTION_FIXED else finals,
        )
        for label in labels
    ]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=list(COMPARISONS_COLUMNS))
    atomic_write_text(folder / COMPARISONS_FILE, table.to_csv(index=False))
    return table
