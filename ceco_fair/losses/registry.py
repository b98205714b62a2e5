"""Registry of the named contrastive losses and :func:`build_loss`, which fails early."""

from __future__ import annotations

import inspect
from typing import Any

from ceco_fair.errors import CecoFairError
from ceco_fair.losses.named import (
    BiasConLoss,
    ConTeXLoss,
    ContrastiveLoss,
    FSCLLoss,
    SimCLRLoss,
    SupConLoss,
)

LOSSES: dict[str, type[ContrastiveLoss]] = {
    "simclr": SimCLRLoss,
    "supcon": SupConLoss,
    "contex": ConTeXLoss,
    "ceco": ConTeXLoss,
    "fscl": FSCLLoss,
    "biascon": BiasConLoss,
}
"""Loss name (``ceco`` is an alias of ``contex``) -> module class."""

_UNKNOWN_LOSS = "unknown loss name {name!r}; valid names: {valid}"
_UNKNOWN_KWARG = "unknown argument {arg!r} for loss {name!r}; valid arguments: {valid}"


def loss_arguments(name: str) -> tuple[str, ...]:
    """Keyword arguments accepted by a named loss.

    Args:
        name: a key of :data:`LOSSES`.

    Returns:
        The argument names, in signature order.

    Raises:
        CecoFairError: if the name is unknown.
    """
    cls = _loss_class(name)
    parameters = inspect.signature(cls.__init__).parameters.values()
    return tuple(p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY)


def build_loss(name: str, **kwargs: Any) -> ContrastiveLoss:
    """Build a named contrastive loss.

    Args:
        name: one of :data:`LOSSES` (``simclr``, ``supcon``, ``contex``/``ceco``, ``fscl``,
            ``biascon``).
        **kwargs: the loss's keyword arguments (``temperature``, ``base_temperature``,
            ``block_size``; ``label_weight``, ``self_weight``, ``clamp`` for contex;
            ``group_norm`` for fscl).

    Returns:
        The loss module, called as ``loss(features [N, V, D], labels [N], sensitive [N])``.

    Raises:
        CecoFairError: on an unknown name or argument, or an out-of-range value.
    """
    valid = loss_arguments(name)
    for arg in kwargs:
        if arg not in valid:
            raise CecoFairError(_UNKNOWN_KWARG.format(arg=arg, name=name, valid=", ".join(valid)))
    return _loss_class(name)(**kwargs)


def _loss_class(name: str) -> type[ContrastiveLoss]:
    if not isinstance(name, str) or name not in LOSSES:
        raise CecoFairError(_UNKNOWN_LOSS.format(name=name, valid=", ".join(LOSSES)))
    return LOSSES[name]
