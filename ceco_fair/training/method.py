"""The training-method interface: one class per way of training an encoder.

A :class:`Method` owns everything that differs between methods, so that nothing else asks which
method it runs:

* its **options**: the keyword arguments of its constructor, with their defaults; the constructor
  checks their ranges (:meth:`Method.check_options` fills, coerces and checks a protocol's keys);
* its **model parts**: what it trains beside the encoder (:class:`ModelParts`: a projection head, a
  classifier, a second network such as LfF's biased model);
* its **objective** on a batch (:meth:`Method.loss`), its **sample order** per epoch, its learning-rate
  **stages** (a two-stage method restarts the schedule), its **end-of-epoch step** and its
  **checkpoint state**.

A class is registered under its ``name`` in :data:`ceco_fair.training.methods.METHODS`
(:func:`~ceco_fair.training.methods.register_method`), and a protocol names it. The base class
trains the encoder and a linear classifier with cross-entropy on a random order.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ceco_fair.errors import CecoFairError
from ceco_fair.training.distributed import DistributedContext


class OptionError(CecoFairError):
    """An option out of range: the message starts with the option's key (``eta: expected ...``)."""


@dataclass
class ModelParts:
    """What a method trains beside the encoder, each None when it trains none.

    Attributes:
        head: maps features ``[B, D]`` to the projections ``[B, P]`` a contrastive term reads.
        classifier: maps features ``[B, D]`` to logits ``[B, C]`` (the ``head`` read-out).
        extra: a second network on the images, whose output ``[B, ...]`` replaces the projections as
            the model's first output (LfF's biased model).
    """

    head: nn.Module | None = None
    classifier: nn.Module | None = None
    extra: nn.Module | None = None


Outputs = tuple[torch.Tensor | None, torch.Tensor | None]
"""A :class:`MethodModel`'s ``(projections [B, P] or the extra network's output, logits [B, C])``."""
Predict = Callable[[nn.Module], torch.Tensor]
"""The classifier's predicted classes ``[n]`` of a model on the (un-augmented) training split."""


