"""Figures of bias runs: accuracy against ρ, accuracy per (target, bias value) cell, the gain chart."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ceco_fair.metrics.specs import label
from ceco_fair.report.load import Results
from ceco_fair.report.stats import summarize
from ceco_fair.report.style import (
    HEIGHT,
    PERCENT,
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
    round_value,
    text,
)

GAIN_COLOURS = ("#2ca02c", "#d62728")
CONTEX = "contex"
SUPCON = "supcon"
RHO_AXIS = "training bias ρ (share of bias-aligned training images)"

ALIGNMENT_LINES = (("bias_aligned_accuracy", "solid"), ("bias_conflicting_accuracy", "dash"))
GAIN_METRICS = (
    "unbiased_accuracy",
    "bias_conflicting_accuracy",
    "accuracy",
    "bias_aligned_accuracy",
)


def bias_accuracy_by_rho(results: Results) -> go.Figure | None:
    """Bias-aligned and bias-conflicting accuracy against ρ, one colour per method.

    Args:
        results: The loaded results folder.

    Returns:
        Lines (solid: aligned, dashed: conflicting) over a categorical ρ axis, mean over seeds
        with the seed interval as error bars; ``None`` without these metrics.

    """
    metrics = results.metrics
    table = metrics[metrics["metric"].isin([m for m, _ in ALIGNMENT_LINES]) & metrics["rho"].notna()]
    if table.empty:
        return None
    summary = summarize(table, ["method", "rho", "metric"], confidence=results.confidence)
    colours = method_colours(results.methods)
    fig = go.Figure()
    for method in results.methods:
        for metric, dash in ALIGNMENT_LINES:
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


def contex_gain(results: Results) -> go.Figure | None:
    """ConTeX's gain over SupCon per ρ, in percentage points and relative to SupCon.

    Args:
        results: The loaded results folder.

    Returns:
        Two bar charts (absolute gain in points, relative gain in % of SupCon's value) over a
        categorical ρ axis, from each method's mean over seeds, with a menu choosing the
        metric; ``None`` unless runs of both losses (the methods' ``loss``, whatever their
        labels) have bias metrics. The first method of each loss is compared.

    """
    metrics = results.metrics
    method = _first_method_with_loss(results, CONTEX)
    baseline = _first_method_with_loss(results, SUPCON)
    if method is None or baseline is None:
        return None
    table = metrics[
        metrics["method"].isin([method, baseline]) & metrics["metric"].isin(GAIN_METRICS) & metrics["rho"].notna()
    ]
    if not (table["metric"] == "bias_conflicting_accuracy").any():  # a group-fairness dataset: no bias metrics
        return None
    means = summarize(table, ["metric", "rho", "method"], confidence=results.confidence).set_index(
        ["metric", "rho", "method"]
    )
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("absolute gain (percentage points)", "relative gain (% of SupCon)"),
    )
    options: list[Option] = []
    for metric in GAIN_METRICS:
        rows = gain_table(means["mean"], metric, method, baseline)
        if rows.empty:
            continue
        x = [rho_text(rho) for rho in rows["rho"]]
        customdata = [[c, s] for c, s in zip(percent(rows["method"]), percent(rows["baseline"]), strict=True)]
        colours = [GAIN_COLOURS[0] if gain >= 0 else GAIN_COLOURS[1] for gain in rows["points"]]
        first = len(fig.data)
        for col, column, unit in ((1, "points", "points"), (2, "relative", "% of SupCon")):
            fig.add_trace(
                go.Bar(
                    x=x,
                    y=[round_value(v) for v in rows[column]],
                    customdata=customdata,
                    marker={"color": colours},
                    name=f"{label(metric)}, {unit}",
                    showlegend=False,
                    hovertemplate="ρ = %{x}<br>ConTeX %{customdata[0]:.1f}%, SupCon "
                    "%{customdata[1]:.1f}%<br>gain %{y:+.1f} " + unit + "<extra></extra>",
                ),
                row=1,
                col=col,
            )
        options.append(
            Option(
                label(metric),
                [first, first + 1],
                {"title.text": f"ConTeX's gain over SupCon in {label(metric)}"},
            )
        )
    if not options:
        return None
    apply_layout(fig, title="")
    fig.update_xaxes(title_text=RHO_AXIS, type="category")
    fig.update_yaxes(title_text="gain (percentage points)", row=1, col=1)
    fig.update_yaxes(title_text="gain (% of SupCon)", row=1, col=2)
    add_selector(fig, options)
    return fig


def gain_table(means: pd.Series, metric: str, method: str, baseline: str) -> pd.DataFrame:
    """ConTeX's and SupCon's means of one metric per ρ and the gain between them.

    Args:
        means: Mean over seeds, indexed by ``(metric, rho, method)``, as fractions.
        metric: The metric to compare.
        method: The method label whose gain is shown (ConTeX's).
        baseline: The method label it is compared with (SupCon's).

    Returns:
        One row per ρ where both methods have a value, sorted by ρ: ``rho, method, baseline``
        (fractions), ``points`` = 100·(method − baseline) and ``relative`` =
        100·(method − baseline)/baseline (NaN when the baseline's mean is 0).

    """
    rows = []
    for rho in sorted({key[1] for key in means.index if key[0] == metric}):
        contex = float(means.get((metric, rho, method), math.nan))
        supcon = float(means.get((metric, rho, baseline), math.nan))
        if math.isnan(contex) or math.isnan(supcon):
            continue
        relative = PERCENT * (contex - supcon) / supcon if supcon != 0 else math.nan
        rows.append([rho, contex, supcon, PERCENT * (contex - supcon), relative])
    table: pd.DataFrame = pd.DataFrame(rows, columns=["rho", "method", "baseline", "points", "relative"])
    return table


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


def _first_method_with_loss(results: Results, loss: str) -> str | None:
    """The first method (in display order) whose runs trained with ``loss``."""
    runs = results.runs
    labels = runs.loc[runs["loss"] == loss, "method"]
    return next((str(name) for name in results.methods if name in set(labels)), None)


SECTION = SectionSpec(
    "bias",
    "Bias: accuracy on bias-aligned and bias-conflicting images",
    "The test set is unbiased (every digit appears on every background colour). "
    "<em>Bias-aligned</em> images have the background colour that the training set paired "
    "with their digit; <em>bias-conflicting</em> ones have any other colour. A model that "
    "learned the colour instead of the digit scores high on aligned and low on conflicting "
    "images, and the gap widens as the training bias ρ approaches 1. In the heatmap, the "
    "diagonal holds the bias-aligned cells and every other cell is bias-conflicting; an "
    "unbiased model is uniformly bright. The gain chart shows ConTeX's mean minus "
    "SupCon's mean per ρ, in percentage points (left) and relative to SupCon (right); bars "
    "above zero favour ConTeX.",
    (bias_accuracy_by_rho, bias_heatmaps, contex_gain),
)
