"""Checks of a real run that need more than the protocol file, made before anything is written.

Validation (:mod:`ceco_fair.runner.protocol`, also ``--dry-run``) imports user modules but calls nothing in
them. A real run then builds the encoder once (a user factory runs here, before the output folder
exists; ``encoder.weights`` must fit it) and checks its output on one batch of the first training
split, builds each user loss once, and builds every training split of the grid to compare its size
with ``train.batch_size``. Each failure is one :class:`CecoFairError` line.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from ceco_fair.data.augment import normalize
from ceco_fair.data.base import FairnessDataset
from ceco_fair.data.registry import calling_dataset
from ceco_fair.errors import CecoFairError, with_prefix
from ceco_fair.models.encoders import check_encoder_output
from ceco_fair.models.files import build_protocol_encoder
from ceco_fair.runner.experiment import TRAIN_SPLIT, VALID_SPLIT, build_split, data_key
from ceco_fair.runner.protocol import Protocol

logger = logging.getLogger(__name__)


SAMPLE_IMAGES = 2
"""Images of the first training split that the encoder's output is checked on."""


def check_encoder(protocol: Protocol, train_set: FairnessDataset) -> None:
    """Build the protocol's encoder once (calling a user factory), load ``encoder.weights`` and run one batch.

    The global RNG state is kept: each run seeds its own model initialisation anyway.

    Args:
        protocol: the validated protocol.
        train_set: a training split; its first images, normalised as in training, are encoded.

    Raises:
        CecoFairError: a factory that raises or returns no module, weights that do not fit, or an
            output that is not ``[B, D]`` (``[B, C, 1, 1]`` is flattened).
    """
    count = min(SAMPLE_IMAGES, len(train_set))
    with calling_dataset(protocol.dataset, f"reading items 0 to {count - 1}"):
        images = torch.stack([train_set[index][0] for index in range(count)]) if count else None
    with torch.random.fork_rng(devices=[]):
        encoder = build_protocol_encoder(protocol.encoder)
        if images is not None:
            check_encoder_output(
                encoder, normalize(images, protocol.train.augment), f"encoder.arch {protocol.encoder.arch!r}"
            )


def check_user_losses(protocol: Protocol) -> None:
    """Build each user loss (``"package.module:Name"``) once with its keywords.

    Raises:
        CecoFairError: the loss class raises or builds something that cannot be called.
    """
    for index, method in enumerate(protocol.methods):
        method.config.method_class.check_build(method.config.options, f"methods[{index}]")


def check_batch_size(protocol: Protocol, first: FairnessDataset | None = None) -> None:
    """Every training split of the grid holds a global batch, and sensitive groups for the methods needing them.

    Args:
        protocol: the validated protocol.
        first: the training split of the grid's first run, when already built.

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
        reuse = first is not None and data_key(run) == data_key(protocol.grid()[0])
        seen.add(data_key(run))
        split = first if reuse and first is not None else build_split(protocol, run, TRAIN_SPLIT)
        size = len(split)
        if batch > size:
            raise CecoFairError(
                f"train.batch_size: {batch} is larger than the training set of {run.run_id} ({size} samples)"
            )
        for index, method in enumerate(protocol.methods):
            sensitive = torch.as_tensor(split.sensitive)
            method.config.method_class.check_labels(sensitive, f"methods[{index}] ({run.run_id})")


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
        first = build_split(protocol, protocol.grid()[0], TRAIN_SPLIT)
        check_encoder(protocol, first)
        check_user_losses(protocol)
        check_batch_size(protocol, first)
        check_balanced_split(protocol)
    except CecoFairError as error:
        if protocol.source is None:
            raise
        raise with_prefix(error, str(protocol.source)) from None
