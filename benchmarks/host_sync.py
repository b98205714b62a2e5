"""Detecting host synchronisations on CUDA, shared by the benchmarks.

A host synchronisation (``.item()``, ``torch.unique``, a blocking copy, ``bincount``...) makes the
Python loop wait for the GPU to drain, so the next step's kernels cannot be queued in advance.
``torch.cuda.set_sync_debug_mode("error")`` turns each one into an exception.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def host_syncs(device: torch.device, step: Callable[[], object], repeats: int = 3) -> str:
    """Run ``step`` ``repeats`` times with host synchronisations made errors; describe the outcome.

    Args:
        device: the device ``step`` runs on; only CUDA can be checked.
        step: one unit of work (run once first, unchecked, to warm up lazy initialisation; on other
            devices only that run happens).
        repeats: checked runs.

    Returns:
        ``"none"``, the first synchronisation's error message, or why nothing was checked.
    """
    step()
    if device.type != "cuda":
        return "not checked (CUDA only)"
    torch.cuda.synchronize(device)
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(repeats):
            step()
    except RuntimeError as error:
        return f"FOUND: {str(error).splitlines()[0]}"
    finally:
        torch.cuda.set_sync_debug_mode(previous)
        torch.cuda.synchronize(device)
    return "none"
