"""What runs around the epochs of :func:`~ceco_fair.training.loop.pretrain`: resume, tracking, TensorBoard, checkpoints.

An :class:`EpochHook` is called once before the first epoch (:meth:`~EpochHook.start`) and after every
epoch with that epoch's history row, already in the state's history (:meth:`~EpochHook.after_epoch`).
Hooks run in the order given: a tracker adds its values to the row before a log writes it and a
checkpointer saves it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from torch import nn

from ceco_fair.training.state import TrainState, unwrap
from ceco_fair.training.tensorboard import EpochLog

logger = logging.getLogger(__name__)


class EpochHook:
    """Does nothing; subclasses override one or both steps."""

    def start(self, state: TrainState) -> None:
        """Before the first epoch (after the model, optimiser and method are built)."""

    def after_epoch(self, state: TrainState, row: dict[str, float]) -> None:
        """After each epoch; ``row`` is ``state.history[-1]`` and may be extended."""


class Checkpointer(EpochHook):
    """Resumes from ``path`` when asked and it exists; saves the state there after every epoch (rank 0).

    Args:
        path: the checkpoint file.
        resume: continue from ``path`` if it exists.
        is_main: whether this process writes (rank 0).
    """

    def __init__(self, path: Path, *, resume: bool = False, is_main: bool = True) -> None:
        self.path, self.resume, self.is_main = path, resume, is_main

    def start(self, state: TrainState) -> None:
        """Load the checkpoint when resuming."""
        if self.resume and self.path.exists():
            state.load(self.path)
            logger.info("resumed %s from epoch %d", self.path, state.epoch)

    def after_epoch(self, state: TrainState, row: dict[str, float]) -> None:
        """Save the state atomically."""
        if self.is_main:
            state.save(self.path)


class Tracker(EpochHook):
    """Measures the encoder every ``every`` epochs and after the last (rank 0); its values join the row.

    Args:
        track: the measurement (e.g. :class:`ceco_fair.evaluation.tracking.EpochTracker`).
        every: track after every ``every``-th epoch (and the last).
        epochs: the run's number of epochs.
        is_main: whether this process tracks (rank 0).
    """

    def __init__(
        self, track: Callable[[nn.Module], dict[str, float]], *, every: int, epochs: int, is_main: bool = True
    ) -> None:
        self.track, self.every, self.epochs, self.is_main = track, every, epochs, is_main

    def after_epoch(self, state: TrainState, row: dict[str, float]) -> None:
        """Add the tracked values and ``track_seconds`` to ``row``."""
        last = state.epoch == self.epochs
        if not (self.is_main and self.every > 0 and (state.epoch % self.every == 0 or last)):
            return
        started = time.perf_counter()
        encoder = unwrap(state.model).encoder
        assert isinstance(encoder, nn.Module)
        row.update(self.track(encoder))
        row["track_seconds"] = time.perf_counter() - started


class TensorBoard(EpochHook):
    """Writes each epoch's row to TensorBoard (:class:`~ceco_fair.training.tensorboard.EpochLog`)."""

    def __init__(self, log: EpochLog) -> None:
        self.log = log

    def after_epoch(self, state: TrainState, row: dict[str, float]) -> None:
        """Log the row."""
        self.log(row)
