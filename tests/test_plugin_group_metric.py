"""A group metric registered from outside the package reaches results.csv, the summary and the report.

The metric is written here as a user would (a spec and a function of the per-group confusion counts),
with no edit inside ``ceco_fair/``; a tiny protocol on a group-kind user dataset then runs end to end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from tiny_protocol import tiny_protocol_dict

from ceco_fair.metrics import group_metrics, register_group_metric, unregister_group_metric
from ceco_fair.metrics.specs import METRIC_SPECS, MetricSpec
from ceco_fair.results.layout import REPORT_FILE, RESULTS_CSV
from ceco_fair.run import main
from ceco_fair.summary import summary_markdown

NAME = "accuracy_ratio"
LABEL = "group accuracy ratio"


def accuracy_ratio(counts: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Lowest over highest per-group accuracy: counts ``[..., G, C, C] -> [...]`` (1 when groups agree)."""
    correct = np.diagonal(counts, axis1=-2, axis2=-1).sum(axis=-1)
    accuracy = correct / np.maximum(counts.sum(axis=(-2, -1)), 1)
    return np.asarray(accuracy.min(axis=-1) / np.maximum(accuracy.max(axis=-1), 1e-12))


SPEC = MetricSpec(NAME, LABEL, "group", "higher", runs=("group",), interval="percentile")


@pytest.fixture
def registered() -> Iterator[None]:
    register_group_metric(SPEC, accuracy_ratio)
    try:
        yield
    finally:
        unregister_group_metric(NAME)
    assert NAME not in METRIC_SPECS


def test_the_metric_is_computed_by_group_metrics(registered: None) -> None:
    result = group_metrics([1, 1, 0, 0, 1, 1, 0, 0], [1, 1, 0, 0, 1, 0, 1, 0], list("aaaabbbb"), n_boot=50)
    assert result[NAME] == pytest.approx(0.5)
    assert result[f"{NAME}_ci_low"] <= result[NAME] <= result[f"{NAME}_ci_high"]


def test_a_registered_group_metric_reaches_results_summary_and_report(
    registered: None, write_protocol: Callable[..., Path], tmp_path: Path
) -> None:
    protocol = {
        **tiny_protocol_dict(
            methods=[{"name": "ce"}],
            train={"epochs": 1, "batch_size": 64, "max_batches_per_epoch": 2},
            eval={"n_boot": 20, "projection_points": 60},
            report=True,
        ),
        "data": {"dataset": "user_datasets:Squares", "n": 160},
    }
    output = tmp_path / "out"
    assert main([str(write_protocol(protocol)), "--output", str(output), "--quiet"]) == 0
    table = pd.read_csv(output / RESULTS_CSV)
    rows = table[table["metric"] == NAME]
    assert set(rows["readout"]) == set(table["readout"])  # every read-out measures it
    assert rows["value"].between(0, 1).all() and rows["value"].notna().all()
    assert {f"{NAME}_ci_low", f"{NAME}_ci_high"} <= set(table["metric"])
    order = list(dict.fromkeys(table["metric"]))
    assert order.index(NAME) > order.index("eo_fscl")  # after the built-in group metrics, in spec order
    markdown = summary_markdown(output)
    assert f"| {LABEL} (%) |" in markdown
    page = (output / REPORT_FILE).read_text(encoding="utf-8")
    summary = page[page.index('class="summary"') :]
    assert LABEL in summary[: summary.index("</table>")]
