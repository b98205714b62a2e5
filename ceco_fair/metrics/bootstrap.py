"""Bootstrap of confusion counts and percentile intervals.

Resampling ``N`` rows with replacement changes a metric only through the count table
``counts[g, t, p]`` (:mod:`ceco_fair.metrics.confusion`). Under row resampling that table is
exactly ``Multinomial(N, counts / N)`` over the ``G·C·C`` cells, so one vectorised
multinomial draw per resample replaces the ``N`` row draws, and every metric is then
evaluated on all resampled tables at once.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from ceco_fair.common.progress import progress_bar
from ceco_fair.errors import CecoFairError
from ceco_fair.metrics.confusion import IntArray

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
CountStatistic = Callable[[IntArray], dict[str, FloatArray]]

BAD_N_BOOT = "n_boot must be a non-negative integer, got {value!r}"
BAD_CONFIDENCE = "confidence must be a float in (0, 1), got {value!r}"
BAD_SEED = "seed must be an integer, got {value!r}"
EMPTY_COUNTS = "counts must hold at least one row, got a table of shape {shape} summing to 0"

_VALUES_PER_CHUNK = 1 << 21
"""Values per resample times resamples held in memory at once (8-byte values: 16 MiB)."""


def check_bootstrap_args(n_boot: int, confidence: float, seed: int) -> None:
    """Validate bootstrap arguments.

    Args:
        n_boot: Number of resamples; 0 disables the bootstrap.
        confidence: Two-sided confidence level in ``(0, 1)``.
        seed: Seed of the numpy random generator.

    Raises:
        CecoFairError: Naming the first invalid argument and its value.

    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise CecoFairError(BAD_N_BOOT.format(value=n_boot))
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, (float, int, np.floating))
        or not 0.0 < float(confidence) < 1.0
    ):
        raise CecoFairError(BAD_CONFIDENCE.format(value=confidence))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise CecoFairError(BAD_SEED.format(value=seed))


def resample_counts(counts: IntArray, n_boot: int, rng: np.random.Generator) -> IntArray:
    """Draw bootstrap count tables: the counts of ``N`` rows resampled with replacement.

    Args:
        counts: Count table of any shape, e.g. ``[G, C, C]``, non-negative, summing to ``N > 0``.
        n_boot: Number of resampled tables ``B``.
        rng: Numpy random generator.

    Returns:
        Array ``[B, *counts.shape]`` of int64; each table sums to ``N``.

    Raises:
        CecoFairError: If ``counts`` sums to 0.

    """
    n = int(counts.sum())
    if n <= 0:
        raise CecoFairError(EMPTY_COUNTS.format(shape=counts.shape))
    probabilities = counts.reshape(-1) / n
    draws = rng.multinomial(n, probabilities, size=n_boot)
    return draws.astype(np.int64, copy=False).reshape(n_boot, *counts.shape)


def bootstrap_statistic(
    counts: IntArray,
    statistic: CountStatistic,
    n_boot: int,
    rng: np.random.Generator,
    *,
    values_per_resample: int | None = None,
) -> dict[str, FloatArray]:
    """Evaluate a vectorised statistic on ``n_boot`` resampled count tables.

    Resamples are drawn and evaluated in chunks that bound memory; a progress bar shows when
    there is more than one chunk.

    Args:
        counts: Count table, e.g. ``[G, C, C]``, summing to ``N > 0``.
        statistic: Maps a batch of tables ``[b, *counts.shape]`` to named arrays ``[b, ...]``.
        n_boot: Number of resamples ``B`` (positive).
        rng: Numpy random generator.
        values_per_resample: Largest number of array values the statistic holds per table
            (sets the chunk size); default ``counts.size``.

    Returns:
        The statistic's names mapped to arrays ``[B, ...]`` (resamples along axis 0).

    """
    per_resample = counts.size if values_per_resample is None else values_per_resample
    chunk = max(1, _VALUES_PER_CHUNK // max(1, per_resample))
    n_chunks = math.ceil(n_boot / chunk)
    parts: dict[str, list[FloatArray]] = {}
    for start in progress_bar(range(0, n_boot, chunk), total=n_chunks, desc="bootstrap", hidden=n_chunks < 2):
        batch = resample_counts(counts, min(chunk, n_boot - start), rng)
        for name, values in statistic(batch).items():
            parts.setdefault(name, []).append(values)
    return {name: np.concatenate(values, axis=0) for name, values in parts.items()}


def percentile_interval(samples: FloatArray, confidence: float) -> tuple[FloatArray, FloatArray]:
    """Two-sided percentile interval over axis 0, ignoring NaN resamples.

    Uses linear interpolation between order statistics (:func:`numpy.nanquantile`, the same
    rule as fairlearn's ``MetricFrame``). A position where every resample is NaN gives NaN.

    Args:
        samples: Bootstrap values ``[B, ...]``.
        confidence: Level in ``(0, 1)``; the bounds are the ``(1 - confidence) / 2`` and
            ``(1 + confidence) / 2`` quantiles.

    Returns:
        ``(low, high)``, each of shape ``samples.shape[1:]``.

    """
    alpha = (1.0 - confidence) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanquantile(samples, [alpha, 1.0 - alpha], axis=0)
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
