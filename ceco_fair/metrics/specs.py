"""What each metric is: its label, kind, direction, display, interval and roles. Torch-free.

:data:`METRIC_SPECS` is the one place a metric is described. The metric functions produce the
values; every list of metrics elsewhere is derived from the specs here (the group metrics and
their interval methods, the metrics a bias or group run reports, the headline metrics of
``comparisons.csv``, the report's bars, lines, scatters and per-epoch curve panels), and
:func:`format_value` writes a value the same way in the report and in ``python -m
ceco_fair.summary``. The names of a metric's interval bounds and p-value are derived by
:func:`ci_low_name`, :func:`ci_high_name` and :func:`p_value_name`, never spelled elsewhere.

The derived lists are functions of :data:`METRIC_SPECS` read at call time (:func:`outcome_metrics`,
:func:`summary_metrics`, :func:`curve_metrics`, ...), so a spec added at run time reaches them.

Adding a metric: one function, one :class:`MetricSpec` line in :data:`_SPECS` (or :func:`register_spec`
at run time), its definition (:mod:`ceco_fair.metrics.definitions`) and its test; a representation
metric also registers its function (:mod:`ceco_fair.metrics.registry`), a group metric its function of
the confusion counts (:func:`ceco_fair.metrics.group.register_group_metric`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Final, Literal

from ceco_fair.metrics.definitions import DEFINITIONS

MetricFamily = Literal["bias", "group", "representation", "curve"]
"""What a metric measures; a run's :data:`MetricKind` selects its bias or group family."""
Direction = Literal["higher", "lower"]
TargetType = Literal["any", "binary"]
MetricKind = Literal["bias", "group"]
"""A run's (and its dataset's) metric kind, defined here alone: bias-aligned / conflicting accuracy, or group."""
Unit = Literal["percent", "plain"]
Bank = Literal["biased", "balanced"]
IntervalKind = Literal[
    "none", "percentile", "worst", "spread", "mean_gap", "delong", "score_worst", "score_spread", "cdf_band"
]
Role = Literal["overall", "worst_case", "aligned", "conflicting", "fairness_axis", "distortion_axis", "group_selection"]

METRIC_KINDS: Final[tuple[MetricKind, ...]] = ("bias", "group")
BAND_INTERVALS: Final[tuple[IntervalKind, ...]] = ("spread", "mean_gap")
"""Interval kinds of the between-group differences (simultaneous bands over pairs of groups, a p-value)."""

CI_LOW_SUFFIX: Final = "_ci_low"
CI_HIGH_SUFFIX: Final = "_ci_high"
P_VALUE_SUFFIX: Final = "_p_value"
DERIVED_SUFFIXES: Final = (CI_LOW_SUFFIX, CI_HIGH_SUFFIX, P_VALUE_SUFFIX)
PERCENT_SCALE: Final = 100.0
PERCENT_SUFFIX: Final = " (%)"
PLAIN_DECIMALS: Final = 3
"""Decimals of a plain value (and of a value without a spec)."""


