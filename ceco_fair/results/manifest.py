"""What a run was made with: package versions, git revision, device, host and times.

Torch-free at import, as all of :mod:`ceco_fair.results`: the functions that describe a torch device
import torch when called (only a process that trains or audits calls them).

A folder that several processes (``--shard``) write into holds one ``manifest.json``: the facts of
the process that wrote it last, the earliest start, ``finished`` once every run of the grid is done,
and under ``shards`` one entry per shard (host, device, processes, start, end, resumed).
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ceco_fair.common.io import atomic_write_json, locked
from ceco_fair.results.layout import LOCK_FILE, MANIFEST_FILE, RUN_ORIGIN_COLUMNS

if TYPE_CHECKING:  # the device is a torch one, but this module (as all of results/) imports no torch
    import torch

SHARD_FACTS = ("hostname", "device", "world_size", "resumed", "started", "finished")
"""The facts of one process kept under the manifest's ``shards``."""

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


def processor_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what :mod:`platform` knows.

    CPU kernels differ between processors, so bit-identical reruns hold per processor model: the
    manifest records it beside the torch thread count.
    """
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Processor") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_description(device: torch.device) -> str:
    """``cpu (N threads, model)`` or the CUDA device's name (torch is imported here, by the process that has it)."""
    import torch

    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu ({torch.get_num_threads()} threads, {processor_model()})"


def build_manifest(device: torch.device, **extra: Any) -> dict[str, Any]:
    """A manifest for a run or an audit started now (torch is imported here, by the process that has it)."""
    import torch

    return {
        "ceco_fair": package_versions()["ceco_fair"],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "git_revision": git_revision(),
        "device": device_description(device),
        "processor": processor_model(),
        "torch_threads": torch.get_num_threads(),
        "hostname": socket.gethostname(),
        "started": now(),
        "finished": None,
        **extra,
    }


def run_origin(shard: str, device: torch.device) -> dict[str, str]:
    """Where a run is trained (:data:`~ceco_fair.results.layout.RUN_ORIGIN_COLUMNS`): shard, host, device.

    On CUDA the device names ``CUDA_VISIBLE_DEVICES`` when it is set (one shard per GPU).
    """
    described = device_description(device)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if device.type == "cuda" and visible:
        described += f" (CUDA_VISIBLE_DEVICES={visible})"
    return dict(zip(RUN_ORIGIN_COLUMNS, (shard, socket.gethostname(), described), strict=True))


def merge_manifest(
    previous: dict[str, Any] | None, current: dict[str, Any], shard: str, *, finished: str | None
) -> dict[str, Any]:
    """The folder's manifest once this process's ``current`` joins what ``previous`` recorded.

    Args:
        previous: The manifest in the folder (None when there is none).
        current: This process's manifest (:func:`build_manifest`; its ``finished`` is this process's end).
        shard: This process's shard, ``K/N``.
        finished: When the whole grid was done (None while runs are missing).

    Returns:
        ``current``'s facts with the earliest ``started``, ``finished`` and ``shards``: every shard's
        :data:`SHARD_FACTS`, this one's replaced.
    """
    previous = previous or {}
    shards = dict(previous.get("shards") or {})
    shards[shard] = {key: current.get(key) for key in SHARD_FACTS}
    started = min(str(value) for value in (previous.get("started"), current["started"]) if value)
    return {**current, "started": started, "finished": finished, "shards": shards}


def update_manifest(folder: Path, current: dict[str, Any], shard: str, *, finished: str | None) -> None:
    """Merge ``current`` into ``folder/manifest.json`` under the folder's lock (see :func:`merge_manifest`)."""
    path = folder / MANIFEST_FILE
    with locked(folder / LOCK_FILE):
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = None
        merged = merge_manifest(previous if isinstance(previous, dict) else None, current, shard, finished=finished)
        atomic_write_json(path, merged)
