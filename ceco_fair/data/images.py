"""Image decoding and resizing shared by the datasets that read image files.

:class:`FileImageDataset` is the common body of the face datasets (UTKFace, CelebA): a list of
files with one integer target and one integer sensitive group each, decoded lazily with
``torchvision.io`` and resized with ``torchvision.transforms.v2.functional.resize``. Given a
``cache_dir``, every image is decoded once into a memory-mapped array there
(:mod:`ceco_fair.data.image_cache`) and read from it, pixel for pixel the same, as ``images``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.io import ImageReadMode, decode_image, read_file
from torchvision.transforms.v2 import functional as tvf

from ceco_fair.common.progress import progress_bar
from ceco_fair.data.image_cache import CachedImages, ImageCache
from ceco_fair.errors import CecoFairError, DataError

logger = logging.getLogger(__name__)

IMAGE_DECODE_FAILED = "cannot decode image file {path}: {reason}"
IMAGE_DECODE_HINT = " (build the dataset with preflight=True or call .verify() to drop such files)"
BAD_IMAGE_SIZE = "image_size must be a positive integer, got {value!r}"
BAD_CROP = "crop must be None, a positive integer or a (height, width) pair, got {value!r}"
CROP_TOO_LARGE = "crop {crop} is larger than image {path} of size {height}x{width}"

Crop = int | tuple[int, int]
DatasetItem = tuple[Tensor, int, int]


def check_image_size(image_size: int) -> int:
    """Validate an output side length.

    Args:
        image_size: Side of the square output image in pixels.

    Returns:
        The same value.

    Raises:
        CecoFairError: If it is not a positive integer.

    """
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise CecoFairError(BAD_IMAGE_SIZE.format(value=image_size))
    return image_size


def check_crop(crop: Crop | Sequence[int] | None) -> tuple[int, int] | None:
    """Normalise a centre-crop size to ``(height, width)``.

    Args:
        crop: ``None`` (no crop), a side length, or a ``(height, width)`` pair, in pixels of the
            decoded image.

    Returns:
        ``None`` or the ``(height, width)`` pair.

    Raises:
        CecoFairError: If the value is not one of these forms or not positive.

    """
    if crop is None:
        return None
    values = (crop, crop) if isinstance(crop, int) else tuple(crop)
    if len(values) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        raise CecoFairError(BAD_CROP.format(value=crop))
    return int(values[0]), int(values[1])


def decode_rgb(path: Path) -> Tensor:
    """Decode an image file into an RGB tensor.

    Args:
        path: A JPEG, PNG, WebP or GIF file.

    Returns:
        ``uint8`` tensor of shape ``[3, H, W]``.

    Raises:
        DataError: If the file cannot be read or decoded; the message names the file.

    """
    try:
        encoded = read_file(str(path))
        image: Tensor = decode_image(encoded, mode=ImageReadMode.RGB)
    except (RuntimeError, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DataError(IMAGE_DECODE_FAILED.format(path=path, reason=reason)) from exc
    return image


def fit_image(image: Tensor, image_size: int, crop: tuple[int, int] | None = None, path: Path | None = None) -> Tensor:
    """Centre-crop (optionally) and resize an image to a square.

    Args:
        image: ``uint8`` tensor ``[3, H, W]``.
        image_size: Output side length ``S``.
        crop: Optional ``(height, width)`` centre crop applied before resizing.
        path: File the image came from, named in errors.

    Returns:
        ``uint8`` tensor ``[3, S, S]`` (bilinear resize with antialiasing).

    Raises:
        DataError: If the crop is larger than the image.

    """
    if crop is not None:
        height, width = int(image.shape[-2]), int(image.shape[-1])
        if crop[0] > height or crop[1] > width:
            raise DataError(CROP_TOO_LARGE.format(crop=crop, path=path, height=height, width=width))
        image = tvf.center_crop(image, [crop[0], crop[1]])
    if image.shape[-2:] != (image_size, image_size):
        image = tvf.resize(image, [image_size, image_size], antialias=True)
    return image


def read_image(path: Path, image_size: int, crop: tuple[int, int] | None) -> Tensor:
    """Decode one file and fit it to ``image_size`` (see :func:`decode_rgb` and :func:`fit_image`).

    Returns:
        ``uint8`` tensor ``[3, S, S]``.

    Raises:
        DataError: If the file cannot be decoded or is smaller than the crop.

    """
    return fit_image(decode_rgb(path), image_size, crop, path)


def find_undecodable(paths: Sequence[Path], description: str) -> list[tuple[Path, str]]:
    """Decode every file once and list those that fail.

    Args:
        paths: Image files to try.
        description: Label of the progress bar.

    Returns:
        ``(path, reason)`` for every file that could not be decoded, in input order.

    """
    failures: list[tuple[Path, str]] = []
    for path in progress_bar(paths, desc=description, unit="img", leave=False):
        try:
            decode_rgb(path)
        except DataError as exc:
            failures.append((path, str(exc)))
    return failures


def rows_of(files: Sequence[Path], covered: Sequence[Path]) -> Tensor:
    """Positions ``[len(files)]`` of each of ``files`` in ``covered``.

    Raises:
        ValueError: If a file is not in ``covered``.

    """
    position = {path: row for row, path in enumerate(covered)}
    absent = [str(path) for path in files if path not in position]
    if absent:
        raise ValueError(f"cache_files lacks {len(absent)} of the dataset's files, e.g. {absent[0]}")
    return torch.as_tensor([position[path] for path in files], dtype=torch.long)


class FileImageDataset(Dataset[DatasetItem]):
    """Images stored as files, each with a target class and a sensitive group.

    Items are ``(image, target, sensitive)`` with ``image`` a ``uint8`` tensor
    ``[3, image_size, image_size]``, decoded when the item is read.

    Attributes:
        files: Image paths, one per sample.
        targets: ``int64`` tensor ``[n]`` of target classes in ``[0, n_classes)``.
        sensitive: ``int64`` tensor ``[n]`` of sensitive groups in ``[0, n_groups)``.
        bias: The same tensor as ``sensitive``.
        attributes: One row per sample with the raw attributes of the source annotations.
        skipped: ``(file name, reason)`` for every file left out (malformed name, missing or
            undecodable file).
        image_size: Output side length.
        crop: Optional ``(height, width)`` centre crop applied before resizing.
        cache_dir: Folder of the decoded-image cache, or ``None`` to decode on every read.

    Args:
        files: Image paths, one per sample.
        targets: ``[n]`` target classes.
        sensitive: ``[n]`` sensitive groups.
        attributes: ``n`` rows of raw attributes.
        image_size: Output side length.
        crop: Optional ``(height, width)`` centre crop.
        skipped: Files already left out, ``(file name, reason)``.
        cache_dir: Decode every image once into a cache in this folder (built here if absent,
            shared by every process that reads the same files at the same size) and read from
            it; ``None`` decodes on every read.
        cache_files: The files the cache holds, every one of ``files`` among them (default:
            ``files``). Datasets drawn from one folder in several ways (UTKFace's splits, which
            change with the seed and the attributes) then share one cache of the whole folder.

    Raises:
        DataError: If ``cache_dir`` is not writable or lacks room for a needed build (the
            message names the folder and the size), or a file cannot be examined.
        ValueError: If ``cache_files`` lacks one of ``files``.

    """

    n_classes: int
    n_groups: int
    class_names: list[str]
    group_names: list[str]

    def __init__(
        self,
        files: Sequence[Path],
        targets: npt.NDArray[np.int64],
        sensitive: npt.NDArray[np.int64],
        attributes: pd.DataFrame,
        *,
        image_size: int,
        crop: tuple[int, int] | None,
        skipped: list[tuple[str, str]],
        cache_dir: str | os.PathLike[str] | None = None,
        cache_files: Sequence[Path] | None = None,
    ) -> None:
        self.files: list[Path] = list(files)
        self.targets = torch.as_tensor(np.asarray(targets, dtype=np.int64))
        self.sensitive = torch.as_tensor(np.asarray(sensitive, dtype=np.int64))
        self.bias = self.sensitive
        self.attributes = attributes.reset_index(drop=True)
        self.image_size = image_size
        self.crop = crop
        self.skipped = skipped
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        self._cache: CachedImages | None = None
        self._rows = torch.arange(len(self.files))
        self._images: Tensor | None = None
        if self.cache_dir is not None:
            covered = self.files if cache_files is None else list(cache_files)
            if cache_files is not None:
                self._rows = rows_of(self.files, covered)
            cache = ImageCache(self.cache_dir, covered, image_size, crop)
            self._cache = cache.open(self._read, description=f"caching {type(self).__name__} images")

    def _read(self, path: Path) -> Tensor:
        return read_image(path, self.image_size, self.crop)

    @property
    def images(self) -> Tensor | None:
        """All images as ``uint8 [n, 3, S, S]`` from the cache (``None`` without ``cache_dir``).

        The cache's memory map itself when the dataset uses all of it, else a copy of its rows.

        Raises:
            DataError: If an image of the dataset could not be decoded when the cache was built.

        """
        if self._cache is None:
            return None
        if self._images is None:
            for row in self._rows.tolist():
                self._check_row(row)
            whole = len(self._rows) == len(self._cache.array) and bool(
                torch.equal(self._rows, torch.arange(len(self._rows)))
            )
            self._images = self._cache.array if whole else self._cache.array[self._rows]
        return self._images

    def _check_row(self, row: int) -> None:
        assert self._cache is not None
        if row in self._cache.failures:
            raise DataError(self._cache.failures[row] + IMAGE_DECODE_HINT)

    def __len__(self) -> int:
        """Return the number of usable samples."""
        return len(self.files)

    def __getitem__(self, index: int) -> DatasetItem:
        """Decode one sample.

        Args:
            index: Position in ``[0, len(self))``.

        Returns:
            ``(image uint8 [3, S, S], target, sensitive)``.

        Raises:
            DataError: If the file cannot be decoded.

        """
        if self._cache is not None:
            row = int(self._rows[index])
            self._check_row(row)
            image = self._cache.array[row].clone()
        else:
            path = self.files[index]
            try:
                image = decode_rgb(path)
            except DataError as exc:
                raise DataError(str(exc) + IMAGE_DECODE_HINT) from exc
            image = fit_image(image, self.image_size, self.crop, path)
        return image, int(self.targets[index]), int(self.sensitive[index])

    def keep(self, mask: npt.NDArray[np.bool_]) -> None:
        """Keep only the samples where ``mask`` is true.

        Args:
            mask: Boolean array ``[len(self)]``.

        """
        positions = np.flatnonzero(mask)
        index = torch.as_tensor(positions, dtype=torch.long)
        self.files = [self.files[i] for i in positions]
        self.targets = self.targets[index]
        self.sensitive = self.sensitive[index]
        self.bias = self.sensitive
        self.attributes = self.attributes.iloc[positions].reset_index(drop=True)
        self._rows = self._rows[index]
        self._images = None

    def verify(self) -> list[tuple[str, str]]:
        """Decode every image once and drop those that fail.

        Failures are logged, appended to :attr:`skipped` and removed from the dataset. With a
        cache, its build has decoded every image already: nothing is decoded again.

        Returns:
            ``(file name, reason)`` for each dropped file.

        """
        if self._cache is not None:
            known = self._cache.failures
            rows = self._rows.tolist()
            failures = [(path, known[row]) for path, row in zip(self.files, rows, strict=True) if row in known]
        else:
            failures = find_undecodable(self.files, f"verifying {type(self).__name__} images")
        if not failures:
            return []
        failed = {path for path, _ in failures}
        self.keep(np.array([path not in failed for path in self.files], dtype=bool))
        dropped = [(path.name, reason) for path, reason in failures]
        for name, reason in dropped:
            logger.warning("skipping %s: %s", name, reason)
        self.skipped.extend(dropped)
        return dropped
