"""Metric specs and the results layout: one description per metric, one name per file."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

import ceco_fair
from ceco_fair.metrics import METRIC_SPECS, group_metrics, metric_names, rate_metric_names
from ceco_fair.metrics.group import GROUP_METRIC_FUNCTIONS, register_group_metric, unregister_group_metric
from ceco_fair.metrics.intervals import interval_names, spread_names
from ceco_fair.metrics.specs import (
    MetricSpec,
    ci_high_name,
    ci_low_name,
    curve_metrics,
    format_value,
    headline_metrics,
    label,
    lower_is_better,
    outcome_metrics,
    p_value_name,
    register_spec,
    shown_value,
    spec_of,
    split_derived,
    summary_metrics,
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


GROUP_NAMES = (
    "accuracy",
    "worst_group_accuracy",
    "demographic_parity_difference",
    "equalized_odds_difference",
    "equal_opportunity_difference",
    "eo_fscl",
    "equalized_odds_sum",
    "average_odds_difference",
    "adjusted_accuracy",
)
"""What a group run computes from its confusion counts, written out here (not derived) so that a spec that
loses its place fails."""
SCORE_NAMES = (
    "auroc",
    "worst_group_auroc",
    "auroc_gap",
    "ece",
    "ece_gap",
    "score_gap",
    "score_gap_eo",
    "abcc",
)
"""What a group run computes from a read-out's class probabilities."""
RATE_NAMES = (
    "demographic_parity_difference",
    "equalized_odds_difference",
    "equal_opportunity_difference",
    "equalized_odds_sum",
    "average_odds_difference",
)


def test_every_group_metric_has_a_spec_of_its_kind_and_a_function() -> None:
    assert metric_names() == GROUP_NAMES
    assert set(outcome_metrics("group")) == {*GROUP_NAMES, *SCORE_NAMES, "train_weighted_accuracy"}
    assert rate_metric_names() == RATE_NAMES
    assert metric_names(rates=False) == ("accuracy", "worst_group_accuracy", "eo_fscl", "adjusted_accuracy")
    for name in GROUP_NAMES:
        assert METRIC_SPECS[name].kind == "group" and name in GROUP_METRIC_FUNCTIONS
    measured = group_metrics([1, 0, 1, 0, 1, 0], [1, 0, 0, 0, 1, 1], ["a", "a", "a", "b", "b", "b"])
    assert tuple(key for key in measured if not key.endswith("_p_value")) == GROUP_NAMES
    assert outcome_metrics("bias") == (
        "unbiased_accuracy",
        "bias_conflicting_accuracy",
        "bias_aligned_accuracy",
        "accuracy",
    )


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
    assert spread_names() == (
        "demographic_parity_difference",
        "equalized_odds_difference",
        "equal_opportunity_difference",
        "eo_fscl",
    )
    assert interval_names(rates=False) == ("worst_group_accuracy", "eo_fscl")
    assert summary_metrics() == (
        "unbiased_accuracy",
        "bias_conflicting_accuracy",
        "bias_aligned_accuracy",
        "accuracy",
        "worst_group_accuracy",
        "demographic_parity_difference",
        "equalized_odds_difference",
        "equal_opportunity_difference",
        "eo_fscl",
        *SCORE_NAMES,
        "equalized_odds_sum",
        "average_odds_difference",
        "adjusted_accuracy",
        "train_weighted_accuracy",
    )
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
        "worst_group_auroc",
        "auroc_gap",
        "abcc",
    }
    assert with_role("group_selection") == ("unbiased_accuracy", "worst_group_accuracy")
    assert layout.curves_columns() == ("epoch", *curve_metrics())
    assert curve_metrics() == (
        "knn_accuracy",
        "knn_bias_conflicting_accuracy",
        "knn_worst_group_accuracy",
        "balanced_knn_accuracy",
        "balanced_knn_bias_conflicting_accuracy",
        "balanced_knn_worst_group_accuracy",
        "instance_retrieval_within_cell",
        "variance_ratio",
    )
    assert all(METRIC_SPECS[METRIC_SPECS[n].of or n].kind != "curve" for n in curve_metrics())


