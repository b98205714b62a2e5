"""Group-fairness metrics: equal to fairlearn and to slow loops written from the definitions."""

from __future__ import annotations

import itertools
import logging
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score

from ceco_fair.errors import CecoFairError
from ceco_fair.metrics import group_metrics, group_table, metric_names, rate_metric_names
from ceco_fair.metrics.confusion import confusion_counts, encode_labels, group_confusion
from ceco_fair.metrics.intervals import spread_names

LOGGER = "ceco_fair.metrics.group"
EXPECTED_KEYS = set(metric_names()) | {f"{name}_p_value" for name in spread_names()}


def random_predictions(
    n: int, n_groups: int, seed: int, n_classes: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Imbalanced groups whose base rates and error rates differ."""
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(n_groups, 0.7))
    sensitive = rng.choice(n_groups, size=n, p=weights)
    base = rng.uniform(0.1, 0.9, size=n_groups)
    if n_classes == 2:
        y_true = (rng.random(n) < base[sensitive]).astype(np.int64)
    else:
        y_true = rng.integers(0, n_classes, size=n)
    error = rng.uniform(0.05, 0.5, size=n_groups)
    flip = rng.random(n) < error[sensitive]
    y_pred = np.where(flip, rng.integers(0, n_classes, size=n), y_true)
    return y_true, y_pred, sensitive


def fairlearn_metrics(y_true: np.ndarray, y_pred: np.ndarray, sensitive: Any) -> dict[str, float]:
    cells = MetricFrame(
        metrics=accuracy_score,
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=pd.DataFrame({"y": y_true, "s": sensitive}),
    )
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "worst_group_accuracy": float(cells.group_min()),
        "demographic_parity_difference": float(
            demographic_parity_difference(y_true, y_pred, sensitive_features=sensitive)
        ),
        "equalized_odds_difference": float(equalized_odds_difference(y_true, y_pred, sensitive_features=sensitive)),
        "equal_opportunity_difference": float(
            equal_opportunity_difference(y_true, y_pred, sensitive_features=sensitive)
        ),
        "average_odds_difference": float(
            equalized_odds_difference(y_true, y_pred, sensitive_features=sensitive, agg="mean")
        ),
        "equalized_odds_sum": 2
        * float(equalized_odds_difference(y_true, y_pred, sensitive_features=sensitive, agg="mean")),
        "adjusted_accuracy": float(np.mean(list(slow_cell_accuracy(y_true, y_pred, np.asarray(sensitive)).values()))),
    }


def slow_cell_accuracy(y_true: Any, y_pred: Any, sensitive: Any) -> dict[tuple[Any, Any], float]:
    """P(ŷ = y | y, s) for every (y, s) cell with samples, by an explicit loop."""
    hits: dict[tuple[Any, Any], list[float]] = {}
    for t, p, s in zip(y_true.tolist(), y_pred.tolist(), list(sensitive), strict=True):
        hits.setdefault((t, s), []).append(1.0 if t == p else 0.0)
    return {cell: math.fsum(v) / len(v) for cell, v in hits.items()}


def slow_eo_fscl(y_true: Any, y_pred: Any, sensitive: Any) -> float:
    """FSCL's EO: per class, mean |gap| over group pairs with samples; then mean over classes."""
    cells = slow_cell_accuracy(y_true, y_pred, sensitive)
    groups = sorted(set(sensitive))
    class_means = []
    for label in sorted(set(y_true.tolist())):
        gaps = [
            abs(cells[(label, g)] - cells[(label, h)])
            for g, h in itertools.combinations(groups, 2)
            if (label, g) in cells and (label, h) in cells
        ]
        if gaps:
            class_means.append(math.fsum(gaps) / len(gaps))
    return math.fsum(class_means) / len(class_means) if class_means else 0.0


def slow_worst_group_accuracy(y_true: Any, y_pred: Any, sensitive: Any) -> float:
    return min(slow_cell_accuracy(y_true, y_pred, sensitive).values())


@pytest.mark.parametrize("n_groups", [2, 3, 5])
@pytest.mark.parametrize("seed", [0, 1])
def test_group_metrics_equal_fairlearn_and_slow_loops(n_groups: int, seed: int) -> None:
    y_true, y_pred, sensitive = random_predictions(600, n_groups, seed)
    ours = group_metrics(y_true, y_pred, sensitive)
    assert list(ours) == [key for name in metric_names() for key in (name, f"{name}_p_value") if key in EXPECTED_KEYS]
    expected = fairlearn_metrics(y_true, y_pred, sensitive)
    for name, value in expected.items():
        assert ours[name] == pytest.approx(value, abs=1e-12), name
    assert ours["worst_group_accuracy"] == pytest.approx(
        slow_worst_group_accuracy(y_true, y_pred, sensitive), abs=1e-12
    )
    assert ours["eo_fscl"] == pytest.approx(slow_eo_fscl(y_true, y_pred, sensitive), abs=1e-12)
    assert ours["demographic_parity_difference"] > 0.0


def test_eo_fscl_is_half_the_tpr_and_fpr_gaps_for_two_groups() -> None:
    y_true, y_pred, sensitive = random_predictions(400, 2, seed=3)
    table = group_table(y_true, y_pred, sensitive)
    half_gap = 0.5 * (abs(table.tpr[0] - table.tpr[1]) + abs(table.fpr[0] - table.fpr[1]))
    assert group_metrics(y_true, y_pred, sensitive)["eo_fscl"] == pytest.approx(half_gap, abs=1e-12)


@pytest.mark.parametrize("n_groups", [2, 3, 5])
def test_group_table_equals_metricframe_by_group(n_groups: int) -> None:
    y_true, y_pred, sensitive = random_predictions(500, n_groups, seed=n_groups)
    frame = MetricFrame(
        metrics={
            "count": lambda t, p: len(t),
            "accuracy": accuracy_score,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "selection_rate": selection_rate,
        },
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=sensitive,
    ).by_group
    table = group_table(y_true, y_pred, sensitive)
    assert list(table.columns) == [
        "group", "count", "accuracy", "tpr", "fpr", "selection_rate",
        "n_pos", "n_neg", "tp", "fp", "tn", "fn",
    ]  # fmt: skip
    assert table.group.tolist() == frame.index.tolist()
    np.testing.assert_array_equal(table["count"], frame["count"].astype(int))
    for column in ("accuracy", "tpr", "fpr", "selection_rate"):
        np.testing.assert_allclose(table[column], frame[column].astype(float), rtol=0, atol=1e-12)
    for row in table.itertuples():
        rows = sensitive == row.group
        t, p = y_true[rows], y_pred[rows]
        assert (row.tp, row.fp, row.tn, row.fn) == (
            np.sum((t == 1) & (p == 1)),
            np.sum((t == 0) & (p == 1)),
            np.sum((t == 0) & (p == 0)),
            np.sum((t == 1) & (p == 0)),
        )
        assert (row.n_pos, row.n_neg) == (np.sum(t == 1), np.sum(t == 0))


def test_confusion_counts_equal_a_row_loop() -> None:
    y_true, y_pred, groups = random_predictions(300, 4, seed=5, n_classes=3)
    counts = confusion_counts(y_true, y_pred, groups, 3, 4)
    expected = np.zeros((4, 3, 3), dtype=np.int64)
    for t, p, g in zip(y_true, y_pred, groups, strict=True):
        expected[g, t, p] += 1
    np.testing.assert_array_equal(counts, expected)


@pytest.mark.parametrize(
    "values",
    [
        np.array([5, 3, 3, 1000, 7]),
        np.array([-4, 2, -4, 9]),
        np.array([10**12, 3, 10**12]),
        np.array(["b", "a", "c", "a"]),
        np.array([True, False, True]),
        np.random.default_rng(0).integers(0, 50, size=200),
    ],
)
def test_encode_labels_equals_numpy_unique(values: np.ndarray) -> None:
    codes, labels = encode_labels(values)
    expected_labels, expected_codes = np.unique(values, return_inverse=True)
    np.testing.assert_array_equal(labels, expected_labels)
    np.testing.assert_array_equal(codes, expected_codes.reshape(-1))
    assert codes.dtype == np.int64


def test_multiclass_target_with_rates_off_equals_slow_loops() -> None:
    y_true, y_pred, sensitive = random_predictions(500, 3, seed=7, n_classes=4)
    ours = group_metrics(y_true, y_pred, sensitive, rates=False)
    assert set(ours) == set(metric_names()) - set(rate_metric_names()) | {"eo_fscl_p_value"}
    assert ours["accuracy"] == pytest.approx(np.mean(y_true == y_pred), abs=1e-12)
    assert ours["worst_group_accuracy"] == pytest.approx(
        slow_worst_group_accuracy(y_true, y_pred, sensitive), abs=1e-12
    )
    assert ours["eo_fscl"] == pytest.approx(slow_eo_fscl(y_true, y_pred, sensitive), abs=1e-12)
    table = group_table(y_true, y_pred, sensitive, rates=False)
    assert list(table.columns) == ["group", "count", "accuracy"]
    for row in table.itertuples():
        assert row.accuracy == pytest.approx(np.mean((y_true == y_pred)[sensitive == row.group]))


def test_rates_off_gives_the_same_shared_metrics_on_a_binary_target() -> None:
    y_true, y_pred, sensitive = random_predictions(300, 3, seed=8)
    full = group_metrics(y_true, y_pred, sensitive)
    shared = group_metrics(y_true, y_pred, sensitive, rates=False)
    for name, value in shared.items():
        assert value == pytest.approx(full[name], abs=1e-12)


def test_non_binary_target_error_names_the_values_found() -> None:
    with pytest.raises(CecoFairError, match=r"y_true .*found values \[0, 1, 2\].*rates=False"):
        group_metrics(np.array([0, 1, 2, 1]), np.array([0, 1, 1, 1]), np.array([0, 0, 1, 1]))
    with pytest.raises(CecoFairError, match=r"y_pred .*found values \[-1, 0, 1\]"):
        group_table(np.array([0, 1, 0]), np.array([-1, 1, 0]), np.array([0, 0, 1]))


def test_single_group_spreads_are_zero_as_fairlearn_and_warned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    y_true, y_pred, _ = random_predictions(200, 2, seed=9)
    sensitive = np.full(200, 4)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        ours = group_metrics(y_true, y_pred, sensitive)
    assert "single group (4)" in caplog.text
    expected = fairlearn_metrics(y_true, y_pred, sensitive)
    for name in rate_metric_names():
        assert ours[name] == expected[name] == 0.0
    assert ours["eo_fscl"] == slow_eo_fscl(y_true, y_pred, sensitive) == 0.0
    assert ours["worst_group_accuracy"] == pytest.approx(expected["worst_group_accuracy"])


def test_group_without_positives_follows_fairlearn(caplog: pytest.LogCaptureFixture) -> None:
    y_true, y_pred, sensitive = random_predictions(300, 3, seed=10)
    y_true[sensitive == 1] = 0  # group 1: no positives, so its TPR is undefined
    assert np.any(y_pred[sensitive == 1] == 1)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        ours = group_metrics(y_true, y_pred, sensitive)
    assert "groups 1 have no samples with y_true == 1" in caplog.text
    expected = fairlearn_metrics(y_true, y_pred, sensitive)
    for name, value in expected.items():
        assert ours[name] == pytest.approx(value, abs=1e-12), name
    table = group_table(y_true, y_pred, sensitive).set_index("group")
    assert table.loc[1, "tpr"] == 0.0  # fairlearn: an empty denominator gives a rate of 0
    assert table.loc[1, "n_pos"] == 0
    # eo_fscl leaves the empty (y=1, s=1) cell out instead of counting it as 0
    assert ours["eo_fscl"] == pytest.approx(slow_eo_fscl(y_true, y_pred, sensitive), abs=1e-12)


def test_group_without_negatives_follows_fairlearn(caplog: pytest.LogCaptureFixture) -> None:
    y_true, y_pred, sensitive = random_predictions(300, 2, seed=11)
    y_true[sensitive == 0] = 1
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        ours = group_metrics(y_true, y_pred, sensitive)
    assert "groups 0 have no samples with y_true == 0" in caplog.text
    for name, value in fairlearn_metrics(y_true, y_pred, sensitive).items():
        assert ours[name] == pytest.approx(value, abs=1e-12), name


def test_no_class_in_two_groups_gives_zero_eo_fscl(caplog: pytest.LogCaptureFixture) -> None:
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 1, 1, 1])
    sensitive = np.array(["a", "a", "b", "b"])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        ours = group_metrics(y_true, y_pred, sensitive)
    assert "eo_fscl is 0" in caplog.text
    assert ours["eo_fscl"] == slow_eo_fscl(y_true, y_pred, sensitive) == 0.0
    assert ours["worst_group_accuracy"] == 0.5


