"""The report's distortion figures: what each method's representation keeps and loses.

Pure functions from tables to figures, ``None`` when the tables hold nothing to show:

- :func:`diagnostics_by_method`: each representation diagnostic per method, mean over seeds with
  the seed interval, one panel per diagnostic, a menu over the conditions;
- :func:`distortion_against_bias`: ``instance_retrieval_within_cell`` against the worst-case
  accuracy (bias-conflicting or worst-group), one point per run;
- :func:`tracked_curves`: the per-epoch curves of ``curves.csv``, mean over seeds per method;
- :func:`colour_strips`: one test digit on every background colour with each method's prediction;
- :func:`paired_differences`: the forest plot of ``comparisons.csv``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ceco_fair.metrics.specs import METRIC_SPECS, curve_metrics, label, spec_of, unit_suffix, with_role
from ceco_fair.report.load import Results
from ceco_fair.report.stats import summarize
from ceco_fair.report.style import (
    HEIGHT,
    Option,
    SectionSpec,
    add_selector,
    apply_layout,
    condition_options,
    method_colours,
    seed_text,
    significant,
    text,
)
from ceco_fair.results.layout import PRIMARY_READOUT, READOUT_COLUMN, SELECTION_COLUMN
from ceco_fair.results.selection import describe

PANEL_COLUMNS = 3
DIGITS = 4
ZERO_LINE = {"color": "#555555", "width": 1, "dash": "dot"}


def direction_of(metric: str) -> str:
    """``(higher is better)`` or ``(lower is better)`` from the metric's spec, else empty."""
    spec = METRIC_SPECS.get(metric)
    if spec is None:
        return ""
    return "(lower is better)" if spec.lower_is_better else "(higher is better)"


def representation_metrics(metrics: pd.DataFrame) -> list[str]:
    """The representation diagnostics present in a tidy metrics table, in the registry's order."""
    present = set(metrics["metric"]) if not metrics.empty else set()
    return [name for name, spec in METRIC_SPECS.items() if spec.kind == "representation" and name in present]


def diagnostics_by_method(
    metrics: pd.DataFrame, methods: Sequence[str], conditions: Sequence[str], confidence: float
) -> go.Figure | None:
    """One bar panel per diagnostic: mean over seeds per method, the seed interval as error bars.

    Args:
        metrics: tidy rows ``method, condition, seed, metric, value``.
        methods: methods in display order.
        conditions: conditions in display order (a menu chooses one).
        confidence: the intervals' level, for the caption.

    Returns:
        The figure, or ``None`` without diagnostics.
    """
    names = representation_metrics(metrics)
    if not names:
        return None
    rows = math.ceil(len(names) / PANEL_COLUMNS)
    fig = make_subplots(
        rows=rows,
        cols=PANEL_COLUMNS,
        subplot_titles=[f"{text(label(n))}<br>{direction_of(n)}" for n in names],
        vertical_spacing=0.5 / rows,
    )
    colours = method_colours(methods)
    table = metrics[metrics["metric"].isin(names)]

    def draw(condition: str) -> None:
        summary = summarize(table[table["condition"] == condition], ["metric", "method"], confidence=confidence)
        shown = [m for m in methods if m in set(summary["method"])]
        for index, name in enumerate(names):
            part = summary[summary["metric"] == name].set_index("method").reindex(shown).dropna(subset=["mean"])
            if part.empty:
                continue
            fig.add_trace(
                go.Bar(
                    x=[text(m) for m in part.index],
                    y=[significant(v, DIGITS) for v in part["mean"]],
                    error_y=_interval_bars(part),
                    marker={"color": [colours[m] for m in part.index]},
                    name=text(label(name)),
                    showlegend=False,
                    customdata=np.stack([part["n"].to_numpy()], axis=1),
                    hovertemplate="%{x}<br>%{y:.4g}<br>seeds %{customdata[0]}<extra>" + text(label(name)) + "</extra>",
                ),
                row=index // PANEL_COLUMNS + 1,
                col=index % PANEL_COLUMNS + 1,
            )

    options = condition_options(fig, conditions, draw, "Diagnostics")
    apply_layout(fig, title="Diagnostics", height=max(HEIGHT, 300 * rows))
    add_selector(fig, options)
    return fig


