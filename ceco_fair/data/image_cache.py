"""A decoded-image cache: each image of a file list decoded and resized once into one array on disk.

The cache of a file list is two files in the cache folder: ``images-<key>.npy``, a NumPy array
``uint8 [N, 3, S, S]`` read memory-mapped, and ``images-<key>.json``, what it holds and which files
could not be decoded. ``<key>`` hashes everything that decides the pixels: the format version,
``image_size``, the crop, and every file's absolute path, size and modification time (ns), in
order; a changed, added or removed file gives another key, so a cache is never stale.

A build writes the array to a temporary file renamed into place, then the ``.json`` (whose
presence marks the cache complete): a killed build leaves no cache that is read. Builds run under a
lock per key, so concurrent processes (shards of one grid, several protocols) build a cache once
and share it. Its size is logged, and checked against the free disk space, before it is built. A
cache file that is truncated, foreign or from another version is rebuilt with one log line.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ceco_fair.common.io import atomic_write, atomic_write_json, locked
from ceco_fair.common.progress import progress_bar
from ceco_fair.errors import DataError

logger = logging.getLogger(__name__)

CACHE_VERSION: Final = 1
"""Format version, part of the key and of the ``.json``: a new layout never reads an old file."""
PREFIX: Final = "images-"
ARRAY_SUFFIX: Final = ".npy"
META_SUFFIX: Final = ".json"
LOCK_SUFFIX: Final = ".build-lock"
BUILD_BATCH: Final = 64
MIN_FILES_PER_WORKER: Final = 512
MAX_WORKERS: Final = 8

UNWRITABLE = (
    "image cache folder {folder} is not writable ({reason}); the cache needs {size} there "
    "(make it writable or set data.cache_dir to another folder)"
)
NO_ROOM = (
    "image cache folder {folder} has {free} free, the cache needs {size} "
    "(free some space or set data.cache_dir to another folder)"
)
FILE_MISSING = "cannot read image file {path} for the image cache: {reason}"

Load = Callable[[Path], Tensor]
"""Reads one file into ``uint8 [3, S, S]``; raises :class:`DataError` if it cannot."""
Crop = tuple[int, int] | None


@dataclass(frozen=True)
class CachedImages:
    """An opened cache.

    Attributes:
        array: ``uint8 [N, 3, S, S]``, memory-mapped copy-on-write (writes stay in memory).
        failures: Row -> why that file could not be decoded (its row holds zeros).
        path: The ``.npy`` file.

    """

    array: Tensor
    failures: dict[int, str]
    path: Path


def format_bytes(size: int) -> str:
    """``size`` in B, KB, MB, GB or TB (powers of 1000), e.g. ``"2.46 GB"``."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1000
    return f"{value:.2f} TB"


