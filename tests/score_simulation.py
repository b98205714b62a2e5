"""Simulated scores with known population metrics, for coverage checks of the score intervals.

Binary target. In group ``g`` a row is positive with probability ``BASE_RATE``; its latent value is
``x ~ N(μ_y, 1)`` with ``μ₁ = SEPARATION / 2``, ``μ₀ = −SEPARATION / 2``, and its score is
``sigmoid(x)``. The true posterior is ``sigmoid(SEPARATION · x)``, so the scores are miscalibrated
(underconfident) unless ``SEPARATION = 1``. Group 0 optionally has ``μ₁`` lowered by ``shift``
(lower AUROC and mean score, another calibration and score distribution); it holds ``small_share``
of the rows when given, else all groups are equally likely.

Population values (the truth the intervals should cover) follow from the model: AUROC
``Φ((μ₁ − μ₀)/√2)``; mean scores by Gauss-Hermite quadrature; the binned ECE and the area between
CDFs by adaptive quadrature over the latent value.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass

import numpy as np
from interval_simulation import group_weights, sizes_text
from scipy import integrate, special, stats

from ceco_fair.metrics.score_intervals import score_metrics
from ceco_fair.metrics.scores import BIN_EDGES, ECE_BINS

BASE_RATE = 0.5
SEPARATION = 2.0
NAMES = ("worst_group_auroc", "auroc_gap", "ece_gap", "score_gap", "abcc")
"""Metrics whose intervals the simulation checks."""
GAP_REPLICATES = {"auroc_gap": "group_auroc", "ece_gap": "group_ece", "score_gap": "group_mean"}
"""Gaps whose percentile interval can be read off per-group replicates (for comparison)."""


@dataclass(frozen=True)
class ScoreScenario:
    n_groups: int
    shift: float = 0.0
    small_share: float | None = None
    n: int = 4_000

    @property
    def label(self) -> str:
        disparity = "no disparity" if self.shift == 0 else f"group 0 positives shifted -{self.shift:g}"
        return f"{self.n_groups} groups, {disparity}, {sizes_text(self.small_share)}"

    def weights(self) -> np.ndarray:
        return group_weights(self.n_groups, self.small_share)

    def means(self) -> np.ndarray:
        """Latent means ``[G, 2]`` (column ``y``)."""
        table = np.tile([-SEPARATION / 2, SEPARATION / 2], (self.n_groups, 1))
        table[0, 1] -= self.shift
        return table

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(targets, scores, sensitive)``, each ``[n]``."""
        sensitive = rng.choice(self.n_groups, size=self.n, p=self.weights())
        targets = (rng.random(self.n) < BASE_RATE).astype(np.int64)
        latent = rng.standard_normal(self.n) + self.means()[sensitive, targets]
        return targets, special.expit(latent), sensitive

    def truth(self) -> dict[str, float]:
        """Population values of :data:`NAMES`, from the model."""
        means = self.means()
        auroc = stats.norm.cdf((means[:, 1] - means[:, 0]) / math.sqrt(2.0))
        mean_score = np.array([_mean_score(m0, m1) for m0, m1 in means])
        ece = np.array([_ece(m0, m1) for m0, m1 in means])
        pairs = itertools.combinations(range(self.n_groups), 2)
        abcc = max(_area_between(means[a], means[b]) for a, b in pairs)
        return {
            "worst_group_auroc": float(auroc.min()),
            "auroc_gap": float(np.ptp(auroc)),
            "ece_gap": float(np.ptp(ece)),
            "score_gap": float(np.ptp(mean_score)),
            "abcc": float(abcc),
        }


def _mean_score(mean_0: float, mean_1: float) -> float:
    nodes, weights = np.polynomial.hermite_e.hermegauss(120)
    weights = weights / weights.sum()
    positive = float(weights @ special.expit(nodes + mean_1))
    negative = float(weights @ special.expit(nodes + mean_0))
    return BASE_RATE * positive + (1 - BASE_RATE) * negative


