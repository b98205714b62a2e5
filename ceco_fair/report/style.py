"""The report's look, shared by every figure: fonts, colours, menus, number formats.

Fractions are shown as percentages rounded to 0.01, projection coordinates to three significant
digits, to keep the embedded data small. Plotly renders trace names, titles and tick labels as a
small subset of HTML, so every string that comes from the results (method, attribute and group
names) passes through :func:`text`, which escapes it; plotly turns the entities back into the
literal characters when it draws.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

if TYPE_CHECKING:
    from ceco_fair.report.load import Results

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


@dataclass(frozen=True)
class SectionSpec:
    """A report section: where its figures come from and how to read them."""

    anchor: str
    title: str
    guide: str
    figures: tuple[Callable[[Results], go.Figure | None], ...]


@dataclass(frozen=True)
class Option:
    """One entry of a figure's menu: its label, the traces it shows, layout changes."""

    label: str
    traces: Iterable[int]
    layout: Mapping[str, Any]


def add_selector(fig: go.Figure, options: Sequence[Option]) -> None:
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


def apply_layout(
    fig: go.Figure, *, title: str, height: int = HEIGHT, bottom: int = MARGIN_BOTTOM, **layout: Any
) -> None:
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


def option_label(method: str, condition: str, with_condition: bool) -> str:
    """Menu label for a method in one condition (not yet escaped)."""
    return f"{method} · {condition}" if with_condition else method


def natural_sorted(labels: Iterable[str]) -> list[str]:
    """Sort labels numerically when they are all numbers, else as text."""
    values = list(labels)
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)


def natural_order(labels: pd.Series) -> list[int]:
    """Positions that put ``labels`` in :func:`natural_sorted` order."""
    ordered = natural_sorted(labels.astype(str))
    rank = {label: i for i, label in enumerate(ordered)}
    return sorted(range(len(labels)), key=lambda i: rank[str(labels.iloc[i])])


def error_bars(rows: pd.DataFrame) -> dict[str, Any] | None:
    """Asymmetric plotly error bars (in %) from summary rows; ``None`` if none has an interval."""
    if rows["kind"].isin(["single", "none"]).all():
        return None
    return {
        "type": "data",
        "symmetric": False,
        "array": percent(rows["high"] - rows["mean"]),
        "arrayminus": percent(rows["mean"] - rows["low"]),
        "thickness": 1.2,
    }


def percent(values: Iterable[float]) -> list[float | None]:
    """Fractions as percentages rounded to 0.01; NaN becomes ``None`` (a gap)."""
    return [round_value(PERCENT * float(v)) for v in values]


def round_value(value: float) -> float | None:
    """A fraction's percentage rounded to 0.01; ``None`` when not finite."""
    return round(float(value), PERCENT_DECIMALS) if math.isfinite(value) else None


def significant(value: float, digits: int) -> float | None:
    """``value`` to ``digits`` significant digits; ``None`` when not finite."""
    return float(f"{value:.{digits}g}") if math.isfinite(value) else None


def round_coordinates(xy: np.ndarray) -> np.ndarray:
    """Round coordinates to three significant digits of the largest magnitude."""
    largest = float(np.nanmax(np.abs(xy))) if xy.size else 0.0
    if not math.isfinite(largest) or largest == 0.0:
        return xy
    decimals = max(0, COORDINATE_DIGITS - 1 - math.floor(math.log10(largest)))
    rounded: np.ndarray = np.round(xy, decimals)
    return rounded


def rho_text(rho: float) -> str:
    """A ρ as an axis category (``0.99``)."""
    return f"{rho:g}"


def rho_categories(rhos: Iterable[float]) -> list[str]:
    """The distinct ρ values, sorted, as axis categories."""
    return [rho_text(rho) for rho in sorted(set(rhos))]


def seed_text(seed: Any) -> str:
    """Format a seed for display: the integer, or ``?`` when unknown."""
    return "?" if seed is None or pd.isna(seed) else str(int(seed))


def condition_options(
    fig: go.Figure, conditions: Iterable[str], draw: Callable[[str], None], title: str
) -> list[Option]:
    """Draw one condition's traces after another, each condition an entry of the figure's menu.

    Args:
        fig: The figure the traces are added to.
        conditions: Condition labels, in menu order.
        draw: Adds the traces of one condition to ``fig`` (possibly none).
        title: The figure's title; the condition is appended to it.

    Returns:
        One option per condition that added traces.
    """
    options: list[Option] = []
    for condition in conditions:
        first = len(fig.data)
        draw(condition)
        if len(fig.data) > first:
            options.append(
                Option(condition, range(first, len(fig.data)), {"title.text": f"{title}: {text(condition)}"})
            )
    return options
