"""The read-outs of an encoder besides the linear probe: group-balanced probe and the method's own head.

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
from collections.abc import Callable

import torch
from torch import nn

from ceco_fair.evaluation.probe import Features, LinearProbe, ProbeConfig, train_linear_probe
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
