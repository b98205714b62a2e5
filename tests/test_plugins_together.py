"""A method, a read-out and a group metric, each registered from a test module with no edit inside ceco_fair/.

One protocol uses all three; results.csv, comparisons.csv, the summary tables and the report carry them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from test_pipeline import CLASS_BALANCED, ClassBalancedReadout
from test_plugin_group_metric import LABEL, NAME, SPEC, accuracy_ratio
from tiny_protocol import tiny_protocol_dict
from user_method import GroupWeightedSupCon

from ceco_fair import register_method, register_readout
from ceco_fair.evaluation.readouts import unregister_readout
from ceco_fair.metrics import register_group_metric, unregister_group_metric
from ceco_fair.results.layout import COMPARISONS_FILE, REPORT_FILE, RESULTS_CSV
from ceco_fair.run import main
from ceco_fair.summary import summary_markdown
from ceco_fair.training.methods import METHODS

METHOD = GroupWeightedSupCon.name


@pytest.fixture
def three_plugins() -> Iterator[None]:
    register_method(GroupWeightedSupCon)
    register_readout(ClassBalancedReadout())
    register_group_metric(SPEC, accuracy_ratio)
    try:
        yield
    finally:
        METHODS.pop(METHOD, None)
        unregister_readout(CLASS_BALANCED)
        unregister_group_metric(NAME)


def test_a_protocol_uses_a_registered_method_readout_and_metric_everywhere(
    three_plugins: None, write_protocol: Callable[..., Path], tmp_path: Path
) -> None:
    protocol = {
        **tiny_protocol_dict(
            methods=[{"name": "supcon"}, {"name": METHOD}],
            train={"epochs": 1, "batch_size": 64, "max_batches_per_epoch": 2},
            eval={"n_boot": 20, "projection_points": 60, "baseline": "supcon"},
            seeds=[0, 1],
            report=True,
        ),
        "data": {"dataset": "user_datasets:Squares", "n": 160},
    }
    output = tmp_path / "out"
    assert main([str(write_protocol(protocol)), "--output", str(output), "--quiet"]) == 0
    table = pd.read_csv(output / RESULTS_CSV)
    mine = table[(table["method"] == METHOD) & (table["readout"] == CLASS_BALANCED)]
    assert NAME in set(mine["metric"]) and set(mine["seed"]) == {0, 1}  # all three in one row set
    comparisons = pd.read_csv(output / COMPARISONS_FILE)
    assert ((comparisons["method"] == METHOD) & (comparisons["readout"] == CLASS_BALANCED)).any()
    summary = summary_markdown(output, [NAME], readout="all")
    assert f"| {LABEL} (%) |" in summary and f"{METHOD} · {CLASS_BALANCED}" in summary
    page = (output / REPORT_FILE).read_text(encoding="utf-8")
    assert METHOD in page and CLASS_BALANCED in page and LABEL in page
