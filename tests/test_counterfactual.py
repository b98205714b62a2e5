"""Counterfactual features of coloured digits and the bias sensitivity they give."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Subset, TensorDataset

from ceco_fair.data.augment import AugmentConfig
from ceco_fair.data.base import Recolourable
from ceco_fair.data.biased_mnist import BiasedMNIST, ColoredMNIST
from ceco_fair.errors import CecoFairError
from ceco_fair.evaluation.counterfactual import counterfactual_features
from ceco_fair.evaluation.diagnostics import dataset_counterfactuals
from ceco_fair.evaluation.features import FeatureReader
from ceco_fair.evaluation.probe import extract_features
from ceco_fair.metrics import bias_sensitivity


@pytest.fixture(scope="module")
def biased() -> BiasedMNIST:
    return BiasedMNIST(source="embedded", split="test", seed=0)


def corner_colour(images: torch.Tensor) -> torch.Tensor:
    """Sees only the background: the mean colour of the 3×3 top-left corner, ``[B, 3]``."""
    return images[:, :, :3, :3].mean(dim=(2, 3))


def digit_mask(images: torch.Tensor) -> torch.Tensor:
    """Colour-blind: where all channels are at their maximum (white digit), pooled to ``[B, 49]``."""
    white = (images == images.amax(dim=(1, 2, 3), keepdim=True)).all(dim=1, keepdim=True).float()
    return F.avg_pool2d(white, 4).flatten(1)


def test_render_on_keeps_the_digit_pixels(biased: BiasedMNIST) -> None:
    assert biased.n_colours == 10
    for colour in (0, 7):
        rendered = biased.render_on(colour)
        assert rendered.dtype == torch.uint8 and rendered.shape == biased.images.shape
        own = biased.bias == colour
        assert own.any() and torch.equal(rendered[own], biased.images[own])
        subset = torch.tensor([5, 2, 9])
        assert torch.equal(biased.render_on(colour, subset), rendered[subset])
    with pytest.raises(CecoFairError, match="colour must be an integer in \\[0, 10\\), got 10"):
        biased.render_on(10)


def test_colour_encoder_is_sensitive_and_colour_blind_encoder_is_not(biased: BiasedMNIST) -> None:
    colour_only = counterfactual_features(corner_colour, biased, batch_size=300)
    assert colour_only.shape == (len(biased), 10, 3) and colour_only.dtype == torch.float32
    assert bias_sensitivity(colour_only) >= 0.9
    blind = counterfactual_features(digit_mask, biased, batch_size=300)
    assert blind.shape == (len(biased), 10, 49)
    assert bias_sensitivity(blind) == pytest.approx(0.0, abs=1e-9)


def test_matches_feature_extraction_on_each_image_own_colour(biased: BiasedMNIST) -> None:
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Conv2d(3, 6, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    encoder.train()
    normalization = AugmentConfig(mean=(0.3, 0.4, 0.5), std=(0.2, 0.3, 0.4))
    features = counterfactual_features(encoder, biased, batch_size=128, normalization=normalization)
    assert encoder.training, "the encoder's mode is restored"
    plain = extract_features(
        encoder, biased, device=torch.device("cpu"), batch_size=128, normalization=normalization, progress=False
    ).features
    own = features[torch.arange(len(biased)), biased.bias]
    torch.testing.assert_close(own, plain, rtol=0, atol=1e-6)
    assert 0.0 < bias_sensitivity(features) < 1.0


class Recorder(nn.Module):
    """Records the mode and gradient state its forward saw."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[bool, bool]] = []
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.seen.append((self.training, torch.is_grad_enabled()))
        return images.flatten(1)[:, :4] * self.scale


def test_eval_mode_no_grad_batches_and_two_colours() -> None:
    dataset = ColoredMNIST(source="embedded", split="test", seed=0)
    recorder = Recorder()
    features = counterfactual_features(recorder, dataset, batch_size=400)
    assert features.shape == (len(dataset), 2, 4)
    assert not features.requires_grad
    batches = -(-len(dataset) // 400)
    assert recorder.seen == [(False, False)] * (2 * batches)
    assert recorder.training


def test_dataset_without_colours_is_refused() -> None:
    dataset = TensorDataset(torch.zeros(4, 3, 28, 28, dtype=torch.uint8), torch.zeros(4), torch.zeros(4))
    with pytest.raises(CecoFairError, match=r"^counterfactual_features: TensorDataset has no background colours"):
        counterfactual_features(corner_colour, dataset)


class RenderOnly(TensorDataset):
    """Has ``render_on`` but no ``n_colours``: not :class:`Recolourable`."""

    def render_on(self, colour: int, indices: torch.Tensor | None = None) -> torch.Tensor:
        return self.tensors[0]


def test_recolourable_is_one_protocol_for_both_paths(biased: BiasedMNIST) -> None:
    """The diagnostics and counterfactual_features agree on what is recolourable: ``Recolourable``."""
    half = RenderOnly(torch.zeros(4, 3, 28, 28, dtype=torch.uint8), torch.zeros(4), torch.zeros(4))
    assert isinstance(biased, Recolourable) and not isinstance(half, Recolourable)
    assert not isinstance(Subset(biased, range(4)), Recolourable)
    cpu = torch.device("cpu")
    assert dataset_counterfactuals(corner_colour, half, FeatureReader(cpu, batch_size=4)) is None
    with pytest.raises(CecoFairError, match="RenderOnly has no background colours"):
        counterfactual_features(corner_colour, half)
    found = dataset_counterfactuals(corner_colour, biased, FeatureReader(cpu, batch_size=500))
    assert found is not None and found.shape == (len(biased), biased.n_colours, 3)
