"""The read-outs of a frozen encoder: how its features become a classifier, one class and one registry line each.

A :class:`Readout` is fitted on an evaluation's :class:`ReadoutInputs` and returns a :class:`Predictor`
(classes ``[N]`` and class probabilities ``[N, C]``), or None when the inputs do not allow it (no
sensitive values for a group-balanced fit, no trained head). :data:`READOUTS` holds them in measuring
order; the first is the primary read-out (:data:`~ceco_fair.results.layout.PRIMARY_READOUT`: its metrics
are ``metrics.json``, its predictions feed the counterfactual flips and the validation rules).
:func:`register_readout` adds one, with no edit here: every audit and run then measures it, and
``results.csv``, ``comparisons.csv``, the summary, ``scores.csv`` and the report list it.

Where does a bias live? The ``linear`` read-out (the ERM probe of :mod:`ceco_fair.evaluation.probe`)
mixes two things: whether the target information is in the features at all, and whether a classifier
trained on biased data prefers the bias. The ``balanced`` read-out retrains the same probe with every
(target, sensitive) cell of its training features weighted equally (DFR, Kirichenko et al. 2023:
last-layer retraining on group-balanced data); a large gain over ``linear`` means the information was
there and the classifier chose the bias, no gain means the representation lost it. The ``head``
read-out is the classifier the method trained end to end with the encoder (``ce``, the subgroup
baselines, a contrastive loss's CE term).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Final, Protocol

import torch
from torch import nn

from ceco_fair.common.config import closest
from ceco_fair.errors import CecoFairError
from ceco_fair.evaluation.probe import Features, LinearProbe, ProbeConfig, train_linear_probe
from ceco_fair.results.layout import BALANCED_READOUT, HEAD_READOUT, LINEAR_READOUT, PRIMARY_READOUT
from ceco_fair.training.batches import as_long
from ceco_fair.training.groups import cell_weights

logger = logging.getLogger(__name__)

Head = nn.Module | Callable[[torch.Tensor], torch.Tensor]


def train_balanced_probe(
    train: Features,
    n_classes: int,
    config: ProbeConfig,
    *,
    seed: int,
    device: torch.device,
    n_groups: int | None = None,
) -> LinearProbe:
    """The linear probe fitted with every non-empty (target, sensitive) cell weighted equally.

    Each sample's cross-entropy is weighted by ``n / (K · n_cell)`` (``K`` non-empty cells; see
    :func:`~ceco_fair.training.groups.cell_weights`), so the loss is the mean over cells of each cell's
    mean loss. Cells without a sample are skipped and named in the log.

    Args:
        train: features ``[n, D]``, targets and sensitive values ``[n]`` the probe is fitted on.
        n_classes: number of target classes.
        config: the probe's settings.
        seed: seeds the probe.
        device: where to fit it.
        n_groups: number of sensitive groups (default: the largest value + 1).

    Returns:
        The fitted probe.
    """
    targets, sensitive = as_long(train.targets), as_long(train.sensitive)
    groups = n_groups if n_groups is not None else (int(sensitive.max()) + 1 if len(sensitive) else 1)
    weights, empty = cell_weights(targets, sensitive, n_classes, groups)
    if empty:
        cells = ", ".join(f"(target {t}, sensitive {s})" for t, s in empty)
        logger.info("balanced read-out: %d empty (target, sensitive) cells skipped: %s", len(empty), cells)
    return train_linear_probe(train, n_classes, config, seed=seed, device=device, weights=weights)


@torch.no_grad()
def head_predictions(head: Head, features: torch.Tensor, device: torch.device, batch_size: int = 65536) -> torch.Tensor:
    """The classes a trained head predicts for features ``[n, D]``: ``[n]`` (int64, CPU)."""
    if isinstance(head, nn.Module):
        was_training = head.training
        head.eval()
    parts = [head(chunk.to(device)).argmax(dim=1).cpu() for chunk in torch.split(features, batch_size)]
    if isinstance(head, nn.Module):
        head.train(was_training)
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)


class Predictor(Protocol):
    """A fitted read-out: features ``[N, D]`` -> classes and class probabilities (both on the CPU)."""

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted classes ``[N]`` (int64)."""
        ...

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``[N, C]`` (float32, rows summing to 1)."""
        ...


@dataclass(frozen=True)
class HeadPredictor:
    """A trained head (features ``[N, D]`` -> logits ``[N, C]``) as a :class:`Predictor`."""

    head: Head
    device: torch.device

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """The argmax of the head's logits ``[N]``."""
        return head_predictions(self.head, features, self.device)

    @torch.no_grad()
    def scores(self, features: torch.Tensor, batch_size: int = 65536) -> torch.Tensor:
        """The softmax of the head's logits ``[N, C]``."""
        was_training = isinstance(self.head, nn.Module) and self.head.training
        if isinstance(self.head, nn.Module):
            self.head.eval()
        parts = [
            self.head(chunk.to(self.device)).softmax(dim=1).float().cpu() for chunk in torch.split(features, batch_size)
        ]
        if isinstance(self.head, nn.Module):
            self.head.train(was_training)
        return torch.cat(parts) if parts else torch.zeros(0, 0)


