"""Score metrics and count-metric variants: equal to scikit-learn, scipy, fairlearn and loops from the definitions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from fairlearn.metrics import equalized_odds_difference as fairlearn_equalized_odds
from scipy.stats import wasserstein_distance
from score_reference import DTYPES, as_dtype, binary_data, loop_ece, multiclass_data
from sklearn.metrics import roc_auc_score

from ceco_fair.errors import CecoFairError
from ceco_fair.metrics import group_metrics
from ceco_fair.metrics.count_variants import (
    adjusted_accuracy,
    average_odds_difference,
    cell_shares,
    equalized_odds_sum,
    odds_metrics,
    train_weighted_accuracy,
)
from ceco_fair.metrics.score_intervals import score_metrics
from ceco_fair.metrics.scores import (
    abcc,
    auroc,
    auroc_gap,
    ece,
    ece_gap,
    group_auroc,
    group_ece,
    midranks,
    score_gap,
    worst_group_auroc,
)
from ceco_fair.metrics.specs import METRIC_SPECS, outcome_metrics

TOL = 1e-12


def loop_rates(y_true: np.ndarray, y_pred: np.ndarray, sensitive: np.ndarray) -> tuple[list[float], list[float]]:
    """TPR and FPR per group, 0 for an empty denominator (fairlearn's convention)."""
    tprs, fprs = [], []
    for g in np.unique(sensitive):
        t, p = y_true[sensitive == g], y_pred[sensitive == g]
        tprs.append(float(np.sum((t == 1) & (p == 1)) / max(1, np.sum(t == 1))))
        fprs.append(float(np.sum((t == 0) & (p == 1)) / max(1, np.sum(t == 0))))
    return tprs, fprs


# --- AUROC -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("n_groups", "decimals", "seed"), [(2, None, 0), (4, 2, 1), (6, 1, 2)])
def test_binary_auroc_equals_sklearn_per_group_and_overall(
    dtype: type, n_groups: int, decimals: int | None, seed: int
) -> None:
    targets, raw, sensitive = binary_data(3000, n_groups, seed, decimals)
    scores, values = as_dtype(raw, dtype)
    per_group = [roc_auc_score(targets[sensitive == g], values[sensitive == g]) for g in range(n_groups)]
    assert auroc(targets, scores) == pytest.approx(roc_auc_score(targets, values), abs=TOL)
    np.testing.assert_allclose(group_auroc(targets, scores, sensitive).values, per_group, rtol=0, atol=TOL)
    assert worst_group_auroc(targets, scores, sensitive) == pytest.approx(min(per_group), abs=TOL)
    assert auroc_gap(targets, scores, sensitive) == pytest.approx(max(per_group) - min(per_group), abs=TOL)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("n_classes", "seed"), [(3, 3), (5, 4)])
def test_multiclass_auroc_equals_sklearn_ovr_macro(dtype: type, n_classes: int, seed: int) -> None:
    targets, raw, sensitive = multiclass_data(2500, n_classes, 3, seed)
    scores, values = as_dtype(raw, dtype)
    values = values / values.sum(axis=1, keepdims=True)  # sklearn insists on rows summing to 1
    ovr = {"multi_class": "ovr", "average": "macro"}
    expected = roc_auc_score(targets, values, **ovr)
    assert auroc(targets, values) == pytest.approx(expected, abs=TOL)
    per_group = [roc_auc_score(targets[sensitive == g], values[sensitive == g], **ovr) for g in range(3)]
    np.testing.assert_allclose(group_auroc(targets, values, sensitive).values, per_group, rtol=0, atol=TOL)
    # the scores as given (not renormalised, any dtype) rank the same way within each class column
    unnormalised = [np.mean([roc_auc_score(targets == c, scores[:, c].astype(np.float64)) for c in range(n_classes)])]
    assert auroc(targets, scores) == pytest.approx(unnormalised[0], abs=TOL)


def test_two_column_scores_are_read_as_the_positive_column() -> None:
    targets, scores, sensitive = binary_data(500, 2, 5)
    two = np.stack([1 - scores, scores], axis=1)
    assert auroc(targets, two) == auroc(targets, scores)
    assert ece(targets, two) == ece(targets, scores)
    assert abcc(two, sensitive) == abcc(scores, sensitive)


