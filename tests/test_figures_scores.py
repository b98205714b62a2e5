"""The score figures' numbers: ROC points, reliability bins and the shaded ABCC against their oracles."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import wasserstein_distance  # type: ignore[import-untyped]
from sklearn.metrics import roc_auc_score, roc_curve

from ceco_fair.report.figures_scores import (
    area_between,
    group_roc_figure,
    reliability_bins,
    reliability_figure,
    roc_points,
    score_cdf_figure,
)


@pytest.mark.parametrize("ties", [False, True])
def test_roc_points_are_sklearns_curve_and_area(ties: bool) -> None:
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 2, 400)
    scores = rng.random(400) * 0.6 + 0.4 * targets
    if ties:
        scores = np.round(scores, 1)
    fpr, tpr, area = roc_points(targets, scores)
    expected_fpr, expected_tpr, _ = roc_curve(targets, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, expected_fpr, atol=1e-15)
    np.testing.assert_allclose(tpr, expected_tpr, atol=1e-15)
    assert area == pytest.approx(roc_auc_score(targets, scores), abs=1e-12)
    assert np.isnan(roc_points(np.ones(5, dtype=np.int64), scores[:5])[2])


def test_abcc_is_the_wasserstein_distance() -> None:
    rng = np.random.default_rng(1)
    for n, m in ((50, 80), (1, 7), (200, 3)):
        first, second = rng.beta(2, 5, n), rng.beta(5, 2, m)
        assert area_between(first, second) == pytest.approx(wasserstein_distance(first, second), abs=1e-12)
    same = rng.random(30)
    assert area_between(same, same) == 0.0
    assert area_between(np.zeros(4), np.ones(3)) == pytest.approx(1.0)


def test_reliability_bins_match_a_loop_with_confidence_one_in_the_last_bin() -> None:
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(300, 3)) * 2
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    probabilities[0] = [1.0, 0.0, 0.0]
    targets = rng.integers(0, 3, 300)
    confidence, accuracy, counts = reliability_bins(targets, probabilities)
    for b in range(10):
        rows = [
            i
            for i in range(300)
            if (b / 10 <= probabilities[i].max() < (b + 1) / 10) or (b == 9 and probabilities[i].max() == 1.0)
        ]
        assert counts[b] == len(rows)
        if rows:
            assert confidence[b] == pytest.approx(np.mean([probabilities[i].max() for i in rows]), abs=1e-12)
            assert accuracy[b] == pytest.approx(np.mean([probabilities[i].argmax() == targets[i] for i in rows]))


def test_the_figures_draw_every_group_and_name_their_variant() -> None:
    rng = np.random.default_rng(3)
    targets, sensitive = rng.integers(0, 2, 200), rng.integers(0, 3, 200)
    targets[sensitive == 2] = 1  # a one-class group: its AUROC is undefined, not a crash
    scores = rng.random(200)
    roc = group_roc_figure(targets, scores, sensitive, ["a", "b", "c"])
    assert [trace.name for trace in roc.data][1:3] == [
        f"a (AUROC {roc_auc_score(targets[sensitive == 0], scores[sensitive == 0]):.3f})",
        f"b (AUROC {roc_auc_score(targets[sensitive == 1], scores[sensitive == 1]):.3f})",
    ]
    assert roc.data[3].name == "c (undefined: one class only)"
    reliability = reliability_figure(targets, np.c_[1 - scores, scores], sensitive, ["a", "b", "c"])
    assert "10 equal-width bins" in reliability.layout.title.text and len(reliability.data) == 4
    cdf = score_cdf_figure(scores, sensitive, ["a", "b", "c"])
    pairs = {
        (x, y): wasserstein_distance(scores[sensitive == x], scores[sensitive == y])
        for x, y in ((0, 1), (0, 2), (1, 2))
    }
    (first, second), widest = max(pairs.items(), key=lambda item: item[1])
    assert f"ABCC {widest:.3f}" in cdf.layout.title.text
    assert [trace.name for trace in cdf.data][:2] == ["abc"[first], "abc"[second]] and cdf.data[1].fill == "tonexty"