def test_a_new_spec_line_reaches_the_derived_lists() -> None:
    spec = MetricSpec("made_up_gap", "made-up gap", "group", "lower", runs=("group",), headline=("group",))
    register_spec(spec)
    try:
        assert "made_up_gap" in headline_metrics("group") and spec_of("made_up_gap_ci_low") is spec
        assert summary_metrics()[-1] == "made_up_gap" and outcome_metrics("group")[-1] == "made_up_gap"
        assert "made_up_gap" not in metric_names()  # a spec without a function is not computed
        with pytest.raises(ValueError, match="already"):
            register_spec(spec)
    finally:
        unregister_spec("made_up_gap")
    assert "made_up_gap" not in METRIC_SPECS and "made_up_gap" not in headline_metrics("group")
    unregister_spec("accuracy")  # a built-in spec stays
    assert "accuracy" in METRIC_SPECS


def test_a_curve_spec_reaches_curves_csv_columns() -> None:
    register_spec(MetricSpec("made_up_curve", "made-up curve", "representation", "higher", curve=True))
    try:
        assert curve_metrics()[-1] == "made_up_curve" and layout.curves_columns()[-1] == "made_up_curve"
    finally:
        unregister_spec("made_up_curve")
    assert "made_up_curve" not in curve_metrics()


def _positives_share(counts: np.ndarray) -> np.ndarray:
    """The share of predicted positives, a made-up group metric: ``[..., G, 2, 2] -> [...]``."""
    return np.asarray(counts[..., :, 1].sum(axis=(-2, -1)) / counts.sum(axis=(-3, -2, -1)))


def test_a_registered_group_metric_is_computed_with_its_interval() -> None:
    spec = MetricSpec(
        "made_up_share", "made-up share", "group", "higher", "binary", runs=("group",), interval="percentile"
    )
    register_group_metric(spec, _positives_share)
    try:
        y_true, y_pred, groups = [1, 0, 1, 0, 1, 0, 1, 1], [1, 1, 0, 0, 1, 1, 1, 0], list("aaaabbbb")
        plain = group_metrics(y_true, y_pred, groups)
        assert plain["made_up_share"] == pytest.approx(5 / 8)
        assert metric_names()[-1] == rate_metric_names()[-1] == "made_up_share"
        assert "made_up_share" not in group_metrics(y_true, y_pred, groups, rates=False)
        boot = group_metrics(y_true, y_pred, groups, n_boot=200, seed=3)
        assert boot["made_up_share_ci_low"] < 5 / 8 < boot["made_up_share_ci_high"]
        with pytest.raises(ValueError, match="kind 'group'"):
            register_group_metric(MetricSpec("made_up_rep", "x", "representation", "lower"), _positives_share)
        with pytest.raises(ValueError, match="interval"):
            register_group_metric(MetricSpec("made_up_w", "x", "group", "lower", interval="worst"), _positives_share)
    finally:
        unregister_group_metric("made_up_share")
    assert "made_up_share" not in METRIC_SPECS and "made_up_share" not in group_metrics(y_true, y_pred, groups)
    unregister_group_metric("accuracy")  # a built-in metric stays
    assert "accuracy" in GROUP_METRIC_FUNCTIONS and "accuracy" in METRIC_SPECS


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


def test_the_readme_metric_reference_is_generated_from_the_specs() -> None:
    from ceco_fair.metrics.reference import END, START, reference_markdown

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    quoted = readme.split(START)[1].split(END)[0].strip()
    assert quoted == reference_markdown()
    rows = quoted.splitlines()[2:]
    assert len(rows) == len(METRIC_SPECS) and all(METRIC_SPECS[name].variant for name in METRIC_SPECS)
    assert "| `ece` | ECE | ECE: top-label, 10 equal-width bins" in quoted
