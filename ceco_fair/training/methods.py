"""The registry of training methods, the built-in ones that are not subgroup baselines, and the model a method trains.

:data:`METHODS` maps a protocol's method name to its :class:`~ceco_fair.training.method.Method` class:
cross-entropy, ``frozen`` (trains nothing), one class per named contrastive loss of
:data:`ceco_fair.losses.LOSSES`, and the subgroup baselines (:mod:`ceco_fair.training.groups`,
:mod:`ceco_fair.training.staged`). A
name of the form ``"package.module:Name"`` is user code: a :class:`Method` subclass is used as it is,
anything else is a user loss (:mod:`ceco_fair.training.user_loss`). :func:`register_method` adds a class
at run time, e.g. from a test module or a script before :func:`ceco_fair.run.main`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ceco_fair.common.config import check_keys, closest
from ceco_fair.common.user_code import is_user_spec, load_callable
from ceco_fair.errors import CecoFairError, ProtocolError
from ceco_fair.losses import LOSSES, ContrastiveLoss, build_loss, loss_arguments
from ceco_fair.models.encoders import ProjectionHead
from ceco_fair.training.distributed import ContrastiveLossFn, DistributedContext, global_contrastive_loss
from ceco_fair.training.groups import GroupDRO, LfF, Resample, Reweight
from ceco_fair.training.method import Method, ModelParts
from ceco_fair.training.staged import JTT, CorrectNContrast
from ceco_fair.training.user_loss import build_user_loss, check_user_loss

CE_WEIGHT_KEY = "ce_weight"
"""The protocol key of a contrastive method's auxiliary cross-entropy weight (searchable)."""


class CrossEntropy(Method):
    """Cross-entropy on the encoder and a linear classifier (the base :class:`Method`)."""

    name = "ce"


class Frozen(CrossEntropy):
    """Trains nothing: the encoder is audited as built (and loaded from ``encoder.weights``)."""

    name = "frozen"
    trains = False


