"""What each metric is: its label, kind, direction and the targets it needs. Torch-free.

:data:`METRIC_SPECS` is the one place a metric is described. The metric functions produce the
values, the report and the summary tables read their labels and directions from here, and the
names of a metric's interval bounds and p-value are derived by :func:`ci_low_name`,
:func:`ci_high_name` and :func:`p_value_name`, never spelled elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

MetricKind = Literal["bias", "group", "representation"]
Direction = Literal["higher", "lower"]
TargetType = Literal["any", "binary"]

CI_LOW_SUFFIX: Final = "_ci_low"
CI_HIGH_SUFFIX: Final = "_ci_high"
P_VALUE_SUFFIX: Final = "_p_value"
DERIVED_SUFFIXES: Final = (CI_LOW_SUFFIX, CI_HIGH_SUFFIX, P_VALUE_SUFFIX)


@dataclass(frozen=True)
class MetricSpec:
    """One metric.

    Attributes:
        name: the key in ``metrics.json`` and ``results.csv``.
        label: how figures and tables name it.
        kind: ``bias`` (bias-aligned / conflicting accuracies), ``group`` (group fairness) or
            ``representation`` (diagnostics of the features themselves).
        direction: ``higher`` or ``lower`` is better.
        targets: ``binary`` when it needs a target in {0, 1}, else ``any``.
    """

    name: str
    label: str
    kind: MetricKind
    direction: Direction
    targets: TargetType = "any"

    @property
    def lower_is_better(self) -> bool:
        """Whether smaller values are better (the differences between groups)."""
        return self.direction == "lower"

    @property
    def binary_only(self) -> bool:
        """Whether the metric needs a binary target."""
        return self.targets == "binary"


_SPECS: Final = (
    MetricSpec("accuracy", "accuracy", "group", "higher"),
    MetricSpec("unbiased_accuracy", "unbiased accuracy", "bias", "higher"),
    MetricSpec("bias_aligned_accuracy", "bias-aligned accuracy", "bias", "higher"),
    MetricSpec("bias_conflicting_accuracy", "bias-conflicting accuracy", "bias", "higher"),
    MetricSpec("worst_group_accuracy", "worst-group accuracy", "group", "higher"),
    MetricSpec("demographic_parity_difference", "demographic-parity difference", "group", "lower", "binary"),
    MetricSpec("equalized_odds_difference", "equalized-odds difference", "group", "lower", "binary"),
    MetricSpec("equal_opportunity_difference", "equal-opportunity difference", "group", "lower", "binary"),
    MetricSpec("eo_fscl", "EO (FSCL definition)", "group", "lower"),
    MetricSpec("instance_retrieval", "instance retrieval", "representation", "higher"),
    MetricSpec("instance_retrieval_within_cell", "instance retrieval within cell", "representation", "higher"),
    MetricSpec("alignment", "alignment", "representation", "lower"),
    MetricSpec("uniformity", "uniformity", "representation", "lower"),
    MetricSpec("variance_ratio", "variance ratio", "representation", "higher"),
    MetricSpec("leakage", "sensitive leakage", "representation", "lower"),
    MetricSpec("leakage_within_class", "sensitive leakage within class", "representation", "lower"),
    MetricSpec("bias_sensitivity", "bias sensitivity", "representation", "lower"),
    MetricSpec("counterfactual_flip_rate", "counterfactual flip rate", "representation", "lower"),
)

METRIC_SPECS: Final[dict[str, MetricSpec]] = {spec.name: spec for spec in _SPECS}
"""Metric name -> its :class:`MetricSpec`; ``accuracy`` is shared by both kinds of run."""

BIAS_METRICS: Final = ("unbiased_accuracy", "bias_conflicting_accuracy", "bias_aligned_accuracy", "accuracy")
"""What a bias run reports, in the summary table's order."""
GROUP_METRICS: Final = (
    "accuracy",
    *(spec.name for spec in _SPECS if spec.kind == "group" and spec.name != "accuracy"),
)
"""What a group run reports, in the summary table's order."""


READOUT_LABELS: Final = {
    "linear": "linear probe",
    "balanced": "group-balanced probe",
    "head": "the method's own head",
}
"""How tables and figures name each read-out of an encoder (the ``readout`` column of ``results.csv``)."""
READOUT_GUIDE: Final = (
    "A large gain from the linear to the balanced probe means the information was in the representation "
    "and the classifier chose the bias; no gain means the representation lost it."
)
"""The one-line reading of the read-outs side by side."""

GROUP_RATES: Final = ("accuracy", "tpr", "fpr", "selection_rate")
"""Per-group rates of a group table (``group_table.csv``), each with an interval."""


def ci_low_name(name: str) -> str:
    """The key of a metric's lower interval bound: ``<name>_ci_low``."""
    return name + CI_LOW_SUFFIX


def ci_high_name(name: str) -> str:
    """The key of a metric's upper interval bound: ``<name>_ci_high``."""
    return name + CI_HIGH_SUFFIX


def p_value_name(name: str) -> str:
    """The key of a metric's p-value: ``<name>_p_value``."""
    return name + P_VALUE_SUFFIX


def split_derived(name: str) -> tuple[str, str]:
    """Split a key into its metric and its derived suffix (``""`` for the metric itself).

    Args:
        name: a key such as ``accuracy_ci_low`` or ``accuracy``.

    Returns:
        ``("accuracy", "_ci_low")`` or ``("accuracy", "")``.
    """
    for suffix in DERIVED_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)], suffix
    return name, ""


def spec_of(name: str) -> MetricSpec | None:
    """The spec of a key, derived keys (``*_ci_low``, ...) included; ``None`` for an unknown metric."""
    return METRIC_SPECS.get(split_derived(name)[0])


def label(name: str) -> str:
    """A metric's label, or its name when it has no spec."""
    spec = METRIC_SPECS.get(name)
    return spec.label if spec is not None else name


def lower_is_better(name: str) -> bool:
    """Whether smaller values of a metric are better (``False`` for an unknown metric)."""
    spec = METRIC_SPECS.get(name)
    return spec is not None and spec.lower_is_better