@dataclass(frozen=True)
class MetricSpec:
    """One metric.

    Attributes:
        name: the key in ``metrics.json`` and ``results.csv`` (or the column of ``curves.csv``).
        label: how figures and tables name it.
        kind: ``bias`` (bias-aligned / conflicting accuracies), ``group`` (group fairness),
            ``representation`` (diagnostics of the features themselves) or ``curve`` (a per-epoch
            value of ``curves.csv`` only).
        direction: ``higher`` or ``lower`` is better.
        targets: ``binary`` when it needs a target in {0, 1}, else ``any``.
        runs: the kinds of run (``bias``, ``group``) that record it.
        unit: ``percent`` (a fraction shown times 100) or ``plain``.
        decimals: decimals shown (after the percent scaling).
        headline: the kinds of run whose ``comparisons.csv`` compares it against the baseline.
        interval: how a run's interval is made: ``percentile`` (bootstrap), ``worst`` / ``spread`` /
            ``mean_gap`` (bands on the cells, on the pairwise differences of :attr:`rates`, on the
            per-class pair gaps) or ``none``; score metrics (:mod:`.score_intervals`): ``delong``,
            ``score_worst`` / ``score_spread`` (bands with analytic scales), ``cdf_band`` (CDF bands).
        rates: the per-group rates a ``spread`` compares (``selection_rate``, ``tpr``, ``fpr``).
        roles: the parts it plays in the report: ``overall`` (the accuracy axis of the fairness
            scatter), ``worst_case`` (the accuracy of the worst-off samples), ``aligned`` /
            ``conflicting`` (the solid / dashed lines against ρ), ``fairness_axis`` and
            ``distortion_axis`` (the x axes of the two trade-off scatters); ``group_selection`` (the
            score on validation of the selection rule that reads group labels, ``val_worst_group``).
        curve: whether ``curves.csv`` tracks it per epoch (one panel of the report's curves).
        of: for a ``curve`` value of the kNN classifier, the metric its predictions are measured by.
        bank: for a kNN ``curve`` value, the bank that votes: ``biased`` (a random subsample of the
            training set) or ``balanced`` (equal draws from every (target, sensitive) cell).
        variant: its definition as computed here, naming whose variant it is where the field has several
            (the README's metric reference is generated from it: :mod:`ceco_fair.metrics.reference`).
    """

    name: str
    label: str
    kind: MetricFamily
    direction: Direction
    targets: TargetType = "any"
    runs: tuple[MetricKind, ...] = METRIC_KINDS
    unit: Unit = "percent"
    decimals: int = 1
    headline: tuple[MetricKind, ...] = ()
    interval: IntervalKind = "none"
    rates: tuple[str, ...] = ()
    roles: tuple[Role, ...] = ()
    curve: bool = False
    of: str | None = None
    bank: Bank = "biased"
    variant: str = ""

    @property
    def lower_is_better(self) -> bool:
        """Whether smaller values are better (the differences between groups)."""
        return self.direction == "lower"

    @property
    def binary_only(self) -> bool:
        """Whether the metric needs a binary target."""
        return self.targets == "binary"

    @property
    def scale(self) -> float:
        """Factor from the stored value to the shown one (100 for a percentage)."""
        return PERCENT_SCALE if self.unit == "percent" else 1.0


_BIAS: Final[tuple[MetricKind, ...]] = ("bias",)
_GROUP: Final[tuple[MetricKind, ...]] = ("group",)