def distortion_against_bias(metrics: pd.DataFrame, methods: Sequence[str]) -> go.Figure | None:
    """Instance retrieval within cell (x) against the worst-case accuracy (y), one point per run.

    Args:
        metrics: tidy rows ``run_id, method, condition, seed, metric, value``.
        methods: methods in display order.

    Returns:
        The scatter (one colour per method, hover names the run), or ``None`` without both metrics.
    """
    wide = (
        metrics.pivot_table(
            index=["run_id", "method", "condition", "seed"],
            columns="metric",
            values="value",
            aggfunc="first",
            dropna=False,
        ).reset_index()
        if not metrics.empty
        else pd.DataFrame()
    )
    worst = next((m for m in with_role("worst_case") if m in wide.columns and wide[m].notna().any()), None)
    distortion = next(iter(with_role("distortion_axis")), None)
    if worst is None or distortion is None or distortion not in wide.columns:
        return None
    wide = wide.dropna(subset=[worst, distortion])
    if wide.empty:
        return None
    scale = METRIC_SPECS[worst].scale
    fig = go.Figure()
    colours = method_colours(methods)
    for method in [m for m in methods if m in set(wide["method"])]:
        rows = wide[wide["method"] == method]
        fig.add_trace(
            go.Scatter(
                x=[significant(v, DIGITS) for v in rows[distortion]],
                y=[significant(scale * v, DIGITS) for v in rows[worst]],
                mode="markers",
                name=text(method),
                marker={"color": colours[method], "size": 9, "opacity": 0.8},
                customdata=[[text(c), seed_text(s)] for c, s in zip(rows["condition"], rows["seed"], strict=True)],
                hovertemplate="%{customdata[0]}, seed %{customdata[1]}<br>"
                + text(label(distortion))
                + " %{x:.3f}<br>"
                + text(label(worst))
                + f" %{{y:.1f}}{'%' if scale != 1.0 else ''}<extra>%{{fullData.name}}</extra>",
            )
        )
    apply_layout(
        fig, title=f"Less distortion, less bias? {text(label(distortion)).capitalize()} against {text(label(worst))}"
    )
    fig.update_xaxes(title_text=label(distortion) + unit_suffix(spec_of(distortion)))
    fig.update_yaxes(title_text=label(worst) + unit_suffix(spec_of(worst)))
    return fig


def tracked_curves(
    curves: pd.DataFrame, methods: Sequence[str], conditions: Sequence[str], confidence: float
) -> go.Figure | None:
    """The tracked values per epoch, mean over seeds per method, with the seed interval as a band.

    Args:
        curves: rows ``method, condition, seed, epoch`` and the tracked columns of ``curves.csv``.
        methods: methods in display order.
        conditions: conditions in display order (a menu chooses one).
        confidence: the intervals' level.

    Returns:
        One panel per tracked value, or ``None`` without curves.
    """
    if curves.empty:
        return None
    panels = [c for c in curve_metrics() if c in curves.columns and curves[c].notna().any()]
    if not panels:
        return None
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[label(p) for p in panels])
    colours = method_colours(methods)
    tidy = curves.melt(id_vars=["method", "condition", "seed", "epoch"], value_vars=panels, var_name="metric")

    def draw(condition: str) -> None:
        part = tidy[tidy["condition"] == condition]
        if part.empty:
            return
        summary = summarize(part, ["metric", "method", "epoch"], confidence=confidence)
        for col, panel in enumerate(panels, start=1):
            for method in [m for m in methods if m in set(summary["method"])]:
                rows = summary[(summary["metric"] == panel) & (summary["method"] == method)].sort_values("epoch")
                if rows.empty or rows["mean"].isna().all():
                    continue
                fig.add_trace(
                    go.Scatter(
                        x=rows["epoch"].tolist(),
                        y=[significant(v, DIGITS) for v in rows["mean"]],
                        error_y=_interval_bars(rows),
                        mode="lines+markers",
                        name=text(method),
                        legendgroup=text(method),
                        showlegend=col == 1,
                        line={"color": colours[method]},
                        marker={"size": 4},
                        hovertemplate="epoch %{x}<br>%{y:.4g}<extra>%{fullData.name}</extra>",
                    ),
                    row=1,
                    col=col,
                )

    options = condition_options(fig, conditions, draw, "Per-epoch curves")
    apply_layout(fig, title="Per-epoch curves")
    fig.update_xaxes(title_text="epoch")
    add_selector(fig, options)
    return fig


