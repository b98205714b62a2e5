"""The representation diagnostics by name: each one a function of the features and a spec.

:data:`REPRESENTATION_METRICS` lists every diagnostic that a run or an audit measures on its test
features, in the order ``metrics.json`` and ``results.csv`` record them. Each entry says what it
needs (:data:`Need`): the plain features only, two augmented views of them, or the counterfactual
re-colourings with the probe's predictions. :func:`representation_scores` computes every entry
whose needs the inputs meet, so a diagnostic added here (or with :func:`register`, from a plug-in or
a test) reaches ``results.csv``, the summary tables and the report with no other edit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import torch

from ceco_fair.metrics.representation import (
    alignment,
    bias_sensitivity,
    instance_retrieval,
    leakage,
    uniformity,
    variance_ratio,
)
from ceco_fair.metrics.specs import MetricSpec, register_spec, unregister_spec

Need = Literal["features", "views", "counterfactual"]
"""What a diagnostic reads beyond the plain features: nothing, two views, or the counterfactuals."""

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class RepresentationInputs:
    """What a representation diagnostic may read (all rows in test order).

    A ``counterfactual`` diagnostic reads :attr:`counterfactual`, :attr:`predictions` and
    :attr:`recoloured` only (the probe's side of the run supplies them, not the features').

    Attributes:
        features: plain (un-augmented) test features ``[n, D]``.
        targets: integer targets ``[n]``.
        sensitive: integer sensitive / bias values ``[n]``.
        seed: seeds any random part (the leakage probe's folds).
        sample: rows ``[m]`` (sorted) that the costly diagnostics use (all rows, or a fixed subsample).
        views: features of two augmentations of the same images, each ``[n, D]``, or ``None``.
        counterfactual: features of every image on each of K colours ``[n, K, D]``, or ``None``.
        predictions: the probe's predictions on the images as given ``[n]`` (with ``counterfactual``).
        recoloured: the probe's predictions on every colour ``[n, K]`` (with ``counterfactual``).
    """

    features: torch.Tensor
    targets: IntArray
    sensitive: IntArray
    seed: int
    sample: IntArray
    views: tuple[torch.Tensor, torch.Tensor] | None = None
    counterfactual: torch.Tensor | None = None
    predictions: IntArray | None = None
    recoloured: IntArray | None = None

    def sampled(self) -> torch.Tensor:
        """The features of :attr:`sample`, ``[m, D]``."""
        return self.features[torch.from_numpy(np.asarray(self.sample))]

    def available(self, need: Need) -> bool:
        """Whether these inputs meet ``need``."""
        if need == "views":
            return self.views is not None
        if need == "counterfactual":
            return self.counterfactual is not None and self.recoloured is not None and self.predictions is not None
        return True


@dataclass(frozen=True)
class RepresentationMetric:
    """One diagnostic: its name (a key of :data:`METRIC_SPECS`), what it needs, how it is computed."""

    name: str
    need: Need
    compute: Callable[[RepresentationInputs], float]


def cell_ids(targets: npt.ArrayLike, sensitive: npt.ArrayLike) -> IntArray:
    """One integer per (target, sensitive) pair ``[n]``: the retrieval cells."""
    _, ids = np.unique(np.stack([np.asarray(targets), np.asarray(sensitive)], axis=1), axis=0, return_inverse=True)
    return np.asarray(ids, dtype=np.int64).reshape(-1)


def _views(inputs: RepresentationInputs) -> tuple[torch.Tensor, torch.Tensor]:
    assert inputs.views is not None, "a 'views' diagnostic runs only with views"
    return inputs.views


def _flip_rate(inputs: RepresentationInputs) -> float:
    """Share of (image, colour) pairs whose prediction differs from the prediction on the image as given."""
    assert inputs.recoloured is not None and inputs.predictions is not None
    flips = inputs.recoloured != np.asarray(inputs.predictions).reshape(-1, 1)
    return float(flips.mean()) if flips.size else 0.0


def _bias_sensitivity(inputs: RepresentationInputs) -> float:
    assert inputs.counterfactual is not None
    return bias_sensitivity(inputs.counterfactual)


REPRESENTATION_METRICS: Final[dict[str, RepresentationMetric]] = {
    metric.name: metric
    for metric in (
        RepresentationMetric("variance_ratio", "features", lambda x: variance_ratio(x.features, x.targets)),
        RepresentationMetric("uniformity", "features", lambda x: uniformity(x.sampled())),
        RepresentationMetric("leakage", "features", lambda x: leakage(x.sampled(), x.sensitive[x.sample], seed=x.seed)),
        RepresentationMetric(
            "leakage_within_class",
            "features",
            lambda x: leakage(x.sampled(), x.sensitive[x.sample], x.targets[x.sample], seed=x.seed),
        ),
        RepresentationMetric("instance_retrieval", "views", lambda x: instance_retrieval(*_views(x))),
        RepresentationMetric(
            "instance_retrieval_within_cell",
            "views",
            lambda x: instance_retrieval(*_views(x), cell_ids(x.targets, x.sensitive)),
        ),
        RepresentationMetric("alignment", "views", lambda x: alignment(*_views(x))),
        RepresentationMetric("bias_sensitivity", "counterfactual", _bias_sensitivity),
        RepresentationMetric("counterfactual_flip_rate", "counterfactual", _flip_rate),
    )
}
"""Every representation diagnostic, in the order the results record them."""
_BUILT_IN: Final = frozenset(REPRESENTATION_METRICS)


def representation_scores(
    inputs: RepresentationInputs, needs: tuple[Need, ...], names: tuple[str, ...] | None = None
) -> dict[str, float]:
    """Every registered diagnostic whose need is in ``needs`` and met by ``inputs``.

    Args:
        inputs: the features and what else is known about them.
        needs: which diagnostics to compute, by what they read.
        names: only these diagnostics (default: all that apply).

    Returns:
        Name -> value, in :data:`REPRESENTATION_METRICS` order.
    """
    return {
        name: float(metric.compute(inputs))
        for name, metric in REPRESENTATION_METRICS.items()
        if metric.need in needs and inputs.available(metric.need) and (names is None or name in names)
    }


def register(spec: MetricSpec, compute: Callable[[RepresentationInputs], float], need: Need = "features") -> None:
    """Add a representation diagnostic: its spec (:func:`~ceco_fair.metrics.specs.register_spec`) and function.

    Args:
        spec: the metric's spec; its kind must be ``representation`` and its name new.
        compute: inputs -> value (a python float).
        need: what it reads beyond the plain features.

    Raises:
        ValueError: for another kind of spec or a name already in use.
    """
    if spec.kind != "representation":
        raise ValueError(
            f"metric {spec.name!r}: a registered diagnostic needs kind 'representation', got {spec.kind!r}"
        )
    register_spec(spec)
    REPRESENTATION_METRICS[spec.name] = RepresentationMetric(spec.name, need, compute)


def unregister(name: str) -> None:
    """Remove a diagnostic added with :func:`register` (the built-in ones stay)."""
    if name in REPRESENTATION_METRICS and name not in _BUILT_IN:
        del REPRESENTATION_METRICS[name]
        unregister_spec(name)
