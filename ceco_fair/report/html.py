r"""Assemble the self-contained ``report.html`` of a results folder.

The page embeds plotly.js once, inline, and each figure as JSON passed to ``Plotly.newPlot``:
it loads nothing from the network and works from ``file://``. Every string that comes from the
results is escaped: with :func:`html.escape` in markup, and in JSON inside ``<script>`` by writing
``<``, ``>`` and ``&`` as ``\u003c``, ``\u003e`` and ``\u0026``, so that neither ``</script>``
nor ``<!--`` can occur there.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import yaml
from plotly.offline import get_plotlyjs

from ceco_fair.common.io import atomic_write_text
from ceco_fair.metrics.specs import (
    MetricSpec,
    format_value,
    label,
    lower_is_better,
    shown_value,
    spec_of,
    summary_metrics,
    unit_suffix,
)
from ceco_fair.report.figures import SECTIONS
from ceco_fair.report.figures_selection import SELECTION_GUIDE, paired_trials_table, picks_table, trial_scores
from ceco_fair.report.load import MissingItem, Results, for_selection, load_results
from ceco_fair.report.stats import summarize
from ceco_fair.report.style import HEIGHT
from ceco_fair.results.layout import REPORT_FILE, RUN_ORIGIN_COLUMNS
from ceco_fair.results.seeds import interval_description
from ceco_fair.results.selection import FIXED, VALIDATION_RULES, describe, finals_mode

logger = logging.getLogger(__name__)

__all__ = ["REPORT_FILE", "build_report", "figure_html", "format_interval", "render_report", "script_json"]
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
_SCRIPT_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)

CSS = """
:root { color-scheme: light; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0;
  --soft: #f6f8fa; --accent: #0969da; --best: #dafbe1; --warn: #fff8c5; --warn-line: #d4a72c; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff;
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 20px 64px; }
h1 { font-size: 1.8rem; margin: 0 0 4px; }
h2 { font-size: 1.35rem; margin: 40px 0 8px; padding-bottom: 4px;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 16px 0 6px; }
a { color: var(--accent); }
.lead, .guide, caption, footer { color: var(--muted); }
.guide { max-width: 80ch; }
nav ul { display: flex; flex-wrap: wrap; gap: 4px 18px; list-style: none; padding: 0;
  margin: 12px 0; }
details { background: var(--soft); border: 1px solid var(--line); border-radius: 6px;
  padding: 8px 14px; margin: 12px 0; }
summary { cursor: pointer; font-weight: 600; }
pre { overflow-x: auto; background: #fff; border: 1px solid var(--line); border-radius: 4px;
  padding: 10px; font-size: 13px; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: 8px 0; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: right;
  white-space: nowrap; }