def test_empty_cells_are_left_out_of_worst_group_and_eo_fscl() -> None:
    y_true = np.array([0, 0, 1, 1, 0, 0, 0, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 0, 0, 0, 0, 2])
    sensitive = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2])
    ours = group_metrics(y_true, y_pred, sensitive, rates=False)
    # cells: (0,0)=.5 (1,0)=1 (0,1)=1 (0,2)=1 (2,2)=.5; class 0 gaps .5,.5,0; classes 1, 2 alone
    assert ours["worst_group_accuracy"] == 0.5
    assert ours["eo_fscl"] == pytest.approx(1.0 / 3.0, abs=1e-15)
    assert ours["eo_fscl"] == pytest.approx(slow_eo_fscl(y_true, y_pred, sensitive), abs=1e-15)


def test_non_contiguous_and_string_group_labels() -> None:
    y_true, y_pred, codes = random_predictions(400, 3, seed=12)
    relabelled = np.array([42, 3, 1000])[codes]
    named = np.array(["young", "old", "middle"])[codes]
    reference = group_metrics(y_true, y_pred, codes)
    assert group_metrics(y_true, y_pred, relabelled) == reference
    assert group_metrics(y_true, y_pred, named) == reference
    table = group_table(y_true, y_pred, relabelled)
    assert table.group.tolist() == [3, 42, 1000]
    assert table["count"].tolist() == [np.sum(codes == 1), np.sum(codes == 0), np.sum(codes == 2)]
    for name, value in fairlearn_metrics(y_true, y_pred, named).items():
        assert reference[name] == pytest.approx(value, abs=1e-12)