_SPECS: Final = (
    MetricSpec(
        "unbiased_accuracy",
        "unbiased accuracy",
        "bias",
        "higher",
        runs=_BIAS,
        headline=_BIAS,
        roles=("group_selection",),
    ),
    MetricSpec(
        "bias_conflicting_accuracy",
        "bias-conflicting accuracy",
        "bias",
        "higher",
        runs=_BIAS,
        headline=_BIAS,
        roles=("worst_case", "conflicting"),
    ),
    MetricSpec(
        "bias_aligned_accuracy",
        "bias-aligned accuracy",
        "bias",
        "higher",
        runs=_BIAS,
        roles=("aligned",),
    ),
    MetricSpec(
        "accuracy",
        "accuracy",
        "group",
        "higher",
        headline=_GROUP,
        interval="percentile",
        roles=("overall",),
    ),
    MetricSpec(
        "worst_group_accuracy",
        "worst-group accuracy",
        "group",
        "higher",
        runs=_GROUP,
        headline=_GROUP,
        interval="worst",
        roles=("worst_case", "group_selection"),
    ),
    MetricSpec(
        "demographic_parity_difference",
        "demographic-parity difference",
        "group",
        "lower",
        "binary",
        runs=_GROUP,
        headline=_GROUP,
        interval="spread",
        rates=("selection_rate",),
    ),
    MetricSpec(
        "equalized_odds_difference",
        "equalized-odds difference",
        "group",
        "lower",
        "binary",
        runs=_GROUP,
        headline=_GROUP,
        interval="spread",
        rates=("tpr", "fpr"),
        roles=("fairness_axis",),
    ),
    MetricSpec(
        "equal_opportunity_difference",
        "equal-opportunity difference",
        "group",
        "lower",
        "binary",
        runs=_GROUP,
        interval="spread",
        rates=("tpr",),
    ),
    MetricSpec(
        "eo_fscl",
        "EO (FSCL definition)",
        "group",
        "lower",
        runs=_GROUP,
        interval="mean_gap",
    ),
    MetricSpec("auroc", "AUROC", "group", "higher", runs=_GROUP, unit="plain", decimals=3, interval="delong"),
    MetricSpec(
        "worst_group_auroc",
        "worst-group AUROC",
        "group",
        "higher",
        runs=_GROUP,
        unit="plain",
        decimals=3,
        interval="score_worst",
        headline=_GROUP,
    ),
    MetricSpec(
        "auroc_gap",
        "AUROC gap",
        "group",
        "lower",
        runs=_GROUP,
        unit="plain",
        decimals=3,
        interval="score_spread",
        headline=_GROUP,
    ),
    MetricSpec("ece", "ECE", "group", "lower", runs=_GROUP, interval="percentile"),
    MetricSpec("ece_gap", "ECE gap", "group", "lower", runs=_GROUP, interval="score_spread"),
    MetricSpec("score_gap", "score gap", "group", "lower", "binary", runs=_GROUP, interval="score_spread"),
    MetricSpec(
        "score_gap_eo",
        "score gap within class",
        "group",
        "lower",
        "binary",
        runs=_GROUP,
        interval="score_spread",
    ),
    MetricSpec(
        "abcc",
        "ABCC",
        "group",
        "lower",
        "binary",
        runs=_GROUP,
        unit="plain",
        decimals=3,
        interval="cdf_band",
        headline=_GROUP,
    ),
    MetricSpec(
        "equalized_odds_sum",
        "equalized-odds sum",
        "group",
        "lower",
        "binary",
        runs=_GROUP,
        interval="percentile",
    ),
    MetricSpec(
        "average_odds_difference",
        "average-odds difference",
        "group",
        "lower",
        "binary",
        runs=_GROUP,
        interval="percentile",
    ),
    MetricSpec(
        "adjusted_accuracy",
        "adjusted accuracy",
        "group",
        "higher",
        runs=_GROUP,
        interval="percentile",
    ),
    MetricSpec(
        "train_weighted_accuracy", "train-weighted accuracy", "group", "higher", runs=_GROUP, interval="percentile"
    ),
    MetricSpec(
        "knn_accuracy",
        "kNN accuracy",
        "curve",
        "higher",
        curve=True,
        of="accuracy",
    ),
    MetricSpec(
        "knn_bias_conflicting_accuracy",
        "kNN bias-conflicting accuracy",
        "curve",
        "higher",
        runs=_BIAS,
        curve=True,
        of="bias_conflicting_accuracy",
    ),
    MetricSpec(
        "knn_worst_group_accuracy",
        "kNN worst-group accuracy",
        "curve",
        "higher",
        runs=_GROUP,
        curve=True,
        of="worst_group_accuracy",
    ),
    MetricSpec(
        "balanced_knn_accuracy",
        "kNN accuracy, balanced bank",
        "curve",
        "higher",
        curve=True,
        of="accuracy",
        bank="balanced",
    ),
    MetricSpec(
        "balanced_knn_bias_conflicting_accuracy",
        "kNN bias-conflicting accuracy, balanced bank",
        "curve",
        "higher",
        runs=_BIAS,
        curve=True,
        of="bias_conflicting_accuracy",
        bank="balanced",
    ),
    MetricSpec(
        "balanced_knn_worst_group_accuracy",
        "kNN worst-group accuracy, balanced bank",
        "curve",
        "higher",
        runs=_GROUP,
        curve=True,
        of="worst_group_accuracy",
        bank="balanced",
    ),
    MetricSpec(
        "instance_retrieval",
        "instance retrieval",
        "representation",
        "higher",
        unit="plain",
        decimals=PLAIN_DECIMALS,
    ),
    MetricSpec(
        "instance_retrieval_within_cell",
        "instance retrieval within cell",
        "representation",
        "higher",
        headline=_BIAS,
        roles=("distortion_axis",),
        curve=True,
        unit="plain",
        decimals=PLAIN_DECIMALS,
    ),
    MetricSpec(
        "alignment",
        "alignment",
        "representation",
        "lower",
        unit="plain",
        decimals=PLAIN_DECIMALS,
    ),
    MetricSpec(
        "uniformity",
        "uniformity",
        "representation",
        "lower",
        unit="plain",
        decimals=PLAIN_DECIMALS,
    ),
    MetricSpec(
        "variance_ratio",
        "variance ratio",
        "representation",
        "higher",
        curve=True,
        unit="plain",
        decimals=PLAIN_DECIMALS,
    ),
    MetricSpec(
        "leakage",
        "sensitive leakage",
        "representation",
        "lower",
        unit="plain",
        decimals=PLAIN_DECIMALS,
    ),
    MetricSpec(
        "leakage_within_class",
        "sensitive leakage within class",
        "representation",
        "lower",
        headline=_GROUP,
        unit="plain",
        decimals=PLAIN_DECIMALS,
    ),
    MetricSpec(
        "bias_sensitivity",
        "bias sensitivity",
        "representation",
        "lower",
        headline=_BIAS,
        unit="plain",
        decimals=PLAIN_DECIMALS,
    ),
    MetricSpec(
        "counterfactual_flip_rate",
        "counterfactual flip rate",
        "representation",
        "lower",
        unit="plain",
        decimals=PLAIN_DECIMALS,
    ),
)
"""Every metric, in display order (the summary table's columns, the figures' panels)."""

