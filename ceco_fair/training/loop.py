"""Pretraining: one loop for every method, with exact resume.

:func:`pretrain` builds the run's :class:`~ceco_fair.training.state.TrainState` (model, optimiser,
method, history), lets its hooks start (a :class:`~ceco_fair.training.hooks.Checkpointer` resumes),
then trains epoch after epoch (:func:`~ceco_fair.training.epoch.run_epoch`) and calls the method's
end-of-epoch step and the hooks after each. Each epoch's sample order and augmentation come from
generators seeded by ``(seed, epoch)``, so that a resumed run on CPU ends with exactly the state of an
uninterrupted one.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import torch
from torch import nn

from ceco_fair.data.base import FairnessDataset
from ceco_fair.training.batches import BatchSource
from ceco_fair.training.config import HISTORY_COLUMNS, OptimizerConfig, TrainConfig
from ceco_fair.training.distributed import DistributedContext
from ceco_fair.training.epoch import Progress, TrainingDiverged, TrainingStep, predict_classes, run_epoch
from ceco_fair.training.hooks import EpochHook
from ceco_fair.training.methods import MethodConfig, MethodModel
from ceco_fair.training.state import Schedule, TrainState, build_optimizer, unwrap

__all__ = [
    "HISTORY_COLUMNS",
    "MethodConfig",
    "MethodModel",
    "OptimizerConfig",
    "Progress",
    "TrainConfig",
    "TrainingDiverged",
    "pretrain",
    "unwrap",
]

logger = logging.getLogger(__name__)


def pretrain(
    model: nn.Module,
    method: MethodConfig,
    dataset: FairnessDataset,
    config: TrainConfig,
    *,
    seed: int,
    device: torch.device,
    context: DistributedContext | None = None,
    hooks: Sequence[EpochHook] = (),
    progress: Progress | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` with ``method`` on ``dataset`` and return the per-epoch history.

    Args:
        model: the :class:`~ceco_fair.training.methods.MethodModel` to train, possibly wrapped in DDP.
        method: the training method.
        dataset: yields ``(image uint8 [3, H, W], target, sensitive)``; its ``n_classes`` / ``n_groups``
            size the loss's tables.
        config: the training settings.
        seed: the run's seed.
        device: where to train.
        context: this process's rank and world size.
        hooks: called before the first epoch and after each, in order
            (:class:`~ceco_fair.training.hooks.Tracker`, ``TensorBoard``, ``Checkpointer``).
        progress: the progress bar per epoch (default: shown, no label).

    Returns:
        One dict per epoch: ``epoch``, ``loss``, ``lr``, ``seconds``, ``images_per_s``, ``data_seconds``
        (and the values a hook adds, e.g. tracked ones).

    Raises:
        TrainingDiverged: the loss became NaN or infinite (the last checkpoint is the last good epoch).
        UserCodeError: a user loss raised or returned no finite scalar with a gradient (epoch and step named).
    """
    context = context or DistributedContext()
    progress = progress or Progress()
    model.to(device)
    state = TrainState(model, build_optimizer(model, config.optimizer), method.build(), seed)
    schedule = Schedule.of(config, len(dataset), context.world_size)
    state.method.start(dataset, unwrap(model), device, context)
    for hook in hooks:
        hook.start(state)
    step = TrainingStep(state, config, device)
    source = BatchSource(dataset, device, config.num_workers)
    predict = functools.partial(predict_classes, dataset=dataset, config=config, device=device)
    while state.epoch < config.epochs:
        row = run_epoch(state, step, source, schedule, context, config, progress)
        if state.method.end_epoch(unwrap(model), state.epoch, predict):
            state.restart_optimizer(config.optimizer)  # the model restarts: so does its optimiser
        state.epoch += 1
        state.history.append(row)
        for hook in hooks:
            hook.after_epoch(state, row)
        logger.info(
            "%s epoch %d/%d loss %.4f (%.0f images/s)",
            progress.label,
            state.epoch,
            config.epochs,
            row["loss"],
            row["images_per_s"],
        )
    return state.history