class Contrastive(Method):
    """A named contrastive loss on the projection head's output for two views of each image.

    Its options are the loss's keyword arguments (:func:`~ceco_fair.losses.loss_arguments`); with
    ``ce_weight > 0`` a linear classifier trains beside it: ``loss + ce_weight · CE`` (first view).
    One subclass per name of :data:`~ceco_fair.losses.LOSSES` (:func:`contrastive_method`).
    """

    loss_name: ClassVar[str] = ""
    """The key of the loss in :data:`~ceco_fair.losses.LOSSES` (a subclass may keep it under another method name)."""
    n_views = 2

    def __init__(self, ce_weight: float = 0.0, **loss_options: Any) -> None:
        super().__init__()
        self.ce_weight = ce_weight
        self.loss_options = dict(loss_options)
        self.compute: ContrastiveLossFn | None = None

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        """The loss's keyword arguments with their signature defaults."""
        parameters = inspect.signature(LOSSES[cls.loss_name].__init__).parameters
        return {key: parameters[key].default for key in loss_arguments(cls.loss_name)}

    @classmethod
    def check_options(cls, given: Mapping[str, Any], path: str) -> dict[str, Any]:
        """The given loss arguments, checked by building the loss once (no defaults filled in)."""
        check_keys(given, loss_arguments(cls.loss_name), path)
        try:
            build_loss(cls.loss_name, **given)
        except (ValueError, TypeError) as error:
            raise ProtocolError(f"{path}: {error}") from None
        return dict(given)

    @classmethod
    def search_keys(cls) -> tuple[str, ...]:
        """The loss's arguments and ``ce_weight``."""
        return (*loss_arguments(cls.loss_name), CE_WEIGHT_KEY)

    @classmethod
    def option_value(cls, key: str, options: Mapping[str, Any]) -> Any:
        """The given value, else the built loss's attribute, else the signature's default."""
        if key in options:
            return options[key]
        resolved = getattr(build_loss(cls.loss_name, **options), key, None)
        if isinstance(resolved, int | float | str | bool):
            return resolved
        default = cls.option_defaults().get(key, inspect.Parameter.empty)
        return None if default is inspect.Parameter.empty else default

    @classmethod
    def from_options(cls, options: Mapping[str, Any], ce_weight: float | None) -> Method:
        """The method with its loss options and ``ce_weight`` (None: the loss's default)."""
        return cls(cls.default_ce_weight if ce_weight is None else ce_weight, **options)

    def model_parts(self, encoder: nn.Module, feature_dim: int, n_classes: int, projection_dim: int) -> ModelParts:
        """A projection head, then a classifier when ``ce_weight > 0``."""
        head = ProjectionHead(feature_dim, projection_dim)
        classifier = nn.Linear(feature_dim, n_classes) if self.ce_weight > 0 else None
        return ModelParts(head=head, classifier=classifier)

    def loss_module(self) -> ContrastiveLoss:
        """The loss module for training: input value checks off.

        Without the checks the loss reads nothing back to the host. Non-finite features give a
        non-finite loss instead of an input error, so that a diverging run stops with its last good
        checkpoint kept.
        """
        loss = build_loss(self.loss_name, **self.loss_options)
        loss.check_values = False
        return loss

    def contrastive_loss(
        self, *, n_classes: int | None = None, n_groups: int | None = None, context: DistributedContext | None = None
    ) -> ContrastiveLossFn:
        """The training loss: ``(features [B, V, P], labels [B], sensitive [B]) -> scalar``.

        With both sizes the loss indexes fixed-size tables by the ids and makes no host
        synchronisation; with more than one process it contrasts this process's anchors against the
        global batch (:func:`~ceco_fair.training.distributed.global_contrastive_loss`).
        """
        loss = self.loss_module()
        if context is not None and context.world_size > 1:
            return global_contrastive_loss(loss, context, n_classes=n_classes, n_groups=n_groups)
        return functools.partial(loss, n_classes=n_classes, n_groups=n_groups)

    def start(self, dataset: Any, model: nn.Module, device: torch.device, context: DistributedContext) -> None:
        """Build the loss, its tables sized by the dataset's classes and groups."""
        super().start(dataset, model, device, context)
        self.compute = self.contrastive_loss(n_classes=dataset.n_classes, n_groups=dataset.n_groups, context=context)

    def loss(
        self,
        model: nn.Module,
        views: list[torch.Tensor],
        targets: torch.Tensor,
        sensitive: torch.Tensor,
        index: torch.Tensor,
    ) -> torch.Tensor:
        """The contrastive loss of the views' projections, plus ``ce_weight`` times the first view's cross-entropy."""
        assert self.compute is not None, "start() builds the loss"
        batch = views[0].shape[0]
        projected, logits = model(torch.cat(views) if len(views) > 1 else views[0])
        assert projected is not None
        per_sample = projected.float().view(len(views), batch, -1).transpose(0, 1)  # [B, V, P]
        loss = self.compute(per_sample, targets, sensitive)
        if logits is not None and self.ce_weight > 0:
            loss = loss + self.ce_weight * F.cross_entropy(logits[:batch].float(), targets)
        return loss


class UserLoss(Contrastive):
    """A user loss ``"package.module:Name"``: built with the method's keywords, called on this process's share.

    See :mod:`ceco_fair.training.user_loss` for the contract. One subclass per spec (:func:`method_class`).
    """

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        """None: the loss class's signature is checked when the protocol is read."""
        return {}

    @classmethod
    def check_options(cls, given: Mapping[str, Any], path: str) -> dict[str, Any]:
        """Import the loss class and check ``given`` against its signature, calling nothing."""
        check_user_loss(cls.name, given, path)
        return dict(given)

    @classmethod
    def search_keys(cls) -> tuple[str, ...]:
        """``ce_weight`` only."""
        return (CE_WEIGHT_KEY,)

    @classmethod
    def check_build(cls, options: Mapping[str, Any], path: str) -> None:
        """Build the loss once with its keywords."""
        build_user_loss(cls.name, options, path)

    def contrastive_loss(
        self, *, n_classes: int | None = None, n_groups: int | None = None, context: DistributedContext | None = None
    ) -> ContrastiveLossFn:
        """The user's loss, checking what each call returns."""
        return build_user_loss(self.name, self.loss_options)


def contrastive_method(name: str, loss_class: type[ContrastiveLoss]) -> type[Contrastive]:
    """The method class of a named contrastive loss."""
    attributes = {"name": name, "loss_name": name, "default_ce_weight": loss_class.default_ce_weight}
    return type(f"{loss_class.__name__}Method", (Contrastive,), attributes)


METHODS: dict[str, type[Method]] = {}
"""Method name -> class: every built-in method and those added by :func:`register_method`."""


