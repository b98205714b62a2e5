"""One protocol's grid across processes: which runs a shard owns, and who trains each run.

``--shard K/N`` gives a process the runs at 0-based grid positions ``i`` with ``i mod N = K − 1``;
any number of shards, on one machine or many sharing a file system, write into one folder. Before
its first epoch, a run folder is claimed by creating ``claim.json`` exclusively: the claim's content
is written to a temporary file first and linked into place with ``os.link``, which fails when the
name exists (atomic on local file systems and NFS alike), so a claim is never seen half-written and
exactly one claimant wins. A second claimant skips the run. With ``--resume``, a claim is taken
over unless its holder is a live process on this host (a claim from another host is taken to be
left by a killed process, as ``--resume`` asserts); takeovers run under the folder's lock.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ceco_fair.common.io import atomic_write_json, locked
from ceco_fair.errors import CecoFairError
from ceco_fair.results.layout import CLAIM_FILE

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int = 1
    count: int = 1

    def owns(self, position: int) -> bool:
        """Whether the run at 0-based grid ``position`` belongs to this shard."""
        return position % self.count == self.index - 1

    def share(self, grid: Sequence[T]) -> list[tuple[int, T]]:
        """This shard's ``(0-based position, item)`` pairs of ``grid``, in grid order."""
        return [(position, item) for position, item in enumerate(grid) if self.owns(position)]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(position: int, count: int) -> Shard:
    """The shard of ``count`` that owns the run at 0-based grid ``position``."""
    return Shard(position % count + 1, count)


def parse_shard(text: str) -> Shard:
    """``K/N`` as a :class:`Shard`; a :class:`CecoFairError` naming ``--shard`` for anything else."""
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if match is None:
        raise CecoFairError(f"--shard: {text!r} is not K/N with whole numbers (e.g. 1/4)")
    index, count = int(match[1]), int(match[2])
    if count < 1:
        raise CecoFairError(f"--shard: {text!r}: N must be at least 1")
    if not 1 <= index <= count:
        raise CecoFairError(f"--shard: {text!r}: K must lie between 1 and N = {count}")
    return Shard(index, count)


def read_claim(run_folder: Path) -> dict[str, Any] | None:
    """The claim of a run folder (None when unclaimed; ``{}`` when unreadable)."""
    try:
        text = (run_folder / CLAIM_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        claim = json.loads(text)
    except ValueError:
        return {}
    return claim if isinstance(claim, dict) else {}


def describe_claim(claim: Mapping[str, Any] | None) -> str:
    """``shard 1/2 on host (pid 123)`` for log lines."""
    if not claim:
        return "an unknown process"
    return f"shard {claim.get('shard', '?')} on {claim.get('host', '?')} (pid {claim.get('pid', '?')})"


def holder_is_alive(claim: Mapping[str, Any]) -> bool:
    """Whether a claim's process still runs: a live process on this host other than this one."""
    pid = claim.get("pid")
    if claim.get("host") != socket.gethostname() or not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _create_exclusive(path: Path, claim: Mapping[str, Any]) -> bool:
    """Create ``path`` holding ``claim`` unless it exists; True when this call created it."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(dict(claim), file)
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(temporary)
    return True


def claim_run(run_folder: Path, claim: Mapping[str, Any], *, take_over: bool, lock: Path) -> bool:
    """Claim ``run_folder`` for this process before its first epoch.

    Args:
        run_folder: ``<output>/runs/<run_id>`` (created if absent).
        claim: What to record: shard, host, device, process id, time.
        take_over: ``--resume``: take over a claim whose holder is not a live process on this host.
        lock: The folder's lock file, held while a claim is taken over.

    Returns:
        True when this process is to train the run; False (with a log line) when another holds it.
    """
    run_folder.mkdir(parents=True, exist_ok=True)
    path = run_folder / CLAIM_FILE
    if _create_exclusive(path, claim):
        return True
    if take_over:
        with locked(lock):
            holder = read_claim(run_folder)
            if holder is None:
                return _create_exclusive(path, claim)
            if not holder_is_alive(holder):
                atomic_write_json(path, claim)
                logger.info("%s: took over the claim of %s", run_folder.name, describe_claim(holder))
                return True
    logger.warning("%s: claimed by %s; skipped", run_folder.name, describe_claim(read_claim(run_folder)))
    return False
