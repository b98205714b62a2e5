"""The selection section: every trial's score under each rule, and what each rule picked.

- :func:`trial_scores`: one figure, one panel per rule, one marker per (method, trial) and a ring
  round the trial the rule picked; a menu switches condition.
- :func:`picks_table`: the rule, the chosen values and the score, per method, condition and repeat.
- :func:`paired_trials_table`: at the trials the methods share, how each method's test metrics differ
  from the baseline's (median, win share, worst and best trial).

They read ``search.csv``, ``selection.json`` and ``paired_trials.csv`` (:attr:`Results.search`,
:attr:`Results.picks`, :attr:`Results.paired_trials`).
"""

from __future__ import annotations

from html import escape
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ceco_fair.metrics.specs import MetricSpec, format_value, label, spec_of, unit_suffix
from ceco_fair.report.load import Results
from ceco_fair.report.style import Option, add_selector, apply_layout, method_colours, text
from ceco_fair.results.selection import RULES, TEST_PREFIX, describe

SELECTION_GUIDE = (
    "A search trains every method under every condition with several configurations; with the "
    "stratified sampler trial <em>t</em> is one configuration every method shares (only a method's own "
    "keys differ), and every choice value is tried. Each rule picks, per method and condition, the trial "
    "with the best validation score, ties to the lower trial. Under <em>repeat</em> finals the whole "
    "search runs once per seed and each repeat's pick is one result, so the intervals hold the "
    "selection's own variance; under <em>reseed</em> finals one search's pick is retrained at every "
    "seed and the intervals hold seed variance only. <em>val_accuracy</em> and <em>val_worst_class</em> "
    "read no group labels; <em>val_worst_group</em> reads the validation split's group labels; "
    "<em>oracle</em> reads the test set, so its numbers are an upper bound, never a result."
)


def _rules(results: Results) -> list[str]:
    """The rules whose scores ``search.csv`` holds, in :data:`RULES` order."""
    return [rule for rule in RULES if rule in results.search.columns]


def trial_scores(results: Results) -> go.Figure | None:
    """The score of every trial per method under each rule (one panel per rule), the picks ringed."""
    search = results.search
    rules = _rules(results)
    if search.empty or not rules:
        return None
    methods = list(dict.fromkeys([*results.methods, *search["method"].astype(str)]))
    colours = method_colours(methods)
    repeats = search["repeat"].astype(int) if "repeat" in search.columns else pd.Series(0, index=search.index)
    conditions = list(dict.fromkeys(zip(search["condition"].astype(str), repeats, strict=True)))
    several = len({repeat for _, repeat in conditions}) > 1
    titles = [text(rule + (" (upper bound)" if RULES[rule].reads_test else "")) for rule in rules]
    fig = make_subplots(rows=1, cols=len(rules), subplot_titles=titles, horizontal_spacing=0.06)
    options = []
    for condition, repeat in conditions:
        traces = []
        for col, rule in enumerate(rules, start=1):
            for method in methods:
                chosen = (search["method"].astype(str) == method) & (search["condition"].astype(str) == condition)
                rows = search[chosen & (repeats == repeat)].sort_values("trial")
                if rows.empty:
                    continue
                picked = (results.picks.get(rule) or {}).get(method, {}).get(condition, {}).get(str(repeat), {})
                picked = picked.get("trial")
                traces.append(len(fig.data))
                fig.add_trace(
                    go.Scatter(
                        x=rows["trial"].astype(int).tolist(),
                        y=(rows[rule].astype(float) * 100).round(2).tolist(),
                        mode="lines+markers",
                        name=text(method),
                        legendgroup=text(method),
                        showlegend=col == 1,
                        line={"color": colours[method], "width": 1},
                        marker={
                            "color": colours[method],
                            "size": [14 if int(t) == picked else 7 for t in rows["trial"]],
                            "line": {"width": [3 if int(t) == picked else 0 for t in rows["trial"]], "color": "#222"},
                        },
                        hovertemplate=f"{text(method)} trial %{{x}}: %{{y:.2f}}%<extra>{text(rule)}</extra>",
                    ),
                    row=1,
                    col=col,
                )
        options.append(Option(f"{condition}, repeat {repeat}" if several else condition, traces, {}))
    fig.update_xaxes(title_text="trial", dtick=1)
    fig.update_yaxes(title_text="score (%)", col=1)
    apply_layout(fig, title="Score of every trial per rule; the ringed trial is the rule's pick")
    add_selector(fig, options)
    return fig


