"""Deterministic runs: ``train.deterministic`` switches PyTorch to deterministic algorithms.

With it, two processes running one protocol on one machine write identical results, and a grid
killed at any point and resumed ends identical to an uninterrupted one (each epoch's order and
augmentation already come from generators seeded by ``(seed, epoch)``, the model initialisation and
the probe from the run's seed). The default (``null``) is on for CPU and off for CUDA, where
deterministic kernels cost speed; on CUDA, cuBLAS also needs ``CUBLAS_WORKSPACE_CONFIG`` set before
its first use, which :func:`prepare_environment` does.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import torch

logger = logging.getLogger(__name__)

CUBLAS_VARIABLE = "CUBLAS_WORKSPACE_CONFIG"
CUBLAS_SETTING = ":4096:8"


def effective(requested: bool | None, device: torch.device) -> bool:
    """Whether a run on ``device`` is deterministic: ``requested``, or by default on CPU only."""
    return device.type == "cpu" if requested is None else requested


def prepare_environment(requested: bool | None) -> None:
    """Set ``CUBLAS_WORKSPACE_CONFIG`` (unless set) when a deterministic run may use CUDA.

    Call it before CUDA is initialised: cuBLAS reads the variable when it first starts.
    """
    if requested and CUBLAS_VARIABLE not in os.environ:
        os.environ[CUBLAS_VARIABLE] = CUBLAS_SETTING


@contextlib.contextmanager
def deterministic_mode(enabled: bool, device: torch.device) -> Iterator[None]:
    """Run the block with PyTorch's deterministic algorithms on (or off), then restore the settings.

    Args:
        enabled: switch deterministic algorithms on (``torch.use_deterministic_algorithms(True)``,
            cuDNN without benchmarking).
        device: the run's device; on CUDA the cuBLAS workspace variable must be set (see
            :func:`prepare_environment`).
    """
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    if enabled and device.type == "cuda" and os.environ.get(CUBLAS_VARIABLE) is None:
        logger.warning(
            "%s is not set: cuBLAS may be non-deterministic (set %s=%s before starting)",
            CUBLAS_VARIABLE,
            CUBLAS_VARIABLE,
            CUBLAS_SETTING,
        )
    torch.use_deterministic_algorithms(enabled)
    if enabled:
        torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark = before[1]
