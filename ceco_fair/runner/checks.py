"""Checks of a real run that need more than the protocol file, made before anything is written.

Validation (:mod:`ceco_fair.runner.protocol`, also ``--dry-run``) imports user modules but calls nothing in
them. A real run then builds the encoder once (a user factory runs here, before the output folder
exists; ``encoder.weights`` must fit it), builds each user loss once, and builds every training
split of the grid to compare its size with ``train.batch_size``. Each failure is one
:class:`CecoFairError` line.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from ceco_fair.common.user_code import is_user_spec
from ceco_fair.errors import CecoFairError
from ceco_fair.models.files import build_protocol_encoder
from ceco_fair.runner.experiment import TRAIN_SPLIT, VALID_SPLIT, build_split, data_key
from ceco_fair.runner.protocol import Protocol
from ceco_fair.training.groups import check_group_labels
from ceco_fair.training.user_loss import build_user_loss

logger = logging.getLogger(__name__)


def check_encoder(protocol: Protocol) -> None:
    """Build the protocol's encoder once (calling a user factory) and load ``encoder.weights``.

    The global RNG state is kept: each run seeds its own model initialisation anyway.

    Raises:
        CecoFairError: a factory that raises or returns no module, or weights that do not fit.
    """
    with torch.random.fork_rng(devices=[]):
        build_protocol_encoder(protocol.encoder)


def check_user_losses(protocol: Protocol) -> None:
    """Build each user loss (``"package.module:Name"``) once with its keywords.

    Raises:
        CecoFairError: the loss class raises or builds something that cannot be called.
    """
    for index, method in enumerate(protocol.methods):
        if is_user_spec(method.config.name):
            build_user_loss(method.config.name, method.config.loss_kwargs, f"methods[{index}]")


def check_batch_size(protocol: Protocol) -> None:
    """Every training split of the grid holds a global batch, and sensitive groups for the methods needing them.

    Raises:
        CecoFairError: ``train.batch_size`` is larger than a training split, naming the run, or a method
            that trains with group labels meets a split with a single sensitive value.
    """
    if not any(run.method.config.trains for run in protocol.grid()):
        return
    seen: set[tuple[Any, ...]] = set()
    batch = protocol.train.batch_size
    for run in protocol.grid():
        if data_key(run) in seen or not run.method.config.trains:
            continue
        seen.add(data_key(run))
        split = build_split(protocol, run, TRAIN_SPLIT)
        size = len(split)  # type: ignore[arg-type]
        if batch > size:
            raise CecoFairError(
                f"train.batch_size: {batch} is larger than the training set of {run.run_id} ({size} samples)"
            )
        for index, method in enumerate(protocol.methods):
            sensitive = torch.as_tensor(getattr(split, "sensitive"))  # noqa: B009  (a FairnessDataset member)
            check_group_labels(method.config.name, sensitive, f"methods[{index}] ({run.run_id})")


def check_balanced_split(protocol: Protocol) -> None:
    """``probe.balanced_on: valid`` needs a validation split: build the first run's once.

    Raises:
        CecoFairError: the dataset builds no ``valid`` split with these options.
    """
    if protocol.probe.balanced_on != VALID_SPLIT:
        return
    run = protocol.grid()[0]
    try:
        build_split(protocol, run, VALID_SPLIT)
    except CecoFairError as error:
        raise CecoFairError(
            f"probe.balanced_on: valid needs a validation split, and {protocol.dataset} builds none here ({error})"
        ) from None


def check_before_writing(protocol: Protocol) -> None:
    """All checks of a real run that the protocol file alone cannot settle (see the module docstring).

    Raises:
        CecoFairError: the first failure, prefixed with the protocol file.
    """
    try:
        check_encoder(protocol)
        check_user_losses(protocol)
        check_batch_size(protocol)
        check_balanced_split(protocol)
    except CecoFairError as error:
        if protocol.source is None:
            raise
        raise type(error)(f"{protocol.source}: {error}") from None
