"""Figures of a read-out's class probabilities per sensitive group: ROC curves, reliability, score ECDFs.

Each is a pure function of one run's arrays (torch-free): ``targets [n]`` (binary, 0/1),
``scores [n]`` the positive-class probability, ``sensitive [n]`` the group of each row, and the
groups' names. Captions name the variant drawn:

- :func:`group_roc_figure`: the ROC curve of every group (the AUROC in the legend); the gap between
  the curves is what ``auroc_gap`` summarises.
- :func:`reliability_figure`: top-label confidence against accuracy in 10 equal-width bins on [0, 1]
  (a confidence of exactly 1 falls in the last bin), per group: the ECE's own binning.
- :func:`score_cdf_figure`: each group's empirical CDF of the positive-class score; the area between
  the two groups farthest apart is shaded: ABCC, the 1-D Wasserstein-1 distance between them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import plotly.graph_objects as go

from ceco_fair.report.load import Results
from ceco_fair.report.readers import read_scores
from ceco_fair.report.style import Option, SectionSpec, add_selector, apply_layout, option_label, text
from ceco_fair.results.layout import PRIMARY_READOUT, READOUT_COLUMN, RUNS_DIR, SCORE_PREFIX

BINS: Final = 10
"""Equal-width confidence bins of the reliability diagram (and of the ECE)."""
GROUP_COLOURS: Final = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880")

Array = npt.NDArray[np.float64]
Labels = npt.NDArray[np.int64]


def _groups(sensitive: Labels, names: Sequence[str]) -> list[tuple[int, str, str]]:
    """``(value, name, colour)`` of every group present."""
    present = [int(value) for value in np.unique(sensitive)]
    return [
        (value, names[value] if value < len(names) else str(value), GROUP_COLOURS[i % len(GROUP_COLOURS)])
        for i, value in enumerate(present)
    ]


def roc_points(targets: Labels, scores: Array) -> tuple[Array, Array, float]:
    """The ROC curve ``(fpr, tpr)`` of binary ``targets`` by ``scores`` and its area (NaN with one class).

    Ties share a point (thresholds at every distinct score, descending), as in
    ``sklearn.metrics.roc_curve(drop_intermediate=False)``.
    """
    positives, negatives = int(np.sum(targets == 1)), int(np.sum(targets == 0))
    if not positives or not negatives:
        return np.array([0.0, 1.0]), np.array([0.0, 1.0]), float("nan")
    order = np.argsort(-scores, kind="stable")
    ordered, hits = scores[order], (targets[order] == 1).astype(np.float64)
    last = np.r_[np.flatnonzero(np.diff(ordered)), len(ordered) - 1]  # the last row of each distinct score
    tpr = np.r_[0.0, np.cumsum(hits)[last] / positives]
    fpr = np.r_[0.0, np.cumsum(1.0 - hits)[last] / negatives]
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


def group_roc_figure(targets: Labels, scores: Array, sensitive: Labels, names: Sequence[str]) -> go.Figure:
    """One ROC curve per sensitive group, its AUROC in the legend (undefined for a one-class group)."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "#999"}, name="chance"))
    for value, name, colour in _groups(sensitive, names):
        rows = sensitive == value
        fpr, tpr, area = roc_points(targets[rows], scores[rows])
        shown = "undefined: one class only" if np.isnan(area) else f"AUROC {area:.3f}"
        fig.add_trace(
            go.Scatter(
                x=np.round(fpr, 4).tolist(),
                y=np.round(tpr, 4).tolist(),
                mode="lines",
                line={"color": colour, "shape": "hv"},
                name=text(f"{name} ({shown})"),
            )
        )
    fig.update_xaxes(title_text="false-positive rate", range=[0, 1])
    fig.update_yaxes(title_text="true-positive rate", range=[0, 1])
    apply_layout(fig, title="ROC curve per group (binary AUROC per group; the gap is auroc_gap)")
    return fig


def reliability_bins(targets: Labels, probabilities: Array) -> tuple[Array, Array, Array]:
    """Per equal-width bin of top-label confidence: ``(mean confidence, accuracy, count)``, each ``[BINS]``.

    Args:
        targets: ``[n]`` classes.
        probabilities: ``[n, C]`` class probabilities.
    """
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == targets).astype(np.float64)
    index = np.minimum((confidence * BINS).astype(np.int64), BINS - 1)
    counts = np.bincount(index, minlength=BINS).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, weights=confidence, minlength=BINS) / counts
        accuracy = np.bincount(index, weights=correct, minlength=BINS) / counts
    return mean_confidence, accuracy, counts


