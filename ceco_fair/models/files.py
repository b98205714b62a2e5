"""Encoders out and in: every run's ``encoder.pt``, :func:`load_encoder`, and ``encoder.weights``.

``encoder.pt`` holds the encoder's ``state_dict`` alone (CPU tensors), so that
``torch.load(path, weights_only=True)`` reads it without running code. :func:`load_encoder`
rebuilds the architecture from the run's saved protocol and loads those weights; a protocol's
``encoder.weights`` loads a state dict into the encoder it builds (then the ``frozen`` method audits
it as it is).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import torch
import yaml
from torch import nn

from ceco_fair.common.config import from_mapping
from ceco_fair.common.io import atomic_write
from ceco_fair.errors import CecoFairError, DataError, with_prefix
from ceco_fair.models.encoders import ENCODERS, build_encoder, check_encoder_spec, flatten_pooled_output
from ceco_fair.results.layout import ENCODER_FILE, PROTOCOL_FILE

logger = logging.getLogger(__name__)

WEIGHTS_KEY = "encoder.weights"
_SHOWN_KEYS = 3


@dataclass(frozen=True)
class EncoderConfig:
    """The encoder section: ``arch`` plus the options of :func:`ceco_fair.models.encoders.build_encoder`."""

    arch: str = "small_conv"
    feature_dim: int = 128
    kernel_size: int = 7
    small_image_stem: bool = False
    projection_dim: int = 128
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    weights: str | None = None

    def __post_init__(self) -> None:
        check_encoder_spec(self.arch, self.kwargs)
        for name in ("feature_dim", "kernel_size", "projection_dim"):
            if getattr(self, name) < 1:
                raise CecoFairError(f"encoder.{name}: expected a positive integer, got {getattr(self, name)}")


def save_encoder(encoder: nn.Module, path: Path) -> None:
    """Write ``encoder``'s state dict (detached CPU tensors) to ``path`` atomically."""
    state = {name: tensor.detach().cpu() for name, tensor in encoder.state_dict().items()}

    def write(file: IO[bytes]) -> None:
        torch.save(state, file)

    atomic_write(path, write)


def check_weights_file(path: str | Path) -> None:
    """Raise :class:`DataError` naming ``encoder.weights`` when ``path`` is not a file."""
    if not Path(path).is_file():
        raise DataError(f"{WEIGHTS_KEY}: no file at {path}")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict with ``torch.load(weights_only=True)`` (no code is run).

    Raises:
        DataError: no such file, not a PyTorch file, or not a mapping of names to tensors.
    """
    check_weights_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a foreign or damaged file
        first = (str(error).strip().splitlines() or [""])[0]
        raise DataError(
            f"{WEIGHTS_KEY}: cannot read {path} as PyTorch weights ({type(error).__name__}: {first})"
        ) from None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(f"{WEIGHTS_KEY}: {path} holds no state dict (a mapping of names to tensors)")
    return dict(state)


def _first(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN_KEYS])
    return shown + (f" and {len(names) - _SHOWN_KEYS} more" if len(names) > _SHOWN_KEYS else "")


def load_weights(encoder: nn.Module, path: str | Path) -> nn.Module:
    """Load the state dict at ``path`` into ``encoder``; keys and shapes must match exactly.

    Raises:
        DataError: unreadable file, or keys that do not match (the message names the first missing
            and unexpected keys) or a tensor of another shape.
    """
    state = read_state_dict(path)
    expected = encoder.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = [f"missing {_first(missing)}"] if missing else []
        parts += [f"unexpected {_first(unexpected)}"] if unexpected else []
        raise DataError(f"{WEIGHTS_KEY}: {path} does not fit the encoder: {'; '.join(parts)}")
    for name, tensor in expected.items():
        if state[name].shape != tensor.shape:
            raise DataError(
                f"{WEIGHTS_KEY}: {path} does not fit the encoder: {name} has shape {tuple(state[name].shape)}, "
                f"the encoder's is {tuple(tensor.shape)}"
            )
    encoder.load_state_dict(state)
    return encoder


def build_protocol_encoder(config: EncoderConfig, *, weights: bool = True) -> nn.Module:
    """The encoder of a protocol's ``encoder`` section, with ``encoder.weights`` loaded if given.

    A factory's encoder that returns ``[B, C, 1, 1]`` returns ``[B, C]`` (see
    :func:`~ceco_fair.models.encoders.flatten_pooled_output`).

    Args:
        config: the protocol's encoder section.
        weights: load ``config.weights`` (when set).

    Raises:
        CecoFairError: a factory that fails, or weights that do not fit.
    """
    encoder = build_encoder(
        config.arch,
        feature_dim=config.feature_dim,
        kernel_size=config.kernel_size,
        small_image_stem=config.small_image_stem,
        **dict(config.kwargs),
    )
    if config.arch not in ENCODERS:
        flatten_pooled_output(encoder, f"encoder.arch {config.arch!r}")
    if weights and config.weights is not None:
        load_weights(encoder, config.weights)
    return encoder


def load_encoder(run_dir: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    """The encoder a completed run trained, in eval mode, its weights loaded from ``encoder.pt``.

    The architecture comes from the ``encoder`` section of the protocol saved beside the runs
    (``<output>/protocol.yaml`` for ``run_dir = <output>/runs/<run_id>``) and nothing else: the
    loss, dataset and methods it names need not be importable where the encoder is loaded.

    Args:
        run_dir: the run's folder.
        device: where to put the module.

    Returns:
        The encoder: ``[B, 3, H, W] -> [B, D]`` (images normalised as the protocol's ``train.augment``).

    Raises:
        CecoFairError: no ``encoder.pt`` or saved protocol, an encoder factory that cannot be imported
            or raises (named, with the protocol file), or weights that do not fit.
    """
    run_dir = Path(run_dir)
    weights = run_dir / ENCODER_FILE
    protocol_file = run_dir.parent.parent / PROTOCOL_FILE
    if not weights.is_file():
        raise CecoFairError(f"{run_dir}: no {ENCODER_FILE} (only completed runs write one)")
    if not protocol_file.is_file():
        raise CecoFairError(f"{run_dir}: no {PROTOCOL_FILE} two folders up (expected <output>/runs/<run_id>/)")
    raw: Any = yaml.safe_load(protocol_file.read_text(encoding="utf-8"))
    section = raw.get("encoder") if isinstance(raw, Mapping) else None
    try:
        config = from_mapping(EncoderConfig, {k: v for k, v in (section or {}).items() if k != "weights"}, "encoder")
        encoder = build_protocol_encoder(config, weights=False)
    except CecoFairError as error:
        raise with_prefix(error, str(protocol_file)) from None
    load_weights(encoder, weights)
    return encoder.to(device).eval()