def picks_table(results: Results) -> str | None:
    """An HTML table: rule, method, condition, picked trial, its score and its values."""
    if not results.picks:
        return None
    rows = []
    for rule, by_method in results.picks.items():
        for method, by_condition in by_method.items():
            for condition, by_repeat in by_condition.items():
                for repeat, pick in by_repeat.items():
                    rows.append(_pick_row(rule, method, condition, repeat, pick))
    if not rows:
        return None
    names = ("rule", "method", "condition", "repeat", "trial", "score", "chosen values")
    head = "".join(f'<th class="text">{name}</th>' for name in names)
    caption = "What each rule picked. " + " ".join(escape(describe(rule)) + "." for rule in results.picks)
    return (
        '<div class="table-wrap"><table class="summary">'
        f"<caption>{caption}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _pick_row(rule: str, method: str, condition: str, repeat: str, pick: dict[str, Any]) -> str:
    values = ", ".join(f"{key} = {_short(value)}" for key, value in (pick.get("values") or {}).items())
    score = pick.get("score")
    shown = f"{100 * float(score):.2f}%" if isinstance(score, int | float) and not pd.isna(score) else "—"
    mark = " (upper bound)" if rule in RULES and RULES[rule].reads_test else ""
    cells = [rule + mark, method, condition, repeat, str(pick.get("trial")), shown, values or "the protocol's values"]
    return "<tr>" + "".join(f'<td class="text">{escape(cell)}</td>' for cell in cells) + "</tr>"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


PERCENT_SCORE = MetricSpec("rule_score", "rule score", "group", "higher")
"""How a rule's score is written: a fraction shown in %, one decimal (the rules' scores are accuracies)."""
PAIRED_TRIALS_GUIDE = (
    "The same question without another run: at each trial the methods share (same drawn configuration, "
    "same repeat), the method's value minus the baseline's. <em>median</em> of those differences, "
    "<em>wins</em>: the share of trials where the method is better (by the metric's direction; a tie is no win), "
    "<em>worst</em> / <em>best</em>: its least and most favourable trial. Test metrics (linear read-out) "
    "are for reading only: no rule selects on them."
)


def _paired_metric(column: str) -> tuple[str, MetricSpec | None]:
    """A ``paired_trials.csv`` metric as the table shows it, and the spec its values are written by."""
    if column.startswith(TEST_PREFIX):
        name = column.removeprefix(TEST_PREFIX)
        spec = spec_of(name)
        return f"{label(name)}{unit_suffix(spec)}, test", spec
    if column in RULES and RULES[column].reads_test:
        return f"{column} (test, upper bound), %", PERCENT_SCORE
    return f"{column} (validation), %", PERCENT_SCORE


def _signed(value: float, spec: MetricSpec | None) -> str:
    shown = format_value(abs(value), spec)
    return f"{'-' if value < 0 else '+'}{shown}" if shown else "—"


def paired_trials_table(results: Results) -> str | None:
    """An HTML table of ``paired_trials.csv``: per method, condition and metric, the per-trial differences."""
    table = results.paired_trials
    if table.empty:
        return None
    rows = []
    for record in table.to_dict("records"):
        shown, spec = _paired_metric(str(record["metric"]))
        cells = [
            str(record["method"]),
            str(record["baseline"]),
            str(record["condition"]),
            shown,
            str(int(record["n_trials"])),
            _signed(float(record["median"]), spec),
            f"{100 * float(record['win_share']):.0f}%",
            _signed(float(record["worst"]), spec),
            _signed(float(record["best"]), spec),
        ]
        rows.append("<tr>" + "".join(f'<td class="text">{escape(cell)}</td>' for cell in cells) + "</tr>")
    names = ("method", "baseline", "condition", "metric", "trials", "median difference", "wins", "worst", "best")
    head = "".join(f'<th class="text">{name}</th>' for name in names)
    return (
        '<div class="table-wrap"><table class="summary">'
        f"<caption>{PAIRED_TRIALS_GUIDE}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
