"""Validation scores of a trained encoder: the numbers the validation selection rules compare.

The linear probe is fitted on the training features exactly as the audit fits it (same
configuration and seed), then predicts the validation split; each validation rule of
:data:`ceco_fair.results.selection.RULES` scores those predictions. The test set is not read.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ceco_fair.data.augment import AugmentConfig
from ceco_fair.data.base import ImageDataset
from ceco_fair.evaluation.probe import Features, ProbeConfig, extract_features, train_linear_probe
from ceco_fair.results.selection import validation_scores
from ceco_fair.training.batches import as_long


def validation_run_scores(
    encoder: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    train_features: Features,
    valid_set: ImageDataset,
    *,
    n_classes: int,
    kind: str,
    groups: bool,
    probe_config: ProbeConfig,
    seed: int,
    device: torch.device,
    batch_size: int,
    num_workers: int,
    normalization: AugmentConfig | None,
    progress: bool,
    label: str = "",
) -> dict[str, float]:
    """Score an encoder on the validation split under every validation rule.

    Args:
        encoder: the trained encoder (frozen here).
        train_features: its features of the training split ``[n_train, D]`` with targets.
        valid_set: the validation split.
        n_classes: number of target classes.
        kind: the dataset's metric kind (``bias`` / ``group``).
        groups: whether the validation split's sensitive values may be read (``val_worst_group``).
        probe_config: the probe's settings (as for the audit).
        seed: seeds the probe (as for the audit).
        device: where to run the encoder and the probe.
        batch_size: images per forward pass.
        num_workers: loader workers.
        normalization: the images' mean / std.
        progress: show a progress bar.
        label: the run's name for the progress bar.

    Returns:
        Rule name -> score (``val_accuracy``, and ``val_worst_group`` with ``groups``).
    """
    valid = extract_features(
        encoder,
        valid_set,
        device=device,
        batch_size=batch_size,
        num_workers=num_workers,
        normalization=normalization,
        progress=progress,
        description=f"{label} valid features".strip(),
    )
    probe = train_linear_probe(
        Features(train_features.features, as_long(train_features.targets), torch.zeros(len(train_features.targets))),
        n_classes,
        probe_config,
        seed=seed,
        device=device,
    )
    predictions = probe.predict(valid.features).numpy()
    return validation_scores(
        as_long(valid.targets).numpy(),
        predictions,
        as_long(valid.sensitive).numpy(),
        kind=kind,
        groups=groups,
    )