def colour_strips(
    strips: Mapping[str, Mapping[str, Any]], runs: pd.DataFrame, methods: Sequence[str], conditions: Sequence[str]
) -> go.Figure | None:
    """One test digit on every background colour, with each method's probe prediction under each colour.

    Args:
        strips: ``run_id`` → the run's ``counterfactual_strip.json``.
        runs: run rows ``run_id, method, condition, seed``.
        methods: methods in display order (one row each; the lowest seed's run).
        conditions: conditions in display order (a menu chooses one).

    Returns:
        A grid of small images (rows: methods, columns: colours), titled by the predictions, or ``None``.
    """
    known = runs[runs["run_id"].isin(list(strips))]
    if known.empty:
        return None
    shown = [m for m in methods if m in set(known["method"])]
    n_colours = max(len(strip["images"]) for strip in strips.values())
    fig = make_subplots(rows=len(shown), cols=n_colours, horizontal_spacing=0.01, vertical_spacing=0.08)
    options: list[Option] = []
    for condition in conditions:
        first = len(fig.data)
        annotations: list[dict[str, Any]] = []
        shown_strip: Mapping[str, Any] | None = None
        for row, method in enumerate(shown, start=1):
            candidates = known[(known["method"] == method) & (known["condition"] == condition)].sort_values("seed")
            if candidates.empty:
                continue
            strip = strips[str(candidates["run_id"].iloc[0])]
            shown_strip = strip
            for col, (image, prediction) in enumerate(zip(strip["images"], strip["predictions"], strict=True), start=1):
                hover = f"colour {col - 1}: predicted {prediction}<extra>{text(method)}</extra>"
                fig.add_trace(go.Image(z=image, hovertemplate=hover), row=row, col=col)
                axis = _axis(row, col, n_colours)
                annotations.append(_caption(f"→ {prediction}", f"x{axis} domain", f"y{axis} domain", 0.5, -0.05))
            annotations.append(_caption(text(method), "paper", f"y{_axis(row, 1, n_colours)} domain", -0.01, 0.5))
        if shown_strip is not None:
            title = (
                f"Digit {shown_strip['target']} (test image {shown_strip['index']}) on every colour: {text(condition)}"
            )
            options.append(
                Option(condition, range(first, len(fig.data)), {"title.text": title, "annotations": annotations})
            )
    if not options:
        return None
    apply_layout(fig, title="Counterfactual colours", height=max(260, 130 * len(shown) + 120))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(margin={"l": 110})
    add_selector(fig, options)
    return fig


def paired_differences(comparisons: pd.DataFrame, methods: Sequence[str], confidence: float) -> go.Figure | None:
    """Forest plot: each method minus the baseline, paired by seed, with its Student-t interval.

    Args:
        comparisons: the rows of ``comparisons.csv``.
        methods: methods in display order.
        confidence: the intervals' level.

    Returns:
        One panel per metric (rows: methods; one marker per condition; a dotted line at zero), or ``None``.
    """
    if READOUT_COLUMN in comparisons.columns:
        comparisons = comparisons[comparisons[READOUT_COLUMN] == PRIMARY_READOUT]
    if comparisons.empty:
        return None
    metrics = list(dict.fromkeys(comparisons["metric"]))
    baseline = str(comparisons["baseline"].iloc[0])
    fig = make_subplots(
        rows=1,
        cols=len(metrics),
        shared_yaxes=True,
        subplot_titles=[f"{text(label(m))}<br>{direction_of(m)}" for m in metrics],
        horizontal_spacing=0.04,
    )
    order = [m for m in methods if m in set(comparisons["method"])]
    conditions = list(dict.fromkeys(comparisons["condition"]))
    palette = method_colours(conditions)
    for col, metric in enumerate(metrics, start=1):
        for condition in conditions:
            rows = comparisons[(comparisons["metric"] == metric) & (comparisons["condition"] == condition)]
            rows = rows.set_index("method").reindex([m for m in order if m in set(rows["method"])])
            if rows.empty:
                continue
            fig.add_trace(
                go.Scatter(
                    x=[significant(v, DIGITS) for v in rows["mean_difference"]],
                    y=[text(m) for m in rows.index],
                    error_x={
                        "type": "data",
                        "symmetric": False,
                        "array": [_gap(h - d) for h, d in zip(rows["ci_high"], rows["mean_difference"], strict=True)],
                        "arrayminus": [
                            _gap(d - lo) for lo, d in zip(rows["ci_low"], rows["mean_difference"], strict=True)
                        ],
                    },
                    mode="markers",
                    name=text(condition),
                    legendgroup=text(condition),
                    showlegend=col == 1,
                    marker={"color": palette[condition], "size": 8},
                    customdata=np.stack([rows["n_seeds"].to_numpy()], axis=1),
                    hovertemplate="%{y} − "
                    + text(baseline)
                    + ": %{x:.4g}<br>seeds %{customdata[0]}<extra>"
                    + text(condition)
                    + "</extra>",
                ),
                row=1,
                col=col,
            )
        fig.add_vline(x=0, line=ZERO_LINE, row=1, col=col)
    rules = list(dict.fromkeys(comparisons[SELECTION_COLUMN])) if SELECTION_COLUMN in comparisons else []
    selection = f"; selection {', '.join(describe(rule) for rule in rules)}" if rules else ""
    apply_layout(
        fig,
        title=f"Paired differences against {text(baseline)} ({confidence:.0%} Student-t intervals over seeds)"
        + text(selection),
    )
    fig.update_yaxes(autorange="reversed")
    return fig


