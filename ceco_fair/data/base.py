"""What a dataset must offer to be trained on and audited: the :class:`FairnessDataset` protocol.

:class:`ImageDataset` is the least a dataset offers (its length and its labelled images: enough for
features and batches); :class:`FairnessDataset` adds what training and the run records read;
:class:`Recolourable` is the capability of the counterfactual diagnostics. The runner,
:func:`ceco_fair.audit` and the run records ask a dataset these questions, never its name. Built-in
datasets implement :class:`FairnessDataset` (``BiasedMNIST``: ``metric_kind = "bias"``; ``ColoredMNIST``,
``UTKFace``, ``CelebA``: ``"group"``), and so can a class of your own, named in a protocol as
``data.dataset: "package.module:ClassName"`` (see :func:`ceco_fair.data.registry.dataset_class`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any, ClassVar, Final, Literal, Protocol, runtime_checkable

from torch import Tensor

from ceco_fair.errors import CecoFairError
from ceco_fair.metrics.specs import METRIC_KINDS, MetricKind

Split = Literal["train", "valid", "test"]
"""A dataset split: the one owner of the split names (every dataset, the runner and the checks import them)."""
TRAIN_SPLIT: Final[Split] = "train"
VALID_SPLIT: Final[Split] = "valid"
TEST_SPLIT: Final[Split] = "test"
SPLITS: Final[tuple[Split, ...]] = (TRAIN_SPLIT, VALID_SPLIT, TEST_SPLIT)
"""Every split, in order; a split's position is its code (:func:`split_code`)."""
UNKNOWN_SPLIT = "split must be one of {allowed}, got {value!r}"
BAD_SEED = "seed must be a non-negative integer, got {value!r}"


def check_split(split: object, allowed: Sequence[str] = SPLITS) -> None:
    """Reject a split that is not one of ``allowed`` (default :data:`SPLITS`).

    Raises:
        CecoFairError: naming the allowed splits and the value given.
    """
    if not isinstance(split, str) or split not in allowed:
        raise CecoFairError(UNKNOWN_SPLIT.format(allowed=list(allowed), value=split))


def check_seed(seed: object) -> None:
    """Reject a seed that is not a non-negative ``int`` (a ``bool`` is not a seed).

    Raises:
        CecoFairError: naming the value given.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise CecoFairError(BAD_SEED.format(value=seed))


def check_split_and_seed(split: object, seed: object) -> None:
    """:func:`check_split` then :func:`check_seed`: what every built-in dataset's constructor checks first."""
    check_split(split)
    check_seed(seed)


def split_code(split: str) -> int:
    """A split's code, its position in :data:`SPLITS` (train 0, valid 1, test 2): seeds a split's own random stream."""
    check_split(split)
    return [str(name) for name in SPLITS].index(split)


CLASS_MEMBERS: Final = ("metric_kind", "takes_rho", "preflight")
"""Members a dataset class has before any instance exists (the protocol's preflight reads them)."""
INSTANCE_MEMBERS: Final = (
    "targets",
    "sensitive",
    "n_classes",
    "n_groups",
    "class_names",
    "group_names",
    "target_name",
    "sensitive_name",
    "__len__",
    "__getitem__",
)
"""Members a built dataset has."""
VALIDATION_LABELS: Final = ("groups", "targets")
"""What a class's ``validation_labels`` may say: its ``"valid"`` split has sensitive values too, or targets only."""


class ImageDataset(Protocol):
    """Labelled images: a torch ``Dataset`` (or ``Subset``) yielding ``(image uint8 [3, H, W], target, sensitive)``."""

    def __len__(self) -> int:
        """Number of images."""

    def __getitem__(self, index: int) -> tuple[Tensor, int, int]:
        """``(image uint8 [3, H, W], target, sensitive)`` of one image."""


