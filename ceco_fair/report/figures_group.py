"""Figures of group fairness: rates per group, fairness against accuracy, gaps per method."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ceco_fair.metrics.specs import (
    BAND_INTERVALS,
    GROUP_RATE_LABELS,
    GROUP_RATES,
    METRIC_SPECS,
    label,
    spec_of,
    unit_suffix,
    with_role,
)
from ceco_fair.report.load import Results
from ceco_fair.report.stats import summarize
from ceco_fair.report.style import (
    SectionSpec,
    add_selector,
    apply_layout,
    condition_options,
    error_bars,
    method_colours,
    natural_order,
    percent,
    text,
)

PLOTTED_RATES = 3
RATE_LABELS = {rate: GROUP_RATE_LABELS[rate] for rate in GROUP_RATES[:PLOTTED_RATES]}
"""Per-group accuracy, true- and false-positive rate: the rates drawn (the selection rate stays in the table)."""
BAR_COLOURS = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3")


def fairness_bars() -> tuple[tuple[str, bool, str], ...]:
    """The fairness gaps drawn as bars: ``(metric, shown at first, colour)``.

    The between-group differences of the specs (interval ``spread`` or ``mean_gap``); those a group
    run compares against its baseline (headline) are shown at first, the others listed in the legend.
    """
    gaps = [spec for spec in METRIC_SPECS.values() if spec.interval in BAND_INTERVALS]
    return tuple(
        (spec.name, "group" in spec.headline, BAR_COLOURS[index % len(BAR_COLOURS)]) for index, spec in enumerate(gaps)
    )


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
    summary = summarize(table, keys, confidence=results.confidence)
    summary["count"] = table.groupby(keys, sort=False, dropna=False)["count"].mean().to_numpy()
    fig = make_subplots(
        rows=1,
        cols=len(rates),
        shared_yaxes=True,
        subplot_titles=[f"{RATE_LABELS[rate]} (%)" for rate in rates],
    )
    colours = method_colours(results.methods)

    def draw(condition: str) -> None:
        for method in results.methods:
            for col, rate in enumerate(rates, start=1):
                rows = summary[
                    (summary["condition"] == condition) & (summary["method"] == method) & (summary["metric"] == rate)
                ]
                if rows.empty:
                    continue
                rows = rows.iloc[natural_order(rows["group"])]
                fig.add_trace(
                    go.Bar(
                        x=[text(name) for name in rows["group_name"]],
                        y=percent(rows["mean"]),
                        error_y=error_bars(rows),
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

    options = condition_options(fig, results.conditions, draw, "Rates per group")
    apply_layout(fig, title="Rates per group", barmode="group")
    fig.update_yaxes(range=[0, 102])
    fig.update_yaxes(title_text="rate (%)", row=1, col=1)
    fig.update_xaxes(title_text="sensitive group", type="category")
    add_selector(fig, options)
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
    gap, overall = with_role("fairness_axis")[0], with_role("overall")[0]
    if not (metrics["metric"] == gap).any():
        return None
    table = metrics[metrics["metric"].isin([gap, overall])]
    summary = summarize(table, ["condition", "method", "metric"], confidence=results.confidence).set_index(
        ["condition", "method", "metric"]
    )
    colours = method_colours(results.methods)
    fig = go.Figure()

    def draw(condition: str) -> None:
        for method in results.methods:
            gap_key = (condition, method, gap)
            overall_key = (condition, method, overall)
            if gap_key not in summary.index or overall_key not in summary.index:
                continue
            x_rows = summary.loc[[gap_key]]
            y_rows = summary.loc[[overall_key]]
            fig.add_trace(
                go.Scatter(
                    x=percent(x_rows["mean"]),
                    y=percent(y_rows["mean"]),
                    error_x=error_bars(x_rows),
                    error_y=error_bars(y_rows),
                    mode="markers+text",
                    text=[text(method)],
                    textposition="top center",
                    name=text(method),
                    marker={"color": colours[method], "size": 13},
                    hovertemplate=f"{label(gap)} %{{x:.1f}}%<br>{label(overall)} %{{y:.1f}}%"
                    "<extra>%{fullData.name}</extra>",
                )
            )

    options = condition_options(fig, results.conditions, draw, "Fairness against accuracy")
    if not options:
        return None
    apply_layout(
        fig,
        title="Fairness against accuracy",
        xaxis={
            "title": {"text": f"{label(gap)}{unit_suffix(spec_of(gap))}, lower is fairer"},
            "rangemode": "tozero",
        },
        yaxis={"title": {"text": f"{label(overall)}{unit_suffix(spec_of(overall))}"}},
    )
    add_selector(fig, options)
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
    bars = fairness_bars()
    names = [name for name, _, _ in bars]
    table = results.metrics[results.metrics["metric"].isin(names)]
    if table.empty:
        return None
    summary = summarize(table, ["condition", "metric", "method"], confidence=results.confidence)
    fig = go.Figure()

    def draw(condition: str) -> None:
        for metric, shown, colour in bars:
            rows = summary[(summary["condition"] == condition) & (summary["metric"] == metric)]
            if rows.empty:
                continue
            fig.add_trace(
                go.Bar(
                    x=[text(method) for method in rows["method"]],
                    y=percent(rows["mean"]),
                    error_y=error_bars(rows),
                    name=label(metric),
                    marker={"color": colour},
                    visible=True if shown else "legendonly",
                    hovertemplate="%{x}: %{y:.1f}%<extra>%{fullData.name}</extra>",
                )
            )

    options = condition_options(fig, results.conditions, draw, "Fairness gaps per method")
    apply_layout(
        fig,
        title="Fairness gaps per method",
        barmode="group",
        xaxis={"title": {"text": "method"}, "type": "category"},
        yaxis={
            "title": {"text": "difference between groups (%), lower is fairer"},
            "rangemode": "tozero",
        },
    )
    add_selector(fig, options)
    return fig


SECTION = SectionSpec(
    "fairness",
    "Group fairness",
    "The first chart shows, for each sensitive group, the linear probe's accuracy, "
    "true-positive rate and false-positive rate: a fair model has bars of equal height "
    "across groups. The scatter places each method by its equalized-odds difference (the "
    "larger of the between-group gaps in true- and false-positive rate; left is fairer) "
    "and its accuracy (up is better): the best trade-off lies top left. The last chart "
    "compares the equalized-odds and demographic-parity differences (the gap in the rate "
    "of positive predictions) per method; click the legend to add the equal-opportunity "
    "difference and FSCL's EO.",
    (group_rates, fairness_accuracy_scatter, fairness_gaps),
)