def _axis(row: int, col: int, n_cols: int) -> str:
    """Plotly's axis suffix of a subplot ('' for the first)."""
    index = (row - 1) * n_cols + col
    return "" if index == 1 else str(index)


def _caption(label: str, xref: str, yref: str, x: float, y: float) -> dict[str, Any]:
    """A small text annotation placed in a subplot's (or the page's) coordinates."""
    anchor = {"yanchor": "top"} if xref != "paper" else {"xanchor": "right"}
    return {
        "text": label,
        "xref": xref,
        "yref": yref,
        "x": x,
        "y": y,
        "showarrow": False,
        "font": {"size": 11},
        **anchor,
    }


def _gap(value: float) -> float | None:
    return significant(value, DIGITS) if math.isfinite(value) else None


def _interval_bars(rows: pd.DataFrame) -> dict[str, Any] | None:
    """Asymmetric error bars from summary rows ``mean, low, high``; ``None`` when no row has an interval."""
    spans = (rows["high"] - rows["low"]).to_numpy(dtype=float)
    if not np.isfinite(spans).any():
        return None
    return {
        "type": "data",
        "symmetric": False,
        "array": [_gap(h - m) for h, m in zip(rows["high"], rows["mean"], strict=True)],
        "arrayminus": [_gap(m - lo) for lo, m in zip(rows["low"], rows["mean"], strict=True)],
        "thickness": 1.2,
    }


def diagnostics_figure(results: Results) -> go.Figure | None:
    """:func:`diagnostics_by_method` of a results folder."""
    return diagnostics_by_method(results.metrics, results.methods, results.conditions, results.confidence)


def scatter_figure(results: Results) -> go.Figure | None:
    """:func:`distortion_against_bias` of a results folder."""
    return distortion_against_bias(results.metrics, results.methods)


def curves_figure(results: Results) -> go.Figure | None:
    """:func:`tracked_curves` of a results folder."""
    return tracked_curves(results.curves, results.methods, results.conditions, results.confidence)


def strips_figure(results: Results) -> go.Figure | None:
    """:func:`colour_strips` of a results folder."""
    return colour_strips(results.strips, results.runs, results.methods, results.conditions)


def comparisons_figure(results: Results) -> go.Figure | None:
    """:func:`paired_differences` of a results folder."""
    return paired_differences(results.comparisons, results.methods, results.confidence)


SECTIONS = (
    SectionSpec(
        "distortion",
        "Distortion: what the representation keeps and loses",
        "Each diagnostic is measured on the test set's features; bars are means over seeds with their "
        "interval. <em>Instance retrieval within cell</em> is the share of test images whose second augmented "
        "view is the nearest, among images of the same target and bias value, to their first view: the "
        "information that links the views of one image, which neither the label nor the bias can supply. "
        "<em>Variance ratio</em> is the share of feature variance left inside the classes (0: each class "
        "collapsed to a point). <em>Leakage</em> is the balanced accuracy of a cross-validated linear probe "
        "predicting the bias value (chance 1/K), <em>within class</em> after the label is accounted for. "
        "<em>Bias sensitivity</em> is the share of feature variance due to the background colour alone when "
        "every test digit is re-rendered on every colour, and the <em>flip rate</em> the share of those "
        "re-renderings whose prediction changes. The scatter asks whether less distortion goes with less bias; "
        "the curves show how both develop over the epochs; the strip shows one test digit (the first of the "
        "test set, not a selected one) on every colour with each method's prediction.",
        (diagnostics_figure, scatter_figure, curves_figure, strips_figure),
    ),
    SectionSpec(
        "comparisons",
        "Paired comparisons against the baseline",
        "Each marker is a method's mean difference from the baseline over the seeds both completed, paired by "
        "seed (same data colouring, split and initialisation), with its Student-t interval; the dotted line is "
        "zero. An interval that crosses zero is no evidence of a difference at this number of seeds; with one "
        "seed there is no interval. The panel titles say which direction is better.",
        (comparisons_figure,),
    ),
)
