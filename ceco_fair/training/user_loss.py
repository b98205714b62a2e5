"""Your own loss: a method named ``"package.module:Name"`` trains with the loss that class builds.

The contract: ``Name(**keywords)`` (the method's other keys) returns a callable, usually a
``torch.nn.Module``, called as ``loss(features [N, V, D], labels [N], sensitive [N])`` and returning
a scalar tensor. ``features`` are the projection head's outputs for the ``V = 2`` augmented views
of each of the ``N`` images (not normalised), ``labels`` the targets and ``sensitive`` the
sensitive / bias values (int64, on the training device). Parameters of the loss are not trained.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from ceco_fair.common.user_code import call_user, check_call_arguments, load_callable
from ceco_fair.errors import CecoFairError

UserLossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

_EXPECTED = "a method name"


def check_user_loss(spec: str, kwargs: Mapping[str, Any], key: str) -> None:
    """Import the loss class of ``spec`` and check ``kwargs`` against its signature, calling nothing.

    Args:
        spec: ``"package.module:Name"``.
        kwargs: the method's keyword arguments.
        key: the method's protocol key (``methods[2]``), named in errors.

    Raises:
        CecoFairError: the module does not import, has no such callable, or a keyword does not fit.
    """
    loss_class = load_callable(spec, f"{key}.name", _EXPECTED)
    check_call_arguments(loss_class, kwargs, key, spec)


def build_user_loss(spec: str, kwargs: Mapping[str, Any], key: str = "methods") -> UserLossFn:
    """Build the loss of ``spec`` with ``kwargs``; the result checks that each call returns a scalar.

    Returns:
        ``(features [N, V, D], labels [N], sensitive [N]) -> scalar tensor``.

    Raises:
        CecoFairError: the class cannot be loaded, raises, or returns something that is not callable.
    """
    loss = call_user(load_callable(spec, f"{key}.name", _EXPECTED), kwargs, key, spec)
    if not callable(loss):
        raise CecoFairError(f"{key} {spec!r}: built a {type(loss).__name__}, which cannot be called as a loss")

    def compute(features: torch.Tensor, labels: torch.Tensor, sensitive: torch.Tensor) -> torch.Tensor:
        value = loss(features, labels, sensitive)
        if not isinstance(value, torch.Tensor) or value.ndim != 0:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise CecoFairError(f"{spec}: the loss returned {shape}, expected a scalar tensor")
        return value

    return compute
