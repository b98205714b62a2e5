"""Bias and group-fairness metrics, all computed from per-group confusion counts.

- :data:`METRIC_SPECS` (:mod:`ceco_fair.metrics.specs`): what each metric is (label, kind,
  direction, binary-only). Importing it, or this package, does not import torch.
- :func:`bias_metrics`, :func:`bias_accuracy_matrix`: accuracy, unbiased, bias-aligned and
  bias-conflicting accuracy for data whose bias values index the classes (BiasedMNIST).
- :func:`group_metrics`, :func:`group_table`: accuracy, worst-group accuracy, demographic
  parity, equalized odds, equal opportunity and FSCL's EO for any number of groups, with
  bootstrap percentile intervals from a multinomial resampling of the counts.

The metric functions load on first access (their count tables accept torch tensors, so their
modules import torch), which keeps ``import ceco_fair.metrics.specs`` torch-free.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ceco_fair.metrics.specs import METRIC_SPECS, MetricSpec

if TYPE_CHECKING:
    from ceco_fair.metrics.bias import bias_accuracy_matrix, bias_metrics
    from ceco_fair.metrics.confusion import GroupConfusion, group_confusion
    from ceco_fair.metrics.group import METRIC_NAMES, RATE_METRIC_NAMES, group_metrics, group_table

_LAZY = {
    "bias_accuracy_matrix": "ceco_fair.metrics.bias",
    "bias_metrics": "ceco_fair.metrics.bias",
    "GroupConfusion": "ceco_fair.metrics.confusion",
    "group_confusion": "ceco_fair.metrics.confusion",
    "METRIC_NAMES": "ceco_fair.metrics.group",
    "RATE_METRIC_NAMES": "ceco_fair.metrics.group",
    "group_metrics": "ceco_fair.metrics.group",
    "group_table": "ceco_fair.metrics.group",
}

__all__ = [
    "METRIC_NAMES",
    "METRIC_SPECS",
    "RATE_METRIC_NAMES",
    "GroupConfusion",
    "MetricSpec",
    "bias_accuracy_matrix",
    "bias_metrics",
    "group_confusion",
    "group_metrics",
    "group_table",
]


def __getattr__(name: str) -> Any:
    """Import a metric function (and torch with it) on first access."""
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ceco_fair.metrics' has no attribute {name!r}")
