"""Tables of a results folder for papers and notes: mean and interval over seeds, method × condition.

``python -m ceco_fair.summary OUTPUT_DIR [--metrics M ...] [--confidence C] [--readout R]`` prints, under
a line naming the selection rule (one block per rule of a search; ``fixed`` without one), one Markdown
table per metric: a row per method, a column per condition (ρ or attribute pair), each cell the
mean over seeds with its interval (:func:`ceco_fair.results.seeds.seed_interval`: Student's t for
two seeds or more). Each value is written by :func:`ceco_fair.metrics.specs.format_value`, as
the report writes it (percent or plain, with the decimals of the metric's spec). The metrics are the
``linear`` read-out's unless ``--readout`` names another (``balanced``, ``head``) or ``all`` (a row per
method and read-out). Torch-free: it reads ``results.csv`` only.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ceco_fair.errors import CecoFairError
from ceco_fair.metrics.specs import MetricSpec, format_value, label, spec_of, unit_suffix
from ceco_fair.report.stats import summarize
from ceco_fair.results.layout import (
    PHASE_SEARCH,
    PRIMARY_READOUT,
    PROTOCOL_FILE,
    READOUT_COLUMN,
    READOUTS,
    RESULTS_CSV,
    SELECTION_COLUMN,
    SELECTION_FIXED,
    ordered_readouts,
)
from ceco_fair.results.record import condition_label
from ceco_fair.results.seeds import DEFAULT_CONFIDENCE
from ceco_fair.results.selection import describe, finals_mode

ALL_READOUTS = "all"
"""``--readout all``: a row per method and read-out."""

USAGE_ERROR_STATUS = 2


def seed_summary(results: pd.DataFrame, metrics: Sequence[str], confidence: float) -> pd.DataFrame:
    """Mean and interval over seeds of each (method, condition, metric).

    Args:
        results: the tidy rows of ``results.csv``.
        metrics: the metrics to keep.
        confidence: the intervals' level.

    Returns:
        Columns ``method, condition, metric, mean, low, high, n, kind`` in order of appearance.
    """
    table = results[results["metric"].isin(metrics)].copy()
    table["condition"] = [
        condition_label(rho, target, sensitive)
        for rho, target, sensitive in zip(
            _or_none(table["rho"]), _or_none(table["target"]), _or_none(table["sensitive"]), strict=True
        )
    ]
    return summarize(table, ["method", "condition", "metric"], confidence=confidence)


def format_cell(mean: float, low: float, high: float, spec: MetricSpec | None) -> str:
    """``37.6 [31.2, 44.0]`` (a percent metric) or ``0.412 [0.380, 0.444]``; ``–`` without a value."""
    if not math.isfinite(mean):
        return "–"
    text = format_value(mean, spec)
    if math.isfinite(low) and math.isfinite(high) and high > low:
        text += f" [{format_value(low, spec)}, {format_value(high, spec)}]"
    return text


def markdown_table(summary: pd.DataFrame, metric: str) -> str:
    """One metric's table: a row per method, a column per condition."""
    rows = summary[summary["metric"] == metric]
    conditions = list(dict.fromkeys(rows["condition"]))
    methods = list(dict.fromkeys(rows["method"]))
    spec = spec_of(metric)
    cells = {
        (str(method), str(condition)): format_cell(float(mean), float(low), float(high), spec)
        for method, condition, mean, low, high in zip(
            rows["method"], rows["condition"], rows["mean"], rows["low"], rows["high"], strict=True
        )
    }
    lines = [
        f"| {label(metric)}{unit_suffix(spec)} | " + " | ".join(conditions) + " |",
        "|---|" + "---|" * len(conditions),
    ]
    lines += [f"| {m} | " + " | ".join(cells.get((m, c), "–") for c in conditions) + " |" for m in methods]
    return "\n".join(lines)