def test_midranks_equal_scipy_rankdata_within_segments() -> None:
    from scipy.stats import rankdata

    rng = np.random.default_rng(6)
    values = np.round(rng.random(400), 1)
    segment = rng.integers(0, 4, 400)
    ranks = midranks(values, segment)
    for s in range(4):
        np.testing.assert_array_equal(ranks[segment == s], rankdata(values[segment == s]))


def test_a_group_with_one_class_has_nan_auroc_and_a_reason() -> None:
    targets, scores, sensitive = binary_data(600, 3, 7)
    targets[sensitive == 1] = 0
    reasons: list[str] = []
    values = group_auroc(targets, scores, sensitive, reasons=reasons).values
    assert math.isnan(values[1]) and not np.isnan(values[[0, 2]]).any()
    assert len(reasons) == 1 and reasons[0].startswith("group 1: only class 0 present")
    others = [roc_auc_score(targets[sensitive == g], scores[sensitive == g]) for g in (0, 2)]
    assert auroc_gap(targets, scores, sensitive) == pytest.approx(abs(others[0] - others[1]), abs=TOL)
    assert worst_group_auroc(targets, scores, sensitive) == pytest.approx(min(others), abs=TOL)
    result = score_metrics(targets, scores, sensitive, n_boot=50)
    assert math.isnan(result.by_group["auroc"][1]) and reasons[0] in result.reasons
    assert math.isfinite(result.values["auroc_gap_ci_high"])


def test_no_group_with_two_classes_gives_nan_and_says_why() -> None:
    reasons: list[str] = []
    targets, scores, sensitive = np.array([0, 0, 1, 1]), np.array([0.2, 0.3, 0.6, 0.9]), np.array([0, 0, 1, 1])
    assert math.isnan(auroc_gap(targets, scores, sensitive, reasons=reasons))
    assert reasons[-1].startswith("no group holds two classes")
    one: list[str] = []
    assert math.isnan(auroc(np.zeros(4, dtype=int), scores, reasons=one)) and "one class only" in one[0]


def test_multiclass_group_missing_a_class_averages_the_classes_present() -> None:
    targets, scores, sensitive = multiclass_data(900, 4, 2, 8)
    keep = ~((sensitive == 1) & (targets == 3))
    targets, scores, sensitive = targets[keep], scores[keep], sensitive[keep]
    reasons: list[str] = []
    values = group_auroc(targets, scores, sensitive, reasons=reasons).values
    rows = sensitive == 1
    expected = np.mean([roc_auc_score(targets[rows] == c, scores[rows, c]) for c in range(3)])
    assert values[1] == pytest.approx(expected, abs=TOL)
    assert reasons == ["group 1: classes [3] absent: its AUROC is the mean over the classes present"]


# --- ECE -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_ece_equals_the_per_bin_loop(dtype: type) -> None:
    targets, raw, sensitive = binary_data(2000, 3, 9)
    raw[:12] = [0.0, 1.0, 0.3, 0.7, 0.5, 0.6, 0.1, 0.9, 0.4, 0.2, 0.8, 0.05]  # bin edges, both ends
    scores, values = as_dtype(raw, dtype)
    assert ece(targets, scores) == pytest.approx(loop_ece(targets, values), abs=TOL)
    expected = [loop_ece(targets[sensitive == g], values[sensitive == g]) for g in range(3)]
    np.testing.assert_allclose(group_ece(targets, scores, sensitive).values, expected, rtol=0, atol=TOL)
    assert ece_gap(targets, scores, sensitive) == pytest.approx(max(expected) - min(expected), abs=TOL)


def test_multiclass_ece_equals_the_per_bin_loop() -> None:
    targets, scores, sensitive = multiclass_data(1500, 4, 2, 10)
    scores[0] = [1.0, 0.0, 0.0, 0.0]  # confidence 1 goes in the last bin
    scores[1] = [0.3, 0.3, 0.2, 0.2]  # a tie: the first largest is predicted
    assert ece(targets, scores) == pytest.approx(loop_ece(targets, scores), abs=TOL)
    expected = [loop_ece(targets[sensitive == g], scores[sensitive == g]) for g in range(2)]
    np.testing.assert_allclose(group_ece(targets, scores, sensitive).values, expected, rtol=0, atol=TOL)


