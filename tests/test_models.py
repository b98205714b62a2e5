"""Encoders: shapes, the cost of the CPU-friendly net, user factories."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from ceco_fair.errors import CecoFairError
from ceco_fair.models.encoders import ProjectionHead, build_encoder, check_encoder_spec, infer_feature_dim


@pytest.mark.parametrize(("arch", "dim"), [("simple_conv", 128), ("small_conv", 128), ("resnet18", 512)])
def test_encoders_map_images_to_features(arch: str, dim: int) -> None:
    encoder = build_encoder(arch, small_image_stem=True)
    features = encoder(torch.randn(2, 3, 28, 28))
    assert features.shape == (2, dim) and encoder.feature_dim == dim


def flops(arch: str) -> int:
    encoder = build_encoder(arch).eval()
    with FlopCounterMode(display=False) as counter:
        encoder(torch.randn(1, 3, 28, 28))
    return int(counter.get_total_flops())


def test_small_conv_is_at_least_ten_times_cheaper_than_simple_conv() -> None:
    assert flops("simple_conv") >= 10 * flops("small_conv")


def test_simple_conv_follows_rebias_layout() -> None:
    encoder = build_encoder("simple_conv")
    convs = [m for m in encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 128]
    assert all(c.kernel_size == (7, 7) and c.padding == (3, 3) for c in convs)


def test_user_factory_and_feature_dim_inference() -> None:
    encoder = build_encoder("torch.nn:Flatten")
    assert infer_feature_dim(encoder, (3, 4, 4)) == 48


def test_unknown_encoder_is_a_clear_error() -> None:
    with pytest.raises(CecoFairError, match="resnet99"):
        check_encoder_spec("resnet99")
    with pytest.raises(CecoFairError, match="cannot import"):
        check_encoder_spec("no_such_module_xyz:make")


def test_projection_head_shape() -> None:
    assert ProjectionHead(32, 8)(torch.randn(5, 32)).shape == (5, 8)
