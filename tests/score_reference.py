"""Data and slow references shared by the score-metric tests."""

from __future__ import annotations

import math

import numpy as np
from scipy import special

DTYPES = (np.float16, np.float32, np.float64)


def binary_data(n: int, n_groups: int, seed: int, decimals: int | None = None) -> tuple[np.ndarray, ...]:
    """Groups that differ in size, base rate and separation; ``decimals`` rounds scores (ties)."""
    rng = np.random.default_rng(seed)
    sensitive = rng.choice(n_groups, size=n, p=rng.dirichlet(np.full(n_groups, 3.0)))
    targets = (rng.random(n) < rng.uniform(0.2, 0.8, n_groups)[sensitive]).astype(np.int64)
    latent = rng.standard_normal(n) + rng.uniform(0.3, 2.0, n_groups)[sensitive] * (2 * targets - 1)
    scores = special.expit(latent)
    if decimals is not None:
        scores = np.round(scores, decimals)
    return targets, scores, sensitive


def multiclass_data(n: int, n_classes: int, n_groups: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    sensitive = rng.integers(0, n_groups, n)
    targets = rng.integers(0, n_classes, n)
    logits = rng.standard_normal((n, n_classes)) + 1.5 * np.eye(n_classes)[targets]
    return targets, special.softmax(logits, axis=1), sensitive


def as_dtype(scores: np.ndarray, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """Scores in ``dtype`` and their float64 values (what the metrics compute on)."""
    cast = scores.astype(dtype)
    return cast, cast.astype(np.float64)


def loop_ece(targets: np.ndarray, probabilities: np.ndarray) -> float:
    """Per-bin loop: top-label confidence, bins ``b/10 ≤ c < (b + 1)/10``, 1.0 in the last bin."""
    if probabilities.ndim == 1:
        probabilities = np.stack([1 - probabilities, probabilities], axis=1)
    total = 0.0
    rows = []
    for row, target in zip(probabilities.tolist(), targets.tolist(), strict=True):
        predicted = max(range(len(row)), key=lambda c: (row[c], -c))  # first largest
        rows.append((row[predicted], 1.0 if predicted == target else 0.0))
    for b in range(10):
        low, high = b / 10, (b + 1) / 10
        members = [(c, k) for c, k in rows if low <= c < high or (b == 9 and c == 1.0)]
        if members:
            total += (
                len(members)
                / len(rows)
                * abs(math.fsum(c for c, _ in members) / len(members) - math.fsum(k for _, k in members) / len(members))
            )
    return total