METRIC_SPECS: Final[dict[str, MetricSpec]] = {
    spec.name: dataclasses.replace(spec, variant=DEFINITIONS.get(spec.name, spec.variant)) for spec in _SPECS
}
"""Metric name -> its :class:`MetricSpec`; ``accuracy`` is shared by both kinds of run."""

OUTCOME_KINDS: Final[tuple[MetricFamily, ...]] = METRIC_KINDS
"""Kinds of metric measured on a read-out's predictions (the summary table's columns): the metric kinds."""


def names_of(*, kind: MetricFamily | None = None, runs: MetricKind | None = None) -> tuple[str, ...]:
    """The metrics of a kind and/or recorded by a kind of run, in :data:`METRIC_SPECS` order."""
    return tuple(
        spec.name
        for spec in METRIC_SPECS.values()
        if (kind is None or spec.kind == kind) and (runs is None or runs in spec.runs)
    )


def outcome_metrics(runs: MetricKind) -> tuple[str, ...]:
    """What a run of kind ``runs`` reports from its predictions, in :data:`METRIC_SPECS` order."""
    return tuple(spec.name for spec in METRIC_SPECS.values() if spec.kind in OUTCOME_KINDS and runs in spec.runs)


def summary_metrics() -> tuple[str, ...]:
    """The report's summary columns: every metric measured on predictions, bias run's first.

    Read at call time, so a spec added by :func:`register_spec` is among them.
    """
    return tuple(dict.fromkeys(name for kind in METRIC_KINDS for name in outcome_metrics(kind)))


def curve_metrics() -> tuple[str, ...]:
    """The per-epoch columns of ``curves.csv``, one panel each in the report, in :data:`METRIC_SPECS` order."""
    return tuple(spec.name for spec in METRIC_SPECS.values() if spec.curve)


