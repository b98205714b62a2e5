"""Representation diagnostics against per-sample loops written from their definitions (float64)."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pytest
import torch

from ceco_fair.errors import CecoFairError
from ceco_fair.metrics import (
    alignment,
    bias_sensitivity,
    instance_retrieval,
    leakage,
    uniformity,
    variance_ratio,
)

LOGGER = "ceco_fair.metrics.representation"


def unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(math.fsum(v * v for v in vector))
    return [v / max(norm, 1e-12) for v in vector]


def rows(values: Any) -> list[list[float]]:
    """Rows as python floats (float64), from numpy or torch."""
    array = values.double().numpy() if isinstance(values, torch.Tensor) else np.asarray(values, dtype=np.float64)
    return [list(map(float, row)) for row in array]


def dot(a: list[float], b: list[float]) -> float:
    return math.fsum(x * y for x, y in zip(a, b, strict=True))


def squared_distance(a: list[float], b: list[float]) -> float:
    return math.fsum((x - y) ** 2 for x, y in zip(a, b, strict=True))


def slow_retrieval(view1: Any, view2: Any, labels: Any = None) -> float:
    a = [unit(r) for r in rows(view1)]
    b = [unit(r) for r in rows(view2)]
    n = len(a)
    hits = 0
    for i in range(n):
        own = dot(a[i], b[i])
        others = [dot(a[i], b[j]) for j in range(n) if j != i and (labels is None or labels[j] == labels[i])]
        hits += all(own > other for other in others)
    return hits / n


def slow_alignment(view1: Any, view2: Any) -> float:
    a = [unit(r) for r in rows(view1)]
    b = [unit(r) for r in rows(view2)]
    return math.fsum(squared_distance(x, y) for x, y in zip(a, b, strict=True)) / len(a)


def slow_uniformity(features: Any, t: float) -> float:
    z = [unit(r) for r in rows(features)]
    n = len(z)
    terms = [math.exp(-t * squared_distance(z[i], z[j])) for i in range(n) for j in range(i + 1, n)]
    return math.log(math.fsum(terms) / len(terms))


def mean_of(vectors: list[list[float]]) -> list[float]:
    return [math.fsum(column) / len(vectors) for column in zip(*vectors, strict=True)]


def slow_variance_ratio(features: Any, labels: Any) -> float:
    z = [unit(r) for r in rows(features)]
    centre = mean_of(z)
    means = {c: mean_of([v for v, lab in zip(z, labels, strict=True) if lab == c]) for c in set(labels)}
    within = math.fsum(squared_distance(v, means[lab]) for v, lab in zip(z, labels, strict=True))
    total = math.fsum(squared_distance(v, centre) for v in z)
    return 0.0 if total == 0 else within / total


def slow_bias_sensitivity(features: np.ndarray) -> float:
    f = [[unit(list(map(float, vector))) for vector in image] for image in features]
    centre = mean_of([v for image in f for v in image])
    within = math.fsum(squared_distance(v, mean_of(image)) for image in f for v in image)
    total = math.fsum(squared_distance(v, centre) for image in f for v in image)
    return 0.0 if total == 0 else within / total


def two_views(n: int, dim: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    view1 = rng.normal(size=(n, dim))
    return view1, view1 + noise * rng.normal(size=(n, dim))


@pytest.mark.parametrize("block_size", [1, 7, 64, 150, 1000])
@pytest.mark.parametrize("with_labels", [False, True])
def test_retrieval_matches_loop(block_size: int, with_labels: bool) -> None:
    view1, view2 = two_views(150, 6, noise=0.8, seed=block_size)
    labels = np.random.default_rng(1).integers(0, 4, size=150) if with_labels else None
    expected = slow_retrieval(view1, view2, None if labels is None else labels.tolist())
    assert 0.05 < expected < 0.95, "the inputs should make retrieval non-trivial"
    assert instance_retrieval(view1, view2, labels, block_size=block_size) == pytest.approx(expected, abs=1e-9)


def test_retrieval_torch_inputs() -> None:
    view1, view2 = two_views(90, 5, noise=0.7, seed=3)
    t1, t2 = torch.from_numpy(view1).float(), torch.from_numpy(view2).float()
    labels = torch.arange(90) % 3
    expected = slow_retrieval(t1, t2, labels.tolist())
    assert instance_retrieval(t1, t2, labels, block_size=16) == pytest.approx(expected, abs=1e-9)


def test_retrieval_labels_restrict_candidates() -> None:
    view1, view2 = two_views(120, 4, noise=1.5, seed=4)
    labels = np.arange(120) % 6
    assert instance_retrieval(view1, view2, labels) > instance_retrieval(view1, view2)


@pytest.mark.parametrize("closer", [0, 1])
def test_retrieval_decides_float32_near_ties_in_float64(closer: int) -> None:
    """Two candidates 1e-10 apart in cosine, far below float32 resolution."""
    angles = [1e-3, 1e-3 + 1e-7] if closer == 0 else [1e-3 + 1e-7, 1e-3]
    view1 = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    view2 = np.array([[math.cos(angles[0]), math.sin(angles[0]), 0.0], [math.cos(angles[1]), 0.0, math.sin(angles[1])]])
    expected = slow_retrieval(view1, view2)
    assert instance_retrieval(view1, view2) == expected
    assert expected == (1.0 if closer == 0 else 0.5)


def test_retrieval_ties_are_misses() -> None:
    view = np.ones((5, 3))
    assert instance_retrieval(view, view) == 0.0
    assert instance_retrieval(view, view, labels=np.arange(5)) == 1.0


def test_retrieval_edge_cases() -> None:
    one = np.array([[0.3, -1.0]])
    zero_first = np.r_[np.zeros((1, 2)), np.eye(2)]
    assert instance_retrieval(zero_first, zero_first) == pytest.approx(slow_retrieval(zero_first, zero_first))
    assert instance_retrieval(one, one) == 1.0
    view1, view2 = two_views(40, 3, noise=1.0, seed=5)
    assert instance_retrieval(view1, view2, np.zeros(40, dtype=int)) == instance_retrieval(view1, view2)
    labels = np.r_[0, np.ones(39, dtype=int)]  # label 0 has one member: always retrieved
    assert instance_retrieval(view1, view2, labels) == pytest.approx(slow_retrieval(view1, view2, labels.tolist()))


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_alignment_matches_loop(kind: str) -> None:
    view1, view2 = two_views(50, 7, noise=0.5, seed=6)
    if kind == "torch":
        view1, view2 = torch.from_numpy(view1), torch.from_numpy(view2)  # type: ignore[assignment]
    assert alignment(view1, view2) == pytest.approx(slow_alignment(view1, view2), abs=1e-12)
    assert alignment(view1, view1) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(("n", "block_size", "t"), [(2, 1, 2.0), (97, 10, 2.0), (97, 97, 0.5), (64, 500, 7.0)])
def test_uniformity_matches_loop(n: int, block_size: int, t: float) -> None:
    features = np.random.default_rng(n).normal(size=(n, 5))
    assert uniformity(features, t, block_size=block_size) == pytest.approx(slow_uniformity(features, t), abs=1e-9)


def test_uniformity_torch_and_edges(caplog: pytest.LogCaptureFixture) -> None:
    features = torch.randn(30, 4, generator=torch.Generator().manual_seed(0))
    assert uniformity(features, block_size=4) == pytest.approx(slow_uniformity(features, 2.0), abs=1e-9)
    assert uniformity(np.ones((6, 3))) == 0.0
    with_zero_row = np.r_[np.zeros((1, 4)), features.numpy()[:9]]  # a zero row stays zero
    assert uniformity(with_zero_row, block_size=3) == pytest.approx(slow_uniformity(with_zero_row, 2.0), abs=1e-9)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert math.isnan(uniformity(np.ones((1, 3))))
    assert "no pair" in caplog.text
    with pytest.raises(CecoFairError, match="t must be"):
        uniformity(features, t=0.0)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_variance_ratio_matches_loop(kind: str) -> None:
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 5, size=80)
    features = rng.normal(size=(80, 6)) + 2.0 * labels[:, None]
    args: tuple[Any, Any] = (features, labels)
    if kind == "torch":
        args = (torch.from_numpy(features).float(), torch.from_numpy(labels))
    expected = slow_variance_ratio(args[0], labels.tolist())
    assert variance_ratio(*args) == pytest.approx(expected, abs=1e-9)
    assert 0.0 < expected < 1.0


def test_variance_ratio_edges() -> None:
    features = np.random.default_rng(8).normal(size=(10, 3))
    assert variance_ratio(features, np.zeros(10, dtype=int)) == pytest.approx(1.0)
    assert variance_ratio(features, np.arange(10)) == 0.0  # every sample alone in its class
    assert variance_ratio(np.ones((4, 3)), [0, 0, 1, 1]) == 0.0  # 0/0: identical rows
    assert variance_ratio(features[:1], [3]) == 0.0
    collapsed = np.repeat(np.eye(3), 4, axis=0)
    assert variance_ratio(collapsed, np.repeat(np.arange(3), 4)) == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_bias_sensitivity_matches_loop(kind: str) -> None:
    features = np.random.default_rng(9).normal(size=(12, 4, 5))
    features[:, :, 0] += 3.0 * np.arange(12)[:, None]
    given: Any = torch.from_numpy(features) if kind == "torch" else features
    expected = slow_bias_sensitivity(features)
    assert bias_sensitivity(given) == pytest.approx(expected, abs=1e-9)
    assert 0.0 < expected < 1.0


def test_bias_sensitivity_edges() -> None:
    assert bias_sensitivity(np.ones((3, 4, 2))) == 0.0  # 0/0
    per_image = np.random.default_rng(10).normal(size=(5, 1, 3))
    assert bias_sensitivity(np.repeat(per_image, 4, axis=1)) == pytest.approx(0.0, abs=1e-15)
    per_colour = np.random.default_rng(11).normal(size=(1, 4, 3))
    assert bias_sensitivity(np.repeat(per_colour, 5, axis=0)) == pytest.approx(1.0)
    with pytest.raises(CecoFairError, match=r"features must be a 3-D array \[n, K, D\]"):
        bias_sensitivity(np.ones((3, 4)))


def test_shape_and_argument_errors() -> None:
    with pytest.raises(CecoFairError, match="view2 has shape"):
        instance_retrieval(np.ones((3, 2)), np.ones((4, 2)))
    with pytest.raises(CecoFairError, match="block_size"):
        instance_retrieval(np.ones((3, 2)), np.ones((3, 2)), block_size=0)
    with pytest.raises(CecoFairError, match="labels has 2 entries"):
        instance_retrieval(np.ones((3, 2)), np.ones((3, 2)), labels=[0, 1])
    with pytest.raises(CecoFairError, match="view1 has no rows"):
        alignment(np.ones((0, 2)), np.ones((0, 2)))
    with pytest.raises(CecoFairError, match="folds"):
        leakage(np.ones((10, 2)), np.arange(10) % 2, folds=1)


def leakage_data(n: int = 2000, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, 2, size=n)
    follows = np.where(rng.random(n) < 0.9, targets, 1 - targets)
    return {
        "targets": targets,
        "follows": follows,
        "independent": rng.integers(0, 3, size=n),
        "noise": rng.normal(size=(n, 4)),
        "target_features": np.c_[targets + 0.1 * rng.normal(size=n), rng.normal(size=(n, 3))],
    }


def test_leakage_reads_a_written_sensitive_value() -> None:
    data = leakage_data()
    s = data["independent"]
    features = data["noise"].copy()
    features[:, 0] = s + 0.05 * features[:, 0]
    assert leakage(features, s) >= 0.95


def test_leakage_of_independent_features_is_chance() -> None:
    data = leakage_data()
    assert leakage(data["noise"], data["independent"]) <= 1 / 3 + 0.08
    assert leakage(data["noise"], data["follows"], data["targets"]) <= 0.5 + 0.08


def test_leakage_through_the_target_only() -> None:
    data = leakage_data()
    assert leakage(data["target_features"], data["follows"]) > 0.8
    assert leakage(data["target_features"], data["follows"], data["targets"]) <= 0.5 + 0.08


def test_leakage_weights_classes_by_size_and_is_deterministic() -> None:
    data = leakage_data(600, seed=1)
    targets = np.where(np.arange(600) < 400, 0, 1)
    features, s = data["noise"], data["independent"]
    features[:, 1] += 0.5 * s
    per_class = [leakage(features[targets == c], s[targets == c], folds=3, seed=2) for c in (0, 1)]
    combined = leakage(features, s, targets, folds=3, seed=2)
    assert combined == pytest.approx((400 * per_class[0] + 200 * per_class[1]) / 600, abs=1e-12)
    assert combined == leakage(torch.from_numpy(features), torch.from_numpy(s), targets, folds=3, seed=2)


def test_leakage_skips_classes_it_cannot_cross_validate(caplog: pytest.LogCaptureFixture) -> None:
    data = leakage_data(300, seed=2)
    targets = np.repeat([0, 1, 2], 100)
    s = data["independent"] % 2
    s[100:200] = 1  # class 1: a single sensitive value
    s[200:204], s[204:300] = 0, 1  # class 2: value 0 has 4 members < 5 folds
    with caplog.at_level(logging.INFO, logger=LOGGER):
        score = leakage(data["noise"], s, targets)
    assert score == pytest.approx(leakage(data["noise"][:100], s[:100]), abs=1e-12)
    assert "target classes [1, 2] skipped" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert math.isnan(leakage(data["noise"], np.ones(300, dtype=int)))
        assert math.isnan(leakage(data["noise"][100:], s[100:], targets[100:]))
    assert caplog.text.count("NaN") == 2