th { background: var(--soft); font-weight: 600; white-space: normal; min-width: 6em; }
th.text, td.text { text-align: left; }
td.best { font-weight: 700; background: var(--best); }
.no-evidence { display: block; font-size: 0.75em; color: #555; }
td .interval { display: block; font-size: 0.8em; font-weight: 400; color: var(--muted); }
tr.condition th { background: #fff; padding-top: 14px; font-weight: 600; }
tbody th { font-weight: 400; background: none; }
caption { caption-side: bottom; text-align: left; font-size: 0.9em; padding-top: 6px;
  white-space: normal; }
table.facts td, table.facts th { text-align: left; white-space: normal; }
.notice { background: var(--warn); border: 1px solid var(--warn-line); border-radius: 6px;
  padding: 2px 16px 8px; margin: 16px 0; }
.notice h2 { border: 0; margin-top: 12px; }
.figure { width: 100%; margin: 12px 0 28px; }
footer { margin-top: 48px; font-size: 0.9em; }
@media (max-width: 700px) { main { padding: 12px; } h1 { font-size: 1.4rem; } }
"""


SUMMARY_GUIDE = (
    "One row per method (and per ρ or attribute pair), in percent where a column says (%). Each cell is the mean over "
    "seeds; the interval column says what the ± or [low–high] means for the row. The best value "
    "of each column is highlighted: highest for accuracies (↑), lowest for differences between "
    "groups (↓). A difference between groups whose interval reaches 0 says “no evidence of a "
    "difference”: its groups may well be treated alike, whatever the point estimate."
)
NO_EVIDENCE = "no evidence of a difference"
SELECTOR_GUIDE = "Hover for values; use the menu at the top right of a figure to switch views."


def build_report(output_dir: Path, *, output: Path | None = None) -> Path:
    """Write the self-contained HTML report of a results folder.

    Args:
        output_dir: The protocol's output folder (see :func:`~ceco_fair.report.load_results`).
        output: Where to write the report; default ``output_dir/report.html``. The file is
            written to a temporary sibling first and then moved into place.

    Returns:
        The path of the written report.

    Raises:
        DataError: If the folder does not exist, holds no results or has a malformed
            top-level file.

    """
    results = load_results(Path(output_dir))
    target = Path(output) if output is not None else Path(output_dir) / REPORT_FILE
    atomic_write_text(target, render_report(results))
    if results.missing:
        logger.warning("%d missing or partial result(s), see the report", len(results.missing))
    logger.info("report written to %s", target)
    return target


def render_report(results: Results) -> str:
    """Render the report page.

    Args:
        results: The loaded results folder.

    Returns:
        The complete HTML document (UTF-8 text, about 5 MB of which is plotly.js).

    """
    body: list[str] = []
    contents: list[tuple[str, str]] = []
    rules = list(results.picks) if results.selections and results.picks else [FIXED]
    summaries = [table for rule in rules if (table := summary_table(for_selection(results, rule), rule)) is not None]
    if summaries:
        contents.append(("summary", "Summary"))
        body.append(_section("summary", "Summary", SUMMARY_GUIDE, summaries))
    count = 0
    if results.selections:
        blocks = [table for table in (picks_table(results), paired_trials_table(results)) if table is not None]
        figure = trial_scores(results)
        if figure is not None:
            count += 1
            blocks.append(figure_html(figure, f"figure-{count}"))
        if blocks:
            contents.append(("selection", "Selection"))
            body.append(_section("selection", "Selection", SELECTION_GUIDE, blocks))
    lead = next((rule for rule in rules if rule in VALIDATION_RULES), rules[0])
    shown = for_selection(results, lead)
    guide = f" The figures below show the runs picked by {escape(describe(lead))}." if results.selections else ""
    for spec in SECTIONS:
        blocks = []
        for make in spec.figures:
            figure = make(shown)
            if figure is not None:
                count += 1
                blocks.append(figure_html(figure, f"figure-{count}"))
        if blocks:
            contents.append((spec.anchor, spec.title))
            body.append(_section(spec.anchor, spec.title, f"{spec.guide}{guide} {SELECTOR_GUIDE}", blocks))
    logger.debug("report of %s: %d figures", results.root, count)
    title = escape(results.name)
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{title}: ceco_fair report</title>",
            f"<style>{CSS}</style>",
            "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>",
            f"<script>{get_plotlyjs()}</script>",
            "</head>",
            "<body>",
            "<main>",
            _header(results, contents),
            _notice(results.missing),
            *body,
            "<footer>Rebuild this page from the saved results with "
            "<code>python -m ceco_fair.report OUTPUT_DIR</code>.</footer>",
            "</main>",
            "</body>",
            "</html>",
            "",
        ]
    )


def figure_html(figure: go.Figure, div_id: str) -> str:
    """Embed one figure: a ``div`` and a script that draws it with the inline plotly.js.

    Args:
        figure: The figure.
        div_id: The ``id`` of its ``div`` (letters, digits and dashes).

    Returns:
        HTML text; the figure's JSON is escaped for a ``<script>`` element.

    """
    spec = script_json(pio.to_json(figure, validate=False))
    config = script_json(json.dumps(PLOTLY_CONFIG))
    height = int(figure.layout.height or HEIGHT)
    return (
        f'<div id="{div_id}" class="plotly-graph-div figure" style="height:{height}px"></div>\n'
        f"<script>(function () {{ var f = {spec}; "
        f'Plotly.newPlot("{div_id}", f.data, f.layout, {config}); }})();</script>'
    )


def script_json(text: str) -> str:
    r"""Make JSON text safe inside an HTML ``<script>`` element.

    Args:
        text: JSON text.

    Returns:
        The same JSON value with ``<``, ``>``, ``&``, U+2028 and U+2029 written as ``\u003c``-style
        escapes, so the text can contain neither ``</script>`` nor ``<!--``.

    """
    for raw, escaped in _SCRIPT_ESCAPES:
        text = text.replace(raw, escaped)
    return text


def summary_table(results: Results, selection: str = FIXED) -> str | None:
    """Render the summary table: method × key metric, mean and interval over seeds.

    Args:
        results: The loaded results folder (restricted to one rule's runs, :func:`for_selection`).
        selection: The rule that picked the runs, named in the caption (``fixed``: no search).

    Returns:
        A ``<table>`` (in a scrolling wrapper) with one row per condition × method and one
        column per key metric present, the best value per column and condition highlighted;
        ``None`` when no key metric was recorded.

    """
    table = results.metrics[results.metrics["metric"].isin(summary_metrics())]
    if table.empty:
        return None
    present = set(table["metric"])
    columns = [name for name in summary_metrics() if name in present]
    summary = summarize(table, ["condition", "method", "metric"], confidence=results.confidence).set_index(
        ["condition", "method", "metric"]
    )
    head = ['<th class="text">method</th>']
    head += [f"<th>{_metric_header(name)}</th>" for name in columns]
    head += ["<th>seeds</th>", '<th class="text">interval</th>']
    several = len(results.conditions) > 1
    by_key = {key: summary.iloc[position] for position, key in enumerate(summary.index)}
    rows = []
    for condition in results.conditions:
        found = {
            method: {name: by_key[(condition, method, name)] for name in columns if (condition, method, name) in by_key}
            for method in results.methods
        }
        found = {method: cells for method, cells in found.items() if cells}
        if several and found:
            rows.append(
                f'<tr class="condition"><th class="text" colspan="{len(head)}" scope="rowgroup">'
                f"{escape(condition)}</th></tr>"
            )
        best = {
            name: _best([shown_value(c[name]["mean"], spec_of(name)) for c in found.values() if name in c], name)
            for name in columns
        }
        for method, metric_rows in found.items():
            cells = [f'<th class="text" scope="row">{escape(method)}</th>']
            for name in columns:
                row = metric_rows.get(name)
                mark = ""
                if row is not None and shown_value(row["mean"], spec_of(name)) == best[name]:
                    mark = ' class="best"'
                value, interval = ("—", "") if row is None else format_interval(row, spec_of(name))
                shown = f'{value}<span class="interval">{interval}</span>' if interval else value
                if row is not None and reaches_zero(name, row):
                    shown += f'<span class="no-evidence">{NO_EVIDENCE}</span>'
                cells.append(f"<td{mark}>{shown}</td>")
            kinds = dict.fromkeys(str(row["kind"]) for row in metric_rows.values())
            described = [interval_description(kind, results.confidence) for kind in kinds if kind != "none"]
            seeds = max(int(row["n"]) for row in metric_rows.values())
            cells.append(f"<td>{seeds}</td>")
            cells.append(f'<td class="text">{escape("; ".join(described))}</td>')
            rows.append(f"<tr>{''.join(cells)}</tr>")
    level = f"{100 * results.confidence:g}%"
    caption = (
        f"<strong>Selection: {escape(describe(selection, finals_mode(results.protocol.get('search'))))}.</strong> "
        "Mean over seeds, in % where the column says so. Under each mean: “± h”, the half-width of the "
        f"{level} Student-t interval (2 or more seeds), or “[low–high]”, the {level} "
        "bootstrap interval of a single run. Highlighted: best in its column"
        + (" for the same ρ / attributes." if several else ".")
    )
    return (
        '<div class="table-wrap"><table class="summary">'
        f"<caption>{caption}</caption>"
        f"<thead><tr>{''.join(head)}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def reaches_zero(metric: str, row: pd.Series) -> bool:
    """Whether a difference between groups has an interval that reaches 0 (no evidence of a difference)."""
    spec = spec_of(metric)
    if spec is None or spec.kind != "group" or not spec.lower_is_better:
        return False
    return str(row["kind"]) in ("t", "bootstrap") and math.isfinite(row["low"]) and row["low"] <= 0


def format_interval(row: pd.Series, spec: MetricSpec | None) -> tuple[str, str]:
    """Write a summary row (stored values) as its metric is shown, with its interval.

    Args:
        row: A row of :func:`~ceco_fair.report.stats.summarize` (``mean, low, high, kind``).
        spec: The metric's spec: :func:`~ceco_fair.metrics.specs.format_value` writes each number.

    Returns:
        The mean and the interval as text, for a percent metric: ``("87.3", "± 1.2")``
        (t-interval), ``("87.3", "[85.0–89.1]")`` (bootstrap), ``("87.3", "")`` (single run)
        or ``("—", "")`` (no value).

    """
    kind = row["kind"]
    if kind == "none" or not math.isfinite(row["mean"]):
        return "—", ""
    mean = format_value(row["mean"], spec)
    if kind == "t":
        return mean, f"± {format_value(row['high'] - row['mean'], spec)}"
    if kind == "bootstrap":
        return mean, f"[{format_value(row['low'], spec)}–{format_value(row['high'], spec)}]"
    return mean, ""


def _best(values: Sequence[float], metric: str) -> float | None:
    """Pick the best of the shown values of ``metric``; ``None`` with fewer than two values."""
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < 2:
        return None
    return min(finite) if lower_is_better(metric) else max(finite)


def _metric_header(name: str) -> str:
    arrow = "↓" if lower_is_better(name) else "↑"
    return f"{escape(label(name))}{unit_suffix(spec_of(name))} {arrow}"


def _section(anchor: str, title: str, guide: str, blocks: Sequence[str]) -> str:
    return "\n".join(
        [
            f'<section id="{anchor}">',
            f"<h2>{escape(title)}</h2>",
            f'<p class="guide">{guide}</p>',
            *blocks,
            "</section>",
        ]
    )


def _header(results: Results, contents: Sequence[tuple[str, str]]) -> str:
    """Title, one-line description, contents and the protocol/manifest details."""
    runs = results.runs
    complete = int((runs["status"] == "complete").sum())
    methods = ", ".join(escape(m) for m in results.methods) or "—"
    dataset = escape(results.dataset) or "—"
    links = "".join(f'<li><a href="#{anchor}">{escape(title)}</a></li>' for anchor, title in contents)
    protocol = yaml.safe_dump(results.protocol, sort_keys=False, allow_unicode=True)
    return "\n".join(
        [
            "<header>",
            f"<h1>{escape(results.name)}</h1>",
            f'<p class="lead">Dataset <strong>{dataset}</strong> · methods {methods} · '
            f"{len(runs)} run{'s' if len(runs) != 1 else ''}, {complete} complete · "
            f"folder <code>{escape(results.root.name)}</code></p>",
            f"<nav><ul>{links}</ul></nav>" if links else "",
            "<details><summary>Protocol and environment</summary>",
            "<h3>Environment</h3>",
            _facts(results.manifest),
            _run_origins(results),
            "<h3>Protocol</h3>",
            f"<pre>{escape(protocol) if results.protocol else 'protocol.yaml not found'}</pre>",
            "</details>",
            "</header>",
        ]
    )


def _run_origins(results: Results) -> str:
    """Every run with its status and where it was trained (shard, host, device); empty if none recorded it."""
    if not results.origins:
        return ""
    head = "".join(f'<th class="text">{escape(name)}</th>' for name in ("run", "status", *RUN_ORIGIN_COLUMNS))
    rows = []
    for run in results.runs.itertuples():
        origin = results.origins.get(str(run.run_id), {})
        cells = [f"<code>{escape(str(run.run_id))}</code>", escape(str(run.status))]
        cells += [escape(origin.get(key, "—")) for key in RUN_ORIGIN_COLUMNS]
        rows.append("<tr>" + "".join(f'<td class="text">{cell}</td>' for cell in cells) + "</tr>")
    return (
        '<h3>Runs</h3><div class="table-wrap"><table class="facts">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _facts(manifest: Mapping[str, Any]) -> str:
    """Render the manifest as a two-column table."""
    if not manifest:
        return "<p>manifest.json not found.</p>"
    rows = "".join(
        f'<tr><th scope="row">{escape(str(key))}</th><td>{escape(_fact(value))}</td></tr>'
        for key, value in manifest.items()
    )
    return f'<table class="facts"><tbody>{rows}</tbody></table>'


def _fact(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, Mapping):
        return ", ".join(f"{key} {_fact(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_fact(item) for item in value)
    return str(value)


def _notice(missing: Sequence[MissingItem]) -> str:
    """Render a visible list of what is missing or partial; empty text when nothing is."""
    if not missing:
        return ""
    items = "".join(f"<li><code>{escape(item.path)}</code>: {escape(item.reason)}</li>" for item in missing)
    return (
        '<section class="notice" id="missing" role="status">'
        "<h2>Missing or partial results</h2>"
        "<p>This folder is incomplete (an interrupted or failed run, or files removed). The "
        "report shows what was found; these are missing or could not be read:</p>"
        f"<ul>{items}</ul></section>"
    )
