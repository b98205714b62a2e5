"""Counterfactual features: every image encoded again on each background colour of its dataset.

Feed the result to :func:`ceco_fair.metrics.bias_sensitivity` to measure how much of the
representation the colour alone moves. Works for datasets that can re-render their images on
another colour (:class:`~ceco_fair.data.base.Recolourable`: BiasedMNIST and ColoredMNIST).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

from ceco_fair.data.augment import AugmentConfig
from ceco_fair.data.base import ImageDataset, Recolourable
from ceco_fair.errors import CecoFairError
from ceco_fair.evaluation.probe import Encoder, extract_features

NOT_RECOLOURABLE = (
    "counterfactual_features: {name} has no background colours to re-render; it works for BiasedMNIST and ColoredMNIST"
)


class _Recoloured(Dataset[tuple[torch.Tensor, int, int]]):
    """One dataset's images, all on one background colour, with its targets and sensitive values."""

    def __init__(self, dataset: Recolourable, colour: int) -> None:
        self.images: torch.Tensor = dataset.render_on(colour)
        self.targets: torch.Tensor = dataset.targets
        self.sensitive: torch.Tensor = dataset.sensitive

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        return self.images[index], int(self.targets[index]), int(self.sensitive[index])


def _default_device(encoder: Encoder) -> torch.device:
    """The device of the encoder's first parameter, else the CPU."""
    if isinstance(encoder, nn.Module):
        for parameter in encoder.parameters():
            return parameter.device
    return torch.device("cpu")


def counterfactual_features(
    encoder: Encoder,
    dataset: ImageDataset,
    *,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    normalization: AugmentConfig | None = None,
) -> torch.Tensor:
    """Encode every image of ``dataset`` re-rendered on each of its ``K`` background colours.

    The images go through :func:`ceco_fair.evaluation.probe.extract_features` (the path of the linear
    probe): normalised as in training, no augmentation, the encoder in eval mode without
    gradients, in batches.

    Args:
        encoder: Module or callable mapping ``[B, 3, H, W]`` floats to ``[B, D]``.
        dataset: A :class:`~ceco_fair.data.base.Recolourable` dataset (BiasedMNIST, ColoredMNIST),
            ``n`` samples.
        batch_size: Images per forward pass.
        device: Where to run the encoder (default: the encoder's device, else the CPU).
        normalization: Mean / std of the training normalisation (default: ``AugmentConfig()``).

    Returns:
        ``[n, K, D]`` float32 features on the CPU; ``[i, k]`` is image ``i`` on colour ``k``.

    Raises:
        CecoFairError: If the dataset cannot re-render its images, or the encoder's output is
            not ``[B, D]``.

    """
    if not isinstance(dataset, Recolourable):
        raise CecoFairError(NOT_RECOLOURABLE.format(name=type(dataset).__name__))
    target = _default_device(encoder) if device is None else torch.device(device)
    per_colour = [
        extract_features(
            encoder,
            _Recoloured(dataset, colour),
            device=target,
            batch_size=batch_size,
            normalization=normalization,
            progress=False,
        ).features
        for colour in range(dataset.n_colours)
    ]
    return torch.stack(per_colour, dim=1)