def register_method(cls: type[Method]) -> type[Method]:
    """Add ``cls`` to :data:`METHODS` under ``cls.name`` (usable as a class decorator); returns ``cls``.

    Raises:
        CecoFairError: the name is empty, has the form of user code, or another class holds it.
    """
    if not isinstance(cls, type) or not issubclass(cls, Method):
        raise CecoFairError(f"register_method: expected a Method subclass, got {cls!r}")
    if not cls.name or is_user_spec(cls.name):
        raise CecoFairError(f"register_method: {cls.__name__}.name must be a plain name, got {cls.name!r}")
    held = METHODS.get(cls.name)
    if held is not None and held is not cls:
        raise CecoFairError(f"register_method: {cls.name!r} is already the name of {held.__name__}")
    METHODS[cls.name] = cls
    return cls


BUILTIN_METHODS: tuple[type[Method], ...] = (
    CrossEntropy,
    Frozen,
    *(contrastive_method(name, LOSSES[name]) for name in sorted(LOSSES)),
    GroupDRO,
    Reweight,
    Resample,
    JTT,
    LfF,
    CorrectNContrast,
)
"""The methods of ceco_fair, registered in this order."""
for _builtin in BUILTIN_METHODS:
    register_method(_builtin)


_USER_LOSSES: dict[str, type[Method]] = {}


def method_class(name: str, path: str = "methods") -> type[Method]:
    """The class of method ``name``: a key of :data:`METHODS`, or user code ``"package.module:Name"``.

    User code names a :class:`~ceco_fair.training.method.Method` subclass (used as it is) or a loss
    (:class:`UserLoss`).

    Args:
        name: the protocol's name.
        path: where the method is in the protocol (``methods[2]``), for messages.

    Raises:
        ProtocolError: an unknown name, with the closest one.
        CecoFairError: user code that does not import.
    """
    if isinstance(name, str) and name in METHODS:
        return METHODS[name]
    if not is_user_spec(name):
        raise ProtocolError(f"{path}.name: unknown method {name!r}{closest(str(name), METHODS)}")
    target = load_callable(name, f"{path}.name", "a method name")
    if isinstance(target, type) and issubclass(target, Method):
        return target
    if name not in _USER_LOSSES:
        _USER_LOSSES[name] = type(f"UserLoss[{name}]", (UserLoss,), {"name": name})
    return _USER_LOSSES[name]


@dataclass(frozen=True)
class MethodConfig:
    """A method as a protocol gives it: its name, its options and the model sizes.

    Attributes:
        name: a key of :data:`METHODS` or user code ``"package.module:Name"``.
        options: the method's options (a contrastive loss's arguments, a subgroup method's options).
        ce_weight: weight of an auxiliary cross-entropy head trained with a contrastive loss; 0 disables
            it, None takes the method's ``default_ce_weight`` (BiasCon trains 0.01·CE + BiasCon, others 0).
        projection_dim: output size of the projection head.
    """

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    ce_weight: float | None = None
    projection_dim: int = 128

    @property
    def method_class(self) -> type[Method]:
        """The method's class (:func:`method_class`)."""
        return method_class(self.name)

    @property
    def cross_entropy_weight(self) -> float:
        """The auxiliary cross-entropy weight: ``ce_weight``, else the method's ``default_ce_weight``."""
        return self.ce_weight if self.ce_weight is not None else self.method_class.default_ce_weight

    @property
    def trains(self) -> bool:
        """Whether the method pretrains the encoder (every method but ``frozen``)."""
        return self.method_class.trains

    def build(self) -> Method:
        """A fresh method object for one run."""
        return self.method_class.from_options(self.options, self.ce_weight)


class MethodModel(nn.Module):
    """Encoder plus what a method trains on top of it (:class:`~ceco_fair.training.method.ModelParts`).

    Args:
        encoder: maps ``[B, 3, H, W]`` to ``[B, D]`` and exposes ``feature_dim``.
        method: the training method.
        n_classes: number of target classes for the classifier.
    """

    def __init__(self, encoder: nn.Module, method: MethodConfig, n_classes: int) -> None:
        super().__init__()
        feature_dim = int(getattr(encoder, "feature_dim"))  # noqa: B009  (user encoders are plain Modules)
        parts = method.build().model_parts(encoder, feature_dim, n_classes, method.projection_dim)
        self.encoder = encoder
        self.head = parts.head
        self.classifier = parts.classifier
        self.extra = parts.extra

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Projections ``[B, P]`` (None without a head) and logits ``[B, C]`` (None without a classifier).

        With an extra network (LfF's biased model) the first output is its output on the images.
        """
        features = self.encoder(images)
        projected = self.head(features) if self.head is not None else None
        if self.extra is not None:
            projected = self.extra(images)
        logits = self.classifier(features) if self.classifier is not None else None
        return projected, logits
