"""Encoders, projection heads and the registry that builds them by name.

Every encoder maps an image batch ``[B, 3, H, W]`` (float, normalised) to features ``[B, D]`` and
exposes ``feature_dim = D``. Users can plug in their own encoder as ``"package.module:factory"``;
its output is checked on one batch before a run writes anything (:func:`check_encoder_output`), and an
output ``[B, C, 1, 1]`` (a backbone cut before its flatten) is flattened to ``[B, C]``
(:func:`flatten_pooled_output`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from ceco_fair.common.user_code import call_user, check_call_arguments, load_callable, user_code
from ceco_fair.errors import CecoFairError

logger = logging.getLogger(__name__)
ENCODERS: tuple[str, ...] = ("simple_conv", "small_conv", "resnet18")


class ConvStack(nn.Module):
    """Four [Conv, BN, ReLU] blocks with 16/32/64/``feature_dim`` channels, then a global average pool.

    Args:
        kernel_size: convolution size.
        strides: the four blocks' strides.
        feature_dim: width of the last block and of the output features.

    Shapes: ``[B, 3, H, W] -> [B, feature_dim]``.
    """

    def __init__(self, kernel_size: int, strides: tuple[int, int, int, int], feature_dim: int) -> None:
        super().__init__()
        widths = [3, 16, 32, 64, feature_dim]
        layers: list[nn.Module] = []
        for (c_in, c_out), stride in zip(itertools.pairwise(widths), strides, strict=True):
            layers += [
                nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=kernel_size // 2),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = feature_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Encode ``images [B, 3, H, W]`` into features ``[B, feature_dim]``."""
        return torch.flatten(self.pool(self.body(images)), 1)


class SimpleConvNet(ConvStack):
    """ReBias' SimpleConvNet: 4 × [Conv k×k (stride 1), BN, ReLU] with 16/32/64/128 channels, global pool.

    Shapes: ``[B, 3, H, W] -> [B, feature_dim]``.
    """

    def __init__(self, kernel_size: int = 7, feature_dim: int = 128) -> None:
        super().__init__(kernel_size, (1, 1, 1, 1), feature_dim)


class SmallConvNet(ConvStack):
    """A CPU-friendly encoder: 3×3 convolutions, the last three halving the resolution (~100× cheaper).

    Shapes: ``[B, 3, H, W] -> [B, feature_dim]``.
    """

    def __init__(self, feature_dim: int = 128) -> None:
        super().__init__(3, (1, 2, 2, 2), feature_dim)


class ResNet18(nn.Module):
    """torchvision's ResNet-18 without its classifier (512-d features).

    Args:
        small_image_stem: replace the 7×7/2 stem and max-pool by a 3×3/1 convolution, the usual
            choice for images of 32–128 pixels (FSCL's CelebA setting).

    Shapes: ``[B, 3, H, W] -> [B, 512]``.
    """

    def __init__(self, small_image_stem: bool = False) -> None:
        super().__init__()
        from torchvision.models import resnet18

        net = resnet18(weights=None)
        if small_image_stem:
            net.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        net.fc = nn.Identity()
        self.net = net
        self.feature_dim = 512

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Encode ``images [B, 3, H, W]`` into features ``[B, 512]``."""
        features: torch.Tensor = self.net(images)
        return features


class ProjectionHead(nn.Module):
    """The MLP head of contrastive learning: ``d -> d -> out_dim`` with ReLU in between.

    Shapes: ``[B, in_dim] -> [B, out_dim]``.
    """

    def __init__(self, in_dim: int, out_dim: int = 128) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, in_dim), nn.ReLU(inplace=True), nn.Linear(in_dim, out_dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Project ``features [B, in_dim]`` to ``[B, out_dim]``."""
        projected: torch.Tensor = self.mlp(features)
        return projected


def _load_factory(spec: str) -> Callable[..., nn.Module]:
    """Resolve ``"package.module:factory"`` to a callable, with a clear error if it fails."""
    return load_callable(spec, "encoder.arch", f"one of {', '.join(ENCODERS)}")


def check_encoder_spec(arch: str, kwargs: Mapping[str, Any] | None = None) -> None:
    """Raise :class:`CecoFairError` if ``arch`` names no built-in encoder nor an importable factory.

    A factory's ``kwargs`` are checked against its signature; the factory is not called.
    """
    if arch not in ENCODERS:
        check_call_arguments(_load_factory(arch), kwargs or {}, "encoder.kwargs", arch)


