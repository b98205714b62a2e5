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

from ceco_fair.common.user_code import call_user, check_call_arguments, load_callable, user_code
from ceco_fair.errors import CecoFairError, UserCodeError

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
    """Build the loss of ``spec`` with ``kwargs``; the result checks what each call returns.

    Returns:
        ``(features [N, V, D], labels [N], sensitive [N]) -> scalar tensor``.

    Raises:
        CecoFairError: the class cannot be loaded, raises, or returns something that is not callable.
        UserCodeError: (from the returned function) the loss raised, or returned something other than
            a finite scalar tensor with a gradient.
    """
    loss = call_user(load_callable(spec, f"{key}.name", _EXPECTED), kwargs, key, spec)
    if not callable(loss):
        raise CecoFairError(f"{key} {spec!r}: built a {type(loss).__name__}, which cannot be called as a loss")
    subject = f"loss {spec!r}"

    def compute(features: torch.Tensor, labels: torch.Tensor, sensitive: torch.Tensor) -> torch.Tensor:
        with user_code(subject):
            value = loss(features, labels, sensitive)
        check_loss_value(value, subject, needs_grad=features.requires_grad and torch.is_grad_enabled())
        return value  # type: ignore[no-any-return]

    return compute


def check_loss_value(value: object, subject: str, *, needs_grad: bool) -> None:
    """Check that a loss returned a finite scalar tensor, with a gradient when ``needs_grad``.

    Args:
        value: what the loss returned.
        subject: the loss, as named in the message (``loss 'mylosses:MyLoss'``).
        needs_grad: the features it was given carry a gradient (as in training), so must its value.

    Raises:
        UserCodeError: naming what is wrong: not a tensor, not a scalar, no gradient, not finite.
    """
    if not isinstance(value, torch.Tensor):
        raise UserCodeError(f"{subject} returned a {type(value).__name__}, expected a scalar tensor")
    if value.ndim != 0:
        raise UserCodeError(
            f"{subject} returned a tensor of shape {list(value.shape)}, expected a scalar tensor "
            "(reduce it, e.g. with .mean())"
        )
    if needs_grad and not value.requires_grad:
        raise UserCodeError(
            f"{subject} returned a tensor without a gradient (requires_grad is False): compute it from the "
            "features with torch operations, without .detach(), .item() or torch.no_grad()"
        )
    if not bool(torch.isfinite(value.detach())):
        raise UserCodeError(f"{subject} returned {value.item()}, expected a finite value")
