"""Reading a frozen encoder: one :class:`FeatureReader` holds how images become features.

The five extraction settings (device, batch size, loader workers, normalisation, progress) were repeated
at every extraction of a run, an audit, validation scoring and the diagnostics; a reader holds them once
and every extraction of one evaluation goes through it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ceco_fair.data.augment import AugmentConfig
from ceco_fair.data.base import ImageDataset
from ceco_fair.evaluation.probe import Encoder, Features, extract_features


@dataclass(frozen=True)
class FeatureReader:
    """How a frozen encoder is read.

    Attributes:
        device: where the encoder runs.
        batch_size: images per forward pass.
        num_workers: loader workers for datasets that decode from disk.
        normalization: mean / std applied to images in [0, 1] (default 0.5 / 0.5).
        progress: show progress bars.
        label: prefixed to the progress bars' descriptions (a run's name).
    """

    device: torch.device
    batch_size: int = 512
    num_workers: int = 0
    normalization: AugmentConfig | None = None
    progress: bool = True
    label: str = ""

    def describe(self, what: str) -> str:
        """A progress bar's description: the label, then ``what``."""
        return f"{self.label} {what}".strip()

    def labelled(self, label: str) -> FeatureReader:
        """This reader with another label."""
        return dataclasses.replace(self, label=label)

    def features(
        self,
        encoder: Encoder,
        dataset: ImageDataset,
        split: str,
        *,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        normalization: AugmentConfig | None = None,
        indices: torch.Tensor | None = None,
    ) -> Features:
        """Features ``[n, D]`` of ``dataset`` (CPU, float32) with its targets and sensitive values ``[n]``.

        Args:
            encoder: maps normalised images ``[B, 3, H, W]`` to features ``[B, D]``.
            dataset: yields ``(image uint8 [3, H, W], target, sensitive)``.
            split: what the progress bar calls it (``train``, ``test``, ``valid``, ``test view 1``).
            transform: replaces the plain normalisation (see :func:`~ceco_fair.evaluation.probe.extract_features`).
            normalization: replaces the reader's normalisation for this extraction.
            indices: only these rows ``[m]``, in this order (default: all).
        """
        return extract_features(
            encoder,
            dataset,
            device=self.device,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            normalization=normalization or self.normalization,
            progress=self.progress,
            description=self.describe(f"{split} features" if transform is None else split),
            transform=transform,
            indices=indices,
        )
