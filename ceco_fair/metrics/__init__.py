"""Bias, group-fairness and representation metrics.

- :data:`METRIC_SPECS` (:mod:`ceco_fair.metrics.specs`): what each metric is (label, kind,
  direction, binary-only, unit and decimals, headline, interval kind, report roles, per-epoch
  curve); every list of metrics elsewhere is derived from it, and
  :func:`~ceco_fair.metrics.specs.format_value` writes its values. Importing it, or this package,
  does not import torch.
- :mod:`ceco_fair.metrics.registry`: the representation diagnostics by name, each a function of
  the features; :func:`~ceco_fair.metrics.registry.register` adds one with its spec.
- :func:`bias_metrics`, :func:`bias_accuracy_matrix`: accuracy, unbiased, bias-aligned and
  bias-conflicting accuracy for data whose bias values index the classes (BiasedMNIST).
- :func:`group_metrics`, :func:`group_table`: accuracy, worst-group accuracy, demographic
  parity, equalized odds, equal opportunity and FSCL's EO for any number of groups, with
  bootstrap intervals from a multinomial resampling of the counts (percentile for accuracy,
  simultaneous max-t bands for the spreads and the worst group: :mod:`.intervals`) and a
  chi-square p-value per spread; each metric is a spec and a function of the per-group confusion
  counts (:data:`~ceco_fair.metrics.group.GROUP_METRIC_FUNCTIONS`), and :func:`register_group_metric`
  adds one at run time.
- :func:`score_metrics` (:mod:`.score_intervals`): AUROC, ECE, score gaps and ABCC of class
  probabilities per group (:mod:`.scores`), with a group-stratified row bootstrap
  (:mod:`.score_bootstrap`), DeLong's interval, bands on the gaps and equality p-values;
  :func:`odds_metrics` and the accuracy variants of :mod:`.count_variants`.
- :func:`instance_retrieval`, :func:`alignment`, :func:`uniformity`, :func:`variance_ratio`,
  :func:`leakage`, :func:`bias_sensitivity`: diagnostics of a representation (features).

The metric functions load on first access (their count tables accept torch tensors, so their
modules import torch), which keeps ``import ceco_fair.metrics.specs`` torch-free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ceco_fair.common.lazy import lazy_exports
from ceco_fair.metrics.specs import METRIC_SPECS, MetricSpec

if TYPE_CHECKING:
    from ceco_fair.metrics.bias import bias_accuracy_matrix, bias_metrics
    from ceco_fair.metrics.confusion import GroupConfusion, group_confusion
    from ceco_fair.metrics.count_variants import odds_metrics
    from ceco_fair.metrics.group import (
        group_metrics,
        group_table,
        metric_names,
        rate_metric_names,
        register_group_metric,
        unregister_group_metric,
    )
    from ceco_fair.metrics.intervals import spread_names
    from ceco_fair.metrics.representation import (
        alignment,
        bias_sensitivity,
        instance_retrieval,
        leakage,
        uniformity,
        variance_ratio,
    )
    from ceco_fair.metrics.score_intervals import ScoreResult, score_metrics

_REPRESENTATION = "ceco_fair.metrics.representation"
_GROUP = "ceco_fair.metrics.group"
_LAZY = {
    "bias_accuracy_matrix": "ceco_fair.metrics.bias",
    "bias_metrics": "ceco_fair.metrics.bias",
    "GroupConfusion": "ceco_fair.metrics.confusion",
    "group_confusion": "ceco_fair.metrics.confusion",
    "group_metrics": _GROUP,
    "group_table": _GROUP,
    "metric_names": _GROUP,
    "rate_metric_names": _GROUP,
    "register_group_metric": _GROUP,
    "unregister_group_metric": _GROUP,
    "spread_names": "ceco_fair.metrics.intervals",
    "odds_metrics": "ceco_fair.metrics.count_variants",
    "ScoreResult": "ceco_fair.metrics.score_intervals",
    "score_metrics": "ceco_fair.metrics.score_intervals",
    "alignment": _REPRESENTATION,
    "bias_sensitivity": _REPRESENTATION,
    "instance_retrieval": _REPRESENTATION,
    "leakage": _REPRESENTATION,
    "uniformity": _REPRESENTATION,
    "variance_ratio": _REPRESENTATION,
}

__all__ = [
    "METRIC_SPECS",
    "GroupConfusion",
    "MetricSpec",
    "ScoreResult",
    "alignment",
    "bias_accuracy_matrix",
    "bias_metrics",
    "bias_sensitivity",
    "group_confusion",
    "group_metrics",
    "group_table",
    "instance_retrieval",
    "leakage",
    "metric_names",
    "odds_metrics",
    "rate_metric_names",
    "register_group_metric",
    "score_metrics",
    "spread_names",
    "uniformity",
    "unregister_group_metric",
    "variance_ratio",
]


__getattr__ = lazy_exports(__name__, _LAZY)