def test_torch_inputs_equal_numpy_inputs() -> None:
    y_true, y_pred, sensitive = random_predictions(300, 3, seed=13)
    as_numpy = group_metrics(y_true, y_pred, sensitive, n_boot=50)
    as_torch = group_metrics(torch.from_numpy(y_true), torch.from_numpy(y_pred), torch.from_numpy(sensitive), n_boot=50)
    assert as_torch == as_numpy
    pd.testing.assert_frame_equal(
        group_table(torch.from_numpy(y_true), torch.from_numpy(y_pred), torch.from_numpy(sensitive)),
        group_table(y_true, y_pred, sensitive),
    )


def test_bool_and_list_inputs() -> None:
    y_true = [True, False, True, True]
    y_pred = [True, True, False, True]
    counts = group_confusion(y_true, y_pred, [0, 0, 1, 1], binary=True).counts
    np.testing.assert_array_equal(counts[0], [[0, 1], [0, 1]])
    np.testing.assert_array_equal(counts[1], [[0, 0], [1, 1]])


@pytest.mark.parametrize(
    ("y_true", "y_pred", "sensitive", "pattern"),
    [
        ([0, 1, 1], [0, 1], [0, 0, 1], r"y_pred has 2 entries but y_true has 3"),
        ([0, 1, 1], [0, 1, 1], [0, 1], r"sensitive has 2 entries but y_true has 3"),
        ([], [], [], r"y_true is empty"),
        ([0.0, 1.0], [0, 1], [0, 1], r"y_true must hold integer labels, got dtype float64"),
        ([[0, 1]], [[0, 1]], [[0, 1]], r"y_true must be a 1-D array of labels, got shape \(1, 2\)"),
    ],
)
def test_bad_inputs_raise_one_line_errors(y_true: Any, y_pred: Any, sensitive: Any, pattern: str) -> None:
    for function in (group_metrics, group_table):
        with pytest.raises(CecoFairError, match=pattern) as info:
            function(np.asarray(y_true), np.asarray(y_pred), np.asarray(sensitive))
        assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"rates": 1}, r"rates must be a bool, got 1"),
        ({"n_boot": -1}, r"n_boot must be a non-negative integer, got -1"),
        ({"n_boot": 2.5}, r"n_boot must be a non-negative integer, got 2.5"),
        ({"confidence": 1.0}, r"confidence must be a float in \(0, 1\), got 1.0"),
        ({"confidence": 0}, r"confidence must be a float in \(0, 1\), got 0"),
        ({"seed": "a"}, r"seed must be an integer, got 'a'"),
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, Any], pattern: str) -> None:
    for function in (group_metrics, group_table):
        with pytest.raises(CecoFairError, match=pattern):
            function(np.array([0, 1]), np.array([0, 1]), np.array([0, 1]), **kwargs)
