"""The read-outs side by side: each bias metric of each method through every read-out the runs measured."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ceco_fair.metrics.specs import READOUT_METRICS, label
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
    percent,
    text,
)
from ceco_fair.results.layout import PRIMARY_READOUT, READOUT_COLUMN, ordered_readouts, readout_label

READOUT_GUIDE = (
    "A large gain from the linear to the balanced probe means the information was in the representation "
    "and the classifier chose the bias; no gain means the representation lost it."
)
"""The one-line reading of the read-outs side by side."""


def readouts_by_method(results: Results) -> go.Figure | None:
    """One panel per bias metric: a group of bars per method, one bar per read-out, mean over seeds.

    Args:
        results: The loaded results folder.

    Returns:
        Bars (in %) with the seed interval as error bars, one menu entry per condition; ``None`` when
        the folder holds no read-out other than the primary one.
    """
    table = results.readouts
    if table.empty or set(table[READOUT_COLUMN]) <= {PRIMARY_READOUT}:
        return None
    readouts = ordered_readouts(table[READOUT_COLUMN])
    kind = "bias" if table["metric"].isin(READOUT_METRICS["bias"]).any() else "group"
    metrics = [m for m in READOUT_METRICS[kind] if m in set(table["metric"])]
    table = table[table["metric"].isin(metrics)]
    summary = summarize(table, ["condition", "method", READOUT_COLUMN, "metric"], confidence=results.confidence)
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=[f"{text(label(m))} (%)" for m in metrics])
    shades = dict(zip(readouts, method_colours(readouts).values(), strict=True))
    options: list[Option] = []
    conditions = [c for c in results.conditions if c in set(summary["condition"])]
    for condition in conditions:
        first = len(fig.data)
        for readout in readouts:
            for col, metric in enumerate(metrics, start=1):
                rows = summary[
                    (summary["condition"] == condition)
                    & (summary[READOUT_COLUMN] == readout)
                    & (summary["metric"] == metric)
                ]
                rows = rows.set_index("method").reindex([m for m in results.methods if m in set(rows["method"])])
                if rows.empty:
                    continue
                fig.add_trace(
                    go.Bar(
                        x=[text(m) for m in rows.index],
                        y=percent(rows["mean"]),
                        error_y=error_bars(rows.reset_index()),
                        name=text(readout_label(readout)),
                        legendgroup=readout,
                        showlegend=col == 1,
                        marker_color=shades[readout],
                        visible=condition == conditions[0],
                    ),
                    row=1,
                    col=col,
                )
        options.append(Option(text(condition), range(first, len(fig.data)), {}))
    if not fig.data:
        return None
    apply_layout(fig, title="Each metric through every read-out", height=HEIGHT, barmode="group")
    add_selector(fig, options)
    return fig


SECTION = SectionSpec(
    "readouts",
    "Read-outs: is the information gone, or did the classifier choose the bias?",
    "Every encoder is read three ways: the <em>linear</em> probe fitted on the biased training features "
    "(the numbers of the summary table), the same probe fitted with every (target, sensitive) cell weighted "
    "equally (<em>balanced</em>, DFR's last-layer retraining), and the classifier the method trained itself "
    f"(<em>head</em>; cross-entropy and the subgroup baselines). {READOUT_GUIDE}",
    (readouts_by_method,),
)
