"""What an audit measures, checked once: frozen features of train and test, their views and counterfactuals.

:meth:`AuditInputs.from_arrays` turns the arrays a user passes to :func:`ceco_fair.audit_features` (numpy or
torch) into tensors and refuses what cannot be measured, with one-line errors; :func:`ceco_fair.audit` and a
protocol run build the same object from their extracted features.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ceco_fair.errors import CecoFairError
from ceco_fair.evaluation.diagnostics import Views
from ceco_fair.evaluation.measure import AuditKind, choose_kind
from ceco_fair.evaluation.probe import Features
from ceco_fair.evaluation.readouts import Head
from ceco_fair.results.layout import MetricKind

ArrayLike = np.ndarray | torch.Tensor | Sequence[int] | Sequence[float]


@dataclass(frozen=True)
class AuditInputs:
    """The checked inputs of one measurement.

    Attributes:
        train: training features ``[n_train, D]`` float32, targets and sensitive values ``[n_train]`` int64.
        test: test features ``[n_test, D]``, targets and sensitive values ``[n_test]``.
        kind: the metric kind measured (``bias`` or ``group``).
        n_classes: number of target classes.
        train_groups: whether ``train.sensitive`` holds the sensitive values (False: unknown, zeros).
        valid: validation features (the balanced read-out's with ``probe.balanced_on: valid``, the rules').
        views: features of two augmentations of the test images ``[n_test, D]`` each, in test order.
        counterfactual: features of every test image on each of K colours ``[n_test, K, D]``.
        n_groups: number of sensitive groups (None: the largest value + 1).
        head: the classifier the method trained with the encoder.
    """

    train: Features
    test: Features
    kind: MetricKind
    n_classes: int
    train_groups: bool = True
    valid: Features | None = None
    views: Views | None = None
    counterfactual: torch.Tensor | None = None
    n_groups: int | None = None
    head: Head | None = None

    @classmethod
    def from_arrays(
        cls,
        train_features: ArrayLike,
        train_targets: ArrayLike,
        test_features: ArrayLike,
        test_targets: ArrayLike,
        test_sensitive: ArrayLike,
        *,
        metrics: AuditKind,
        diagnostics: bool,
        n_classes: int | None = None,
        train_sensitive: ArrayLike | None = None,
        valid: Features | None = None,
        views: tuple[ArrayLike, ArrayLike] | None = None,
        counterfactual: ArrayLike | None = None,
        n_groups: int | None = None,
        head: Head | None = None,
    ) -> AuditInputs:
        """Check and convert the arrays of :func:`~ceco_fair.evaluation.auditing.audit_features`.

        ``metrics`` is the kind asked (``auto`` chooses, see :func:`~ceco_fair.evaluation.measure.choose_kind`);
        without ``diagnostics`` the views and counterfactuals are ignored.

        Raises:
            CecoFairError: mismatched lengths, a single sensitive group, a non-binary target where the group
                metrics need one, features that are not ``[n, D]`` or not finite.
        """
        train_x, test_x = _features(train_features, "train_features"), _features(test_features, "test_features")
        if train_x.shape[1] != test_x.shape[1]:
            raise CecoFairError(
                f"test_features: expected {train_x.shape[1]} features like train_features, got {test_x.shape[1]}"
            )
        train_y = _to_numpy(train_targets, "train_targets").astype(np.int64)
        test_y = _to_numpy(test_targets, "test_targets").astype(np.int64)
        test_s = _to_numpy(test_sensitive, "test_sensitive").astype(np.int64)
        for name, features, values in (
            ("train_targets", train_x, train_y),
            ("test_targets", test_x, test_y),
            ("test_sensitive", test_x, test_s),
        ):
            if len(values) != len(features):
                raise CecoFairError(f"{name}: {len(values)} values for {len(features)} feature rows")
        if len(np.unique(test_s)) < 2:
            raise CecoFairError(
                f"test_sensitive: only one group ({int(test_s[0]) if len(test_s) else 'none'}) in the "
                "test set; fairness needs at least two"
            )
        kind = choose_kind(metrics, test_y, test_s)
        if kind == "group" and metrics == "group" and not set(np.unique(test_y).tolist()) <= {0, 1}:
            raise CecoFairError(
                f"test_targets: the group metrics need a binary target (0/1), got classes "
                f"{sorted(np.unique(test_y).tolist())[:10]}"
            )
        view_pair = _views(views, test_x.shape) if diagnostics and views is not None else None
        counterfactual_x = (
            _counterfactual(counterfactual, test_x.shape) if diagnostics and counterfactual is not None else None
        )
        train_s = torch.zeros(len(train_y), dtype=torch.long)
        if train_sensitive is not None:
            train_s = torch.from_numpy(_to_numpy(train_sensitive, "train_sensitive").astype(np.int64))
            if len(train_s) != len(train_x):
                raise CecoFairError(f"train_sensitive: {len(train_s)} values for {len(train_x)} feature rows")
        return cls(
            Features(train_x, torch.from_numpy(train_y), train_s),
            Features(test_x, torch.from_numpy(test_y), torch.from_numpy(test_s)),
            kind,
            n_classes or int(max(train_y.max(initial=0), test_y.max(initial=0)) + 1),
            train_groups=train_sensitive is not None,
            valid=valid,
            views=view_pair,
            counterfactual=counterfactual_x,
            n_groups=n_groups,
            head=head,
        )


def _to_numpy(values: ArrayLike, name: str) -> np.ndarray:
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if array.ndim != 1:
        raise CecoFairError(f"{name}: expected a 1-D array, got shape {tuple(array.shape)}")
    return array


def _features(values: ArrayLike, name: str) -> torch.Tensor:
    tensor = torch.as_tensor(values.detach().cpu() if isinstance(values, torch.Tensor) else np.asarray(values))
    if tensor.ndim != 2:
        raise CecoFairError(f"{name}: expected features of shape [n, D], got {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise CecoFairError(f"{name}: features contain NaN or inf")
    return tensor.float()


def _counterfactual(values: ArrayLike, test_shape: torch.Size) -> torch.Tensor:
    tensor = torch.as_tensor(values.detach().cpu() if isinstance(values, torch.Tensor) else np.asarray(values))
    if tensor.ndim != 3 or tensor.shape[0] != test_shape[0] or tensor.shape[2] != test_shape[1]:
        raise CecoFairError(
            f"counterfactual: expected features [{test_shape[0]}, K, {test_shape[1]}], got {tuple(tensor.shape)}"
        )
    return tensor.float()


def _views(views: tuple[ArrayLike, ArrayLike], test_shape: torch.Size) -> Views:
    pair = Views(_features(views[0], "views[0]"), _features(views[1], "views[1]"))
    for name, tensor in (("views[0]", pair.first), ("views[1]", pair.second)):
        if tensor.shape != test_shape:
            raise CecoFairError(f"{name}: expected {tuple(test_shape)} like test_features, got {tuple(tensor.shape)}")
    return pair
