"""Figures of bias runs: accuracy against ρ, accuracy per (target, bias value) cell, the gain chart."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ceco_fair.metrics.specs import Role, label, with_role
from ceco_fair.report.load import Results
from ceco_fair.report.stats import summarize
from ceco_fair.report.style import (
    HEIGHT,
    Option,
    SectionSpec,
    add_selector,
    apply_layout,
    error_bars,
    method_colours,
    option_label,
    percent,
    rho_categories,
    rho_text,
    text,
)

RHO_AXIS = "training bias ρ (share of bias-aligned training images)"

LINE_DASHES: tuple[tuple[Role, str], ...] = (("aligned", "solid"), ("conflicting", "dash"))
"""The line style of the metrics of each role: bias-aligned solid, bias-conflicting dashed."""


def alignment_lines() -> tuple[tuple[str, str], ...]:
    """``(metric, dash)`` of each line against ρ, from the metrics' roles."""
    return tuple((name, dash) for role, dash in LINE_DASHES for name in with_role(role))


def bias_accuracy_by_rho(results: Results) -> go.Figure | None:
    """Bias-aligned and bias-conflicting accuracy against ρ, one colour per method.

    Args:
        results: The loaded results folder.

    Returns:
        Lines (solid: aligned, dashed: conflicting) over a categorical ρ axis, mean over seeds
        with the seed interval as error bars; ``None`` without these metrics.

    """
    metrics = results.metrics
    lines = alignment_lines()
    table = metrics[metrics["metric"].isin([m for m, _ in lines]) & metrics["rho"].notna()]
    if table.empty:
        return None
    summary = summarize(table, ["method", "rho", "metric"], confidence=results.confidence)
    colours = method_colours(results.methods)
    fig = go.Figure()
    for method in results.methods:
        for metric, dash in lines:
            rows = summary[(summary["method"] == method) & (summary["metric"] == metric)]
            if rows.empty:
                continue
            rows = rows.sort_values("rho")
            fig.add_trace(
                go.Scatter(
                    x=[rho_text(rho) for rho in rows["rho"]],
                    y=percent(rows["mean"]),
                    error_y=error_bars(rows),
                    customdata=rows["n"].tolist(),
                    mode="lines+markers",
                    name=f"{text(method)} · {label(metric)}",
                    legendgroup=text(method),
                    line={"color": colours[method], "dash": dash},
                    hovertemplate="ρ = %{x}<br>%{y:.1f}% (%{customdata} seeds)<extra>%{fullData.name}</extra>",
                )
            )
    apply_layout(
        fig,
        title="Bias-aligned (solid) and bias-conflicting (dashed) accuracy against ρ",
        xaxis={
            "title": {"text": RHO_AXIS},
            "type": "category",
            "categoryorder": "array",
            "categoryarray": rho_categories(summary["rho"]),
        },
        yaxis={"title": {"text": "accuracy (%)"}, "range": [0, 102]},
    )
    return fig


def bias_heatmaps(results: Results) -> go.Figure | None:
    """Accuracy per (digit, background colour) cell, one heatmap per method and ρ.

    Args:
        results: The loaded results folder.

    Returns:
        A heatmap (rows: target digit, columns: bias colour, values: accuracy in %, mean over
        seeds, empty cells blank) with a menu choosing method and ρ; ``None`` without
        ``bias_matrix.csv`` files.

    """
    if not results.bias_matrices:
        return None
    several_conditions = len(results.conditions) > 1
    fig = go.Figure()
    options: list[Option] = []
    for (method, condition), runs in results.runs.groupby(["method", "condition"], sort=False):
        matrices = [results.bias_matrices[r] for r in runs["run_id"] if r in results.bias_matrices]
        if not matrices:
            continue
        mean = mean_matrix(matrices)
        seeds = len(matrices)
        fig.add_trace(
            go.Heatmap(
                z=[percent(row) for row in mean.to_numpy()],
                x=[text(label) for label in mean.columns],
                y=[text(label) for label in mean.index],
                coloraxis="coloraxis",
                texttemplate="%{z:.0f}",
                hovertemplate="target %{y}, bias label %{x}<br>accuracy %{z:.1f}%<extra></extra>",
                xgap=1,
                ygap=1,
            )
        )
        label = option_label(str(method), str(condition), several_conditions)
        options.append(
            Option(
                f"{label} ({seeds} seed{'s' if seeds > 1 else ''})",
                [len(fig.data) - 1],
                {"title.text": f"Accuracy per digit and background colour: {text(label)}"},
            )
        )
    apply_layout(
        fig,
        title="",
        xaxis={"title": {"text": "background colour (bias label)"}, "type": "category"},
        yaxis={"title": {"text": "digit (target)"}, "type": "category", "autorange": "reversed"},
        coloraxis={
            "cmin": 0,
            "cmax": 100,
            "colorscale": "Viridis",
            "colorbar": {"title": {"text": "accuracy (%)"}},
        },
        height=HEIGHT + 60,
    )
    add_selector(fig, options)
    return fig


def mean_matrix(matrices: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Average accuracy tables cell by cell, ignoring NaN cells.

    Args:
        matrices: Tables of equal meaning (rows: target, columns: bias label); labels missing
            from some tables count as NaN there.

    Returns:
        The cell-wise mean over the tables that have a value; NaN where none has one. Rows and
        columns follow the first table, then labels only later tables have.

    """
    index = list(dict.fromkeys(label for m in matrices for label in m.index))
    columns = list(dict.fromkeys(label for m in matrices for label in m.columns))
    stack = np.stack([m.reindex(index=index, columns=columns).to_numpy(float) for m in matrices])
    counts = np.sum(~np.isnan(stack), axis=0)
    sums = np.nansum(stack, axis=0)
    mean = np.divide(sums, counts, out=np.full(sums.shape, np.nan), where=counts > 0)
    result: pd.DataFrame = pd.DataFrame(mean, index=index, columns=columns)
    return result


SECTION = SectionSpec(
    "bias",
    "Bias: accuracy on bias-aligned and bias-conflicting images",
    "The test set is unbiased (every digit appears on every background colour). "
    "<em>Bias-aligned</em> images have the background colour that the training set paired "
    "with their digit; <em>bias-conflicting</em> ones have any other colour. A model that "
    "learned the colour instead of the digit scores high on aligned and low on conflicting "
    "images, and the gap widens as the training bias ρ approaches 1. In the heatmap, the "
    "diagonal holds the bias-aligned cells and every other cell is bias-conflicting; an "
    "unbiased model is uniformly bright. How each method compares with the baseline, "
    "paired by seed, is in the paired-comparisons section.",
    (bias_accuracy_by_rho, bias_heatmaps),
)