@dataclass(frozen=True)
class ReadoutInputs:
    """What a read-out may be fitted on.

    Attributes:
        train: the training features ``[n, D]`` with targets and sensitive values ``[n]``.
        n_classes: number of target classes.
        probe: the probe's settings (a protocol's ``probe`` section).
        seed: seeds the fit.
        device: where to fit.
        train_groups: whether ``train.sensitive`` holds the sensitive values (False: unknown, zeros).
        valid: the validation split's features, when the evaluation read it.
        n_groups: number of sensitive groups (None: the largest value + 1).
        head: the classifier the method trained with the encoder (None: it trained none).
    """

    train: Features
    n_classes: int
    probe: ProbeConfig
    seed: int
    device: torch.device
    train_groups: bool = True
    valid: Features | None = None
    n_groups: int | None = None
    head: Head | None = None


class Readout(ABC):
    """How a frozen encoder's features become a classifier: one subclass per read-out, one registry line.

    Attributes:
        name: its name in ``results.csv``'s ``readout`` column and ``scores.csv``.
    """

    name: ClassVar[str]

    @abstractmethod
    def fit(self, inputs: ReadoutInputs) -> Predictor | None:
        """The fitted read-out, or None when ``inputs`` do not allow it (then it is not measured)."""


class LinearReadout(Readout):
    """The ERM linear probe on the standardised training features."""

    name = LINEAR_READOUT

    def fit(self, inputs: ReadoutInputs) -> Predictor:
        """:func:`~ceco_fair.evaluation.probe.train_linear_probe` on the training features and targets."""
        train = Features(inputs.train.features, as_long(inputs.train.targets), torch.zeros(len(inputs.train.targets)))
        return train_linear_probe(train, inputs.n_classes, inputs.probe, seed=inputs.seed, device=inputs.device)


class BalancedReadout(Readout):
    """The linear probe with every (target, sensitive) cell weighted equally (:func:`train_balanced_probe`).

    Fitted on the split ``probe.balanced_on`` names: the training features (when their sensitive values
    are known) or the validation split's (when the evaluation read it).
    """

    name = BALANCED_READOUT

    def fit(self, inputs: ReadoutInputs) -> Predictor | None:
        """The balanced probe, or None without sensitive values to balance on."""
        on = inputs.valid if inputs.probe.balanced_on == "valid" else inputs.train if inputs.train_groups else None
        if on is None:
            return None
        return train_balanced_probe(
            on, inputs.n_classes, inputs.probe, seed=inputs.seed, device=inputs.device, n_groups=inputs.n_groups
        )


class HeadReadout(Readout):
    """The classifier the method trained with the encoder, as it is."""

    name = HEAD_READOUT

    def fit(self, inputs: ReadoutInputs) -> Predictor | None:
        """The head, or None when the method trained none."""
        return HeadPredictor(inputs.head, inputs.device) if inputs.head is not None else None


READOUTS: Final[dict[str, Readout]] = {
    readout.name: readout for readout in (LinearReadout(), BalancedReadout(), HeadReadout())
}
"""Read-out name -> read-out, in measuring order; the first is the primary read-out."""
_BUILT_IN: Final = frozenset(READOUTS)


def register_readout(readout: Readout) -> Readout:
    """Add a read-out: every audit and run fitted afterwards measures it after the built-in ones.

    Returns:
        ``readout`` (so that a module can keep it under a name).

    Raises:
        CecoFairError: its name is taken, or it has none.
    """
    name = getattr(readout, "name", None)
    if not isinstance(name, str) or not name:
        raise CecoFairError(f"read-out {type(readout).__name__}: expected a class attribute name (a string)")
    if name in READOUTS:
        raise CecoFairError(f"read-out {name!r}: the name is taken")
    READOUTS[name] = readout
    return readout


def unregister_readout(name: str) -> None:
    """Remove a read-out added with :func:`register_readout` (the built-in ones stay)."""
    if name in READOUTS and name not in _BUILT_IN:
        del READOUTS[name]


def check_readouts(names: tuple[str, ...] | None) -> None:
    """Refuse read-out names that are not registered.

    Raises:
        CecoFairError: an unknown name, with the closest registered one.
    """
    for name in names or ():
        if name not in READOUTS:
            raise CecoFairError(f"readouts: unknown read-out {name!r}{closest(name, READOUTS)}")


def chosen_readouts(names: tuple[str, ...] | None) -> list[Readout]:
    """The read-outs to measure, in registry order: ``names`` (None: all), the primary one always first."""
    check_readouts(names)
    wanted = set(names) if names is not None else set(READOUTS)
    return [readout for name, readout in READOUTS.items() if name in wanted or name == PRIMARY_READOUT]
