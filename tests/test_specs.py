"""Metric specs and the results layout: one description per metric, one name per file."""

from __future__ import annotations

import pytest

from ceco_fair.metrics import METRIC_NAMES, METRIC_SPECS, RATE_METRIC_NAMES
from ceco_fair.metrics.specs import (
    BIAS_METRICS,
    GROUP_METRICS,
    ci_high_name,
    ci_low_name,
    label,
    lower_is_better,
    p_value_name,
    spec_of,
    split_derived,
)
from ceco_fair.results import layout

REPRESENTATION_DIRECTIONS = {
    "instance_retrieval": "higher",
    "instance_retrieval_within_cell": "higher",
    "alignment": "lower",
    "uniformity": "lower",
    "variance_ratio": "higher",
    "leakage": "lower",
    "leakage_within_class": "lower",
    "bias_sensitivity": "lower",
    "counterfactual_flip_rate": "lower",
}


def test_every_group_and_bias_metric_has_a_spec_of_its_kind() -> None:
    for name in METRIC_NAMES:
        assert METRIC_SPECS[name].kind == "group" or name == "accuracy"
    assert set(GROUP_METRICS) == set(METRIC_NAMES)
    for name in BIAS_METRICS:
        assert name in METRIC_SPECS
    assert {name for name in METRIC_NAMES if METRIC_SPECS[name].binary_only} == set(RATE_METRIC_NAMES)


def test_representation_metrics_are_registered_with_their_direction() -> None:
    for name, direction in REPRESENTATION_DIRECTIONS.items():
        spec = METRIC_SPECS[name]
        assert spec.kind == "representation" and spec.direction == direction
        assert lower_is_better(name) == (direction == "lower")


@pytest.mark.parametrize("name", sorted(METRIC_SPECS))
def test_derived_keys_lead_back_to_their_metric(name: str) -> None:
    for derived, suffix in ((ci_low_name, "_ci_low"), (ci_high_name, "_ci_high"), (p_value_name, "_p_value")):
        assert split_derived(derived(name)) == (name, suffix)
        assert spec_of(derived(name)) is METRIC_SPECS[name]
    assert split_derived(name) == (name, "")


def test_unknown_metrics_have_no_spec_and_keep_their_name() -> None:
    assert spec_of("made_up_ci_low") is None
    assert label("made_up") == "made_up" and not lower_is_better("made_up")
    assert label("eo_fscl") == "EO (FSCL definition)"


def test_layout_names_each_file_once_and_its_run_tables_by_kind() -> None:
    names = [entry.name for entry in layout.FILES]
    assert len(names) == len(set(names))
    assert layout.run_table_file("bias") == layout.BIAS_MATRIX_FILE
    assert layout.run_table_file("group") == layout.GROUP_TABLE_FILE
    assert layout.run_table_file("") is None
    assert layout.STATUS_RUNNING in layout.RUN_STATUSES
    assert layout.RESULTS_COLUMNS[-2:] == ("metric", "value")
    rows = layout.tidy_rows([{"run_id": "a", "sensitive": ["Male", "Young"], "metrics": {"accuracy": 0.5}}])
    assert rows == [
        {
            **dict.fromkeys(layout.RUN_COLUMNS),
            "run_id": "a",
            "sensitive": "Male+Young",
            "selection": "fixed",
            "metric": "accuracy",
            "value": 0.5,
        }
    ]