def header_bytes(shape: tuple[int, ...]) -> bytes:
    """The ``.npy`` header (format 1.0) of a C-ordered ``uint8`` array of ``shape``."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|u1", "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def cache_bytes(n_images: int, image_size: int) -> int:
    """Size on disk of the cache of ``n_images`` images of side ``image_size`` (header included)."""
    shape = (n_images, 3, image_size, image_size)
    return len(header_bytes(shape)) + n_images * 3 * image_size * image_size


def cache_key(files: Sequence[Path], image_size: int, crop: Crop) -> str:
    """Hash of what decides the cached pixels: version, size, crop, each file's path, size and mtime.

    Args:
        files: The image files, in dataset order.
        image_size: Output side ``S``.
        crop: Optional ``(height, width)`` centre crop before resizing.

    Returns:
        32 hexadecimal digits.

    Raises:
        DataError: If a file cannot be examined (missing, unreadable).

    """
    digest = hashlib.sha256(json.dumps([CACHE_VERSION, image_size, crop]).encode())
    for path in files:
        try:
            stat = os.stat(path)
        except OSError as exc:
            raise DataError(FILE_MISSING.format(path=path, reason=exc.strerror or type(exc).__name__)) from exc
        digest.update(f"{os.path.abspath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


class _Decoded(Dataset[tuple[Tensor, str]]):
    """Each file decoded by ``load``; a file that fails gives zeros and the reason."""

    def __init__(self, files: Sequence[Path], load: Load, image_size: int) -> None:
        self.files = list(files)
        self.load = load
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Tensor, str]:
        try:
            return self.load(self.files[index]).contiguous(), ""
        except DataError as exc:
            return torch.zeros(3, self.image_size, self.image_size, dtype=torch.uint8), str(exc)


def default_workers(n_files: int) -> int:
    """Decoding processes for a build: none for small lists, else one per core (at most 8)."""
    if n_files < MIN_FILES_PER_WORKER:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(0, min(MAX_WORKERS, cores, n_files // MIN_FILES_PER_WORKER))


class ImageCache:
    """The cache of one file list in one folder (see the module docstring).

    Args:
        folder: The cache folder (created when a build needs it).
        files: The image files, in dataset order.
        image_size: Output side ``S``.
        crop: Optional ``(height, width)`` centre crop before resizing.

    Raises:
        DataError: If a file cannot be examined.

    """

    def __init__(self, folder: Path, files: Sequence[Path], image_size: int, crop: Crop) -> None:
        self.folder = folder
        self.files = list(files)
        self.image_size = image_size
        self.crop = crop
        self.key = cache_key(self.files, image_size, crop)
        self.shape = (len(self.files), 3, image_size, image_size)
        self.size = cache_bytes(len(self.files), image_size)
        self.array_path = folder / f"{PREFIX}{self.key}{ARRAY_SUFFIX}"
        self.meta_path = folder / f"{PREFIX}{self.key}{META_SUFFIX}"
        self.lock_path = folder / f".{PREFIX}{self.key}{LOCK_SUFFIX}"

    def open(self, load: Load, *, workers: int | None = None, description: str = "image cache") -> CachedImages:
        """Open the cache, building it first if it is absent or unusable.

        Args:
            load: Reads one file into ``uint8 [3, S, S]`` (the uncached path's pixels).
            workers: Decoding processes for a build (default :func:`default_workers`).
            description: Label of the build's progress bar.

        Returns:
            The opened cache.

        Raises:
            DataError: If the folder is not writable or lacks room for a needed build; the
                message names the folder and the size needed.

        """
        cached, _ = self.read()
        if cached is not None:
            logger.info(
                "image cache: reading %d images of %d px from %s", len(self.files), self.image_size, cached.path
            )
            return cached
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with locked(self.lock_path):
                cached, problem = self.read()
                if cached is not None:
                    logger.info("image cache %s: built by another process", self.array_path.name)
                    return cached
                if problem is not None:
                    logger.warning("image cache %s: %s; rebuilding", self.array_path, problem)
                chosen = default_workers(len(self.files)) if workers is None else workers
                self.build(load, workers=chosen, description=description)
        except OSError as exc:
            size = format_bytes(self.size)
            if exc.errno == errno.ENOSPC:
                free = format_bytes(shutil.disk_usage(self.folder).free)
                raise DataError(NO_ROOM.format(folder=self.folder, free=free, size=size)) from exc
            reason = exc.strerror or type(exc).__name__
            raise DataError(UNWRITABLE.format(folder=self.folder, reason=reason, size=size)) from exc
        cached, problem = self.read()
        if cached is None:
            raise DataError(f"image cache {self.array_path}: unreadable right after it was built ({problem})")
        return cached

    def read(self) -> tuple[CachedImages | None, str | None]:
        """Open a complete cache without building.

        Returns:
            ``(cache, None)`` if it is usable; ``(None, None)`` if absent; ``(None, why)`` if a
            file is there but unusable (truncated, foreign, another version).

        """
        if not self.meta_path.exists():
            return None, ("the array has no description file" if self.array_path.exists() else None)
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
            failures = {int(row): str(reason) for row, reason in meta["failures"].items()}
            if meta.get("version") != CACHE_VERSION:
                return None, f"written by format version {meta.get('version')!r}, this is {CACHE_VERSION}"
            expected = {"key": self.key, "shape": list(self.shape)}
            found = {"key": meta.get("key"), "shape": meta.get("shape")}
            if found != expected:
                return None, f"its description says {found}, expected {expected}"
            array = np.load(self.array_path, mmap_mode="c")
            actual = self.array_path.stat().st_size
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            return None, f"unreadable ({type(exc).__name__}: {str(exc).strip()[:200]})"
        if array.shape != self.shape or array.dtype != np.uint8 or actual != self.size:
            found_array = f"{array.dtype} {array.shape} in {actual} bytes"
            return None, f"holds {found_array}, expected uint8 {self.shape} in {self.size} bytes"
        return CachedImages(torch.from_numpy(array), failures, self.array_path), None

    def build(self, load: Load, *, workers: int, description: str) -> None:
        """Decode every file and write the cache (call under :attr:`lock_path`).

        Raises:
            DataError: If the folder lacks room for the cache.
            OSError: If the folder cannot be written.

        """
        for stale in self.folder.glob(f".{self.array_path.name}.*.tmp"):
            stale.unlink(missing_ok=True)  # a killed build's leftover; this process holds the key's lock
        self.meta_path.unlink(missing_ok=True)
        self.array_path.unlink(missing_ok=True)  # an unusable one; a reader that mapped it keeps its pages
        free = shutil.disk_usage(self.folder).free
        if free < self.size:
            raise DataError(NO_ROOM.format(folder=self.folder, free=format_bytes(free), size=format_bytes(self.size)))
        logger.info(
            "image cache: decoding %d images into %s (%s, %dx%d px, %d workers)",
            len(self.files),
            self.array_path,
            format_bytes(self.size),
            self.image_size,
            self.image_size,
            workers,
        )
        failures: dict[int, str] = {}

        def write(file: IO[bytes]) -> None:
            file.write(header_bytes(self.shape))
            loader = DataLoader(
                _Decoded(self.files, load, self.image_size),
                batch_size=BUILD_BATCH,
                num_workers=workers,
                generator=torch.Generator(),
            )
            row = 0
            for images, reasons in progress_bar(loader, desc=description, unit="batch", leave=False):
                file.write(images.numpy().tobytes())
                failures.update({row + i: reason for i, reason in enumerate(reasons) if reason})
                row += len(reasons)

        atomic_write(self.array_path, write)
        atomic_write_json(
            self.meta_path,
            {
                "version": CACHE_VERSION,
                "key": self.key,
                "shape": list(self.shape),
                "image_size": self.image_size,
                "crop": list(self.crop) if self.crop is not None else None,
                "first_file": str(self.files[0]) if self.files else None,
                "failures": {str(row): reason for row, reason in failures.items()},
            },
        )
        if failures:
            logger.warning("image cache %s: %d files could not be decoded", self.array_path.name, len(failures))
