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
from ceco_fair.runner.experiment import TRAIN_SPLIT, build_split, data_key
from ceco_fair.runner.protocol import Protocol
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
    """Every training split of the grid holds at least one global batch.

    Raises:
        CecoFairError: ``train.batch_size`` is larger than a training split, naming the run.
    """
    if not any(run.method.config.trains for run in protocol.grid()):
        return
    seen: set[tuple[Any, ...]] = set()
    batch = protocol.train.batch_size
    for run in protocol.grid():
        if data_key(run) in seen or not run.method.config.trains:
            continue
        seen.add(data_key(run))
        size = len(build_split(protocol, run, TRAIN_SPLIT))
        if batch > size:
            raise CecoFairError(
                f"train.batch_size: {batch} is larger than the training set of {run.run_id} ({size} samples)"
            )


def check_before_writing(protocol: Protocol) -> None:
    """All checks of a real run that the protocol file alone cannot settle (see the module docstring).

    Raises:
        CecoFairError: the first failure, prefixed with the protocol file.
    """
    try:
        check_encoder(protocol)
        check_user_losses(protocol)
        check_batch_size(protocol)
    except CecoFairError as error:
        if protocol.source is None:
            raise
        raise type(error)(f"{protocol.source}: {error}") from None
