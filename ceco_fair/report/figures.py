"""The report's figures: one function per figure, each ``(results) -> Figure | None``.

A function returns ``None`` when the results hold nothing it could show, so a report shows a
figure only where data exists. Fractions are shown as percentages rounded to 0.01, projection
coordinates to three significant digits, to keep the embedded data small.

Plotly renders trace names, titles and tick labels as a small subset of HTML, so every string
that comes from the results (method, attribute and group names) passes through :func:`text`,
which escapes it; plotly turns the entities back into the literal characters when it draws.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from ceco_fair.report.load import BIAS_DATASET, Results, summarize

PERCENT = 100.0
PERCENT_DECIMALS = 2
COORDINATE_DIGITS = 3
HEIGHT = 460
MARGIN_TOP = 100
MARGIN_BOTTOM = 60
MENU_OFFSET = 12
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
METHOD_COLOURS = qualitative.Plotly
TARGET_COLOURS = qualitative.D3
SENSITIVE_COLOURS = qualitative.Dark2
GAIN_COLOURS = ("#2ca02c", "#d62728")
# ReBias' BiasedMNIST background colours, indexed by bias label.
BIAS_COLOURS = (
    "rgb(255,0,0)",
    "rgb(0,255,0)",
    "rgb(0,0,255)",
    "rgb(225,225,0)",
    "rgb(225,0,225)",
    "rgb(0,255,255)",
    "rgb(255,128,0)",
    "rgb(255,0,128)",
    "rgb(128,0,255)",
    "rgb(128,128,128)",
)
CONTEX = "contex"
SUPCON = "supcon"
RHO_AXIS = "training bias ρ (share of bias-aligned training images)"

METRIC_LABELS = {
    "accuracy": "accuracy",
    "unbiased_accuracy": "unbiased accuracy",
    "bias_aligned_accuracy": "bias-aligned accuracy",
    "bias_conflicting_accuracy": "bias-conflicting accuracy",
    "worst_group_accuracy": "worst-group accuracy",
    "equalized_odds_difference": "equalized-odds difference",
    "demographic_parity_difference": "demographic-parity difference",
    "equal_opportunity_difference": "equal-opportunity difference",
    "eo_fscl": "EO (FSCL definition)",
}
ALIGNMENT_LINES = (("bias_aligned_accuracy", "solid"), ("bias_conflicting_accuracy", "dash"))
GAIN_METRICS = (
    "unbiased_accuracy",
    "bias_conflicting_accuracy",
    "accuracy",
    "bias_aligned_accuracy",
)
RATE_LABELS = {"accuracy": "accuracy", "tpr": "true-positive rate", "fpr": "false-positive rate"}
# Fairness gaps: metric, shown at first (else only listed in the legend), colour.
FAIRNESS_BARS = (
    ("equalized_odds_difference", True, "#636efa"),
    ("demographic_parity_difference", True, "#ef553b"),
    ("equal_opportunity_difference", False, "#00cc96"),
    ("eo_fscl", False, "#ab63fa"),
)


def text(value: object) -> str:
    """Escape a string for plotly's HTML-like text (names, titles, tick labels).

    Args:
        value: Any value; it is converted with ``str``.

    Returns:
        The text with ``&``, ``<`` and ``>`` written as entities.

    """
    return html.escape(str(value), quote=False)


def method_colours(methods: Sequence[str]) -> dict[str, str]:
    """Give each method one colour, used in every figure.

    Args:
        methods: Method names in display order.

    Returns:
        Method → CSS colour.

    """
    return {name: METHOD_COLOURS[i % len(METHOD_COLOURS)] for i, name in enumerate(methods)}


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
    summary = summarize(table, ["method", "rho", "metric"])
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
                    x=[_rho_text(rho) for rho in rows["rho"]],
                    y=_percent(rows["mean"]),
                    error_y=_error_bars(rows),
                    customdata=rows["n"].tolist(),
                    mode="lines+markers",
                    name=f"{text(method)} · {METRIC_LABELS[metric]}",
                    legendgroup=text(method),
                    line={"color": colours[method], "dash": dash},
                    hovertemplate="ρ = %{x}<br>%{y:.1f}% (%{customdata} seeds)<extra>%{fullData.name}</extra>",
                )
            )
    _layout(
        fig,
        title="Bias-aligned (solid) and bias-conflicting (dashed) accuracy against ρ",
        xaxis={
            "title": {"text": RHO_AXIS},
            "type": "category",
            "categoryorder": "array",
            "categoryarray": _rho_categories(summary["rho"]),
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
    options: list[_Option] = []
    for (method, condition), runs in results.runs.groupby(["method", "condition"], sort=False):
        matrices = [results.bias_matrices[r] for r in runs["run_id"] if r in results.bias_matrices]
        if not matrices:
            continue
        mean = mean_matrix(matrices)
        seeds = len(matrices)
        fig.add_trace(
            go.Heatmap(
                z=[_percent(row) for row in mean.to_numpy()],
                x=[text(label) for label in mean.columns],
                y=[text(label) for label in mean.index],
                coloraxis="coloraxis",
                texttemplate="%{z:.0f}",
                hovertemplate="target %{y}, bias label %{x}<br>accuracy %{z:.1f}%<extra></extra>",
                xgap=1,
                ygap=1,
            )
        )
        label = _option_label(str(method), str(condition), several_conditions)
        options.append(
            _Option(
                f"{label} ({seeds} seed{'s' if seeds > 1 else ''})",
                [len(fig.data) - 1],
                {"title.text": f"Accuracy per digit and background colour: {text(label)}"},
            )
        )
    _layout(
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
    _add_selector(fig, options)
    return fig


def contex_gain(results: Results) -> go.Figure | None:
    """ConTeX's gain over SupCon per ρ, in percentage points and relative to SupCon.

    Args:
        results: The loaded results folder.

    Returns:
        Two bar charts (absolute gain in points, relative gain in % of SupCon's value) over a
        categorical ρ axis, from each method's mean over seeds, with a menu choosing the
        metric; ``None`` unless both ``contex`` and ``supcon`` runs have bias metrics.

    """
    metrics = results.metrics
    table = metrics[
        metrics["method"].isin([CONTEX, SUPCON]) & metrics["metric"].isin(GAIN_METRICS) & metrics["rho"].notna()
    ]
    if not (table["metric"] == "bias_conflicting_accuracy").any():  # a group-fairness dataset: no bias metrics
        return None
    means = summarize(table, ["metric", "rho", "method"]).set_index(["metric", "rho", "method"])
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("absolute gain (percentage points)", "relative gain (% of SupCon)"),
    )
    options: list[_Option] = []
    for metric in GAIN_METRICS:
        rows = gain_table(means["mean"], metric)
        if rows.empty:
            continue
        x = [_rho_text(rho) for rho in rows["rho"]]
        customdata = [[c, s] for c, s in zip(_percent(rows["contex"]), _percent(rows["supcon"]), strict=True)]
        colours = [GAIN_COLOURS[0] if gain >= 0 else GAIN_COLOURS[1] for gain in rows["points"]]
        first = len(fig.data)
        for col, column, unit in ((1, "points", "points"), (2, "relative", "% of SupCon")):
            fig.add_trace(
                go.Bar(
                    x=x,
                    y=[_round(v) for v in rows[column]],
                    customdata=customdata,
                    marker={"color": colours},
                    name=f"{METRIC_LABELS[metric]}, {unit}",
                    showlegend=False,
                    hovertemplate="ρ = %{x}<br>ConTeX %{customdata[0]:.1f}%, SupCon "
                    "%{customdata[1]:.1f}%<br>gain %{y:+.1f} " + unit + "<extra></extra>",
                ),
                row=1,
                col=col,
            )
        options.append(
            _Option(
                METRIC_LABELS[metric],
                [first, first + 1],
                {"title.text": f"ConTeX's gain over SupCon in {METRIC_LABELS[metric]}"},
            )
        )
    if not options:
        return None
    _layout(fig, title="")
    fig.update_xaxes(title_text=RHO_AXIS, type="category")
    fig.update_yaxes(title_text="gain (percentage points)", row=1, col=1)
    fig.update_yaxes(title_text="gain (% of SupCon)", row=1, col=2)
    _add_selector(fig, options)
    return fig


def gain_table(means: pd.Series, metric: str) -> pd.DataFrame:
    """ConTeX's and SupCon's means of one metric per ρ and the gain between them.

    Args:
        means: Mean over seeds, indexed by ``(metric, rho, method)``, as fractions.
        metric: The metric to compare.

    Returns:
        One row per ρ where both methods have a value, sorted by ρ: ``rho, contex, supcon``
        (fractions), ``points`` = 100·(contex − supcon) and ``relative`` =
        100·(contex − supcon)/supcon (NaN when SupCon's mean is 0).

    """
    rows = []
    for rho in sorted({key[1] for key in means.index if key[0] == metric}):
        contex = float(means.get((metric, rho, CONTEX), math.nan))
        supcon = float(means.get((metric, rho, SUPCON), math.nan))
        if math.isnan(contex) or math.isnan(supcon):
            continue
        relative = PERCENT * (contex - supcon) / supcon if supcon != 0 else math.nan
        rows.append([rho, contex, supcon, PERCENT * (contex - supcon), relative])
    table: pd.DataFrame = pd.DataFrame(rows, columns=["rho", "contex", "supcon", "points", "relative"])
    return table


def group_rates(results: Results) -> go.Figure | None:
    """Per-group accuracy, true-positive and false-positive rate, grouped bars per method.

    Args:
        results: The loaded results folder.

    Returns:
        One panel per rate (x: group, bars: methods, y: rate in %), mean over seeds with the
        seed interval (or, for one seed, the bootstrap interval) as error bars, and a menu
        choosing the target/sensitive attribute pair; ``None`` without ``group_table.csv``.

    """
    table = results.group_rates
    rates = [rate for rate in RATE_LABELS if rate in set(table["metric"])]
    if table.empty or not rates:
        return None
    keys = ["condition", "method", "group", "group_name", "metric"]
    summary = summarize(table, keys)
    summary["count"] = table.groupby(keys, sort=False, dropna=False)["count"].mean().to_numpy()
    fig = make_subplots(
        rows=1,
        cols=len(rates),
        shared_yaxes=True,
        subplot_titles=[f"{RATE_LABELS[rate]} (%)" for rate in rates],
    )
    colours = method_colours(results.methods)
    options: list[_Option] = []
    for condition in results.conditions:
        first = len(fig.data)
        for method in results.methods:
            for col, rate in enumerate(rates, start=1):
                rows = summary[
                    (summary["condition"] == condition) & (summary["method"] == method) & (summary["metric"] == rate)
                ]
                if rows.empty:
                    continue
                rows = rows.iloc[_natural_order(rows["group"])]
                fig.add_trace(
                    go.Bar(
                        x=[text(name) for name in rows["group_name"]],
                        y=_percent(rows["mean"]),
                        error_y=_error_bars(rows),
                        customdata=[round(float(c)) for c in rows["count"]],
                        name=text(method),
                        legendgroup=text(method),
                        showlegend=col == 1,
                        marker={"color": colours[method]},
                        offsetgroup=text(method),
                        hovertemplate="group %{x}<br>%{y:.1f}% (%{customdata} test images)"
                        "<extra>%{fullData.name}</extra>",
                    ),
                    row=1,
                    col=col,
                )
        if len(fig.data) > first:
            options.append(
                _Option(
                    condition,
                    range(first, len(fig.data)),
                    {"title.text": f"Rates per group: {text(condition)}"},
                )
            )
    _layout(fig, title="Rates per group", barmode="group")
    fig.update_yaxes(range=[0, 102])
    fig.update_yaxes(title_text="rate (%)", row=1, col=1)
    fig.update_xaxes(title_text="sensitive group", type="category")
    _add_selector(fig, options)
    return fig


def fairness_accuracy_scatter(results: Results) -> go.Figure | None:
    """Each method as a point: equalized-odds difference against accuracy.

    Args:
        results: The loaded results folder.

    Returns:
        A scatter (x: EO difference in %, y: accuracy in %) with interval error bars in both
        directions and a menu choosing the attribute pair; ``None`` without
        ``equalized_odds_difference``.

    """
    metrics = results.metrics
    if not (metrics["metric"] == "equalized_odds_difference").any():
        return None
    table = metrics[metrics["metric"].isin(["equalized_odds_difference", "accuracy"])]
    summary = summarize(table, ["condition", "method", "metric"]).set_index(["condition", "method", "metric"])
    colours = method_colours(results.methods)
    fig = go.Figure()
    options: list[_Option] = []
    for condition in results.conditions:
        first = len(fig.data)
        for method in results.methods:
            eo_key = (condition, method, "equalized_odds_difference")
            acc_key = (condition, method, "accuracy")
            if eo_key not in summary.index or acc_key not in summary.index:
                continue
            eo = summary.loc[[eo_key]]
            acc = summary.loc[[acc_key]]
            fig.add_trace(
                go.Scatter(
                    x=_percent(eo["mean"]),
                    y=_percent(acc["mean"]),
                    error_x=_error_bars(eo),
                    error_y=_error_bars(acc),
                    mode="markers+text",
                    text=[text(method)],
                    textposition="top center",
                    name=text(method),
                    marker={"color": colours[method], "size": 13},
                    hovertemplate="EO difference %{x:.1f}%<br>accuracy %{y:.1f}%<extra>%{fullData.name}</extra>",
                )
            )
        if len(fig.data) > first:
            options.append(
                _Option(
                    condition,
                    range(first, len(fig.data)),
                    {"title.text": f"Fairness against accuracy: {text(condition)}"},
                )
            )
    if not options:
        return None
    _layout(
        fig,
        title="Fairness against accuracy",
        xaxis={
            "title": {"text": "equalized-odds difference (%), lower is fairer"},
            "rangemode": "tozero",
        },
        yaxis={"title": {"text": "accuracy (%)"}},
    )
    _add_selector(fig, options)
    return fig


def fairness_gaps(results: Results) -> go.Figure | None:
    """Equalized-odds and demographic-parity differences per method, as bars.

    Args:
        results: The loaded results folder.

    Returns:
        Grouped bars (x: method, y: difference in %) with interval error bars; the
        equal-opportunity difference and FSCL's EO are listed in the legend, hidden until
        clicked. A menu chooses the attribute pair. ``None`` without these metrics.

    """
    names = [name for name, _, _ in FAIRNESS_BARS]
    table = results.metrics[results.metrics["metric"].isin(names)]
    if table.empty:
        return None
    summary = summarize(table, ["condition", "metric", "method"])
    fig = go.Figure()
    options: list[_Option] = []
    for condition in results.conditions:
        first = len(fig.data)
        for metric, shown, colour in FAIRNESS_BARS:
            rows = summary[(summary["condition"] == condition) & (summary["metric"] == metric)]
            if rows.empty:
                continue
            fig.add_trace(
                go.Bar(
                    x=[text(method) for method in rows["method"]],
                    y=_percent(rows["mean"]),
                    error_y=_error_bars(rows),
                    name=METRIC_LABELS[metric],
                    marker={"color": colour},
                    visible=True if shown else "legendonly",
                    hovertemplate="%{x}: %{y:.1f}%<extra>%{fullData.name}</extra>",
                )
            )
        if len(fig.data) > first:
            options.append(
                _Option(
                    condition,
                    range(first, len(fig.data)),
                    {"title.text": f"Fairness gaps per method: {text(condition)}"},
                )
            )
    _layout(
        fig,
        title="Fairness gaps per method",
        barmode="group",
        xaxis={"title": {"text": "method"}, "type": "category"},
        yaxis={
            "title": {"text": "difference between groups (%), lower is fairer"},
            "rangemode": "tozero",
        },
    )
    _add_selector(fig, options)
    return fig


def training_curves(results: Results) -> go.Figure | None:
    """Training loss per epoch (and probe accuracy if tracked), one line per run.

    Args:
        results: The loaded results folder.

    Returns:
        Line charts (x: epoch; one colour per method, one line per seed) with a menu choosing
        ρ or the attribute pair; ``None`` without ``history.csv`` files.

    """
    history = results.histories
    if history.empty:
        return None
    panels = [("loss", "training loss", 1.0)]
    if "probe_accuracy" in history and history["probe_accuracy"].notna().any():
        panels.append(("probe_accuracy", "probe accuracy (%)", PERCENT))
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[label for _, label, _ in panels])
    colours = method_colours(results.methods)
    options: list[_Option] = []
    for condition in results.conditions:
        first = len(fig.data)
        in_legend: set[str] = set()
        for (_, method, seed), rows in history[history["condition"] == condition].groupby(
            ["run_id", "method", "seed"], sort=False, dropna=False
        ):
            rows = rows.sort_values("epoch")
            for col, (column, label, scale) in enumerate(panels, start=1):
                if column not in rows or rows[column].isna().all():
                    continue
                fig.add_trace(
                    go.Scatter(
                        x=rows["epoch"].tolist(),
                        y=[_significant(scale * v, 4) for v in rows[column]],
                        mode="lines+markers",
                        name=text(method),
                        legendgroup=text(method),
                        showlegend=method not in in_legend,
                        line={"color": colours[str(method)]},
                        marker={"size": 4},
                        hovertemplate="epoch %{x}<br>"
                        + label
                        + " %{y:.4g}<br>seed "
                        + _seed_text(seed)
                        + "<extra>%{fullData.name}</extra>",
                    ),
                    row=1,
                    col=col,
                )
                in_legend.add(str(method))
        if len(fig.data) > first:
            options.append(
                _Option(
                    condition,
                    range(first, len(fig.data)),
                    {"title.text": f"Training curves: {text(condition)}"},
                )
            )
    _layout(fig, title="Training curves")
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="loss", row=1, col=1)
    if len(panels) > 1:
        fig.update_yaxes(title_text="accuracy (%)", row=1, col=2)
    _add_selector(fig, options)
    return fig


def projections(results: Results) -> go.Figure | None:
    """2-D PCA of test features, coloured by target (left) and by sensitive attribute (right).

    Args:
        results: The loaded results folder.

    Returns:
        Two scatter panels of the same points, one trace per category, with a menu choosing
        the method and ρ / attribute pair (the lowest seed's run is shown); ``None`` without
        ``projection.csv`` files.

    """
    points = results.projections
    if points.empty:
        return None
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=("by target", "by attribute"))
    several_conditions = len(results.conditions) > 1
    options: list[_Option] = []
    shown: set[tuple[str, str]] = set()
    for run_id, run_points in points.groupby("run_id", sort=False):
        run = results.runs[results.runs["run_id"] == run_id].iloc[0]
        key = (str(run["method"]), str(run["condition"]))
        if key in shown:
            continue  # runs are ordered by seed: the first one per method and condition is shown
        shown.add(key)
        names = _attribute_names(run)
        first = len(fig.data)
        coordinates = _round_coordinates(run_points[["x", "y"]].to_numpy(dtype=float))
        for col, (column, name, palette) in enumerate(
            (
                ("target_value", names[0], TARGET_COLOURS),
                ("sensitive_value", names[1], _sensitive_palette(run, run_points)),
            ),
            start=1,
        ):
            labels = run_points[column].to_numpy()
            for index, category in enumerate(_natural_sorted(set(labels))):
                chosen = labels == category
                fig.add_trace(
                    go.Scatter(
                        x=coordinates[chosen, 0].tolist(),
                        y=coordinates[chosen, 1].tolist(),
                        mode="markers",
                        marker={"size": 4, "opacity": 0.7, "color": palette[index % len(palette)]},
                        name=text(category),
                        legend="legend" if col == 1 else "legend2",
                        hovertemplate=f"{text(name)} " + "%{fullData.name}<br>(%{x}, %{y})<extra></extra>",
                    ),
                    row=1,
                    col=col,
                )
        label = _option_label(str(run["method"]), str(run["condition"]), several_conditions)
        options.append(
            _Option(
                f"{label}, seed {_seed_text(run['seed'])}",
                range(first, len(fig.data)),
                {
                    "title.text": f"PCA of test features: {text(label)}, seed "
                    f"{_seed_text(run['seed'])} ({len(run_points)} points)",
                    "annotations[0].text": f"coloured by {text(names[0])}",
                    "annotations[1].text": f"coloured by {text(names[1])}",
                    "legend.title.text": f"{text(names[0])}:",
                    "legend2.title.text": f"{text(names[1])}:",
                },
            )
        )
    # One legend per panel, stacked under the plot: the left panel's categories first.
    legend = {
        "orientation": "h",
        "x": 0.0,
        "xanchor": "left",
        "yanchor": "top",
        "itemsizing": "constant",
    }
    _layout(
        fig,
        title="",
        height=HEIGHT + 160,
        bottom=MARGIN_BOTTOM + 110,
        legend={**legend, "y": -0.17},
        legend2={**legend, "y": -0.29},
    )
    fig.update_xaxes(title_text="first principal component")
    fig.update_yaxes(title_text="second principal component")
    _add_selector(fig, options)
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


@dataclass(frozen=True)
class _Option:
    """One entry of a figure's menu: its label, the traces it shows, layout changes."""

    label: str
    traces: Iterable[int]
    layout: Mapping[str, Any]


def _add_selector(fig: go.Figure, options: Sequence[_Option]) -> None:
    """Show one option's traces at a time, switched by a dropdown when there are several."""
    defaults = [True if trace.visible is None else trace.visible for trace in fig.data]
    states = []
    for option in options:
        shown = set(option.traces)
        states.append([defaults[i] if i in shown else False for i in range(len(defaults))])
    if not options:
        return
    for trace, visible in zip(fig.data, states[0], strict=True):
        trace.visible = visible
    fig.update_layout(dict(options[0].layout))
    if len(options) == 1:
        return
    buttons = [
        {
            "label": text(option.label),
            "method": "update",
            "args": [{"visible": state}, dict(option.layout)],
        }
        for option, state in zip(options, states, strict=True)
    ]
    layout = fig.layout
    plot_height = layout.height - layout.margin.t - layout.margin.b
    fig.update_layout(
        updatemenus=[
            {
                "buttons": buttons,
                "direction": "down",
                "active": 0,
                "showactive": True,
                "x": 1.0,
                "xanchor": "right",
                # The menu's top edge sits MENU_OFFSET pixels below the figure's top, on the
                # title's line, above any subplot titles.
                "y": 1.0 + (layout.margin.t - MENU_OFFSET) / plot_height,
                "yanchor": "top",
                "bgcolor": "#ffffff",
            }
        ]
    )


def _layout(fig: go.Figure, *, title: str, height: int = HEIGHT, bottom: int = MARGIN_BOTTOM, **layout: Any) -> None:
    """Apply the common look: light template, system fonts, title and menu above the plot."""
    fig.update_layout(
        template="plotly_white",
        title={
            "text": title,
            "x": 0.0,
            "xanchor": "left",
            "y": 1.0 - MENU_OFFSET / height,
            "yanchor": "top",
        },
        font={"family": FONT, "size": 13},
        height=height,
        margin={"t": MARGIN_TOP, "l": 70, "r": 30, "b": bottom},
        hoverlabel={"namelength": -1},
        **layout,
    )


def _option_label(method: str, condition: str, with_condition: bool) -> str:
    """Menu label for a method in one condition (not yet escaped)."""
    return f"{method} · {condition}" if with_condition else method


def _attribute_names(run: pd.Series) -> tuple[str, str]:
    """Name the target and the sensitive attribute of a run."""
    biased = run["dataset"] == BIAS_DATASET
    target = run["target"] or ("digit" if biased else "target")
    sensitive = run["sensitive"] or ("background colour" if biased else "sensitive attribute")
    return str(target), str(sensitive)


def _sensitive_palette(run: pd.Series, points: pd.DataFrame) -> Sequence[str]:
    """BiasedMNIST's own colours for its bias labels 0–9, else a qualitative palette."""
    labels = set(points["sensitive_value"])
    digits = {str(i) for i in range(len(BIAS_COLOURS))}
    if run["dataset"] == BIAS_DATASET and labels <= digits:
        return [BIAS_COLOURS[int(label)] for label in _natural_sorted(labels)]
    return list(SENSITIVE_COLOURS)


def _natural_sorted(labels: Iterable[str]) -> list[str]:
    """Sort labels numerically when they are all numbers, else as text."""
    values = list(labels)
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)


def _natural_order(labels: pd.Series) -> list[int]:
    """Positions that put ``labels`` in :func:`_natural_sorted` order."""
    ordered = _natural_sorted(labels.astype(str))
    rank = {label: i for i, label in enumerate(ordered)}
    return sorted(range(len(labels)), key=lambda i: rank[str(labels.iloc[i])])


def _error_bars(rows: pd.DataFrame) -> dict[str, Any] | None:
    """Asymmetric plotly error bars (in %) from summary rows; ``None`` if none has an interval."""
    if rows["kind"].isin(["single", "none"]).all():
        return None
    return {
        "type": "data",
        "symmetric": False,
        "array": _percent(rows["high"] - rows["mean"]),
        "arrayminus": _percent(rows["mean"] - rows["low"]),
        "thickness": 1.2,
    }


def _percent(values: Iterable[float]) -> list[float | None]:
    """Fractions as percentages rounded to 0.01; NaN becomes ``None`` (a gap)."""
    return [_round(PERCENT * float(v)) for v in values]


def _round(value: float) -> float | None:
    return round(float(value), PERCENT_DECIMALS) if math.isfinite(value) else None


def _significant(value: float, digits: int) -> float | None:
    return float(f"{value:.{digits}g}") if math.isfinite(value) else None


def _round_coordinates(xy: np.ndarray) -> np.ndarray:
    """Round coordinates to three significant digits of the largest magnitude."""
    largest = float(np.nanmax(np.abs(xy))) if xy.size else 0.0
    if not math.isfinite(largest) or largest == 0.0:
        return xy
    decimals = max(0, COORDINATE_DIGITS - 1 - math.floor(math.log10(largest)))
    rounded: np.ndarray = np.round(xy, decimals)
    return rounded


def _rho_text(rho: float) -> str:
    return f"{rho:g}"


def _rho_categories(rhos: Iterable[float]) -> list[str]:
    return [_rho_text(rho) for rho in sorted(set(rhos))]


def _seed_text(seed: Any) -> str:
    """Format a seed for display: the integer, or ``?`` when unknown."""
    return "?" if seed is None or pd.isna(seed) else str(int(seed))
