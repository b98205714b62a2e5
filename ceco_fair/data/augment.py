"""Batched image augmentation on the training device.

One call augments a whole uint8 batch with per-sample random parameters: a random resized crop and a
small rotation in one ``grid_sample`` (an affine map per image), an optional horizontal flip and an
optional colour jitter. There is no per-sample PIL pipeline on the hot path.

Colour jitter changes the colour cue that BiasedMNIST uses as its bias, so it is off by default and
is a protocol choice.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ceco_fair.errors import CecoFairError

LUMA_WEIGHTS = (0.299, 0.587, 0.114)
"""ITU-R 601 luma weights of R, G and B, as torchvision's ``rgb_to_grayscale``."""


@dataclass(frozen=True)
class AugmentConfig:
    """Parameters of :class:`BatchAugment`.

    Attributes:
        crop_scale: range of the crop's area as a fraction of the image.
        crop_ratio: range of the crop's aspect ratio (width / height).
        rotation: maximum absolute rotation in degrees.
        hflip: flip horizontally with probability ½.
        color_jitter: strength s; brightness, contrast and saturation factors drawn from [1−s, 1+s].
        color_jitter_prob: probability that an image is jittered at all.
        grayscale_prob: probability that an image is turned to grey.
        mean: per-channel mean subtracted after augmentation.
        std: per-channel standard deviation divided after augmentation.
    """

    crop_scale: tuple[float, float] = (0.6, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    rotation: float = 10.0
    hflip: bool = False
    color_jitter: float = 0.0
    color_jitter_prob: float = 0.8
    grayscale_prob: float = 0.0
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def __post_init__(self) -> None:
        low, high = self.crop_scale
        if not 0 < low <= high <= 1:
            raise CecoFairError(f"train.augment.crop_scale: expected 0 < low <= high <= 1, got {list(self.crop_scale)}")
        low, high = self.crop_ratio
        if not 0 < low <= high:
            raise CecoFairError(f"train.augment.crop_ratio: expected 0 < low <= high, got {list(self.crop_ratio)}")
        if not 0 <= self.rotation <= 180:
            raise CecoFairError(f"train.augment.rotation: expected degrees in [0, 180], got {self.rotation}")
        if not 0 <= self.color_jitter < 1:
            raise CecoFairError(f"train.augment.color_jitter: expected a strength in [0, 1), got {self.color_jitter}")
        for name in ("color_jitter_prob", "grayscale_prob"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise CecoFairError(f"train.augment.{name}: expected a probability in [0, 1], got {value}")
        if any(s <= 0 for s in self.std):
            raise CecoFairError(f"train.augment.std: expected positive values, got {list(self.std)}")


@functools.lru_cache(maxsize=64)
def _channel_constant(values: tuple[float, ...], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``[1, C, 1, 1]`` per-channel constants, made once per device and dtype (read-only).

    Building them on every call would be a blocking host-to-device copy per step on a GPU.
    """
    return torch.tensor(values, device=device, dtype=dtype).view(1, -1, 1, 1)


def normalize(images: torch.Tensor, config: AugmentConfig) -> torch.Tensor:
    """Turn a uint8 (or [0, 1] float) batch ``[B, C, H, W]`` into normalised float32 ``[B, C, H, W]``."""
    floats = images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()
    mean = _channel_constant(tuple(config.mean), floats.device, floats.dtype)
    std = _channel_constant(tuple(config.std), floats.device, floats.dtype)
    return (floats - mean) / std


def _uniform(
    low: float, high: float, size: int, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    return torch.rand(size, generator=generator, device=device) * (high - low) + low


def _grey(images: torch.Tensor) -> torch.Tensor:
    """Luma of ``[B, 3, H, W]`` as ``[B, 1, H, W]`` (ITU-R 601 weights, as torchvision)."""
    weights = _channel_constant(LUMA_WEIGHTS, images.device, images.dtype)
    return (images * weights).sum(dim=1, keepdim=True)


class BatchAugment:
    """Per-sample random augmentation of a whole batch in a few tensor operations.

    Args:
        config: the augmentation parameters.

    Call with ``images`` uint8 ``[B, 3, H, W]`` on any device and an optional ``torch.Generator`` on the
    same device; returns normalised float32 ``[B, 3, H, W]``.
    """

    def __init__(self, config: AugmentConfig) -> None:
        self.config = config

    def affine(self, batch: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
        """Random crop-resize-rotate-flip maps as ``affine_grid`` matrices ``[B, 2, 3]``."""
        cfg = self.config
        area = _uniform(*cfg.crop_scale, batch, generator, device)
        log_ratio = _uniform(math.log(cfg.crop_ratio[0]), math.log(cfg.crop_ratio[1]), batch, generator, device)
        ratio = log_ratio.exp()
        width = (area * ratio).sqrt().clamp(max=1.0)
        height = (area / ratio).sqrt().clamp(max=1.0)
        centre_x = (torch.rand(batch, generator=generator, device=device) * 2 - 1) * (1 - width)
        centre_y = (torch.rand(batch, generator=generator, device=device) * 2 - 1) * (1 - height)
        angle = (torch.rand(batch, generator=generator, device=device) * 2 - 1) * math.radians(cfg.rotation)
        cos, sin = angle.cos(), angle.sin()
        theta = torch.stack(
            [
                torch.stack([width * cos, -height * sin, centre_x], dim=1),
                torch.stack([width * sin, height * cos, centre_y], dim=1),
            ],
            dim=1,
        )
        if cfg.hflip:
            flip = torch.rand(batch, generator=generator, device=device) < 0.5
            theta[:, :, 0] = torch.where(flip[:, None], -theta[:, :, 0], theta[:, :, 0])
        return theta

    def jitter(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Random brightness, contrast and saturation of ``[B, 3, H, W]`` floats in [0, 1]."""
        cfg = self.config
        batch, device = images.shape[0], images.device
        strength = cfg.color_jitter
        apply = (torch.rand(batch, generator=generator, device=device) < cfg.color_jitter_prob).view(-1, 1, 1, 1)
        brightness = _uniform(1 - strength, 1 + strength, batch, generator, device).view(-1, 1, 1, 1)
        contrast = _uniform(1 - strength, 1 + strength, batch, generator, device).view(-1, 1, 1, 1)
        saturation = _uniform(1 - strength, 1 + strength, batch, generator, device).view(-1, 1, 1, 1)
        jittered = (images * brightness).clamp(0, 1)
        mean_grey = _grey(jittered).mean(dim=(2, 3), keepdim=True)
        jittered = ((jittered - mean_grey) * contrast + mean_grey).clamp(0, 1)
        grey = _grey(jittered)
        jittered = ((jittered - grey) * saturation + grey).clamp(0, 1)
        return torch.where(apply, jittered, images)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment ``images`` uint8 ``[B, 3, H, W]`` into normalised float32 ``[B, 3, H, W]``."""
        floats = images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()
        theta = self.affine(floats.shape[0], generator, floats.device)
        grid = F.affine_grid(theta, list(floats.shape), align_corners=False)
        out = F.grid_sample(floats, grid, mode="bilinear", padding_mode="border", align_corners=False)
        if self.config.color_jitter > 0:
            out = self.jitter(out, generator)
        if self.config.grayscale_prob > 0:
            to_grey = (
                torch.rand(out.shape[0], generator=generator, device=out.device) < self.config.grayscale_prob
            ).view(-1, 1, 1, 1)
            out = torch.where(to_grey, _grey(out).expand_as(out), out)
        return normalize(out, self.config)