def infer_feature_dim(
    encoder: nn.Module | Callable[[torch.Tensor], torch.Tensor], image_shape: tuple[int, int, int]
) -> int:
    """Feature size of ``encoder`` from one forward pass on a zero image of ``image_shape`` (C, H, W)."""
    declared = getattr(encoder, "feature_dim", None)
    if isinstance(declared, int):
        return declared
    parameters = list(encoder.parameters()) if isinstance(encoder, nn.Module) else []
    device = parameters[0].device if parameters else torch.device("cpu")
    was_training = isinstance(encoder, nn.Module) and encoder.training
    if isinstance(encoder, nn.Module):
        encoder.eval()
    with torch.no_grad():
        output = encoder(torch.zeros(2, *image_shape, device=device))
    if isinstance(encoder, nn.Module):
        encoder.train(was_training)
    if not isinstance(output, torch.Tensor) or output.ndim != 2 or output.shape[0] != 2:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise CecoFairError(f"encoder output: expected features of shape [B, D], got {shape} for a batch of 2")
    return int(output.shape[1])


def is_pooled_map(output: object) -> bool:
    """Whether ``output`` is a ``[B, C, 1, 1]`` tensor: pooled features not yet flattened."""
    return isinstance(output, torch.Tensor) and output.ndim == 4 and tuple(output.shape[2:]) == (1, 1)


def flatten_pooled_output(encoder: nn.Module, name: str) -> nn.Module:
    """Make ``encoder`` return ``[B, C]`` where it returns ``[B, C, 1, 1]``; other outputs pass unchanged.

    A forward hook does it, so the state dict (and ``encoder.pt``) stays the encoder's own. The
    first flattened output is logged once per module.

    Args:
        encoder: the module, changed in place.
        name: how the protocol names it, for the log line (``encoder.arch 'm:factory'``).

    Returns:
        ``encoder``.
    """
    logged = False

    def flatten(module: nn.Module, args: Any, output: Any) -> Any:
        nonlocal logged
        if not is_pooled_map(output):
            return None
        if not logged:
            logger.info("%s returns [B, C, 1, 1] features: flattened to [B, %d]", name, output.shape[1])
            logged = True
        return output.flatten(1)

    encoder.register_forward_hook(flatten)
    return encoder


def check_encoder_output(encoder: nn.Module, images: torch.Tensor, name: str) -> int:
    """Run ``encoder`` on one batch (eval mode, no gradient) and check that it returns features ``[B, D]``.

    Args:
        encoder: the built encoder.
        images: a normalised batch ``[B, 3, H, W]`` of the training data.
        name: how the protocol names the encoder, for messages (``encoder.arch 'm:factory'``).

    Returns:
        ``D``.

    Raises:
        UserCodeError: the encoder raised on the batch.
        CecoFairError: the output is not a ``[B, D]`` tensor (a tuple, a feature map), or ``D`` differs
            from the encoder's own ``feature_dim``.
    """
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad(), user_code(f"{name} (a forward pass on a batch of {len(images)} images)"):
            output = encoder(images)
    finally:
        encoder.train(was_training)
    if not isinstance(output, torch.Tensor) or output.ndim != 2 or output.shape[0] != len(images):
        got = f"a tensor of shape {list(output.shape)}" if isinstance(output, torch.Tensor) else type(output).__name__
        raise CecoFairError(f"{name}: expected features [B, D] for a batch of B = {len(images)} images, got {got}")
    declared = getattr(encoder, "feature_dim", None)
    if isinstance(declared, int) and declared != output.shape[1]:
        raise CecoFairError(f"{name}: its feature_dim is {declared}, but it returns {output.shape[1]} features")
    return int(output.shape[1])


def build_encoder(
    arch: str,
    *,
    feature_dim: int = 128,
    kernel_size: int = 7,
    small_image_stem: bool = False,
    **factory_kwargs: Any,
) -> nn.Module:
    """Build an encoder by name.

    Args:
        arch: ``simple_conv``, ``small_conv``, ``resnet18`` or ``"package.module:factory"``.
        feature_dim: output size of the convolutional encoders (ResNet-18 is always 512).
        kernel_size: SimpleConvNet's kernel size.
        small_image_stem: ResNet-18's 3×3 stem for small images.
        **factory_kwargs: passed to a user factory.

    Returns:
        A module mapping ``[B, 3, H, W]`` to ``[B, D]``.

    Raises:
        CecoFairError: unknown name or a factory that cannot be imported.
    """
    if arch == "simple_conv":
        return SimpleConvNet(kernel_size=kernel_size, feature_dim=feature_dim)
    if arch == "small_conv":
        return SmallConvNet(feature_dim=feature_dim)
    if arch == "resnet18":
        return ResNet18(small_image_stem=small_image_stem)
    model = call_user(_load_factory(arch), factory_kwargs, "encoder.arch", arch)
    if not isinstance(model, nn.Module):
        raise CecoFairError(
            f"encoder.arch {arch!r}: the factory returned {type(model).__name__}, not a torch.nn.Module"
        )
    return model
