"""Metric specs and the results layout: one description per metric, one name per file."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

import ceco_fair
from ceco_fair.metrics import METRIC_NAMES, METRIC_SPECS, RATE_METRIC_NAMES
from ceco_fair.metrics.intervals import SPREAD_NAMES, interval_names
from ceco_fair.metrics.specs import (
    BIAS_METRICS,
    CURVE_METRICS,
    GROUP_METRICS,
    MetricSpec,
    ci_high_name,
    ci_low_name,
    format_value,
    headline_metrics,
    label,
    lower_is_better,
    p_value_name,
    register_spec,
    shown_value,
    spec_of,
    split_derived,
    unit_suffix,
    unregister_spec,
    with_role,
)
from ceco_fair.results import layout

PACKAGE = Path(ceco_fair.__file__).parent

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


def test_each_metric_name_is_spelled_only_in_the_metrics_package() -> None:
    spelled: dict[str, list[str]] = {}
    sources = {
        str(path.relative_to(PACKAGE)): path.read_text(encoding="utf-8")
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] != "metrics"
    }
    for name in METRIC_SPECS:
        literal = re.compile(rf"[\"']{re.escape(name)}[\"']")
        found = sorted(path for path, text in sources.items() if literal.search(text))
        if found:
            spelled[name] = found
    assert spelled == {}


def test_the_guard_sees_a_literal() -> None:
    literal = re.compile(rf"[\"']{re.escape('worst_group_accuracy')}[\"']")
    assert literal.search('metrics["worst_group_accuracy"]') and not literal.search("``worst_group_accuracy``")


def test_lists_of_metrics_are_derived_from_the_specs() -> None:
    assert BIAS_METRICS == ("unbiased_accuracy", "bias_conflicting_accuracy", "bias_aligned_accuracy", "accuracy")
    assert (
        METRIC_NAMES
        == GROUP_METRICS
        == tuple(n for n, s in METRIC_SPECS.items() if s.kind in ("bias", "group") and "group" in s.runs)
    )
    assert SPREAD_NAMES == tuple(n for n, s in METRIC_SPECS.items() if s.interval in ("spread", "mean_gap"))
    assert interval_names(rates=False) == ("worst_group_accuracy", "eo_fscl")
    assert headline_metrics("bias") == (
        "unbiased_accuracy",
        "bias_conflicting_accuracy",
        "instance_retrieval_within_cell",
        "bias_sensitivity",
    )
    assert set(headline_metrics("group")) == {
        "accuracy",
        "worst_group_accuracy",
        "equalized_odds_difference",
        "demographic_parity_difference",
        "leakage_within_class",
    }
    assert with_role("group_selection") == ("unbiased_accuracy", "worst_group_accuracy")
    assert layout.CURVES_COLUMNS == ("epoch", *CURVE_METRICS)
    assert CURVE_METRICS[:3] == ("knn_accuracy", "knn_bias_conflicting_accuracy", "knn_worst_group_accuracy")
    assert all(METRIC_SPECS[METRIC_SPECS[n].of or n].kind != "curve" for n in CURVE_METRICS)


def test_a_new_spec_line_reaches_the_derived_lists() -> None:
    spec = MetricSpec("made_up_gap", "made-up gap", "group", "lower", runs=("group",), headline=("group",))
    register_spec(spec)
    try:
        assert "made_up_gap" in headline_metrics("group") and spec_of("made_up_gap_ci_low") is spec
        with pytest.raises(ValueError, match="already"):
            register_spec(spec)
    finally:
        unregister_spec("made_up_gap")
    assert "made_up_gap" not in METRIC_SPECS and "made_up_gap" not in headline_metrics("group")
    unregister_spec("accuracy")  # a built-in spec stays
    assert "accuracy" in METRIC_SPECS


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("accuracy", 0.37649, "37.6"),
        ("equalized_odds_difference", 0.1234, "12.3"),
        ("variance_ratio", 0.41249, "0.412"),
        ("uniformity", -3.21, "-3.210"),
        ("made_up", 0.5, "0.500"),
        ("accuracy", math.nan, ""),
    ],
)
def test_one_format_for_every_value(name: str, value: float, text: str) -> None:
    spec = spec_of(name)
    assert format_value(value, spec) == text
    shown = shown_value(value, spec)
    assert (math.isnan(shown) and text == "") or shown == float(text)
    assert unit_suffix(spec) == (" (%)" if spec is not None and spec.unit == "percent" else "")
