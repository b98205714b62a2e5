"""Simulated group-fairness data with known rates, drawn as confusion counts, for coverage checks.

Every group has the same base rate (0.5), TPR 0.8 and FPR 0.2 (so selection rate 0.5 and cell
accuracies 0.8 everywhere: all groups tie), except optionally the first group, whose TPR, FPR and
selection rate are ``gap`` lower. Group 0 holds ``small_share`` of the rows when given (the other
groups share the rest equally), else all groups are equally likely. Datasets are count tables
``[D, G, 2, 2]`` drawn with one multinomial each; their bootstrap is the multinomial count draw.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ceco_fair.metrics.group import metrics_from_counts
from ceco_fair.metrics.intervals import (
    critical_values,
    homogeneity_p_values,
    interval_names,
    max_t_statistics,
    simultaneous_intervals,
)

BASE_RATE, TPR, FPR = 0.5, 0.8, 0.2


def group_weights(n_groups: int, small_share: float | None) -> np.ndarray:
    """Each group's share of the rows: equal, or group 0 at ``small_share`` and the others equal."""
    if small_share is None:
        return np.full(n_groups, 1.0 / n_groups)
    rest = (1.0 - small_share) / (n_groups - 1)
    return np.array([small_share] + [rest] * (n_groups - 1))


def sizes_text(small_share: float | None) -> str:
    """How a scenario's group sizes are named in the tables."""
    return "equal sizes" if small_share is None else f"group 0 {small_share:.0%}"


@dataclass(frozen=True)
class Scenario:
    n_groups: int
    gap: float = 0.0
    small_share: float | None = None
    n: int = 6_000

    @property
    def label(self) -> str:
        rates = "equal rates" if self.gap == 0 else f"group 0 {100 * self.gap:.0f} pts lower"
        return f"{self.n_groups} groups, {rates}, {sizes_text(self.small_share)}"

    def weights(self) -> np.ndarray:
        return group_weights(self.n_groups, self.small_share)

    def rates(self) -> tuple[np.ndarray, np.ndarray]:
        """True TPR and FPR per group, ``[G]`` each."""
        shift = np.zeros(self.n_groups)
        shift[0] = self.gap
        return TPR - shift, FPR - shift

    def cell_probabilities(self) -> np.ndarray:
        """``P(s = g, y = t, ŷ = p)``, shape ``[G, 2, 2]``."""
        tpr, fpr = self.rates()
        w = self.weights()
        table = np.empty((self.n_groups, 2, 2))
        table[:, 0, 0] = w * (1 - BASE_RATE) * (1 - fpr)
        table[:, 0, 1] = w * (1 - BASE_RATE) * fpr
        table[:, 1, 0] = w * BASE_RATE * (1 - tpr)
        table[:, 1, 1] = w * BASE_RATE * tpr
        return table

    def truth(self) -> dict[str, float]:
        """Population values, written from the definitions on the true rates."""
        tpr, fpr = self.rates()
        selection = BASE_RATE * tpr + (1 - BASE_RATE) * fpr
        cells = np.stack([1 - fpr, tpr], axis=1)  # [G, C] accuracy of class 0 and 1
        pairs = list(itertools.combinations(range(self.n_groups), 2))
        per_class = [np.mean([abs(cells[i, c] - cells[j, c]) for i, j in pairs]) for c in range(2)]
        return {
            "worst_group_accuracy": float(cells.min()),
            "demographic_parity_difference": float(np.ptp(selection)),
            "equalized_odds_difference": float(max(np.ptp(tpr), np.ptp(fpr))),
            "equal_opportunity_difference": float(np.ptp(tpr)),
            "eo_fscl": float(np.mean(per_class)),
        }

    def draw(self, n_datasets: int, rng: np.random.Generator) -> np.ndarray:
        """Count tables ``[D, G, 2, 2]``."""
        flat = rng.multinomial(self.n, self.cell_probabilities().reshape(-1), size=n_datasets)
        return flat.reshape(n_datasets, self.n_groups, 2, 2).astype(np.int64)


def resample(counts: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Count bootstrap of every dataset at once: ``[D, G, 2, 2] -> [B, D, G, 2, 2]``."""
    n_datasets = counts.shape[0]
    flat = counts.reshape(n_datasets, -1)
    draws = rng.multinomial(flat.sum(axis=1), flat / flat.sum(axis=1, keepdims=True), size=(n_boot, n_datasets))
    return draws.reshape(n_boot, *counts.shape).astype(np.int64)


@dataclass(frozen=True)
class CaseResult:
    estimates: dict[str, np.ndarray]  # [D] plug-in values
    percentile: dict[str, tuple[np.ndarray, np.ndarray]]  # [D] each
    simultaneous: dict[str, tuple[np.ndarray, np.ndarray]]
    p_values: dict[str, np.ndarray]


def run_case(scenario: Scenario, n_datasets: int, n_boot: int, seed: int, confidence: float = 0.95) -> CaseResult:
    """Plug-in values, percentile and simultaneous-band intervals, p-values for every dataset."""
    rng = np.random.default_rng(seed)
    counts = scenario.draw(n_datasets, rng)
    boot = resample(counts, n_boot, rng)
    estimates = metrics_from_counts(counts, rates=True)
    replicates = metrics_from_counts(boot, rates=True)
    alpha = (1 - confidence) / 2
    names = interval_names(rates=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        percentile = {name: tuple(np.nanquantile(replicates[name], [alpha, 1 - alpha], axis=0)) for name in names}
    critical = critical_values(max_t_statistics(counts, boot, rates=True), confidence)
    return CaseResult(
        estimates={name: estimates[name] for name in names},
        percentile=percentile,  # type: ignore[arg-type]
        simultaneous=simultaneous_intervals(counts, critical, rates=True),
        p_values=homogeneity_p_values(counts, rates=True),
    )


def coverage(interval: tuple[np.ndarray, np.ndarray], truth: float) -> float:
    low, high = interval
    return float(np.mean((low <= truth + 1e-12) & (truth - 1e-12 <= high)))


def mean_width(interval: tuple[np.ndarray, np.ndarray]) -> float:
    low, high = interval
    return float(np.mean(high - low))


def p_value_power(scenario: Scenario, name: str, level: float = 0.05) -> float:
    """Asymptotic power of the chi-square homogeneity test at ``level`` (noncentral chi-square).

    Noncentrality ``Σ_g n_g (p_g − p̄)² / (p̄ (1 − p̄))`` per rate with the expected group
    denominators ``n_g``, summed over the rates the metric's test sums.
    """
    tpr, fpr = scenario.rates()
    sizes = scenario.n * scenario.weights()
    blocks = {
        "demographic_parity_difference": [(BASE_RATE * tpr + (1 - BASE_RATE) * fpr, sizes)],
        "equal_opportunity_difference": [(tpr, sizes * BASE_RATE)],
    }
    blocks["equalized_odds_difference"] = [(tpr, sizes * BASE_RATE), (fpr, sizes * (1 - BASE_RATE))]
    blocks["eo_fscl"] = blocks["equalized_odds_difference"]
    noncentrality, df = 0.0, 0
    for rates, totals in blocks[name]:
        pooled = float(np.sum(rates * totals) / np.sum(totals))
        noncentrality += float(np.sum(totals * (rates - pooled) ** 2) / (pooled * (1 - pooled)))
        df += scenario.n_groups - 1
    return float(stats.ncx2.sf(stats.chi2.isf(level, df), df, noncentrality))
