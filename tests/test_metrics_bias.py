"""Bias metrics (aligned / conflicting / unbiased accuracy) against slow loops."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pytest
import torch

from ceco_fair.errors import CecoFairError
from ceco_fair.metrics import bias_accuracy_matrix, bias_metrics

LOGGER = "ceco_fair.metrics.bias"


def biased_predictions(n: int, seed: int, rho: float = 0.3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Digits 0..9, colour == digit with probability rho, a model that leans on the colour."""
    rng = np.random.default_rng(seed)
    digit = rng.integers(0, 10, size=n)
    colour = np.where(rng.random(n) < rho, digit, rng.integers(0, 10, size=n))
    guess = np.where(rng.random(n) < 0.5, colour, digit)
    prediction = np.where(rng.random(n) < 0.1, rng.integers(0, 10, size=n), guess)
    return digit, prediction, colour


def slow_bias_metrics(y_true: Any, y_pred: Any, bias: Any) -> dict[str, float]:
    """The definitions, one sample at a time, in float64."""
    cells: dict[tuple[int, int], list[float]] = {}
    aligned: list[float] = []
    conflicting: list[float] = []
    for t, p, b in zip(y_true.tolist(), y_pred.tolist(), bias.tolist(), strict=True):
        hit = 1.0 if t == p else 0.0
        cells.setdefault((t, b), []).append(hit)
        (aligned if t == b else conflicting).append(hit)
    cell_accuracy = [math.fsum(v) / len(v) for v in cells.values()]
    return {
        "accuracy": math.fsum(aligned + conflicting) / len(y_true),
        "unbiased_accuracy": math.fsum(cell_accuracy) / len(cell_accuracy),
        "bias_aligned_accuracy": math.fsum(aligned) / len(aligned) if aligned else math.nan,
        "bias_conflicting_accuracy": (math.fsum(conflicting) / len(conflicting) if conflicting else math.nan),
    }


def slow_matrix(y_true: Any, y_pred: Any, bias: Any, n_classes: int, n_bias: int) -> np.ndarray:
    matrix = np.full((n_classes, n_bias), np.nan)
    for c in range(n_classes):
        for b in range(n_bias):
            hits = [t == p for t, p, s in zip(y_true, y_pred, bias, strict=True) if t == c and s == b]
            if hits:
                matrix[c, b] = sum(hits) / len(hits)
    return matrix


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bias_metrics_equal_slow_loop(seed: int) -> None:
    y_true, y_pred, bias = biased_predictions(700, seed)
    ours = bias_metrics(y_true, y_pred, bias)
    expected = slow_bias_metrics(y_true, y_pred, bias)
    assert list(ours) == list(expected)
    for name, value in expected.items():
        assert ours[name] == pytest.approx(value, abs=1e-12), name
    assert ours["bias_aligned_accuracy"] > ours["bias_conflicting_accuracy"]


def test_accuracy_matrix_equals_slow_loop_and_averages_to_unbiased_accuracy() -> None:
    y_true, y_pred, bias = biased_predictions(300, seed=3)
    matrix = bias_accuracy_matrix(y_true, y_pred, bias)
    assert matrix.shape == (10, 10)
    np.testing.assert_allclose(matrix, slow_matrix(y_true, y_pred, bias, 10, 10), atol=1e-12)
    assert np.nanmean(matrix) == pytest.approx(bias_metrics(y_true, y_pred, bias)["unbiased_accuracy"], abs=1e-12)


def test_accuracy_matrix_marks_empty_cells_nan_and_honours_sizes() -> None:
    y_true = np.array([0, 0, 1, 2])
    y_pred = np.array([0, 1, 1, 0])
    bias = np.array([0, 1, 1, 1])
    matrix = bias_accuracy_matrix(y_true, y_pred, bias, n_classes=4, n_bias=3)
    expected = np.full((4, 3), np.nan)
    expected[0, 0], expected[0, 1], expected[1, 1], expected[2, 1] = 1.0, 0.0, 1.0, 0.0
    np.testing.assert_array_equal(matrix, expected)


def test_unbiased_accuracy_weights_cells_not_samples() -> None:
    # cell (0, 0): 9 samples all right; cell (1, 0): 1 sample wrong
    y_true = np.array([0] * 9 + [1])
    y_pred = np.array([0] * 9 + [0])
    bias = np.zeros(10, dtype=np.int64)
    ours = bias_metrics(y_true, y_pred, bias)
    assert ours["accuracy"] == pytest.approx(0.9)
    assert ours["unbiased_accuracy"] == pytest.approx(0.5)
    assert ours["bias_aligned_accuracy"] == 1.0
    assert ours["bias_conflicting_accuracy"] == 0.0


def test_no_aligned_samples_gives_nan_and_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    y_true = np.array([0, 1, 2, 3])
    y_pred = np.array([0, 1, 0, 3])
    bias = np.array([1, 2, 3, 0])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        ours = bias_metrics(y_true, y_pred, bias)
    assert math.isnan(ours["bias_aligned_accuracy"])
    assert ours["bias_conflicting_accuracy"] == 0.75
    assert "no bias-aligned samples" in caplog.text


def test_no_conflicting_samples_gives_nan_and_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    y_true = np.array([0, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 2])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        ours = bias_metrics(y_true, y_pred, y_true.copy())
    assert math.isnan(ours["bias_conflicting_accuracy"])
    assert ours["bias_aligned_accuracy"] == 0.75
    assert ours["unbiased_accuracy"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert "no bias-conflicting samples" in caplog.text


def test_torch_inputs_equal_numpy_inputs() -> None:
    y_true, y_pred, bias = biased_predictions(200, seed=4)
    as_torch = [torch.from_numpy(a) for a in (y_true, y_pred, bias)]
    assert bias_metrics(*as_torch) == bias_metrics(y_true, y_pred, bias)
    np.testing.assert_array_equal(bias_accuracy_matrix(*as_torch), bias_accuracy_matrix(y_true, y_pred, bias))


@pytest.mark.parametrize(
    ("arrays", "kwargs", "pattern"),
    [
        (([0, 1], [0, 1, 1], [0, 1]), {}, r"y_pred has 3 entries but y_true has 2"),
        (([0, 1], [0, 1], [0]), {}, r"bias has 1 entries but y_true has 2"),
        (([0, -1], [0, 1], [0, 1]), {}, r"y_true must hold integers in \[0, 2\), found .*-1"),
        (([0, 1], [0, 1], [0, 5]), {"n_bias": 3}, r"bias must hold integers in \[0, 3\)"),
        (([0, 4], [0, 1], [0, 1]), {"n_classes": 3}, r"y_true must hold integers in \[0, 3\)"),
        (([0, 1], [0, 1], [0, 1]), {"n_classes": 0}, r"n_classes must be a positive integer"),
        (([0.5, 1], [0, 1], [0, 1]), {}, r"y_true must hold integer labels"),
    ],
)
def test_bad_inputs_raise_one_line_errors(arrays: tuple[Any, Any, Any], kwargs: dict[str, Any], pattern: str) -> None:
    with pytest.raises(CecoFairError, match=pattern) as info:
        bias_accuracy_matrix(*(np.asarray(a) for a in arrays), **kwargs)
    assert "\n" not in str(info.value)
    if not kwargs:
        with pytest.raises(CecoFairError, match=pattern):
            bias_metrics(*(np.asarray(a) for a in arrays))