def headline_metrics(runs: str) -> tuple[str, ...]:
    """The metrics ``comparisons.csv`` compares for a kind of run (``bias`` or ``group``)."""
    return tuple(spec.name for spec in METRIC_SPECS.values() if runs in spec.headline)


def with_role(role: Role) -> tuple[str, ...]:
    """The metrics that play ``role`` in the report, in :data:`METRIC_SPECS` order."""
    return tuple(spec.name for spec in METRIC_SPECS.values() if role in spec.roles)


def band_metrics(*, rates: bool) -> tuple[str, ...]:
    """Metrics whose interval comes from simultaneous bands: the worst group and the differences.

    Args:
        rates: Whether the binary rate-based differences are computed.
    """
    return tuple(
        spec.name
        for spec in METRIC_SPECS.values()
        if (spec.interval == "worst" or spec.interval in BAND_INTERVALS) and (rates or not spec.binary_only)
    )


def register_spec(spec: MetricSpec) -> None:
    """Add a metric's spec at run time (a plug-in or a test); its name must be new.

    Raises:
        ValueError: if a metric of that name is already described.
    """
    if spec.name in METRIC_SPECS:
        raise ValueError(f"metric {spec.name!r} already has a spec")
    METRIC_SPECS[spec.name] = spec


def unregister_spec(name: str) -> None:
    """Remove a spec added by :func:`register_spec` (a built-in one stays)."""
    if name in METRIC_SPECS and all(spec.name != name for spec in _SPECS):
        del METRIC_SPECS[name]


GROUP_ACCURACY: Final = "accuracy"
"""The per-group accuracy rate of ``group_table.csv`` (the column every group table holds)."""
GROUP_RATE_LABELS: Final = {
    GROUP_ACCURACY: "accuracy",
    "tpr": "true-positive rate",
    "fpr": "false-positive rate",
    "selection_rate": "selection rate",
}
GROUP_RATES: Final = tuple(GROUP_RATE_LABELS)
"""Per-group rates of a group table (``group_table.csv``), each with an interval."""

READOUT_METRICS: Final = {
    "bias": ("bias_conflicting_accuracy", "unbiased_accuracy", "bias_aligned_accuracy"),
    "group": ("worst_group_accuracy", "accuracy", "equalized_odds_difference", "demographic_parity_difference"),
}
"""The metrics the report's read-out panel shows per kind of run, in panel order."""


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


def shown_value(value: float, spec: MetricSpec | None) -> float:
    """A value as it is shown: scaled to the spec's unit and rounded to its decimals; NaN stays NaN."""
    if not math.isfinite(value):
        return math.nan
    if spec is None:
        return round(float(value), PLAIN_DECIMALS)
    return round(spec.scale * float(value), spec.decimals)


def format_value(value: float, spec: MetricSpec | None) -> str:
    """How the report and ``python -m ceco_fair.summary`` write a metric's value.

    Args:
        value: the stored value (a fraction for a ``percent`` metric).
        spec: the metric's spec (:func:`spec_of`); ``None`` writes the value plain, three decimals.

    Returns:
        ``"37.6"`` for 0.376 of a percent metric with one decimal, ``"0.412"`` for a plain one with
        three; ``""`` for a value that is not finite (each table writes its own mark for "none").
    """
    if not math.isfinite(value):
        return ""
    decimals = PLAIN_DECIMALS if spec is None else spec.decimals
    scale = 1.0 if spec is None else spec.scale
    return f"{scale * float(value):.{decimals}f}"


def unit_suffix(spec: MetricSpec | None) -> str:
    """What a column or axis title adds after the label: ``" (%)"`` for a percent metric, else ``""``."""
    return PERCENT_SUFFIX if spec is not None and spec.unit == "percent" else ""
