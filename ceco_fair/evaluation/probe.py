"""Linear probe on frozen encoder features.

Every method, cross-entropy included, is evaluated the same way: the encoder is frozen, features
of the un-augmented images are extracted once, and a linear classifier is trained on standardised
training features.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ceco_fair.common.progress import progress_bar
from ceco_fair.data.augment import AugmentConfig, normalize
from ceco_fair.data.base import ImageDataset
from ceco_fair.errors import CecoFairError
from ceco_fair.training.batches import as_long, chunk_indices, iterate_batches

logger = logging.getLogger(__name__)

Encoder = nn.Module | Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ProbeConfig:
    """Settings of the linear probe (Adam on standardised features, cosine-annealed learning rate, full epochs).

    ``balanced_on`` is the split the balanced read-out is fitted on: ``train`` (the training features)
    or ``valid`` (the dataset's validation split, as DFR does).
    """

    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-2
    weight_decay: float = 0.0
    balanced_on: Literal["train", "valid"] = "train"

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise CecoFairError(f"probe.epochs: expected a positive integer, got {self.epochs}")
        if self.batch_size < 1:
            raise CecoFairError(f"probe.batch_size: expected a positive integer, got {self.batch_size}")
        if not self.lr > 0:
            raise CecoFairError(f"probe.lr: expected a positive number, got {self.lr}")
        if self.balanced_on not in ("train", "valid"):
            raise CecoFairError(f"probe.balanced_on: expected train or valid, got {self.balanced_on!r}")


@dataclass
class Features:
    """Frozen features of a dataset: ``features [n, D]`` float32, ``targets [n]``, ``sensitive [n]``."""

    features: torch.Tensor
    targets: torch.Tensor
    sensitive: torch.Tensor


@torch.no_grad()
def extract_features(
    encoder: Encoder,
    dataset: ImageDataset,
    *,
    device: torch.device,
    batch_size: int = 512,
    num_workers: int = 0,
    normalization: AugmentConfig | None = None,
    progress: bool = True,
    description: str = "features",
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    indices: torch.Tensor | None = None,
) -> Features:
    """Encode every image of ``dataset`` and return the features on the CPU.

    Images are normalised without augmentation, unless ``transform`` is given: it then maps each uint8
    batch ``[B, 3, H, W]`` to the encoder's normalised float input (e.g. a seeded :class:`BatchAugment`).

    Args:
        encoder: module or callable mapping ``[B, 3, H, W]`` floats to ``[B, D]``.
        dataset: yields ``(image uint8 [3, H, W], target, sensitive)``.
        device: where to run the encoder.
        batch_size: images per forward pass.
        num_workers: loader workers for datasets that decode from disk.
        normalization: mean / std applied to the images (the training normalisation).
        progress: show a progress bar.
        description: the progress bar's label.
        transform: replaces the plain normalisation (batches are visited in dataset order).
        indices: encode only these rows ``[m]``, in this order (default: every row).

    Returns:
        Features ``[n, D]`` (float32, CPU) with the targets and sensitive values ``[n]``.

    Raises:
        CecoFairError: the encoder does not return a ``[B, D]`` tensor.
    """
    normalization = normalization or AugmentConfig()
    was_training = isinstance(encoder, nn.Module) and encoder.training
    if isinstance(encoder, nn.Module):
        encoder.eval()
    order = indices if indices is not None else torch.arange(len(dataset))
    batches = chunk_indices(order, batch_size, drop_last=False)
    outputs: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    sensitive: list[torch.Tensor] = []
    for images, batch_targets, batch_sensitive in progress_bar(
        iterate_batches(dataset, batches, device=device, num_workers=num_workers),
        total=len(batches),
        desc=description,
        hidden=not progress,
        leave=False,
        unit="batch",
    ):
        inputs = transform(images) if transform is not None else normalize(images, normalization)
        output = encoder(inputs)
        if not isinstance(output, torch.Tensor) or output.ndim != 2 or output.shape[0] != inputs.shape[0]:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise CecoFairError(
                f"encoder output: expected features [B, D] for a batch of {inputs.shape[0]}, got {shape}"
            )
        outputs.append(output.float().cpu())
        targets.append(batch_targets.cpu())
        sensitive.append(batch_sensitive.cpu())
    if isinstance(encoder, nn.Module):
        encoder.train(was_training)
    return Features(torch.cat(outputs), torch.cat(targets), torch.cat(sensitive))


class LinearProbe(nn.Module):
    """Standardisation followed by a linear layer: ``[n, D] -> logits [n, C]``."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, n_classes: int) -> None:
        super().__init__()
        self.feature_mean: torch.Tensor
        self.feature_std: torch.Tensor
        self.register_buffer("feature_mean", mean)
        self.register_buffer("feature_std", std)
        self.linear = nn.Linear(mean.numel(), n_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``[n, C]`` of features ``[n, D]``."""
        logits: torch.Tensor = self.linear((features - self.feature_mean) / self.feature_std)
        return logits

    @torch.no_grad()
    def predict(self, features: torch.Tensor, batch_size: int = 65536) -> torch.Tensor:
        """Predicted classes ``[n]`` (int64, CPU)."""
        device = self.feature_mean.device
        parts = [self(chunk.to(device)).argmax(dim=1).cpu() for chunk in torch.split(features, batch_size)]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)

    @torch.no_grad()
    def scores(self, features: torch.Tensor, batch_size: int = 65536) -> torch.Tensor:
        """Class probabilities ``[n, C]`` (the softmax of the logits; float32, CPU)."""
        device = self.feature_mean.device
        parts = [self(chunk.to(device)).softmax(dim=1).float().cpu() for chunk in torch.split(features, batch_size)]
        return torch.cat(parts) if parts else torch.zeros(0, self.linear.out_features)


def probe_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy of logits ``[B, C]``, or ``(1/B) Σ_i w_i · CE_i`` with weights ``[B]``."""
    if weights is None:
        return F.cross_entropy(logits, labels)
    return (weights * F.cross_entropy(logits, labels, reduction="none")).mean()


def train_linear_probe(
    train: Features,
    n_classes: int,
    config: ProbeConfig,
    *,
    seed: int,
    device: torch.device,
    weights: torch.Tensor | None = None,
) -> LinearProbe:
    """Fit a linear classifier on frozen features with Adam and cross-entropy.

    With ``weights`` each batch's loss is ``(1/B) Σ_i w_i · CE_i`` instead of the plain mean.

    Args:
        train: training features ``[n, D]`` and targets ``[n]``.
        n_classes: number of target classes.
        config: epochs, batch size, learning rate, weight decay.
        seed: seeds the initialisation and the batch order.
        device: where to train.
        weights: per-sample loss weights ``[n]`` (None: all 1).

    Returns:
        The fitted probe (on ``device``).
    """
    features = train.features.to(device)
    labels = as_long(train.targets).to(device)
    mean = features.mean(dim=0)
    std = features.std(dim=0).clamp_min(1e-6) if len(features) > 1 else torch.ones_like(mean)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    probe = LinearProbe(mean, std, n_classes).to(device)
    optimizer = torch.optim.Adam(probe.linear.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    sample_weights = weights.float().to(device) if weights is not None else None
    for _ in range(config.epochs):
        order = torch.randperm(len(features), generator=generator).to(device)
        for index in torch.split(order, config.batch_size):
            batch_weights = sample_weights[index] if sample_weights is not None else None
            loss = probe_loss(probe(features[index]), labels[index], batch_weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
        scheduler.step()
    probe.eval()
    return probe