def test_ece_bins_put_one_in_the_last_bin_and_edges_in_the_upper_bin() -> None:
    # confidence 1.0 correct: bin 9 alone, calibrated; 0.7 wrong (true 0, score 0.7): bin 7 gap 0.7
    assert ece(np.array([1, 0]), np.array([1.0, 0.7])) == pytest.approx(0.35, abs=TOL)
    assert ece(np.array([1]), np.array([0.5])) == pytest.approx(0.5, abs=TOL)  # p = 0.5 predicts class 0


# --- score gaps and ABCC -----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_score_gaps_equal_loops(dtype: type) -> None:
    targets, raw, sensitive = binary_data(2000, 4, 11)
    scores, values = as_dtype(raw, dtype)
    means = [math.fsum(values[sensitive == g]) / np.sum(sensitive == g) for g in range(4)]
    assert score_gap(targets, scores, sensitive) == pytest.approx(max(means) - min(means), abs=TOL)
    per_class = []
    for y in (0, 1):
        cell = [values[(sensitive == g) & (targets == y)].mean() for g in range(4)]
        per_class.append(max(cell) - min(cell))
    assert score_gap(targets, scores, sensitive, form="eo") == pytest.approx(max(per_class), abs=TOL)


def test_score_gap_eo_leaves_out_empty_cells_with_a_reason() -> None:
    targets, scores, sensitive = binary_data(600, 3, 12)
    targets[sensitive == 2] = 1
    reasons: list[str] = []
    value = score_gap(targets, scores, sensitive, form="eo", reasons=reasons)
    negatives = [scores[(sensitive == g) & (targets == 0)].mean() for g in (0, 1)]
    positives = [scores[(sensitive == g) & (targets == 1)].mean() for g in range(3)]
    assert value == pytest.approx(max(abs(negatives[0] - negatives[1]), np.ptp(positives)), abs=TOL)
    assert reasons == ["class 0 has no rows in group 2: that cell is left out of score_gap_eo"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("n_groups", "decimals"), [(2, None), (3, 2), (5, None)])
def test_abcc_equals_scipy_wasserstein(dtype: type, n_groups: int, decimals: int | None) -> None:
    _, raw, sensitive = binary_data(3000, n_groups, 13 + n_groups, decimals)
    scores, values = as_dtype(raw, dtype)
    pairs = itertools.combinations(range(n_groups), 2)
    expected = max(wasserstein_distance(values[sensitive == a], values[sensitive == b]) for a, b in pairs)
    assert abcc(scores, sensitive) == pytest.approx(expected, abs=TOL)


# --- edge cases --------------------------------------------------------------------------------


def test_a_group_of_one_row() -> None:
    targets, scores, sensitive = binary_data(400, 2, 14)
    targets, scores, sensitive = np.append(targets, 1), np.append(scores, 0.8), np.append(sensitive, 9)
    reasons: list[str] = []
    values = group_auroc(targets, scores, sensitive, reasons=reasons).values
    assert math.isnan(values[2]) and reasons == ["group 9: only class 1 present (1 rows): its AUROC is undefined (NaN)"]
    assert group_ece(targets, scores, sensitive).values[2] == pytest.approx(0.2, abs=TOL)
    assert abcc(scores, sensitive) == pytest.approx(
        max(wasserstein_distance(scores[sensitive == a], scores[sensitive == b]) for a, b in ((0, 1), (0, 9), (1, 9))),
        abs=TOL,
    )
    result = score_metrics(targets, scores, sensitive, n_boot=40)
    assert result.by_group["count"].tolist()[-1] == 1
    for name in ("score_gap", "ece_gap", "abcc", "auroc_gap"):
        assert result.values[f"{name}_ci_low"] <= result.values[name] <= result.values[f"{name}_ci_high"], name


def test_all_scores_equal() -> None:
    targets, _, sensitive = binary_data(500, 3, 15)
    scores = np.full(500, 0.25)
    assert auroc(targets, scores) == 0.5
    np.testing.assert_array_equal(group_auroc(targets, scores, sensitive).values, 0.5)
    assert auroc_gap(targets, scores, sensitive) == 0.0
    assert abcc(scores, sensitive) == 0.0 and score_gap(targets, scores, sensitive) == 0.0
    assert ece(targets, scores) == pytest.approx(loop_ece(targets, scores), abs=TOL)
    result = score_metrics(targets, scores, sensitive, n_boot=60)
    assert result.values["auroc_gap"] == 0.0 and result.values["auroc_gap_p_value"] == 1.0
    assert result.values["auroc_gap_ci_low"] == 0.0 < result.values["auroc_gap_ci_high"]  # the scale floor
    assert result.values["abcc_ci_low"] == 0.0 and result.values["abcc_p_value"] == 1.0