@runtime_checkable
class FairnessDataset(ImageDataset, Protocol):
    """A split of labelled images with a sensitive (or bias) attribute.

    Items are ``(image uint8 [3, H, W], target int, sensitive int)``.

    Attributes:
        metric_kind: ``"bias"`` (the bias values index the target classes: bias-aligned /
            conflicting accuracy) or ``"group"`` (group fairness).
        takes_rho: whether the class accepts a training bias ``rho`` (a protocol grid axis).
        targets: ``int64 [n]`` class of each image, in ``[0, n_classes)``.
        sensitive: ``int64 [n]`` group of each image, in ``[0, n_groups)``.
        n_classes: number of target classes.
        n_groups: number of sensitive groups.
        class_names: ``n_classes`` display names.
        group_names: ``n_groups`` display names.
        target_name: what the target is (``"digit"``, ``"Attractive"``).
        sensitive_name: what the sensitive attribute is (``"background colour"``, ``"Male"``).

    Optional members: ``images`` (``uint8 [n, 3, H, W]``, for datasets held in memory: batches
    are then gathered without a loader) and ``group_colours`` (one CSS colour per group, used
    by the report's projection). A class that builds ``split="valid"`` says so with the class
    attribute ``validation_labels``: ``"groups"`` (its sensitive values are real: every selection
    rule can use them) or ``"targets"`` (targets only); without it a protocol cannot ``search``.
    """

    metric_kind: ClassVar[MetricKind]
    takes_rho: ClassVar[bool]
    targets: Tensor
    sensitive: Tensor
    n_classes: int
    n_groups: int
    class_names: list[str]
    group_names: list[str]
    target_name: str
    sensitive_name: str

    @classmethod
    def preflight(cls, options: Mapping[str, Any], splits: Sequence[str]) -> None:
        """Check cheaply, before any training, that the files for ``splits`` exist.

        Args:
            options: the dataset's options, defaults filled in.
            splits: the splits that will be built.

        Raises:
            DataError: a file or folder is missing or incomplete.
        """


@runtime_checkable
class Recolourable(Protocol):
    """A dataset that can draw each of its images again on any of its ``n_colours`` background colours.

    BiasedMNIST and ColoredMNIST are; the counterfactual diagnostics (colour sensitivity, flip rate, the
    report's colour strip) measure only such datasets, and ask ``isinstance(dataset, Recolourable)``.
    """

    @property
    def n_colours(self) -> int:
        """The number K of background colours."""

    @property
    def targets(self) -> Tensor:
        """``int64 [n]`` class of each image."""

    @property
    def sensitive(self) -> Tensor:
        """``int64 [n]`` colour (group) of each image."""

    def render_on(self, colour: int, indices: Tensor | None = None) -> Tensor:
        """The images ``uint8 [m, 3, H, W]`` (all, or those at ``indices [m]``) drawn on background ``colour``."""


def missing_members(candidate: object, members: Sequence[str]) -> list[str]:
    """The ``members`` that ``candidate`` lacks."""
    return [name for name in members if not hasattr(candidate, name)]


def check_dataset_class(factory: object, name: str) -> None:
    """Check the class-level part of :class:`FairnessDataset` on a dataset class.

    Args:
        factory: the class.
        name: how the protocol names it (for the message).

    Raises:
        CecoFairError: a member is missing, or ``metric_kind`` is not ``bias`` / ``group``.
    """
    absent = missing_members(factory, CLASS_MEMBERS)
    if absent:
        raise CecoFairError(f"data.dataset: {name} lacks {', '.join(absent)} (see ceco_fair.data.base.FairnessDataset)")
    kind = factory.metric_kind  # type: ignore[attr-defined]
    if kind not in METRIC_KINDS:
        raise CecoFairError(f"data.dataset: {name}.metric_kind is {kind!r}, expected one of {list(METRIC_KINDS)}")


def check_dataset(dataset: object, name: str) -> FairnessDataset:
    """Check a built dataset against :class:`FairnessDataset`.

    Args:
        dataset: the built split.
        name: how the protocol names its class (for the message).

    Returns:
        The dataset, typed as the protocol.

    Raises:
        CecoFairError: a member is missing (all of them named on one line).
    """
    absent = missing_members(dataset, (*CLASS_MEMBERS, *INSTANCE_MEMBERS))
    if absent or not isinstance(dataset, FairnessDataset):
        raise CecoFairError(
            f"data.dataset: {name} built a {type(dataset).__name__} that lacks {', '.join(absent)} "
            "(see ceco_fair.data.base.FairnessDataset)"
        )
    return dataset


def floor_share(count: int, rate: float | Fraction) -> int:
    """Return ``⌊count · rate⌋`` computed exactly on the decimal value of ``rate``.

    Args:
        count: A non-negative integer.
        rate: A float (taken as the decimal it prints as, e.g. ``0.29``) or an exact fraction.

    Returns:
        The floor of the exact product.

    """
    exact = rate if isinstance(rate, Fraction) else Fraction(repr(float(rate)))
    return math.floor(count * exact)


def validation_labels(factory: object) -> str | None:
    """A dataset class's ``validation_labels`` (``"groups"``, ``"targets"``), None when it has no validation split.

    Raises:
        CecoFairError: the attribute holds anything else.
    """
    labels = getattr(factory, "validation_labels", None)
    if labels is not None and labels not in VALIDATION_LABELS:
        name = getattr(factory, "__name__", type(factory).__name__)
        raise CecoFairError(
            f"data.dataset: {name}.validation_labels is {labels!r}, expected one of {list(VALIDATION_LABELS)}"
        )
    return None if labels is None else str(labels)
