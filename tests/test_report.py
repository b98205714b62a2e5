"""Tests of the HTML report: loading a results folder, statistics, figures, page, command line."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from plotly.offline import get_plotlyjs
from report_fixtures import (
    BIAS_GROUP_COLOURS,
    remove,
    write_audit_folder,
    write_biased_mnist_folder,
    write_group_folder,
)
from scipy import stats

from ceco_fair.errors import CecoFairError, DataError
from ceco_fair.metrics.specs import METRIC_SPECS
from ceco_fair.report import build_report, load_results, seed_interval
from ceco_fair.report import figures as F
from ceco_fair.report.__main__ import main
from ceco_fair.report.html import format_interval, render_report, script_json
from ceco_fair.report.readers import MAX_PROJECTION_POINTS
from ceco_fair.report.stats import summarize
from ceco_fair.results.record import RunRecord

REPO = Path(__file__).resolve().parents[1]
XSS = "<script>alert(1)</script>"


# --------------------------------------------------------------------------- shared folders


@pytest.fixture(scope="module")
def biased(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BiasedMNIST: 3 methods × 2 ρ × 3 seeds."""
    root = tmp_path_factory.mktemp("biased")
    return write_biased_mnist_folder(
        root,
        rhos=(0.99, 0.995),
        seeds=(0, 1, 2),
        epochs=4,
        projection_points=300,
    )


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """UTKFace: 3 methods × 2 attribute pairs × 1 seed (bootstrap intervals)."""
    root = tmp_path_factory.mktemp("group")
    return write_group_folder(root, pairs=(("gender", "race"), ("gender", "age")), seeds=(0,))


