"""The run's representation diagnostics against slow, per-sample float64 references written here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from ceco_fair.evaluation import diagnostics
from ceco_fair.evaluation.diagnostics import Views, counterfactual_diagnostics, feature_diagnostics
from ceco_fair.metrics.registry import REPRESENTATION_METRICS, cell_ids
from ceco_fair.metrics.specs import METRIC_SPECS


def unit(row: np.ndarray) -> np.ndarray:
    norm = math.sqrt(sum(float(v) ** 2 for v in row))
    return np.asarray(row, dtype=np.float64) / max(norm, 1e-12)


def reference_variance_ratio(features: np.ndarray, labels: np.ndarray) -> float:
    rows = [unit(r) for r in features]
    mean = sum(rows) / len(rows)
    total = sum(float(np.dot(r - mean, r - mean)) for r in rows)
    within = 0.0
    for label in set(labels.tolist()):
        members = [r for r, y in zip(rows, labels, strict=True) if y == label]
        centre = sum(members) / len(members)
        within += sum(float(np.dot(r - centre, r - centre)) for r in members)
    return within / total


def reference_uniformity(features: np.ndarray, t: float = 2.0) -> float:
    rows = [unit(r) for r in features]
    potentials = [
        math.exp(-t * float(np.dot(rows[i] - rows[j], rows[i] - rows[j])))
        for i in range(len(rows))
        for j in range(i + 1, len(rows))
    ]
    return math.log(sum(potentials) / len(potentials))


def reference_alignment(first: np.ndarray, second: np.ndarray) -> float:
    gaps = [unit(a) - unit(b) for a, b in zip(first, second, strict=True)]
    return sum(float(np.dot(g, g)) for g in gaps) / len(gaps)


def reference_retrieval(first: np.ndarray, second: np.ndarray, cells: list[int] | None = None) -> float:
    hits = 0
    for i, a in enumerate(first):
        own = float(np.dot(unit(a), unit(second[i])))
        others = [
            float(np.dot(unit(a), unit(second[j])))
            for j in range(len(second))
            if j != i and (cells is None or cells[j] == cells[i])
        ]
        hits += int(not others or own > max(others))
    return hits / len(first)


def reference_leakage(features: np.ndarray, sensitive: np.ndarray, seed: int, folds: int = 5) -> float:
    """Balanced accuracy of out-of-fold predictions, one fold at a time, recall averaged by hand."""
    predicted = np.empty_like(sensitive)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(features, sensitive):
        scaler = StandardScaler().fit(features[train])
        model = LogisticRegression(max_iter=1000).fit(scaler.transform(features[train]), sensitive[train])
        predicted[test] = model.predict(scaler.transform(features[test]))
    recalls = [float(np.mean(predicted[sensitive == s] == s)) for s in np.unique(sensitive)]
    return sum(recalls) / len(recalls)


def reference_bias_sensitivity(features: np.ndarray) -> float:
    n, k, _ = features.shape
    rows = [[unit(features[i, c]) for c in range(k)] for i in range(n)]
    grand = sum(sum(r) for r in rows) / (n * k)
    within = sum(float(np.dot(v - sum(r) / k, v - sum(r) / k)) for r in rows for v in r)
    total = sum(float(np.dot(v - grand, v - grand)) for r in rows for v in r)
    return within / total


@pytest.fixture
def sample() -> tuple[torch.Tensor, Views, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    targets = np.repeat([0, 1, 2], 20)
    sensitive = np.tile([0, 1], 30)
    features = torch.from_numpy(rng.normal(size=(60, 5)) + 0.8 * sensitive[:, None]).float()
    views = Views(features + 0.3 * torch.randn(60, 5), features + 0.3 * torch.randn(60, 5))
    return features, views, targets, sensitive


def test_cell_ids_number_each_target_and_sensitive_pair() -> None:
    ids = cell_ids(np.array([0, 0, 1, 1, 0]), np.array([2, 3, 2, 2, 2]))
    assert ids[0] == ids[4] and ids[2] == ids[3]
    assert len({ids[0], ids[1], ids[2]}) == 3


def test_feature_diagnostics_match_per_sample_references(sample) -> None:
    features, views, targets, sensitive = sample
    found = feature_diagnostics(features, targets, sensitive, seed=0, views=views)
    x, a, b = features.double().numpy(), views.first.double().numpy(), views.second.double().numpy()
    assert found["variance_ratio"] == pytest.approx(reference_variance_ratio(x, targets), rel=1e-9)
    assert found["uniformity"] == pytest.approx(reference_uniformity(x), rel=1e-9)
    assert found["alignment"] == pytest.approx(reference_alignment(a, b), rel=1e-9)
    assert found["instance_retrieval"] == reference_retrieval(a, b)
    cells = [int(3 * s + y) for y, s in zip(targets, sensitive, strict=True)]
    assert found["instance_retrieval_within_cell"] == reference_retrieval(a, b, cells)
    assert found["instance_retrieval_within_cell"] > found["instance_retrieval"]  # fewer candidates
    assert found["leakage"] == pytest.approx(reference_leakage(x, sensitive, seed=0), abs=1e-12)
    assert found["leakage"] > 0.7  # the features carry the sensitive value
    per_class = [reference_leakage(x[targets == y], sensitive[targets == y], seed=0) for y in (0, 1, 2)]
    assert found["leakage_within_class"] == pytest.approx(sum(per_class) / 3, abs=1e-12)


def test_without_views_only_the_feature_diagnostics_are_measured(sample) -> None:
    features, _, targets, sensitive = sample
    found = feature_diagnostics(features, targets, sensitive, seed=0)
    assert list(found) == [n for n, m in REPRESENTATION_METRICS.items() if m.need == "features"]
    assert {"variance_ratio", "uniformity", "leakage", "leakage_within_class"} == set(found)


def test_counterfactual_diagnostics_match_references() -> None:
    rng = np.random.default_rng(2)
    counterfactual = torch.from_numpy(rng.normal(size=(6, 3, 4))).float()
    predictions = np.array([0, 1, 1, 0, 2, 2])

    def predict(rows: torch.Tensor) -> torch.Tensor:
        return (rows[:, 0] > 0).long()  # [m] from features [m, D]

    found, recoloured = counterfactual_diagnostics(counterfactual, predictions, predict)
    expected = [[int(counterfactual[i, k, 0] > 0) for k in range(3)] for i in range(6)]
    assert recoloured.tolist() == expected
    flips = sum(expected[i][k] != predictions[i] for i in range(6) for k in range(3))
    assert found["counterfactual_flip_rate"] == flips / 18
    assert found["bias_sensitivity"] == pytest.approx(
        reference_bias_sensitivity(counterfactual.double().numpy()), rel=1e-9
    )


def test_large_test_sets_subsample_uniformity_and_leakage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diagnostics, "SUBSAMPLE_POINTS", 50)
    rng = np.random.default_rng(1)
    features = torch.from_numpy(rng.normal(size=(80, 4))).float()
    targets, sensitive = rng.integers(0, 2, size=80), rng.integers(0, 2, size=80)
    chosen = np.sort(np.random.default_rng(3).choice(80, size=50, replace=False))
    found = feature_diagnostics(features, targets, sensitive, seed=3)
    x = features.double().numpy()
    assert found["uniformity"] == pytest.approx(reference_uniformity(x[chosen]), rel=1e-9)
    assert found["uniformity"] != pytest.approx(reference_uniformity(x), rel=1e-9)
    assert found["leakage"] == pytest.approx(reference_leakage(x[chosen], sensitive[chosen], seed=3), abs=1e-12)
    assert found["variance_ratio"] == pytest.approx(reference_variance_ratio(x, targets), rel=1e-9)


def test_every_registered_diagnostic_has_a_representation_spec() -> None:
    for name in REPRESENTATION_METRICS:
        assert METRIC_SPECS[name].kind == "representation", name
    assert {n for n, s in METRIC_SPECS.items() if s.kind == "representation"} == set(REPRESENTATION_METRICS)