def test_scores_exactly_zero_and_one() -> None:
    targets, raw, sensitive = binary_data(800, 2, 16)
    scores = np.where(raw > 0.5, 1.0, 0.0)
    scores[:40] = raw[:40]
    assert auroc(targets, scores) == pytest.approx(roc_auc_score(targets, scores), abs=TOL)
    assert ece(targets, scores) == pytest.approx(loop_ece(targets, scores), abs=TOL)
    expected = wasserstein_distance(scores[sensitive == 0], scores[sensitive == 1])
    assert abcc(scores, sensitive) == pytest.approx(expected, abs=TOL)
    perfect = score_metrics(targets, targets.astype(np.float64), sensitive, n_boot=60)
    assert perfect.values["auroc"] == 1.0 == perfect.values["worst_group_auroc"]
    assert perfect.values["ece"] == 0.0 and perfect.values["worst_group_auroc_ci_low"] < 1.0


def test_fp16_and_torch_inputs_compute_in_float64() -> None:
    targets, raw, _sensitive = binary_data(1000, 2, 17)
    half = torch.from_numpy(raw).half()
    value = auroc(torch.from_numpy(targets), half)
    assert value == pytest.approx(roc_auc_score(targets, half.double().numpy()), abs=TOL)
    assert ece(targets, half.numpy()) == pytest.approx(loop_ece(targets, half.double().numpy()), abs=TOL)


def test_single_group_gaps_are_zero_with_a_reason() -> None:
    targets, scores, _ = binary_data(300, 1, 18)
    reasons: list[str] = []
    sensitive = np.zeros(300, dtype=int)
    assert auroc_gap(targets, scores, sensitive, reasons=reasons) == 0.0
    assert ece_gap(targets, scores, sensitive) == 0.0 == abcc(scores, sensitive)
    assert reasons == ["sensitive has a single group (0): every between-group gap is 0"]


@pytest.mark.parametrize(
    ("targets", "scores", "message"),
    [
        ([0, 1], [0.1, 1.2], "probabilities in"),
        ([0, 1], [0.1, float("nan")], "probabilities in"),
        ([0, 1], [0, 1], "floating-point"),
        ([0, 2], [0.1, 0.2], "in {0, 1}"),
        ([0, 3], [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]], r"\[0, 3\)"),
        ([0, 1], [[0.2], [0.4]], "shape"),
        ([0, 1, 1], [0.1, 0.2], "scores has 2 entries"),
    ],
)
def test_invalid_inputs_raise_one_line_errors(targets: list[int], scores: list[float], message: str) -> None:
    with pytest.raises(CecoFairError, match=message):
        auroc(np.array(targets), np.array(scores))


def test_score_gap_and_abcc_need_a_binary_score() -> None:
    targets, scores, sensitive = multiclass_data(50, 3, 2, 19)
    with pytest.raises(CecoFairError, match="score_gap needs a binary target"):
        score_gap(targets, scores, sensitive)
    with pytest.raises(CecoFairError, match="abcc needs"):
        abcc(scores, sensitive)
    with pytest.raises(CecoFairError, match="form must be"):
        score_gap(targets, scores, sensitive, form="dp")  # type: ignore[arg-type]


# --- count-metric variants ---------------------------------------------------------------------


@pytest.mark.parametrize(("n_groups", "seed"), [(2, 20), (3, 21), (5, 22)])
def test_equalized_odds_variants_equal_fairlearn_and_loops(n_groups: int, seed: int) -> None:
    targets, scores, sensitive = binary_data(2000, n_groups, seed)
    predictions = (scores > 0.5).astype(np.int64)
    if n_groups == 3:
        targets[sensitive == 2] = 0  # no positives: TPR 0 by fairlearn's convention
    values = odds_metrics(targets, predictions, sensitive)
    for agg, name in (("worst_case", "equalized_odds_difference"), ("mean", "average_odds_difference")):
        expected = fairlearn_equalized_odds(targets, predictions, sensitive_features=sensitive, agg=agg)
        assert values[name] == pytest.approx(expected, abs=TOL), agg
    assert (
        values["equalized_odds_difference"]
        == group_metrics(targets, predictions, sensitive)["equalized_odds_difference"]
    )
    tprs, fprs = loop_rates(targets, predictions, sensitive)
    total = (max(tprs) - min(tprs)) + (max(fprs) - min(fprs))
    assert equalized_odds_sum(targets, predictions, sensitive) == pytest.approx(total, abs=TOL)
    assert average_odds_difference(targets, predictions, sensitive) == pytest.approx(total / 2, abs=TOL)


