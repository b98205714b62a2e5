"""The one device of a process, chosen once: ``auto`` picks CUDA when available."""

from __future__ import annotations

import torch

from ceco_fair.errors import CecoFairError


def choose_device(requested: torch.device | str | None = "auto", local_rank: int | None = None) -> torch.device:
    """The device that ``requested`` names.

    Args:
        requested: ``auto`` or None (CUDA when available, else the CPU), ``cpu``, ``cuda``, or any
            ``torch.device`` or device string (``cuda:1``), taken as it is.
        local_rank: the CUDA device index of this process under ``torchrun`` (``auto`` / ``cuda`` only).

    Raises:
        CecoFairError: ``cuda`` was requested and no CUDA device is available.
    """
    if isinstance(requested, torch.device):
        return requested
    if requested is None:
        requested = "auto"
    if requested == "cuda" and not torch.cuda.is_available():
        raise CecoFairError("device: cuda was requested but no CUDA device is available (use --device cpu)")
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if requested in ("auto", "cuda"):
        return torch.device("cuda", local_rank or 0)
    try:
        return torch.device(requested)
    except RuntimeError:
        raise CecoFairError(f"device: expected auto, cpu, cuda or a torch device string, got {requested!r}") from None