def reference_means(folder: Path, metric: str) -> dict[tuple[str, float], list[float]]:
    """Values of ``metric`` per (method, ρ), read with the csv module."""
    values: dict[tuple[str, float], list[float]] = {}
    with (folder / "results.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["metric"] == metric:
                values.setdefault((row["method"], float(row["rho"])), []).append(float(row["value"]))
    return values


def t_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and t half-width at ``confidence``, written from the definition with float64 loops."""
    n = len(values)
    mean = 0.0
    for v in values:
        mean += v
    mean /= n
    squares = 0.0
    for v in values:
        squares += (v - mean) ** 2
    return mean, float(stats.t.ppf(1 - (1 - confidence) / 2, n - 1)) * math.sqrt(squares / (n - 1) / n)


# --------------------------------------------------------------------------- statistics


@pytest.mark.parametrize("n", [2, 3, 4, 7])
def test_seed_interval_is_the_t_interval_from_its_definition(n: int) -> None:
    values = list(np.random.default_rng(n).uniform(0.2, 0.9, n))
    interval = seed_interval(values)
    mean, half = t_interval(values)
    assert interval.kind == "t" and interval.n == n
    assert interval.mean == pytest.approx(mean, abs=1e-12)
    assert interval.low == pytest.approx(mean - half, abs=1e-12)
    assert interval.high == pytest.approx(mean + half, abs=1e-12)


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.99])
def test_seed_interval_follows_the_confidence_level(confidence: float) -> None:
    values = list(np.random.default_rng(5).uniform(0.2, 0.9, 5))
    interval = seed_interval(values, confidence=confidence)
    mean, half = t_interval(values, confidence)
    assert interval.mean == pytest.approx(mean, abs=1e-12)
    assert interval.high - interval.mean == pytest.approx(half, abs=1e-12)
    assert interval.mean - interval.low == pytest.approx(half, abs=1e-12)


def test_seed_interval_known_value() -> None:
    # t_{0.975, 2} = 4.302652729911275; s = 1, n = 3
    interval = seed_interval([1.0, 2.0, 3.0])
    assert interval.high - interval.mean == pytest.approx(4.302652729911275 / math.sqrt(3), rel=1e-9)


def test_seed_interval_few_seeds_and_nan() -> None:
    assert seed_interval([0.2, 0.6]) == seed_interval([0.6, float("nan"), 0.2])
    two = seed_interval([0.2, 0.6])
    mean, half = t_interval([0.2, 0.6])  # two seeds: the t-interval too, 12.7 standard errors wide
    assert (two.kind, two.n) == ("t", 2) and two.high == pytest.approx(mean + half) and half > 2.5
    assert two.mean == pytest.approx(0.4)
    one = seed_interval([0.5], ci=(0.4, 0.7))
    assert (one.kind, one.mean, one.low, one.high) == ("bootstrap", 0.5, 0.4, 0.7)
    single = seed_interval([0.5], ci=(float("nan"), float("nan")))
    assert (single.kind, single.low, single.high) == ("single", 0.5, 0.5)
    none = seed_interval([float("nan")])
    assert none.kind == "none" and none.n == 0 and math.isnan(none.mean)


def test_summarize_groups_and_uses_the_ci_only_for_one_seed() -> None:
    table = pd.DataFrame(
        {
            "method": ["a", "a", "a", "b"],
            "metric": ["m", "m", "m", "m"],
            "value": [0.1, 0.2, 0.6, 0.5],
            "ci_low": [0.0, 0.0, 0.0, 0.45],
            "ci_high": [1.0, 1.0, 1.0, 0.58],
        }
    )
    summary = summarize(table, ["method", "metric"])
    assert list(summary["method"]) == ["a", "b"]
    a, b = summary.iloc[0], summary.iloc[1]
    mean, half = t_interval([0.1, 0.2, 0.6])
    assert (a["kind"], a["n"]) == ("t", 3)
    assert a["mean"] == pytest.approx(mean) and a["high"] == pytest.approx(mean + half)
    assert (b["kind"], b["low"], b["high"]) == ("bootstrap", 0.45, 0.58)


# --------------------------------------------------------------------------- loading


def test_load_reads_runs_metrics_and_tables(biased: Path) -> None:
    results = load_results(biased)
    assert results.name == "quickstart" and results.dataset == "biased_mnist"
    assert results.methods == ("ce", "supcon", "contex")
    assert results.conditions == ("rho=0.99", "rho=0.995")
    assert len(results.runs) == 18 and set(results.runs["status"]) == {"complete"}
    assert list(results.runs["seed"][:3]) == [0, 1, 2]
    assert results.missing == ()
    reference = reference_means(biased, "bias_conflicting_accuracy")
    table = results.metrics[results.metrics["metric"] == "bias_conflicting_accuracy"]
    for (method, rho), values in reference.items():
        got = table[(table["method"] == method) & (table["rho"] == rho)]["value"]
        assert sorted(got) == pytest.approx(sorted(values))
    assert len(results.bias_matrices) == 18
    matrix = results.bias_matrices["ce-rho0.99-seed0"]
    assert matrix.shape == (10, 10) and list(matrix.columns) == [str(i) for i in range(10)]
    assert math.isnan(matrix.loc["3", "7"])
    assert set(results.histories.columns) >= {"epoch", "loss", "method"}
    assert len(results.histories) == 18 * 4


def test_load_folds_confidence_intervals(group: Path) -> None:
    results = load_results(group)
    metrics = results.metrics
    assert not metrics["metric"].str.endswith(("_ci_low", "_ci_high")).any()
    saved = json.loads((group / "runs/fscl-gender-race-seed0/metrics.json").read_text())
    row = metrics[
        (metrics["run_id"] == "fscl-gender-race-seed0") & (metrics["metric"] == "equalized_odds_difference")
    ].iloc[0]
    assert row["value"] == pytest.approx(saved["equalized_odds_difference"])
    assert row["ci_low"] == pytest.approx(saved["equalized_odds_difference_ci_low"])
    assert row["ci_high"] == pytest.approx(saved["equalized_odds_difference_ci_high"])
    rates = results.group_rates
    assert set(rates["metric"]) == {"accuracy", "tpr", "fpr", "selection_rate"}
    assert set(rates["group_name"]) == {"White", "Black", "Asian"}


def test_partial_folder_lists_what_is_missing(tmp_path: Path) -> None:
    root = write_biased_mnist_folder(tmp_path / "out", seeds=(0,), epochs=2, projection_points=50)
    remove(root, "runs/ce-rho0.99-seed0/history.csv", "runs/supcon-rho0.99-seed0/bias_matrix.csv")
    # an interrupted run: its folder has run.json and history, nothing else, and no results rows
    interrupted = root / "runs/contex-rho0.999-seed0"
    interrupted.mkdir()
    (interrupted / "run.json").write_text(
        json.dumps(
            {
                "run_id": interrupted.name,
                "method": "contex",
                "loss": "contex",
                "dataset": "biased_mnist",
                "metric_kind": "bias",
                "rho": 0.999,
                "seed": 0,
                "status": "running",
            }
        )
    )
    (interrupted / "history.csv").write_text("epoch,loss\n1,3.2\n2,2.9\n")
    # a malformed per-run file is reported, not raised
    (root / "runs/ce-rho0.99-seed0/metrics.json").write_text("{not json")
    results = load_results(root)
    found = {(item.path, item.reason.split(" ")[0]) for item in results.missing}
    assert ("runs/ce-rho0.99-seed0/history.csv", "missing") in found
    assert ("runs/supcon-rho0.99-seed0/bias_matrix.csv", "missing") in found
    assert ("runs/contex-rho0.999-seed0/metrics.json", "missing") in found
    assert ("runs/contex-rho0.999-seed0/projection.csv", "missing") in found
    assert ("runs/contex-rho0.999-seed0/bias_matrix.csv", "missing") in found
    assert ("runs/contex-rho0.999-seed0/", "status") in found
    assert any(
        p == "runs/ce-rho0.99-seed0/metrics.json" and "invalid JSON" in reason
        for p, reason in ((i.path, i.reason) for i in results.missing)
    )
    run = results.runs.set_index("run_id").loc["contex-rho0.999-seed0"]
    assert run["status"] == "running" and run["condition"] == "rho=0.999"
    # the run whose metrics.json is broken keeps its fields, has no metrics and is not complete
    broken = results.runs.set_index("run_id").loc["ce-rho0.99-seed0"]
    assert broken["status"] == "incomplete" and broken["method"] == "ce"
    assert (results.metrics["run_id"] == "ce-rho0.99-seed0").sum() == 0
    page = render_report(results)
    assert "Missing or partial results" in page
    assert "runs/contex-rho0.999-seed0/metrics.json" in page


def test_the_run_folders_are_the_one_source(tmp_path: Path) -> None:
    """results.csv and results.json are derived: the report neither needs nor reads them."""
    root = write_biased_mnist_folder(tmp_path / "out", epochs=2, projection_points=50)
    expected = load_results(root).metrics
    csv = pd.read_csv(root / "results.csv")
    csv["value"] = 0.5
    csv.to_csv(root / "results.csv", index=False)
    (root / "results.json").write_text('{"runs": []}')
    assert_frame_equal(load_results(root).metrics, expected)
    remove(root, "results.csv", "results.json")
    results = load_results(root)
    assert results.missing == () and len(results.runs) == 3
    saved = json.loads((root / "runs/contex-rho0.99-seed0/metrics.json").read_text())
    got = results.metrics[results.metrics["run_id"] == "contex-rho0.99-seed0"]
    assert dict(zip(got["metric"], got["value"], strict=True)) == pytest.approx(saved)


def test_grid_runs_without_a_folder_are_missing(tmp_path: Path) -> None:
    root = write_biased_mnist_folder(tmp_path / "out", methods=("ce",), epochs=2, projection_points=20)
    (root / "grid.json").write_text(json.dumps({"runs": ["ce-rho0.99-seed0", "ce-rho0.99-seed1"]}))
    missing = load_results(root).missing
    assert [(item.path, item.reason, item.run_id) for item in missing] == [
        ("runs/ce-rho0.99-seed1/", "missing", "ce-rho0.99-seed1")
    ]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"status": "done"}, r"run\.json: status is 'done', expected running or complete or failed or incomplete"),
        ({"seed": "zero"}, r"run\.json: seed is 'zero', expected an integer or null"),
        ({"run_id": "other"}, r"run\.json: run_id is 'other', expected 'ce-rho0\.99-seed0', the name of its folder"),
        ({"method": None}, r"run\.json: method is None, expected a string"),
    ],
)
def test_a_malformed_run_record_is_listed_with_its_file_and_field(
    tmp_path: Path, record: dict[str, Any], message: str
) -> None:
    root = write_biased_mnist_folder(tmp_path / "out", methods=("ce",), epochs=2, projection_points=20)
    path = root / "runs/ce-rho0.99-seed0/run.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **record}))
    results = load_results(root)
    (item,) = [item for item in results.missing if item.path == "runs/ce-rho0.99-seed0/run.json"]
    assert re.search(message, item.reason) and "\n" not in item.reason
    assert results.runs["status"].tolist() == ["incomplete"] and results.metrics.empty


def test_projection_is_subsampled(tmp_path: Path) -> None:
    root = write_biased_mnist_folder(tmp_path / "out", methods=("ce",), epochs=2, projection_points=2500)
    original = pd.read_csv(root / "runs/ce-rho0.99-seed0/projection.csv")
    points = load_results(root).projections
    assert len(points) == MAX_PROJECTION_POINTS
    kept = set(zip(original["x"].round(6), original["y"].round(6), strict=True))
    assert set(zip(points["x"].round(6), points["y"].round(6), strict=True)) <= kept


def test_list_attributes_are_joined(tmp_path: Path) -> None:
    root = write_group_folder(tmp_path / "out", methods=("fscl",), epochs=2, projection_points=20)
    path = root / "runs/fscl-gender-race-seed0/run.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "sensitive": ["race", "age"]}))
    (root / "results.json").unlink()
    (root / "results.csv").unlink()
    assert load_results(root).runs["sensitive"].tolist() == ["race+age"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda r: (r / "manifest.json").write_text("[1, 2"),
            r"manifest\.json cannot be read: invalid JSON",
        ),
        (
            lambda r: (r / "comparisons.csv").write_text("method,baseline\nce,supcon\n"),
            r"comparisons\.csv lacks column\(s\) condition",
        ),
        (
            lambda r: (r / "protocol.yaml").write_text("- a\n- b\n"),
            r"protocol\.yaml: the top level",
        ),
    ],
)
def test_malformed_top_level_files_raise(tmp_path: Path, damage: Any, message: str) -> None:
    root = write_biased_mnist_folder(tmp_path / "out", methods=("ce",), epochs=2, projection_points=20)
    damage(root)
    with pytest.raises(DataError, match=message) as caught:
        load_results(root)
    assert "\n" not in str(caught.value) and isinstance(caught.value, CecoFairError)


def test_missing_or_empty_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"results folder not found: .*nowhere"):
        load_results(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no results in .*empty: expected runs/<run_id>/ folders"):
        load_results(tmp_path / "empty")


# --------------------------------------------------------------------------- figures


def test_bias_accuracy_by_rho_values(biased: Path) -> None:
    results = load_results(biased)
    fig = F.bias_accuracy_by_rho(results)
    assert fig is not None and len(fig.data) == 6
    for metric in ("bias_aligned_accuracy", "bias_conflicting_accuracy"):
        reference = reference_means(biased, metric)
        for method in results.methods:
            trace = next(t for t in fig.data if t.name == f"{method} · {METRIC_SPECS[metric].label}")
            assert list(trace.x) == ["0.99", "0.995"]
            for i, rho in enumerate((0.99, 0.995)):
                mean, half = t_interval(reference[(method, rho)])
                assert trace.y[i] == pytest.approx(100 * mean, abs=0.006)
                assert trace.error_y.array[i] == pytest.approx(100 * half, abs=0.006)
                assert trace.error_y.arrayminus[i] == pytest.approx(100 * half, abs=0.006)


def test_mean_matrix_ignores_empty_cells() -> None:
    a = pd.DataFrame([[0.5, np.nan], [1.0, 0.0]], index=["0", "1"], columns=["0", "1"])
    b = pd.DataFrame([[0.7, np.nan], [0.0, 0.2]], index=["0", "1"], columns=["0", "1"])
    c = pd.DataFrame([[np.nan]], index=["0"], columns=["2"])
    mean = F.mean_matrix([a, b, c])
    assert list(mean.columns) == ["0", "1", "2"]
    expected = [[0.6, np.nan, np.nan], [0.5, 0.1, np.nan]]
    np.testing.assert_allclose(mean.to_numpy(), expected, atol=1e-12)


def test_bias_heatmaps_average_seeds_and_switch(biased: Path) -> None:
    results = load_results(biased)
    fig = F.bias_heatmaps(results)
    assert fig is not None and len(fig.data) == 6
    buttons = fig.layout.updatemenus[0].buttons
    assert len(buttons) == 6
    for index, button in enumerate(buttons):
        visible = button.args[0]["visible"]
        assert [i for i, v in enumerate(visible) if v] == [index]
    assert buttons[4].label == "contex · rho=0.99 (3 seeds)"
    trace = fig.data[4]
    for digit in range(10):
        for colour in range(10):
            cells = []
            for seed in range(3):
                frame = pd.read_csv(biased / f"runs/contex-rho0.99-seed{seed}/bias_matrix.csv", index_col=0)
                value = float(frame.iloc[digit, colour])
                if not math.isnan(value):
                    cells.append(value)
            got = trace.z[digit][colour]
            if cells:
                assert got == pytest.approx(100 * sum(cells) / len(cells), abs=0.006)
            else:
                assert got is None


def test_forest_plot_shows_comparisons_csv(biased: Path, tmp_path: Path) -> None:
    import shutil

    from ceco_fair.report.figures_distortion import comparisons_figure
    from ceco_fair.results.comparisons import write_comparisons

    folder = tmp_path / "with-comparisons"
    shutil.copytree(biased, folder)
    records = json.loads((folder / "results.json").read_text(encoding="utf-8"))["runs"]
    table = write_comparisons(folder, records, kind="bias", baseline=None, confidence=0.95)
    assert set(table["baseline"]) == {"supcon"} and "supcon" not in set(table["method"])
    fig = comparisons_figure(load_results(folder))
    assert fig is not None
    first = table[table["metric"] == table["metric"].iloc[0]]
    first_panel = [trace for trace in fig.data if trace.xaxis in ("x", None)]
    plotted = {(trace.name, y): x for trace in first_panel for x, y in zip(trace.x, trace.y, strict=True)}
    for _, row in first.iterrows():
        assert plotted[(row["condition"], row["method"])] == pytest.approx(row["mean_difference"], rel=1e-3)
    assert comparisons_figure(load_results(biased)) is None


def test_group_figures_values(group: Path) -> None:
    results = load_results(group)
    fig = F.group_rates(results)
    assert fig is not None
    table = pd.read_csv(group / "runs/contex-gender-race-seed0/group_table.csv")
    # conditions are sorted: "gender-vs-age" first, then race
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == [
        "gender-vs-age",
        "gender-vs-race",
    ]
    traces = [t for t in fig.data if t.name == "contex" and t.visible is False]
    tpr = next(t for t in traces if t.xaxis == "x2")
    assert list(tpr.x) == list(table["group_name"])
    assert list(tpr.y) == pytest.approx(list(100 * table["tpr"]), abs=0.006)
    assert list(tpr.error_y.array) == pytest.approx(list(100 * (table["tpr_ci_high"] - table["tpr"])), abs=0.011)

    scatter = F.fairness_accuracy_scatter(results)
    assert scatter is not None
    saved = json.loads((group / "runs/fscl-gender-age-seed0/metrics.json").read_text())
    point = next(t for t in scatter.data if t.name == "fscl" and t.visible is True)
    assert point.x[0] == pytest.approx(100 * saved["equalized_odds_difference"], abs=0.006)
    assert point.y[0] == pytest.approx(100 * saved["accuracy"], abs=0.006)
    assert point.error_x.arrayminus[0] == pytest.approx(
        100 * (saved["equalized_odds_difference"] - saved["equalized_odds_difference_ci_low"]),
        abs=0.011,
    )

    gaps = F.fairness_gaps(results)
    assert gaps is not None
    shown = {t.name: t.visible for t in gaps.data[:4]}
    assert shown == {
        "equalized-odds difference": True,
        "demographic-parity difference": True,
        "equal-opportunity difference": "legendonly",
        "EO (FSCL definition)": "legendonly",
    }
    dp = next(t for t in gaps.data[:4] if t.name == "demographic-parity difference")
    assert list(dp.x) == ["supcon", "fscl", "contex"]
    first = json.loads((group / "runs/supcon-gender-age-seed0/metrics.json").read_text())
    assert dp.y[0] == pytest.approx(100 * first["demographic_parity_difference"], abs=0.006)
    # hidden legend entries stay hidden, other conditions' traces are off, after switching
    second = gaps.layout.updatemenus[0].buttons[1].args[0]["visible"]
    assert second[:4] == [False] * 4 and second[4:8] == [True, True, "legendonly", "legendonly"]


def test_figures_are_absent_without_their_data(biased: Path, group: Path) -> None:
    bias, fairness = load_results(biased), load_results(group)
    for make in (F.group_rates, F.fairness_accuracy_scatter, F.fairness_gaps):
        assert make(bias) is None
    for make in (F.bias_accuracy_by_rho, F.bias_heatmaps):
        assert make(fairness) is None


def test_training_curves_values(biased: Path) -> None:
    results = load_results(biased)
    fig = F.training_curves(results)
    assert fig is not None
    history = pd.read_csv(biased / "runs/supcon-rho0.995-seed1/history.csv")
    # per condition: 3 methods × 3 seeds, one loss curve each
    assert len(fig.data) == 2 * 9
    run_traces = [t for t in fig.data if "seed 1" in t.hovertemplate and t.name == "supcon"]
    loss = next(t for t in run_traces if t.visible is False)
    assert list(loss.x) == list(history["epoch"])
    np.testing.assert_allclose(loss.y, history["loss"], rtol=1e-3)


def test_projection_shows_lowest_seed_per_method_and_condition(biased: Path) -> None:
    results = load_results(biased)
    fig = F.projections(results)
    assert fig is not None
    labels = [b.label for b in fig.layout.updatemenus[0].buttons]
    assert labels[0] == "ce · rho=0.99, seed 0" and len(labels) == 6
    source = pd.read_csv(biased / "runs/ce-rho0.99-seed0/projection.csv")
    visible = [t for t in fig.data if t.visible is True]
    left = [t for t in visible if t.xaxis == "x"]
    right = [t for t in visible if t.xaxis == "x2"]
    assert sum(len(t.x) for t in left) == sum(len(t.x) for t in right) == len(source)
    for trace in left:
        expected = source[source["target"] == int(trace.name)]
        np.testing.assert_allclose(sorted(trace.x), sorted(expected["x"]), atol=0.06)
    assert [t.name for t in right] == [str(i) for i in range(10)]
    assert right[3].marker.color == BIAS_GROUP_COLOURS[3]


# --------------------------------------------------------------------------- the page


def figure_specs(page: str) -> list[dict[str, Any]]:
    """The JSON of every embedded figure."""
    return [json.loads(m) for m in re.findall(r"var f = (\{.*?\}); Plotly\.newPlot", page)]


def markup_without_plotlyjs(page: str) -> str:
    bundle = get_plotlyjs()
    assert page.count(bundle) == 1, "plotly.js must be embedded exactly once"
    return page.replace(bundle, "")


class CellParser(HTMLParser):
    """Rows of the summary table as (text, is_best) cells."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[tuple[str, bool]]] = []
        self.cell: list[str] | None = None
        self.best = False
        self.inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and ("class", "summary") in attrs:
            self.inside = True
        if self.inside and tag == "tr":
            self.rows.append([])
        if self.inside and tag in ("td", "th"):
            self.cell, self.best = [], ("class", "best") in attrs

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.inside = False
        if self.inside and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(("".join(self.cell), self.best))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def test_report_is_self_contained(biased: Path) -> None:
    path = build_report(biased)
    assert path == biased / "report.html"
    assert not [p for p in biased.iterdir() if p.name.endswith(".tmp")]
    page = path.read_text(encoding="utf-8")
    markup = markup_without_plotlyjs(page)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", markup, re.I)
    assert not re.search(r"<script[^>]*\bsrc\s*=", markup, re.I)
    assert not re.search(r"<link\b", markup, re.I)
    assert "mathjax" not in markup.replace("MathJaxConfig: 'local'", "").lower()
    assert "http" not in markup
    specs = figure_specs(page)
    assert len(specs) == 4 == page.count('class="plotly-graph-div figure"')
    assert page.count('"displaylogo": false') == 4
    assert [
        f'id="{anchor}"' in page for anchor in ("summary", "bias", "training", "projection", "fairness", "missing")
    ] == [True, True, True, True, False, False]
    expected = F.bias_heatmaps(load_results(biased))
    assert expected is not None
    assert len(specs[1]["data"]) == len(expected.data)
    assert specs[1]["data"][0]["z"][0][0] == expected.data[0].z[0][0]


def test_group_report_sections(group: Path) -> None:
    page = render_report(load_results(group))
    assert len(figure_specs(page)) == 5
    assert 'id="fairness"' in page and 'id="bias"' not in page


def test_summary_table_highlights_the_best(group: Path) -> None:
    results = load_results(group)
    parser = CellParser()
    parser.feed(render_report(results))
    header = [text for text, _ in parser.rows[0]]
    assert header[0] == "method" and header[-2:] == ["seeds", "interval"]
    eo_column = next(i for i, h in enumerate(header) if h.startswith("equalized-odds"))
    acc_column = header.index("accuracy (%) ↑")
    blocks: dict[str, list[list[tuple[str, bool]]]] = {}
    current = ""
    for row in parser.rows[1:]:
        if len(row) == 1:
            current = row[0][0]
            continue
        blocks.setdefault(current, []).append(row)
    assert list(blocks) == ["gender-vs-age", "gender-vs-race"]
    for condition, rows in blocks.items():
        target, sensitive = condition.split("-vs-")
        saved = {
            m: json.loads((group / f"runs/{m}-{target}-{sensitive}-seed0/metrics.json").read_text())
            for m in ("supcon", "fscl", "contex")
        }
        for column, metric, pick in (
            (eo_column, "equalized_odds_difference", min),
            (acc_column, "accuracy", max),
        ):
            shown = {row[0][0]: round(100 * saved[row[0][0]][metric], 1) for row in rows}
            best = pick(shown.values())
            for row in rows:
                text, is_best = row[column]
                low = round(100 * saved[row[0][0]][f"{metric}_ci_low"], 1)
                high = round(100 * saved[row[0][0]][f"{metric}_ci_high"], 1)
                assert text == f"{shown[row[0][0]]:.1f}[{low:.1f}–{high:.1f}]"
                assert is_best == (shown[row[0][0]] == best)
        assert all(row[-1][0] == "95% bootstrap, 1 run" for row in rows)


def test_format_interval_kinds() -> None:
    row = pd.Series({"mean": 0.5, "low": 0.4, "high": 0.6, "kind": "t"})
    percent = METRIC_SPECS["accuracy"]
    assert format_interval(row, percent) == ("50.0", "± 10.0")
    assert format_interval(row.replace("t", "bootstrap"), percent) == ("50.0", "[40.0–60.0]")
    assert format_interval(row.replace("t", "single"), percent) == ("50.0", "")
    assert format_interval(row, METRIC_SPECS["variance_ratio"]) == ("0.500", "± 0.100")
    assert format_interval(pd.Series({"mean": math.nan, "low": 0, "high": 0, "kind": "none"}), percent) == (
        "—",
        "",
    )


def test_script_json_cannot_close_the_script() -> None:
    raw = json.dumps({"name": "</script><script>alert(1)</script><!--", "x": "a & b\u2028"})
    safe = script_json(raw)
    assert "<" not in safe and ">" not in safe and "\u2028" not in safe
    assert json.loads(safe) == json.loads(raw)


def test_user_strings_are_escaped(tmp_path: Path) -> None:
    root = write_group_folder(
        tmp_path / "out",
        methods=(XSS, "fscl"),
        pairs=((XSS, "race"),),
        groups=(XSS, "B"),
        epochs=2,
        projection_points=30,
        name=XSS,
    )
    manifest = json.loads((root / "manifest.json").read_text())
    (root / "manifest.json").write_text(json.dumps({**manifest, "hostname": XSS}))
    page = build_report(root).read_text(encoding="utf-8")
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    markup = markup_without_plotlyjs(page)
    for spec in re.findall(r"var f = (\{.*?\}); Plotly\.newPlot", markup):
        assert "</" not in spec and "<" not in spec
    specs = figure_specs(page)
    names = {trace.get("name") for spec in specs for trace in spec["data"]}
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in names


def test_quickstart_size_and_speed(tmp_path: Path) -> None:
    root = write_biased_mnist_folder(tmp_path / "quickstart", epochs=10, projection_points=2000)
    started = time.perf_counter()
    path = build_report(root)
    seconds = time.perf_counter() - started
    size = path.stat().st_size
    print(f"quickstart report: {size / 1e6:.2f} MB in {seconds:.2f} s")
    assert size <= 8_000_000
    assert seconds <= 10.0


def test_failed_render_leaves_the_old_report(biased: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    target = tmp_path / "kept.html"
    target.write_text("old report")

    def broken(results: Any) -> str:
        raise RuntimeError("render failed")

    monkeypatch.setattr("ceco_fair.report.html.render_report", broken)
    with pytest.raises(RuntimeError):
        build_report(biased, output=target)
    assert target.read_text() == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["kept.html"]


def test_audit_folder_report(tmp_path: Path) -> None:
    root = write_audit_folder(tmp_path / "audit")
    results = load_results(root)
    assert results.missing == ()
    page = render_report(results)
    assert 'id="training"' not in page and 'id="missing"' not in page
    assert len(figure_specs(page)) == 4


# --------------------------------------------------------------------------- command line


def test_cli_writes_the_report(biased: Path, tmp_path: Path) -> None:
    output = tmp_path / "elsewhere.html"
    assert main([str(biased), "--output", str(output)]) == 0
    assert output.stat().st_size > 4_000_000


def test_cli_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([str(tmp_path / "absent")])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "results folder not found" in err and "absent" in err


def test_module_entry_point_missing_folder(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "ceco_fair.report", str(tmp_path / "absent")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "results folder not found" in done.stderr


def test_group_fairness_report_has_no_bias_section(tmp_path: Path) -> None:
    """ColoredMNIST has ρ but no bias metrics: the bias section (and ConTeX's gain in it) stays out."""
    folder = tmp_path / "colored"
    for m, a, e in (("supcon", 0.84, 0.32), ("contex", 0.88, 0.22)):
        record = RunRecord(f"{m}-rho0.9-seed0", m, dataset="colored_mnist", rho=0.9, seed=0)
        record.finish({"accuracy": a, "equalized_odds_difference": e}).write(folder / "runs" / record.run_id)
    (folder / "protocol.yaml").write_text("name: colored\ndata: {dataset: colored_mnist}\n")
    html = (build_report(folder)).read_text(encoding="utf-8")
    assert 'id="bias"' not in html and "gain over SupCon" not in html
    assert 'id="fairness"' in html


@pytest.fixture(scope="module")
def distorted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_biased_mnist_folder(
        tmp_path_factory.mktemp("distortion"), rhos=(0.9,), seeds=(0, 1, 2), epochs=4, diagnostics=True
    )


def test_comparisons_and_tables_name_conditions_alike(distorted: Path) -> None:
    """One page, one label: the forest plot's conditions (comparisons.csv) are the tables' conditions."""
    results = load_results(distorted)
    assert results.conditions == ("rho=0.9",)
    assert set(results.comparisons["condition"]) == set(results.conditions)


def test_distortion_figures_show_the_seed_means(distorted: Path) -> None:
    from ceco_fair.report import figures_distortion as D

    results = load_results(distorted)
    fig = D.diagnostics_figure(results)
    assert fig is not None
    names = D.representation_metrics(results.metrics)
    assert len(names) == 9 and names[0] == "instance_retrieval"
    for index, name in enumerate(names):
        trace = fig.data[index]
        for method, shown in zip(trace.x, trace.y, strict=True):
            values = [
                json.loads((distorted / f"runs/{method}-rho0.9-seed{s}/metrics.json").read_text())[name]
                for s in (0, 1, 2)
            ]
            assert shown == pytest.approx(np.mean(values), rel=1e-3)
    scatter = D.scatter_figure(results)
    assert scatter is not None and sum(len(t.x) for t in scatter.data) == 9
    curves = D.curves_figure(results)
    assert curves is not None and {t.name for t in curves.data} == {"ce", "supcon", "contex"}
    strips = D.strips_figure(results)
    assert strips is not None and len(strips.data) == 3 * 10
    assert all(trace.type == "image" for trace in strips.data)
    assert D.comparisons_figure(results) is not None
    page = render_report(results)
    assert 'id="distortion"' in page and 'id="comparisons"' in page


def test_distortion_figures_are_absent_without_diagnostics(biased: Path, group: Path) -> None:
    from ceco_fair.report import figures_distortion as D

    for folder in (biased, group):
        results = load_results(folder)
        for make in (D.diagnostics_figure, D.scatter_figure, D.curves_figure, D.strips_figure):
            assert make(results) is None


def test_a_spread_whose_interval_reaches_zero_says_no_evidence(group: Path) -> None:
    from ceco_fair.report.html import NO_EVIDENCE, reaches_zero

    at_zero = pd.Series({"mean": 0.02, "low": 0.0, "high": 0.05, "kind": "bootstrap"})
    apart = pd.Series({"mean": 0.08, "low": 0.03, "high": 0.12, "kind": "bootstrap"})
    assert reaches_zero("equalized_odds_difference", at_zero)
    assert not reaches_zero("equalized_odds_difference", apart)
    assert not reaches_zero("accuracy", at_zero)
    assert not reaches_zero(
        "demographic_parity_difference", pd.Series({"mean": 0.0, "low": 0.0, "high": 0.0, "kind": "single"})
    )
    results = load_results(group)
    metrics = results.metrics.copy()
    spread = metrics["metric"] == "equalized_odds_difference"
    metrics.loc[spread, "ci_low"] = 0.0
    page = render_report(dataclasses.replace(results, metrics=metrics))
    marker = f'<span class="no-evidence">{NO_EVIDENCE}</span>'
    assert marker in page
    assert marker not in render_report(
        dataclasses.replace(
            results, metrics=metrics[metrics["metric"] != "equalized_odds_difference"].assign(ci_low=0.01)
        )
    )


def test_a_comparisons_csv_from_before_the_selection_column_reads_as_fixed(tmp_path: Path) -> None:
    from ceco_fair.report.readers import read_comparisons

    path = tmp_path / "comparisons.csv"
    path.write_text(
        "method,baseline,condition,metric,n_seeds,mean_difference,ci_low,ci_high\nce,supcon,all,accuracy,2,0.1,0,0.2\n"
    )
    table = read_comparisons(path)
    assert list(table.columns)[:3] == ["selection", "finals", "method"] and table["selection"].tolist() == ["fixed"]
    assert table["finals"].tolist() == ["fixed"]
    assert table["mean_difference"].tolist() == [0.1]
