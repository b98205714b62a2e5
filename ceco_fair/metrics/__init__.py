"""Bias and group-fairness metrics, all computed from per-group confusion counts.

- :func:`bias_metrics`, :func:`bias_accuracy_matrix`: accuracy, unbiased, bias-aligned and
  bias-conflicting accuracy for colour-biased digits (BiasedMNIST, ColoredMNIST).
- :func:`group_metrics`, :func:`group_table`: accuracy, worst-group accuracy, demographic
  parity, equalized odds, equal opportunity and FSCL's EO for any number of groups, with
  bootstrap intervals from a multinomial resampling of the counts (percentile for accuracy,
  simultaneous max-t bands for the spreads and the worst group: :mod:`.intervals`) and a
  chi-square p-value per spread.
- :func:`instance_retrieval`, :func:`alignment`, :func:`uniformity`, :func:`variance_ratio`,
  :func:`leakage`, :func:`bias_sensitivity`: diagnostics of a representation (features).
- :func:`counterfactual_features`: features of every image on each background colour.
"""

from __future__ import annotations

from ceco_fair.metrics.bias import bias_accuracy_matrix, bias_metrics
from ceco_fair.metrics.confusion import GroupConfusion, group_confusion
from ceco_fair.metrics.counterfactual import counterfactual_features
from ceco_fair.metrics.group import METRIC_NAMES, RATE_METRIC_NAMES, group_metrics, group_table
from ceco_fair.metrics.intervals import SPREAD_NAMES
from ceco_fair.metrics.representation import (
    alignment,
    bias_sensitivity,
    instance_retrieval,
    leakage,
    uniformity,
    variance_ratio,
)

__all__ = [
    "METRIC_NAMES",
    "RATE_METRIC_NAMES",
    "SPREAD_NAMES",
    "GroupConfusion",
    "alignment",
    "bias_accuracy_matrix",
    "bias_metrics",
    "bias_sensitivity",
    "counterfactual_features",
    "group_confusion",
    "group_metrics",
    "group_table",
    "instance_retrieval",
    "leakage",
    "uniformity",
    "variance_ratio",
]
