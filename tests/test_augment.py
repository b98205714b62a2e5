"""Batched augmentation: exact identity, determinism, per-sample randomness, colour preserved."""

from __future__ import annotations

import pytest
import torch

from ceco_fair.data.augment import AugmentConfig, BatchAugment, normalize
from ceco_fair.errors import CecoFairError


def images(batch: int = 6) -> torch.Tensor:
    return torch.randint(0, 256, (batch, 3, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_identity_configuration_returns_the_normalised_input() -> None:
    config = AugmentConfig(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), rotation=0.0)
    batch = images()
    out = BatchAugment(config)(batch, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, normalize(batch, config), atol=1e-5, rtol=0)


def test_same_generator_same_views_and_each_sample_differs() -> None:
    augment = BatchAugment(AugmentConfig(color_jitter=0.4, grayscale_prob=0.2, hflip=True))
    batch = images(1).expand(8, -1, -1, -1).contiguous()
    first = augment(batch, torch.Generator().manual_seed(3))
    second = augment(batch, torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, second)
    assert first.shape == (8, 3, 28, 28) and first.dtype == torch.float32
    assert len({tuple(v.flatten()[:50].tolist()) for v in first}) == 8


def test_background_colour_survives_crop_and_rotation() -> None:
    colour = torch.tensor([255, 128, 0], dtype=torch.uint8)
    batch = colour.view(1, 3, 1, 1).expand(4, 3, 28, 28).clone()
    batch[:, :, 10:18, 10:18] = 255
    config = AugmentConfig(rotation=30)
    out = BatchAugment(config)(batch, torch.Generator().manual_seed(1))
    expected = normalize(colour.view(1, 3, 1, 1), config).view(3)
    torch.testing.assert_close(out[:, :, 0, 0], expected.expand(4, 3), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "bad",
    [
        {"crop_scale": (0.0, 1.0)},
        {"rotation": -1.0},
        {"color_jitter": 1.5},
        {"grayscale_prob": 2.0},
    ],
)
def test_invalid_configuration(bad: dict[str, object]) -> None:
    with pytest.raises(CecoFairError, match=next(iter(bad))):
        AugmentConfig(**bad)  # type: ignore[arg-type]