def loop_cell_accuracy(y_true: np.ndarray, y_pred: np.ndarray, sensitive: np.ndarray) -> dict[tuple[int, int], float]:
    cells: dict[tuple[int, int], list[bool]] = {}
    for t, p, s in zip(y_true.tolist(), y_pred.tolist(), sensitive.tolist(), strict=True):
        cells.setdefault((t, s), []).append(t == p)
    return {cell: sum(hits) / len(hits) for cell, hits in cells.items()}


def test_adjusted_and_train_weighted_accuracy_equal_loops() -> None:
    rng = np.random.default_rng(23)
    y_true, sensitive = rng.integers(0, 3, 1500), rng.integers(0, 4, 1500)
    y_pred = np.where(rng.random(1500) < 0.3 + 0.15 * sensitive, y_true, rng.integers(0, 3, 1500))
    cells = loop_cell_accuracy(y_true, y_pred, sensitive)
    assert adjusted_accuracy(y_true, y_pred, sensitive) == pytest.approx(
        math.fsum(cells.values()) / len(cells), abs=TOL
    )
    train_y, train_s = rng.integers(0, 3, 5000), rng.choice(4, 5000, p=[0.7, 0.1, 0.1, 0.1])
    shares = cell_shares(train_y, train_s, n_classes=3, n_groups=4)
    assert shares.sum() == pytest.approx(1.0) and shares[1, 2] == pytest.approx(
        np.mean((train_y == 1) & (train_s == 2))
    )
    expected = math.fsum(shares[t, s] * a for (t, s), a in cells.items()) / math.fsum(shares[t, s] for t, s in cells)
    assert train_weighted_accuracy(y_true, y_pred, sensitive, shares) == pytest.approx(expected, abs=TOL)


def test_train_weighted_accuracy_renormalises_over_tested_cells_and_says_so() -> None:
    y_true, y_pred, sensitive = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), np.array([0, 0, 0, 1])
    shares = np.array([[0.4, 0.1], [0.2, 0.3]])  # cell (0, 1) has no test rows
    reasons: list[str] = []
    value = train_weighted_accuracy(y_true, y_pred, sensitive, shares, reasons=reasons)
    assert value == pytest.approx((0.4 * 0.5 + 0.2 * 1.0 + 0.3 * 1.0) / 0.9, abs=TOL)
    assert reasons == [
        "training cells (class, group) [(0, 1)] have no test rows: the other cells' shares are renormalised"
    ]
    with pytest.raises(CecoFairError, match="at least"):
        train_weighted_accuracy(y_true, y_pred, sensitive + 1, shares)
    with pytest.raises(CecoFairError, match="non-negative"):
        train_weighted_accuracy(y_true, y_pred, sensitive, -shares)


# --- specs -------------------------------------------------------------------------------------

SCORE_METRICS = (
    "auroc",
    "worst_group_auroc",
    "auroc_gap",
    "ece",
    "ece_gap",
    "score_gap",
    "score_gap_eo",
    "abcc",
    "equalized_odds_sum",
    "average_odds_difference",
    "adjusted_accuracy",
    "train_weighted_accuracy",
)


def test_every_new_metric_has_a_spec_with_its_variant_and_group_runs_record_it() -> None:
    for name in SCORE_METRICS:
        spec = METRIC_SPECS[name]
        assert spec.variant and spec.kind == "group", name
        assert name not in outcome_metrics("bias")
        assert name in outcome_metrics("group"), name
    assert METRIC_SPECS["ece"].variant.startswith("ECE: top-label, 10 equal-width bins")
    assert [METRIC_SPECS[n].direction for n in ("auroc", "auroc_gap", "abcc")] == ["higher", "lower", "lower"]
    result = score_metrics(*binary_data(300, 2, 24))
    assert [name for name in result.values if name in METRIC_SPECS] == list(SCORE_METRICS[:8])
