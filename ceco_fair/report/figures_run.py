"""Figures of single runs: training curves and the 2-D projection of test features."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ceco_fair.report.load import Results
from ceco_fair.report.style import (
    HEIGHT,
    MARGIN_BOTTOM,
    SENSITIVE_COLOURS,
    TARGET_COLOURS,
    Option,
    SectionSpec,
    add_selector,
    apply_layout,
    condition_options,
    method_colours,
    natural_sorted,
    option_label,
    round_coordinates,
    seed_text,
    significant,
    text,
)


def training_curves(results: Results) -> go.Figure | None:
    """Training loss per epoch, one line per run.

    Args:
        results: The loaded results folder.

    Returns:
        A line chart (x: epoch; one colour per method, one line per seed) with a menu choosing
        ρ or the attribute pair; ``None`` without ``history.csv`` files.

    """
    history = results.histories
    if history.empty:
        return None
    fig = go.Figure()
    colours = method_colours(results.methods)

    def draw(condition: str) -> None:
        in_legend: set[str] = set()
        for (_, method, seed), rows in history[history["condition"] == condition].groupby(
            ["run_id", "method", "seed"], sort=False, dropna=False
        ):
            rows = rows.sort_values("epoch")
            fig.add_trace(
                go.Scatter(
                    x=rows["epoch"].tolist(),
                    y=[significant(v, 4) for v in rows["loss"]],
                    mode="lines+markers",
                    name=text(method),
                    legendgroup=text(method),
                    showlegend=method not in in_legend,
                    line={"color": colours[str(method)]},
                    marker={"size": 4},
                    hovertemplate="epoch %{x}<br>training loss %{y:.4g}<br>seed "
                    + seed_text(seed)
                    + "<extra>%{fullData.name}</extra>",
                )
            )
            in_legend.add(str(method))

    options = condition_options(fig, results.conditions, draw, "Training curves")
    apply_layout(
        fig, title="Training curves", xaxis={"title": {"text": "epoch"}}, yaxis={"title": {"text": "training loss"}}
    )
    add_selector(fig, options)
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
    options: list[Option] = []
    shown: set[tuple[str, str]] = set()
    for run_id, run_points in points.groupby("run_id", sort=False):
        run = results.runs[results.runs["run_id"] == run_id].iloc[0]
        key = (str(run["method"]), str(run["condition"]))
        if key in shown:
            continue  # runs are ordered by seed: the first one per method and condition is shown
        shown.add(key)
        names = attribute_names(run)
        first = len(fig.data)
        coordinates = round_coordinates(run_points[["x", "y"]].to_numpy(dtype=float))
        for col, (column, name, palette) in enumerate(
            (
                ("target_value", names[0], TARGET_COLOURS),
                (
                    "sensitive_value",
                    names[1],
                    sensitive_palette(results.group_colours.get(str(run_id), ()), run_points),
                ),
            ),
            start=1,
        ):
            labels = run_points[column].to_numpy()
            for index, category in enumerate(natural_sorted(set(labels))):
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
        label = option_label(str(run["method"]), str(run["condition"]), several_conditions)
        options.append(
            Option(
                f"{label}, seed {seed_text(run['seed'])}",
                range(first, len(fig.data)),
                {
                    "title.text": f"PCA of test features: {text(label)}, seed "
                    f"{seed_text(run['seed'])} ({len(run_points)} points)",
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
    apply_layout(
        fig,
        title="",
        height=HEIGHT + 160,
        bottom=MARGIN_BOTTOM + 110,
        legend={**legend, "y": -0.17},
        legend2={**legend, "y": -0.29},
    )
    fig.update_xaxes(title_text="first principal component")
    fig.update_yaxes(title_text="second principal component")
    add_selector(fig, options)
    return fig


def attribute_names(run: pd.Series) -> tuple[str, str]:
    """Name the target and the sensitive attribute of a run (as its dataset named them)."""
    target = run["target"] or run["target_name"] or "target"
    sensitive = run["sensitive"] or run["sensitive_name"] or "sensitive attribute"
    return str(target), str(sensitive)


def sensitive_palette(colours: Sequence[str], points: pd.DataFrame) -> Sequence[str]:
    """The groups' own colours (as the dataset recorded them) in label order, else a qualitative palette."""
    labels = set(points["sensitive_value"])
    if colours and labels <= {str(group) for group in range(len(colours))}:
        return [colours[int(label)] for label in natural_sorted(labels)]
    return list(SENSITIVE_COLOURS)


SECTIONS = (
    SectionSpec(
        "training",
        "Training curves",
        "Training loss after each epoch, one line per run (seeds share their method's colour). A "
        "curve that falls sooner converges faster; losses of different methods are on different "
        "scales, so compare their shapes rather than their values.",
        (training_curves,),
    ),
    SectionSpec(
        "projection",
        "2-D projection of test features",
        "The frozen encoder's test features projected on their first two principal "
        "components (a random subsample of at most 2,000 images). The same points are coloured "
        "by target on the left and by the bias or sensitive attribute on the right. Good "
        "features form clusters by target; clusters by the bias attribute mean the encoder "
        "encodes it. Click legend entries to hide or isolate categories.",
        (projections,),
    ),
)
