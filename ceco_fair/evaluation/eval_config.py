"""The evaluation settings shared by protocol runs and :func:`ceco_fair.audit`: the ``eval`` section."""

from __future__ import annotations

from dataclasses import dataclass

from ceco_fair.errors import CecoFairError


@dataclass(frozen=True)
class EvalConfig:
    """The evaluation section: bootstrap intervals, the feature projection saved for the report, tracking.

    Attributes:
        n_boot: bootstrap resamples of the group metrics' confidence intervals (0: none).
        confidence: the intervals' confidence level.
        projection_points: test points kept in the report's 2-D feature projection.
        batch_size: images per forward pass of the frozen encoder.
        track_every: measure the encoder after every ``track_every``-th training epoch (0: never; runs only).
        track_points: training and test images measured per tracked epoch (runs only).
        baseline: the method label that ``comparisons.csv`` subtracts (runs only).
    """

    n_boot: int = 1000
    confidence: float = 0.95
    projection_points: int = 2000
    batch_size: int = 512
    track_every: int = 0
    track_points: int = 500
    baseline: str | None = None

    def __post_init__(self) -> None:
        if self.n_boot < 0:
            raise CecoFairError(f"eval.n_boot: expected >= 0, got {self.n_boot}")
        if not 0 < self.confidence < 1:
            raise CecoFairError(f"eval.confidence: expected a value in (0, 1), got {self.confidence}")
        if self.track_every < 0:
            raise CecoFairError(f"eval.track_every: expected epochs >= 0 (0: no curves), got {self.track_every}")
        if self.track_points < 1:
            raise CecoFairError(f"eval.track_points: expected a positive integer, got {self.track_points}")
        if self.projection_points < 0:
            raise CecoFairError(f"eval.projection_points: expected >= 0, got {self.projection_points}")
        if self.batch_size < 1:
            raise CecoFairError(f"eval.batch_size: expected a positive integer, got {self.batch_size}")
