"""What a run was made with: package versions, git revision, device, host and times."""

from __future__ import annotations

import platform
import socket
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

PACKAGES = (
    "ceco_fair",
    "torch",
    "torchvision",
    "numpy",
    "pandas",
    "scikit-learn",
    "fairlearn",
    "plotly",
    "pyyaml",
    "mlxtend",
)


def now() -> str:
    """The current UTC time in ISO 8601 with seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that shape the results (None if absent)."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _git(folder: Path, *args: str) -> str:
    """The stripped output of ``git ARGS`` run in ``folder``."""
    done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=5, check=True)
    return done.stdout.strip()


def git_revision(folder: Path | None = None) -> str | None:
    """The commit of the git checkout holding ``folder`` (the package by default), with ``+dirty``."""
    folder = folder or Path(__file__).resolve().parent
    try:
        revision = _git(folder, "rev-parse", "HEAD")
        dirty = _git(folder, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{revision}+dirty" if dirty else revision


def device_description(device: torch.device) -> str:
    """``cpu (N threads)`` or the CUDA device's name."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})"


def build_manifest(device: torch.device, **extra: Any) -> dict[str, Any]:
    """A manifest for a run or an audit started now."""
    return {
        "ceco_fair": package_versions()["ceco_fair"],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "git_revision": git_revision(),
        "device": device_description(device),
        "hostname": socket.gethostname(),
        "started": now(),
        "finished": None,
        **extra,
    }