def select_readout(results: pd.DataFrame, readout: str) -> pd.DataFrame:
    """The rows of one read-out, or of every read-out with the method named ``method · readout``.

    A table without a ``readout`` column (written before read-outs) holds the ``linear`` read-out.
    """
    if READOUT_COLUMN not in results.columns:
        results = results.assign(**{READOUT_COLUMN: PRIMARY_READOUT})
    if readout != ALL_READOUTS:
        return results[results[READOUT_COLUMN] == readout]
    order = {name: position for position, name in enumerate(ordered_readouts(results[READOUT_COLUMN]))}
    labelled = results.assign(method=results["method"].astype(str) + " · " + results[READOUT_COLUMN].astype(str))
    methods = list(dict.fromkeys(results["method"]))
    rank = [
        (methods.index(m), order.get(r, len(order)))
        for m, r in zip(results["method"], results[READOUT_COLUMN], strict=True)
    ]
    return labelled.iloc[sorted(range(len(rank)), key=rank.__getitem__)]


def summary_markdown(
    folder: Path,
    metrics: Sequence[str] | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    readout: str = PRIMARY_READOUT,
) -> str:
    """Every requested metric's table for the results folder ``folder`` (default: every metric with a spec).

    ``readout`` picks the read-out (``linear``, ``balanced``, ``head``) or ``all`` of them.
    """
    path = folder / RESULTS_CSV
    if not path.is_file():
        raise CecoFairError(f"{folder}: no {RESULTS_CSV} (is it a results folder?)")
    results = select_readout(pd.read_csv(path), readout)
    if results.empty:
        raise CecoFairError(f"--readout: no {readout} read-out in {path}")
    chosen = list(metrics) if metrics else [m for m in dict.fromkeys(results["metric"]) if spec_of(m) is not None]
    unknown = [m for m in chosen if m not in set(results["metric"])]
    if unknown:
        raise CecoFairError(f"--metrics: {', '.join(unknown)} not in {path}")
    if SELECTION_COLUMN not in results.columns:
        results = results.assign(**{SELECTION_COLUMN: SELECTION_FIXED})  # written before the selection column
    protocol_file = folder / PROTOCOL_FILE
    protocol = yaml.safe_load(protocol_file.read_text(encoding="utf-8")) if protocol_file.is_file() else None
    finals = finals_mode(protocol.get("search") if isinstance(protocol, dict) else None)
    parts = []
    for selection, rows in results[results[SELECTION_COLUMN] != PHASE_SEARCH].groupby(SELECTION_COLUMN, sort=False):
        summary = seed_summary(rows, chosen, confidence)
        parts.append(f"Selection: {describe(str(selection), finals)}")
        parts += [markdown_table(summary, metric) for metric in chosen if metric in set(summary["metric"])]
    return "\n\n".join(parts) + "\n"


def _or_none(column: pd.Series) -> list[Any]:
    return [None if pd.isna(value) else value for value in column]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m ceco_fair.summary``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m ceco_fair.summary",
        description="Print Markdown tables (mean [interval] over seeds, method x condition) of a results folder.",
    )
    parser.add_argument("output_dir", metavar="OUTPUT_DIR", type=Path, help="the results folder")
    parser.add_argument("--metrics", nargs="+", help="metrics to tabulate (default: all with a spec)")
    parser.add_argument("--confidence", type=float, default=DEFAULT_CONFIDENCE, help="interval level (default 0.95)")
    parser.add_argument(
        "--readout",
        default=PRIMARY_READOUT,
        help=f"the read-out whose metrics are shown ({', '.join(READOUTS)} or a registered one; default "
        f"{PRIMARY_READOUT}; {ALL_READOUTS}: a row per method and read-out)",
    )
    args = parser.parse_args(argv)
    if not 0 < args.confidence < 1:
        parser.exit(USAGE_ERROR_STATUS, f"error: --confidence: expected a value in (0, 1), got {args.confidence}\n")
    try:
        sys.stdout.write(summary_markdown(args.output_dir, args.metrics, args.confidence, args.readout))
    except CecoFairError as error:
        parser.exit(USAGE_ERROR_STATUS, f"error: {error}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
