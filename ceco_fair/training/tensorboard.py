"""Optional TensorBoard logs: ``train.tensorboard: true`` writes ``runs/<run_id>/tensorboard/``.

Each epoch's row of the training history (loss, learning rate, and every other number the trainer
tracks per epoch) becomes a scalar ``train/<name>`` at step ``epoch``, through
:class:`torch.utils.tensorboard.SummaryWriter`. The ``tensorboard`` package is an extra:
``pip install ceco_fair[tensorboard]``; without it, validation says so in one line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ceco_fair.errors import CecoFairError

TENSORBOARD_DIR = "tensorboard"
MISSING = (
    "train.tensorboard: the tensorboard package is not installed ({reason}); "
    "install the extra with: pip install 'ceco_fair[tensorboard]'"
)


def _summary_writer() -> Any:
    """``torch.utils.tensorboard.SummaryWriter``, or one :class:`CecoFairError` line naming the extra."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise CecoFairError(MISSING.format(reason=str(error).strip().splitlines()[0])) from None
    return SummaryWriter


def require_tensorboard() -> None:
    """Raise :class:`CecoFairError` (naming the extra to install) when TensorBoard cannot be imported."""
    _summary_writer()


class EpochLog:
    """Writes each epoch's history row as scalars under ``folder``; call :meth:`close` at the end.

    Args:
        folder: the event files' folder (``runs/<run_id>/tensorboard``).
    """

    def __init__(self, folder: Path) -> None:
        self.writer = _summary_writer()(log_dir=str(folder))

    def __call__(self, row: Mapping[str, float]) -> None:
        """Log one history row (``epoch`` is the step; non-numeric or non-finite values are left out)."""
        step = int(row["epoch"])
        for name, value in row.items():
            if name != "epoch" and isinstance(value, int | float) and math.isfinite(value):
                self.writer.add_scalar(f"train/{name}", float(value), step)
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()


def epoch_log(run_dir: Path, enabled: bool) -> EpochLog | None:
    """An :class:`EpochLog` in ``run_dir/tensorboard`` when ``enabled``, else None."""
    return EpochLog(run_dir / TENSORBOARD_DIR) if enabled else None
