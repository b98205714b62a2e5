"""Convergence speed on a common scale, from the per-epoch curves (``curves.csv``) of several runs.

A run's own final value is a poor yardstick: "epochs to 90% of the run's own final accuracy" rewards a
run whose curve plateaus low. Here every run of a condition is measured against one level shared by
the methods of that condition, and by the area under its curve:

- ``level``: ``share`` × the best method's final value in the condition (each method's final value is
  its mean over seeds at its last measured epoch);
- ``epochs_to_level``: the first epoch at which a run's curve reaches the level; a run that never
  does gets ``last epoch + 1``, so that it counts as slower than any run that does;
- ``area``: the trapezoid area under the curve over the measured epochs, divided by their span (a
  curve that is flat at ``v`` has area ``v``); a run measured at one epoch has area = that value.

Torch-free: pandas and numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from ceco_fair.errors import CecoFairError

DEFAULT_SHARE: Final = 0.9
"""The shared level is this share of the best method's final value in a condition."""
CONVERGENCE_COLUMNS: Final = ("level", "epochs_to_level", "reached", "area")
"""Columns :func:`convergence_table` adds to the run keys."""


def curve_area(
    epochs: Sequence[float] | npt.NDArray[np.float64], values: Sequence[float] | npt.NDArray[np.float64]
) -> float:
    """Trapezoid area under ``values`` over ``epochs``, divided by the epoch span.

    Args:
        epochs: ``[T]`` increasing epoch numbers.
        values: ``[T]`` the curve at those epochs.

    Returns:
        The curve's mean height (``values[0]`` when ``T == 1``).
    """
    x = np.asarray(epochs, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise CecoFairError("curve_area: a curve needs at least one measured epoch")
    if x.size == 1:
        return float(y[0])
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)) / (x[-1] - x[0]))


def convergence_table(
    curves: pd.DataFrame,
    column: str,
    *,
    condition: Sequence[str] = ("rho",),
    method: str = "method",
    run: Sequence[str] = ("seed",),
    share: float = DEFAULT_SHARE,
) -> pd.DataFrame:
    """Epochs to a level shared by the methods of a condition, and the area under each run's curve.

    Args:
        curves: one row per run and measured epoch, with an ``epoch`` column, the curve ``column``
            and the key columns named below.
        column: the curve to measure (e.g. ``balanced_knn_accuracy``); higher is better.
        condition: columns that define a condition (the methods compared share its level).
        method: the column naming the method.
        run: further columns that tell runs of one method and condition apart (the seed).
        share: the level is ``share`` × the best method's final value, in ``(0, 1]``.

    Returns:
        One row per run: the key columns, then ``level``, ``epochs_to_level``, ``reached`` (whether
        the run reached the level) and ``area``.

    Raises:
        CecoFairError: a missing column, or ``share`` outside ``(0, 1]``.
    """
    keys = [*condition, method, *run]
    missing = [name for name in ("epoch", column, *keys) if name not in curves.columns]
    if missing:
        raise CecoFairError(f"convergence_table: curves have no column {missing[0]!r}")
    if not 0 < share <= 1:
        raise CecoFairError(f"convergence_table: share must be in (0, 1], got {share}")
    ordered = curves.dropna(subset=[column]).sort_values("epoch", kind="stable")
    measured: list[tuple[dict[str, object], npt.NDArray[np.float64], npt.NDArray[np.float64]]] = []
    for key, frame in ordered.groupby(keys, sort=True, dropna=False):
        fields = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        epochs = frame["epoch"].to_numpy(dtype=np.float64)
        measured.append((fields, epochs, frame[column].to_numpy(dtype=np.float64)))
    finals: dict[tuple[object, ...], dict[object, list[float]]] = {}
    for fields, _, values in measured:
        where = tuple(fields[c] for c in condition)
        finals.setdefault(where, {}).setdefault(fields[method], []).append(float(values[-1]))
    levels = {
        where: share * max(float(np.mean(values)) for values in by_method.values())
        for where, by_method in finals.items()
    }
    rows = []
    for fields, epochs, values in measured:
        level = levels[tuple(fields[c] for c in condition)]
        above = np.flatnonzero(values >= level)
        reached = above.size > 0
        rows.append(
            {
                **fields,
                "level": level,
                "epochs_to_level": float(epochs[above[0]]) if reached else float(epochs[-1]) + 1,
                "reached": bool(reached),
                "area": curve_area(epochs, values),
            }
        )
    return pd.DataFrame(rows, columns=[*keys, *CONVERGENCE_COLUMNS])