class Method:
    """Cross-entropy on the encoder and a linear classifier, one view per image, a random order.

    Subclasses set ``name`` and override what differs. A method's options are its constructor's
    keyword arguments with defaults (numbers: an ``int`` default takes integers only); the constructor
    raises an :class:`OptionError` for a value out of range. One instance trains one run: the loop
    calls :meth:`start` with the training split before the first epoch.

    Attributes:
        name: the name a protocol gives (``methods: [{name: ...}]``), the registry's key.
        trains: whether the method trains the encoder at all (``frozen`` does not).
        n_views: augmented views of each image per step (2 for a contrastive loss).
        group_labels: whether it trains with the sensitive attribute (needs two values or more).
        default_ce_weight: the auxiliary cross-entropy weight when the protocol gives no ``ce_weight``.
    """

    name: ClassVar[str] = ""
    trains: ClassVar[bool] = True
    n_views: ClassVar[int] = 1
    group_labels: ClassVar[bool] = False
    default_ce_weight: ClassVar[float] = 0.0

    def __init__(self) -> None:
        self.n = 0

    # ----- options (a protocol's keys beside ``name``), asked of the class
    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        """The method's options with their defaults, read from its constructor's signature."""
        parameters = inspect.signature(cls.__init__).parameters.values()
        return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}

    @classmethod
    def check_options(cls, given: Mapping[str, Any], path: str) -> dict[str, Any]:
        """The method's options, defaults filled in, values coerced to their defaults' types and checked.

        Args:
            given: the protocol's keys beside ``name`` / ``label`` / ``ce_weight``.
            path: where the method is in the protocol (``methods[3]``), for messages.

        Raises:
            CecoFairError: an unknown option or a value out of range, naming ``path.<key>``.
        """
        defaults = cls.option_defaults()
        for key in given:
            if key not in defaults:
                valid = ", ".join(defaults) or "none"
                raise CecoFairError(f"{path}.{key}: unknown option of {cls.name}; valid options: {valid}")
        options: dict[str, Any] = {}
        for key, default in defaults.items():
            value = given.get(key, default)
            wanted = type(default)
            if isinstance(value, bool) or not isinstance(value, int | float) or (wanted is int and value != int(value)):
                kind = "an integer" if wanted is int else "a number"
                raise CecoFairError(f"{path}.{key}: expected {kind}, got {value!r}")
            options[key] = wanted(value)
        try:
            cls(**options)
        except OptionError as error:
            raise CecoFairError(f"{path}.{error}") from None
        return options

    @classmethod
    def search_keys(cls) -> tuple[str, ...]:
        """The keys a search may vary for this method (its options)."""
        return tuple(cls.option_defaults())

    @classmethod
    def option_value(cls, key: str, options: Mapping[str, Any]) -> Any:
        """The value a method with ``options`` trains with for ``key`` (a search's trial 0)."""
        return options[key] if key in options else cls.option_defaults().get(key)

    @classmethod
    def check_epochs(cls, options: Mapping[str, Any], epochs: int, path: str) -> None:
        """Raise a :class:`CecoFairError` if the options do not fit ``train.epochs`` (staged methods)."""

    @classmethod
    def check_labels(cls, sensitive: torch.Tensor, where: str) -> None:
        """A method that trains with group labels needs at least two sensitive values in the training split.

        Raises:
            CecoFairError: naming the method and the split.
        """
        if not cls.group_labels:
            return
        count = torch.unique(sensitive).numel()
        if count < 2:
            raise CecoFairError(
                f"{where}: method {cls.name} trains with the sensitive attribute, but the training split has "
                f"{count} sensitive value(s); use a dataset with sensitive groups or a method without group labels"
            )

    @classmethod
    def check_build(cls, options: Mapping[str, Any], path: str) -> None:
        """Build what the method builds from user code once, before any run (nothing for built-in methods)."""

    @classmethod
    def from_options(cls, options: Mapping[str, Any], ce_weight: float | None) -> Method:
        """The method of a protocol entry: its options and its ``ce_weight`` (None: the default)."""
        return cls(**options)

    # ----- the model
    def model_parts(self, encoder: nn.Module, feature_dim: int, n_classes: int, projection_dim: int) -> ModelParts:
        """The modules the method trains beside ``encoder``, created in the order head, classifier, extra.

        Args:
            encoder: the encoder (a second network may copy it).
            feature_dim: the encoder's output size ``D``.
            n_classes: number of target classes ``C``.
            projection_dim: the projection head's output size ``P``.
        """
        return ModelParts(classifier=nn.Linear(feature_dim, n_classes))

    # ----- one run
    def start(self, dataset: Any, model: nn.Module, device: torch.device, context: DistributedContext) -> None:
        """Bind the method to a run before its first epoch (and before a checkpoint's state is loaded).

        Args:
            dataset: the training split (a :class:`~ceco_fair.data.base.FairnessDataset`).
            model: the unwrapped model before training.
            device: where the training runs.
            context: this process's rank and world size.
        """
        self.n = len(dataset)

    def order(self, epoch: int, generator: torch.Generator) -> torch.Tensor:
        """The epoch's sample order ``[n]`` (CPU indices), drawn from ``generator``."""
        return torch.randperm(self.n, generator=generator)

    def stage(self, epoch: int, epochs: int) -> tuple[int, int]:
        """``(first epoch, number of epochs)`` of the learning-rate schedule ``epoch`` belongs to."""
        return 0, epochs

    def loss(
        self,
        model: nn.Module,
        views: list[torch.Tensor],
        targets: torch.Tensor,
        sensitive: torch.Tensor,
        index: torch.Tensor,
    ) -> torch.Tensor:
        """The batch loss (0-dim).

        Args:
            model: a :class:`~ceco_fair.training.methods.MethodModel`, possibly wrapped in DDP.
            views: :attr:`n_views` augmented views, each ``[B, 3, H, W]``.
            targets: labels ``[B]``.
            sensitive: sensitive / bias values ``[B]``.
            index: the batch's rows in the training split ``[B]`` (CPU).
        """
        logits = model(views[0])[1]
        assert logits is not None
        return F.cross_entropy(logits.float(), targets)

    def end_epoch(self, model: nn.Module, epoch: int, predict: Predict) -> bool:
        """Called after each epoch with the unwrapped model; returns whether the model restarted.

        When it did, its optimiser restarts too.
        """
        return False

    def state_dict(self) -> dict[str, Any]:
        """The state a resumed run needs (tensors on the CPU)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