def reliability_figure(targets: Labels, probabilities: Array, sensitive: Labels, names: Sequence[str]) -> go.Figure:
    """Accuracy against top-label confidence per group, 10 equal-width bins; empty bins are not drawn."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "#999"}, name="calibrated")
    )
    for value, name, colour in _groups(sensitive, names):
        rows = sensitive == value
        confidence, accuracy, counts = reliability_bins(targets[rows], probabilities[rows])
        filled = counts > 0
        ece = float(np.sum(counts[filled] * np.abs(accuracy[filled] - confidence[filled])) / counts.sum())
        fig.add_trace(
            go.Scatter(
                x=np.round(confidence[filled], 4).tolist(),
                y=np.round(accuracy[filled], 4).tolist(),
                mode="lines+markers",
                marker={"color": colour, "size": np.clip(4 + np.sqrt(counts[filled]), 4, 18).tolist()},
                line={"color": colour},
                customdata=counts[filled].astype(int).tolist(),
                hovertemplate="confidence %{x:.3f}, accuracy %{y:.3f}, %{customdata} rows<extra></extra>",
                name=text(f"{name} (ECE {ece:.3f})"),
            )
        )
    fig.update_xaxes(title_text="top-label confidence (10 equal-width bins)", range=[0, 1])
    fig.update_yaxes(title_text="share correct in the bin", range=[0, 1])
    apply_layout(fig, title="Reliability per group (ECE: top-label, 10 equal-width bins)")
    return fig


def ecdf(values: Array) -> tuple[Array, Array]:
    """The empirical CDF of ``values`` as step points ``(x, F(x))``, starting at ``(min, 0)``."""
    ordered = np.sort(values)
    heights = np.arange(1, len(ordered) + 1) / len(ordered)
    return np.r_[ordered[0], ordered], np.r_[0.0, heights]


def area_between(first: Array, second: Array) -> float:
    """∫ |F₁(s) − F₂(s)| ds over the pooled scores: ABCC, the Wasserstein-1 distance of the two samples."""
    grid = np.sort(np.r_[first, second])
    left, right = np.sort(first), np.sort(second)
    gap = np.abs(
        np.searchsorted(left, grid[:-1], side="right") / len(left)
        - np.searchsorted(right, grid[:-1], side="right") / len(right)
    )
    return float(np.sum(gap * np.diff(grid)))


def score_cdf_figure(scores: Array, sensitive: Labels, names: Sequence[str]) -> go.Figure:
    """Each group's ECDF of the positive-class score; the two groups farthest apart shaded between (ABCC)."""
    groups = _groups(sensitive, names)
    fig = go.Figure()
    samples = {value: scores[sensitive == value] for value, _, _ in groups}
    pairs = [(area_between(samples[a], samples[b]), a, b) for a, b in itertools.combinations(samples, 2)]
    widest = max(pairs) if pairs else None
    if widest is not None:  # the shaded pair first, the second filled to the first ("tonexty")
        groups = sorted(groups, key=lambda group: (group[0] != widest[1], group[0] != widest[2]))
    for position, (value, name, colour) in enumerate(groups):
        x, y = ecdf(samples[value])
        fig.add_trace(
            go.Scatter(
                x=np.round(x, 4).tolist(),
                y=np.round(y, 4).tolist(),
                mode="lines",
                line={"color": colour, "shape": "hv"},
                name=text(name),
                fill="tonexty" if widest is not None and position == 1 else None,
            )
        )
    caption = "ECDF of the positive-class score per group"
    if widest is not None:
        first = next(name for value, name, _ in groups if value == widest[1])
        second = next(name for value, name, _ in groups if value == widest[2])
        caption += f"; shaded: ABCC {widest[0]:.3f} between {first} and {second} (largest pair)"
    fig.update_xaxes(title_text="positive-class score", range=[0, 1])
    fig.update_yaxes(title_text="share of the group at or below", range=[0, 1])
    apply_layout(fig, title=text(caption))
    return fig