def _ece(mean_0: float, mean_1: float) -> float:
    """``Σ_b |E[(confidence − correct) 1{confidence ∈ b}]|`` by quadrature over the latent value."""

    def excess(x: float) -> float:
        positive = BASE_RATE * stats.norm.pdf(x - mean_1)
        negative = (1 - BASE_RATE) * stats.norm.pdf(x - mean_0)
        confidence = special.expit(abs(x))
        correct = positive if x > 0 else negative  # the predicted class is 1 iff sigmoid(x) > 0.5
        return float(confidence * (positive + negative) - correct)

    total = 0.0
    for b in range(ECE_BINS // 2, ECE_BINS):
        low = special.logit(BIN_EDGES[b]) if b > ECE_BINS // 2 else 0.0
        high = special.logit(BIN_EDGES[b + 1]) if b < ECE_BINS - 1 else math.inf
        right = integrate.quad(excess, low, high, epsabs=1e-12, limit=200)[0]
        left = integrate.quad(excess, -high, -low, epsabs=1e-12, limit=200)[0]
        total += abs(right + left)
    return total


def _area_between(means_a: np.ndarray, means_b: np.ndarray) -> float:
    """``∫₀¹ |F_a(t) − F_b(t)| dt``, written over the latent value ``x = logit(t)``."""

    def cdf(x: float, means: np.ndarray) -> float:
        return float(BASE_RATE * stats.norm.cdf(x - means[1]) + (1 - BASE_RATE) * stats.norm.cdf(x - means[0]))

    def gap(x: float) -> float:
        density = special.expit(x) * special.expit(-x)
        return abs(cdf(x, means_a) - cdf(x, means_b)) * density

    return float(integrate.quad(gap, -math.inf, math.inf, epsabs=1e-12, limit=400)[0])


@dataclass(frozen=True)
class ScoreCase:
    estimates: dict[str, np.ndarray]  # [D] plug-in values
    bands: dict[str, tuple[np.ndarray, np.ndarray]]  # [D] each: the reported intervals
    percentile: dict[str, tuple[np.ndarray, np.ndarray]]  # [D] each: percentiles of the gap replicates
    p_values: dict[str, np.ndarray]  # [D]


def run_case(scenario: ScoreScenario, n_datasets: int, n_boot: int, seed: int, confidence: float = 0.95) -> ScoreCase:
    """The reported intervals of :data:`NAMES` (and gap percentiles) for ``n_datasets`` draws."""
    rng = np.random.default_rng(seed)
    estimates: dict[str, list[float]] = {name: [] for name in NAMES}
    bands: dict[str, list[tuple[float, float]]] = {name: [] for name in NAMES}
    percentile: dict[str, list[tuple[float, float]]] = {name: [] for name in GAP_REPLICATES}
    p_values: dict[str, list[float]] = {name: [] for name in NAMES if name != "worst_group_auroc"}
    alpha = (1 - confidence) / 2
    for index in range(n_datasets):
        targets, scores, sensitive = scenario.draw(rng)
        result = score_metrics(
            targets,
            scores,
            sensitive,
            n_boot=n_boot,
            confidence=confidence,
            seed=seed * 100_003 + index,
            keep_replicates=True,
        )
        for name in NAMES:
            estimates[name].append(result.values[name])
            bands[name].append((result.values[f"{name}_ci_low"], result.values[f"{name}_ci_high"]))
            if name in p_values:
                p_values[name].append(result.values[f"{name}_p_value"])
        for name, key in GAP_REPLICATES.items():
            replicates = result.replicates[key]
            gaps = np.nanmax(replicates, axis=1) - np.nanmin(replicates, axis=1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                percentile[name].append(tuple(np.nanquantile(gaps, [alpha, 1 - alpha])))
    return ScoreCase(
        estimates={name: np.array(values) for name, values in estimates.items()},
        bands={name: _pair(values) for name, values in bands.items()},
        percentile={name: _pair(values) for name, values in percentile.items()},
        p_values={name: np.array(values) for name, values in p_values.items()},
    )


def _pair(values: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    array = np.array(values, dtype=np.float64).reshape(-1, 2)
    return array[:, 0], array[:, 1]


def coverage(interval: tuple[np.ndarray, np.ndarray], truth: float) -> float:
    low, high = interval
    return float(np.mean((low <= truth + 1e-12) & (truth - 1e-12 <= high)))


def mean_width(interval: tuple[np.ndarray, np.ndarray]) -> float:
    low, high = interval
    return float(np.mean(high - low))
