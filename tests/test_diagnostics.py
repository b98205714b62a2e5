import numpy as np
import pytest
import torch

from ceco_fair.evaluation import diagnostics
from ceco_fair.evaluation.diagnostics import Views, cell_ids, feature_diagnostics
from ceco_fair.metrics import alignment, instance_retrieval, leakage, uniformity, variance_ratio


def test_cell_ids_number_each_target_and_sensitive_pair():
    ids = cell_ids(np.array([0, 0, 1, 1, 0]), np.array([2, 3, 2, 2, 2]))
    assert ids[0] == ids[4] and ids[2] == ids[3]
    assert len({ids[0], ids[1], ids[2]}) == 3


def test_feature_diagnostics_are_the_metric_functions_under_their_names():
    rng = np.random.default_rng(0)
    features = torch.from_numpy(rng.normal(size=(120, 6))).float()
    views = Views(features + 0.1 * torch.randn(120, 6), features + 0.1 * torch.randn(120, 6))
    targets = rng.integers(0, 3, size=120)
    sensitive = rng.integers(0, 2, size=120)
    found = feature_diagnostics(features, targets, sensitive, seed=0, views=views)
    assert found["variance_ratio"] == variance_ratio(features, targets)
    assert found["uniformity"] == uniformity(features)
    assert found["leakage"] == leakage(features, sensitive, seed=0)
    assert found["leakage_within_class"] == leakage(features, sensitive, targets, seed=0)
    assert found["alignment"] == alignment(views.first, views.second)
    assert found["instance_retrieval"] == instance_retrieval(views.first, views.second)
    cells = targets * 2 + sensitive
    assert found["instance_retrieval_within_cell"] == instance_retrieval(views.first, views.second, cells)
    assert "alignment" not in feature_diagnostics(features, targets, sensitive, seed=0)


def test_large_test_sets_subsample_uniformity_and_leakage(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(diagnostics, "SUBSAMPLE_POINTS", 50)
    rng = np.random.default_rng(1)
    features = torch.from_numpy(rng.normal(size=(80, 4))).float()
    targets, sensitive = rng.integers(0, 2, size=80), rng.integers(0, 2, size=80)
    chosen = np.sort(np.random.default_rng(3).choice(80, size=50, replace=False))
    found = feature_diagnostics(features, targets, sensitive, seed=3)
    assert found["uniformity"] == uniformity(features[torch.from_numpy(chosen)])
    assert found["leakage"] == leakage(features[torch.from_numpy(chosen)], sensitive[chosen], seed=3)
    assert found["variance_ratio"] == variance_ratio(features, targets)