def _score_runs(results: Results) -> list[tuple[str, pd.DataFrame]]:
    """``(option label, the primary read-out's rows of scores.csv)`` of each group run with binary scores.

    The first seed of every method and condition, in the report's order; runs written before
    ``scores.csv`` existed, and runs with more than two classes, are left out.
    """
    runs = results.runs
    if runs.empty or "metric_kind" not in runs.columns:
        return []
    chosen = []
    group_runs = runs[runs["metric_kind"] == "group"]
    for _, rows in group_runs.groupby(["condition", "method"], sort=False):
        run_id = str(rows.sort_values("seed")["run_id"].iloc[0])
        table = read_scores(results.root / RUNS_DIR / run_id)
        if table is None:
            continue
        primary = table[table[READOUT_COLUMN] == PRIMARY_READOUT]
        classes = [column for column in primary.columns if str(column).startswith(SCORE_PREFIX)]
        if len(classes) != 2 or primary.empty:
            continue
        several = group_runs["condition"].nunique() > 1
        chosen.append((option_label(str(rows["method"].iloc[0]), str(rows["condition"].iloc[0]), several), primary))
    return chosen


def _combined(results: Results, draw: Callable[[pd.DataFrame], go.Figure]) -> go.Figure | None:
    """One figure with a menu over the runs of :func:`_score_runs`, each option drawn by ``draw``."""
    runs = _score_runs(results)
    if not runs:
        return None
    combined: go.Figure | None = None
    options = []
    for label, table in runs:
        figure = draw(table)
        if combined is None:
            combined = go.Figure(layout=figure.layout)
        start = len(combined.data)
        for trace in figure.data:
            combined.add_trace(trace)
        options.append(Option(label, range(start, len(combined.data)), {"title.text": figure.layout.title.text}))
    assert combined is not None
    add_selector(combined, options)
    return combined


def _arrays(table: pd.DataFrame) -> tuple[Labels, Array, Labels, list[str]]:
    targets = table["target"].to_numpy(dtype=np.int64)
    sensitive = table["sensitive"].to_numpy(dtype=np.int64)
    probabilities = table[[f"{SCORE_PREFIX}0", f"{SCORE_PREFIX}1"]].to_numpy(dtype=np.float64)
    names = [str(value) for value in range(int(sensitive.max()) + 1)] if len(sensitive) else []
    return targets, probabilities, sensitive, names


def roc_by_group(results: Results) -> go.Figure | None:
    """ROC curves per group of the linear read-out, a menu over methods (binary group runs with scores.csv)."""

    def draw(table: pd.DataFrame) -> go.Figure:
        targets, probabilities, sensitive, names = _arrays(table)
        return group_roc_figure(targets, probabilities[:, 1], sensitive, names)

    return _combined(results, draw)


def reliability_by_group(results: Results) -> go.Figure | None:
    """Reliability per group of the linear read-out (ECE's 10 equal-width bins), a menu over methods."""

    def draw(table: pd.DataFrame) -> go.Figure:
        targets, probabilities, sensitive, names = _arrays(table)
        return reliability_figure(targets, probabilities, sensitive, names)

    return _combined(results, draw)


def score_cdfs_by_group(results: Results) -> go.Figure | None:
    """Score ECDFs per group of the linear read-out, the widest pair shaded (ABCC), a menu over methods."""

    def draw(table: pd.DataFrame) -> go.Figure:
        _, probabilities, sensitive, names = _arrays(table)
        return score_cdf_figure(probabilities[:, 1], sensitive, names)

    return _combined(results, draw)


SECTION = SectionSpec(
    "scores",
    "Scores per group: ROC, calibration, score distributions",
    "Threshold-free fairness of the linear read-out's class probabilities (the first seed of each method; "
    "the menu switches method). <em>ROC</em>: one curve per sensitive group, its AUROC in the legend "
    "(binary, Mann-Whitney; undefined for a group holding one class); curves apart mean the read-out ranks "
    "one group's positives better (auroc_gap). <em>Reliability</em>: accuracy against top-label confidence "
    "in 10 equal-width bins, per group (the ECE's binning; ece_gap compares the groups' ECE). <em>Score "
    "distributions</em>: each group's empirical CDF of the positive-class score; the shaded area between "
    "the two groups farthest apart is ABCC (the 1-D Wasserstein distance), FFB's threshold-free gap.",
    (roc_by_group, reliability_by_group, score_cdfs_by_group),
)
