"""Diagnostics of a learned representation: retrieval, alignment, uniformity, collapse, leakage.

Every function takes numpy arrays or torch tensors (any device), works in float64 and returns
a python float. Rows are L2-normalised inside (``z / max(||z||, 1e-12)``, as
``torch.nn.functional.normalize``: an all-zero row stays zero) wherever a definition says so.
Pairwise quantities are computed block by block: no ``n × n`` matrix is ever held.

- :func:`instance_retrieval`: share of samples whose second view is their own nearest neighbour.
- :func:`alignment`, :func:`uniformity`: Wang & Isola (ICML 2020).
- :func:`variance_ratio`: within-class over total variance (0 = every class collapsed).
- :func:`leakage`: balanced accuracy of a cross-validated linear probe for the sensitive value.
- :func:`bias_sensitivity`: share of the variance of counterfactual features due to the colour.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from ceco_fair.errors import CecoFairError
from ceco_fair.metrics.confusion import LabelsLike, as_int_labels, check_same_length

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
FeaturesLike = npt.ArrayLike | torch.Tensor
"""Features: a numpy array or a torch tensor (any device, any float dtype)."""

NORM_EPS = 1e-12
"""Smallest norm divided by when L2-normalising (an all-zero row stays zero)."""

_FP32_UNIT = 2.0**-24

BAD_SHAPE = "{name} must be a {ndim}-D array {shape_text}, got shape {shape}"
EMPTY_FEATURES = "{name} has no rows; expected at least one"
SHAPE_MISMATCH = "{name} has shape {shape} but {reference} has {expected}; expected equal shapes"
BAD_BLOCK = "block_size must be a positive integer, got {value!r}"
BAD_FOLDS = "folds must be an integer >= 2, got {value!r}"
BAD_T = "t must be a positive finite number, got {value!r}"


def as_features(values: FeaturesLike, name: str, ndim: int = 2) -> FloatArray:
    """Convert features to a float64 numpy array of ``ndim`` dimensions with at least one row.

    Args:
        values: ``[n, D]`` (or ``[n, K, D]`` with ``ndim=3``) numpy array or torch tensor.
        name: Argument name used in error messages.
        ndim: Expected number of dimensions.

    Returns:
        The features as float64 (a copy where the dtype differs).

    Raises:
        CecoFairError: If the shape is wrong or there are no rows.

    """
    if isinstance(values, torch.Tensor):
        array = values.detach().cpu().to(torch.float64).numpy()
    else:
        array = np.asarray(values, dtype=np.float64)
    if array.ndim != ndim:
        shape_text = "[n, D]" if ndim == 2 else "[n, K, D]"
        raise CecoFairError(BAD_SHAPE.format(name=name, ndim=ndim, shape_text=shape_text, shape=tuple(array.shape)))
    if array.shape[0] == 0:
        raise CecoFairError(EMPTY_FEATURES.format(name=name))
    return array


def l2_normalise(features: FloatArray) -> FloatArray:
    """Divide each vector along the last axis by ``max(its norm, 1e-12)``.

    Args:
        features: ``[..., D]`` float64.

    Returns:
        ``[..., D]`` float64 unit vectors (zero vectors stay zero).

    """
    norms = np.linalg.norm(features, axis=-1, keepdims=True)
    unit: FloatArray = features / np.maximum(norms, NORM_EPS)
    return unit


def _check_block_size(block_size: int) -> None:
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise CecoFairError(BAD_BLOCK.format(value=block_size))


def _check_same_shape(first: tuple[str, FloatArray], second: tuple[str, FloatArray]) -> None:
    if first[1].shape != second[1].shape:
        raise CecoFairError(
            SHAPE_MISMATCH.format(
                name=second[0], shape=tuple(second[1].shape), reference=first[0], expected=tuple(first[1].shape)
            )
        )


def _labels_for(labels: LabelsLike, n: int, name: str) -> npt.NDArray[np.int64]:
    array = as_int_labels(labels, name)
    check_same_length(("features", np.empty(n)), (name, array))
    return array


def instance_retrieval(
    view1: FeaturesLike,
    view2: FeaturesLike,
    labels: LabelsLike | None = None,
    *,
    block_size: int = 2048,
) -> float:
    """Share of samples whose own second view is the nearest of the candidates to their first view.

    Rows of both views are L2-normalised. Sample ``i`` is *retrieved* when
    ``cos(view1[i], view2[i]) > cos(view1[i], view2[j])`` for every other candidate ``j``: ties
    count as a miss (strictly greater). Candidates are all rows, or, with ``labels``, the rows
    with the label of ``i``; a sample alone in its label (or ``n = 1``) is always retrieved.

    Row blocks of ``view1`` are compared with all of ``view2`` in a float32 matrix product
    (``[block_size, n]``, never ``n × n``); a sample whose float32 margin is within the bound on
    float32 rounding (``4 (D + 4) 2⁻²⁴``) is decided again in float64, so the result is the
    float64 answer. Random features have almost no such samples; many exact ties (duplicated
    rows) make the call slower, one float64 pass over the candidates per tied sample.

    Args:
        view1: ``[n, D]`` features of the first view.
        view2: ``[n, D]`` features of the second view, row ``i`` the same sample as in ``view1``.
        labels: Optional ``[n]`` integer grouping that restricts the candidates.
        block_size: Rows of ``view1`` per matrix product.

    Returns:
        The retrieved share in ``[0, 1]``.

    Raises:
        CecoFairError: On mismatched shapes, no rows, or a bad ``block_size``.

    """
    _check_block_size(block_size)
    first = l2_normalise(as_features(view1, "view1"))
    second = l2_normalise(as_features(view2, "view2"))
    _check_same_shape(("view1", first), ("view2", second))
    n, dim = first.shape
    groups = None if labels is None else _labels_for(labels, n, "labels")
    first32 = first.astype(np.float32)
    second32_t = np.ascontiguousarray(second.astype(np.float32).T)
    tolerance = 4.0 * (dim + 4) * _FP32_UNIT
    retrieved = 0
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        rows = np.arange(stop - start)
        sim = first32[start:stop] @ second32_t  # [B, n]
        own = sim[rows, start + rows].astype(np.float64)
        sim[rows, start + rows] = -np.inf
        if groups is not None:
            np.copyto(sim, np.float32(-np.inf), where=groups[start:stop, None] != groups[None, :])
        margin = own - sim.max(axis=1).astype(np.float64)  # +inf when i is its only candidate
        retrieved += int(np.count_nonzero(margin > tolerance))
        for local in np.flatnonzero(np.abs(margin) <= tolerance):
            retrieved += _retrieved_exactly(first, second, groups, start + int(local))
    return retrieved / int(n)


def _retrieved_exactly(first: FloatArray, second: FloatArray, groups: npt.NDArray[np.int64] | None, index: int) -> int:
    """1 if sample ``index`` is retrieved, decided with float64 similarities, else 0."""
    candidates = np.ones(first.shape[0], dtype=bool) if groups is None else groups == groups[index]
    candidates[index] = False
    own = float(first[index] @ second[index])
    others = second[candidates] @ first[index]
    return 1 if others.size == 0 or own > float(others.max()) else 0


def alignment(view1: FeaturesLike, view2: FeaturesLike) -> float:
    """Mean squared distance between the L2-normalised views of each sample (Wang & Isola 2020).

    ``alignment = (1/n) Σ_i ||a_i − b_i||²`` with ``a_i``, ``b_i`` the normalised rows; 0 when the
    two views coincide, at most 4.

    Args:
        view1: ``[n, D]`` features of the first view.
        view2: ``[n, D]`` features of the second view.

    Returns:
        The alignment.

    Raises:
        CecoFairError: On mismatched shapes or no rows.

    """
    first = l2_normalise(as_features(view1, "view1"))
    second = l2_normalise(as_features(view2, "view2"))
    _check_same_shape(("view1", first), ("view2", second))
    return float(np.mean(np.sum((first - second) ** 2, axis=1)))


def uniformity(features: FeaturesLike, t: float = 2.0, *, block_size: int = 2048) -> float:
    """Log of the mean Gaussian potential over all pairs of L2-normalised rows (Wang & Isola 2020).

    ``uniformity = log( (2 / (n (n−1))) Σ_{i<j} exp(−t ||z_i − z_j||²) )``, in ``[−4t, 0]``; lower
    is more uniform. Exact, in float64, with ``||z_i − z_j||² = ||z_i||² + ||z_j||² − 2 z_i·z_j``
    (at least 0) computed by row blocks ``[block_size, n]`` against the rows after them and
    combined by a running log-sum-exp. With a single row there is no pair: the result is NaN (logged).

    Args:
        features: ``[n, D]`` features.
        t: Scale of the potential (positive).
        block_size: Rows per matrix product.

    Returns:
        The uniformity.

    Raises:
        CecoFairError: On a bad shape, no rows, bad ``t`` or bad ``block_size``.

    """
    _check_block_size(block_size)
    if isinstance(t, bool) or not isinstance(t, int | float) or not (math.isfinite(t) and t > 0):
        raise CecoFairError(BAD_T.format(value=t))
    z = l2_normalise(as_features(features, "features"))
    n = z.shape[0]
    if n < 2:
        logger.warning("uniformity: %d row, no pair; the uniformity is NaN", n)
        return math.nan
    scaled_norms = t * np.sum(z * z, axis=1)  # [n]: t, or 0 for an all-zero row
    log_total = -math.inf
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        exponent = z[start:stop] @ z[start:].T  # [B, n - start], the gram block
        exponent *= 2.0 * t  # −t ||z_i − z_j||² = t (2 z_i·z_j − ||z_i||² − ||z_j||²)
        exponent -= scaled_norms[start:stop, None]
        exponent -= scaled_norms[None, start:]
        np.minimum(exponent, 0.0, out=exponent)
        rows = np.arange(stop - start)
        exponent[:, : stop - start][rows[None, :] <= rows[:, None]] = -np.inf  # keep j > i
        log_total = float(np.logaddexp(log_total, _logsumexp_inplace(exponent)))
    return log_total - math.log(n * (n - 1) / 2)


def _logsumexp_inplace(values: FloatArray) -> float:
    """``log Σ exp(values)``, overwriting ``values``."""
    peak = float(values.max())
    if peak == -math.inf:
        return -math.inf
    values -= peak
    np.exp(values, out=values)
    return peak + math.log(float(values.sum()))


def _spread_ratio(within: float, total: float) -> float:
    """``within / total``, with 0/0 (every vector identical) defined as 0."""
    return 0.0 if total == 0.0 else within / total


def variance_ratio(features: FeaturesLike, labels: LabelsLike) -> float:
    """Within-class share of the variance of the L2-normalised rows.

    ``Σ_c Σ_{i∈c} ||z_i − μ_c||² / Σ_i ||z_i − μ||²`` with ``μ_c`` the class mean and ``μ`` the
    global mean. 0 means every class collapsed to a point; 1 means the class means coincide. When
    all rows are identical (0/0) the result is 0.0: every class is a point.

    Args:
        features: ``[n, D]`` features.
        labels: ``[n]`` integer classes.

    Returns:
        The ratio in ``[0, 1]``.

    Raises:
        CecoFairError: On a bad shape, no rows, or labels of another length.

    """
    z = l2_normalise(as_features(features, "features"))
    classes = _labels_for(labels, z.shape[0], "labels")
    _, index = np.unique(classes, return_inverse=True)
    counts = np.bincount(index).astype(np.float64)
    sums = np.zeros((counts.size, z.shape[1]))
    np.add.at(sums, index, z)
    within = float(np.sum((z - (sums / counts[:, None])[index]) ** 2))
    total = float(np.sum((z - z.mean(axis=0)) ** 2))
    return _spread_ratio(within, total)


def bias_sensitivity(features: FeaturesLike) -> float:
    """Share of the variance of counterfactual features that the colour explains.

    ``features[i, k]`` encodes image ``i`` re-rendered on colour ``k`` (see
    :func:`ceco_fair.evaluation.counterfactual.counterfactual_features`); vectors are L2-normalised along ``D``.
    ``Σ_i Σ_k ||f_ik − f̄_i||² / Σ_i Σ_k ||f_ik − f̄||²`` with ``f̄_i`` the mean over ``k`` of image
    ``i`` and ``f̄`` the global mean. 0: the colour changes nothing; 1: only the colour matters.
    When every vector is identical (0/0) the result is 0.0.

    Args:
        features: ``[n, K, D]`` features.

    Returns:
        The ratio in ``[0, 1]``.

    Raises:
        CecoFairError: On a bad shape or no rows.

    """
    f = l2_normalise(as_features(features, "features", ndim=3))
    within = float(np.sum((f - f.mean(axis=1, keepdims=True)) ** 2))
    total = float(np.sum((f - f.mean(axis=(0, 1), keepdims=True)) ** 2))
    return _spread_ratio(within, total)


def leakage(
    features: FeaturesLike,
    sensitive: LabelsLike,
    targets: LabelsLike | None = None,
    *,
    folds: int = 5,
    seed: int = 0,
) -> float:
    """How well a linear classifier reads the sensitive value from the features.

    A logistic regression on standardised features (lbfgs, deterministic) predicts the sensitive
    value; the score is the balanced accuracy of its out-of-fold predictions over a stratified,
    shuffled ``folds``-fold cross-validation (chance ``1/K`` for ``K`` sensitive values). With
    ``targets`` the same is done within each target class and the scores are averaged weighted by
    class size: leakage beyond what the target explains. A set (the whole data, or one target
    class) is skipped when it holds a single sensitive value or a value with fewer than ``folds``
    members; the skipped classes are logged in one line. If nothing can be scored, NaN (logged).

    Args:
        features: ``[n, D]`` features (not normalised).
        sensitive: ``[n]`` integer sensitive values.
        targets: Optional ``[n]`` integer target classes.
        folds: Number of cross-validation folds (at least 2).
        seed: Seed of the fold shuffle.

    Returns:
        The balanced accuracy in ``[0, 1]``, or NaN.

    Raises:
        CecoFairError: On a bad shape, no rows, mismatched lengths or bad ``folds``.

    """
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise CecoFairError(BAD_FOLDS.format(value=folds))
    x = as_features(features, "features")
    s = _labels_for(sensitive, x.shape[0], "sensitive")
    if targets is None:
        score = _cross_validated_accuracy(x, s, folds, seed)
        if score is None:
            logger.warning("leakage: a sensitive value has fewer than %d members or only one value; NaN", folds)
            return math.nan
        return score
    classes = _labels_for(targets, x.shape[0], "targets")
    scores: list[float] = []
    weights: list[int] = []
    skipped: list[Any] = []
    for target in np.unique(classes):
        members = classes == target
        score = _cross_validated_accuracy(x[members], s[members], folds, seed)
        if score is None:
            skipped.append(target.item())
        else:
            scores.append(score)
            weights.append(int(members.sum()))
    if skipped:
        logger.info(
            "leakage: target classes %s skipped (a sensitive value with fewer than %d members, or only one)",
            skipped,
            folds,
        )
    if not scores:
        logger.warning("leakage: no target class can be cross-validated; NaN")
        return math.nan
    return float(np.average(scores, weights=weights))


def _cross_validated_accuracy(x: FloatArray, s: npt.NDArray[np.int64], folds: int, seed: int) -> float | None:
    """Balanced accuracy of out-of-fold linear predictions of ``s`` from ``x``, None if impossible."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _, counts = np.unique(s, return_counts=True)
    if counts.size < 2 or counts.min() < folds:
        return None
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    predicted = cross_val_predict(model, x, s, cv=splitter)
    return float(balanced_accuracy_score(s, predicted))
