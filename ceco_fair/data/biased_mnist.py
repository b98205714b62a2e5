"""Colour-biased MNIST: BiasedMNIST (ReBias, ten colours) and ColoredMNIST (two colours).

Digit pixels (value > 0) become white, background pixels the sample's colour. The colour
correlates with the label by ρ.

BiasedMNIST, the rule of ReBias (Bahng et al., ICML 2020): per digit class ``c``, the class's
samples are shuffled; the first ``⌊n_c·ρ⌋`` get colour ``c``; the rest are cut into chunks of
``⌈rest/9⌉`` samples, coloured with the other nine colours ``(c+1 … c+9) mod 10``. ReBias takes
these nine colours in a shuffled order (``conflict_order="shuffled"``, the default); with
``"sequential"`` chunk ``j`` gets colour ``(c+1+j) mod 10``. Either way, when ``rest`` is not a
multiple of 9 the last chunks are short or empty.

``⌊n·ρ⌋`` is computed on the decimal value of ρ as written (``⌊100 · 0.29⌋ = 29``), where plain
floating point would give 28.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final, Literal

import numpy as np
import numpy.typing as npt
import torch
from sklearn.model_selection import train_test_split
from torch import Tensor
from torch.utils.data import Dataset

from ceco_fair.data.base import Split, check_seed, check_split, floor_share, split_code
from ceco_fair.data.mnist_sources import MnistSource, load_mnist, normalise_source, preflight_mnist_source
from ceco_fair.errors import CecoFairError
from ceco_fair.metrics.specs import MetricKind

logger = logging.getLogger(__name__)

ConflictOrder = Literal["shuffled", "sequential"]

PALETTE: Final[tuple[tuple[int, int, int], ...]] = (
    (255, 0, 0),
    (0, 255, 0),
    (0, 0, 255),
    (225, 225, 0),
    (225, 0, 225),
    (0, 255, 255),
    (255, 128, 0),
    (255, 0, 128),
    (128, 0, 255),
    (128, 128, 128),
)
COLOUR_NAMES: Final = (
    "red",
    "green",
    "blue",
    "yellow",
    "magenta",
    "cyan",
    "orange",
    "pink",
    "purple",
    "grey",
)
BINARY_PALETTE: Final[tuple[tuple[int, int, int], ...]] = ((255, 0, 0), (0, 255, 0))
DIGIT_COLOUR: Final = 255

BAD_RHO = "rho must be a number in [0, 1], got {value!r}"
BAD_VAL_FRACTION = "val_fraction must be a number in [0, 1), got {value!r}"
VALID_NEEDS_FRACTION = "split 'valid' needs val_fraction > 0 (a part carved from train), got 0"
BAD_CONFLICT_ORDER = "conflict_order must be 'shuffled' or 'sequential', got {value!r}"


def rebias_colours(
    labels: npt.NDArray[np.int64],
    rho: float,
    rng: np.random.Generator,
    *,
    n_colours: int = 10,
    conflict_order: ConflictOrder = "shuffled",
) -> npt.NDArray[np.int64]:
    """Assign a colour to every sample by the ReBias rule (see the module docstring).

    Args:
        labels: ``[n]`` class labels in ``[0, n_colours)``.
        rho: Fraction of each class given its own colour.
        rng: Source of the shuffles.
        n_colours: Number of classes and colours.
        conflict_order: Order of the other colours over the chunks: ``"shuffled"`` (ReBias) or
            ``"sequential"`` (``c+1, c+2, …``).

    Returns:
        ``[n]`` colour indices.

    """
    colours = np.empty(len(labels), dtype=np.int64)
    n_others = n_colours - 1
    for label in range(n_colours):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_aligned = floor_share(len(members), rho)
        colours[members[:n_aligned]] = label
        others = (label + 1 + np.arange(n_others)) % n_colours
        if conflict_order == "shuffled":
            rng.shuffle(others)
        rest = members[n_aligned:]
        if rest.size:
            chunk = math.ceil(rest.size / n_others)
            colours[rest] = others[np.arange(rest.size) // chunk]
    return colours


def binary_colours(targets: npt.NDArray[np.int64], rho: float, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """Assign one of two colours per sample, correlated with a binary target by ``rho``.

    Per target class ``t``: shuffle its samples; the first ``⌊n_t·ρ⌋`` get colour ``t``, the
    rest colour ``1 − t``.

    Args:
        targets: ``[n]`` binary targets.
        rho: Fraction of each class given its own colour.
        rng: Source of the shuffles.

    Returns:
        ``[n]`` colour indices in ``{0, 1}``.

    """
    colours = np.empty(len(targets), dtype=np.int64)
    for target in (0, 1):
        members = rng.permutation(np.flatnonzero(targets == target))
        n_aligned = floor_share(len(members), rho)
        colours[members[:n_aligned]] = target
        colours[members[n_aligned:]] = 1 - target
    return colours


def colourise(digits: Tensor, colours: Tensor, palette: Tensor) -> Tensor:
    """Paint digits white on a coloured background.

    Args:
        digits: ``uint8`` tensor ``[n, H, W]``; pixels ``> 0`` belong to the digit.
        colours: ``int64`` tensor ``[n]`` of palette indices.
        palette: ``uint8`` tensor ``[k, 3]`` of RGB colours.

    Returns:
        ``uint8`` tensor ``[n, 3, H, W]``: ``(255, 255, 255)`` on digit pixels, the sample's
        palette colour elsewhere.

    """
    foreground = (digits > 0).unsqueeze(1)
    background = palette.to(torch.uint8)[colours][:, :, None, None]
    white = torch.tensor(DIGIT_COLOUR, dtype=torch.uint8)
    return torch.where(foreground, white, background).contiguous()


def _check_arguments(split: str, rho: float | None, seed: int, val_fraction: float) -> None:
    check_split(split)
    if rho is not None and (isinstance(rho, bool) or not isinstance(rho, int | float) or not 0.0 <= rho <= 1.0):
        raise CecoFairError(BAD_RHO.format(value=rho))
    check_seed(seed)
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, int | float) or not 0.0 <= val_fraction < 1.0:
        raise CecoFairError(BAD_VAL_FRACTION.format(value=val_fraction))
    if split == "valid" and val_fraction == 0:
        raise CecoFairError(VALID_NEEDS_FRACTION)


def select_digits(
    source: MnistSource, split: str, seed: int, val_fraction: float
) -> tuple[Tensor, Tensor, npt.NDArray[np.int64]]:
    """Take the digits of one split, carving a stratified validation part from train.

    Args:
        source: An MNIST source (see :mod:`ceco_fair.data.mnist_sources`).
        split: ``"train"``, ``"valid"`` or ``"test"``.
        seed: Seed of the validation carve-out.
        val_fraction: Share of the source's train digits that form ``"valid"`` (0: none).

    Returns:
        ``(digits uint8 [n, 28, 28], labels int64 [n], rows [n])`` where ``rows`` index the
        source's train or test split.

    """
    images, labels = load_mnist(source).split("test" if split == "test" else "train")
    rows = np.arange(len(labels), dtype=np.int64)
    if split != "test" and val_fraction > 0:
        train_rows, valid_rows = train_test_split(
            rows, test_size=val_fraction, stratify=labels.numpy(), random_state=seed
        )
        rows = np.sort(valid_rows if split == "valid" else train_rows)
    index = torch.from_numpy(rows)
    return images[index], labels[index], rows


def split_rng(seed: int, split: str) -> np.random.Generator:
    """Return the generator of one (seed, split) pair.

    Args:
        seed: Run seed.
        split: ``"train"``, ``"valid"`` or ``"test"``.

    Returns:
        A generator seeded from ``(seed, split)``.

    """
    return np.random.default_rng([seed, split_code(split)])


_MNIST_SPLIT_OF: Final = {"train": "train", "valid": "train", "test": "test"}


class ColouredDigits(Dataset[tuple[Tensor, int, int]]):
    """Coloured digits held in memory; items are ``(image uint8 [3, 28, 28], target, group)``.

    Attributes:
        images: ``uint8`` tensor ``[n, 3, 28, 28]``.
        targets: ``int64`` tensor ``[n]``.
        bias: ``int64`` tensor ``[n]`` of colour indices.
        sensitive: The same tensor as ``bias``.
        digits: ``int64`` tensor ``[n]`` of the original digit labels.
        source_rows: ``[n]`` row of each sample in the source's train or test split.
        palette: ``uint8`` tensor ``[k, 3]`` of the background colours.
        split: The split name.
        rho: The ρ used for this split.
        seed: The seed.

    """

    metric_kind: ClassVar[MetricKind]
    takes_rho: ClassVar[bool] = True
    validation_labels: ClassVar[str] = "groups"
    n_classes: int
    n_groups: int
    class_names: list[str]
    group_names: list[str]
    target_name: str
    sensitive_name: str = "background colour"

    @classmethod
    def preflight(cls, options: Mapping[str, Any], splits: Sequence[str]) -> None:
        """Check that the MNIST source's IDX files for ``splits`` exist and are complete (no decoding)."""
        needed = sorted({_MNIST_SPLIT_OF.get(split, split) for split in splits})
        preflight_mnist_source(options["source"], needed)

    def __init__(
        self,
        digits: Tensor,
        labels: Tensor,
        targets: Tensor,
        colours: Tensor,
        palette: Tensor,
        *,
        rows: npt.NDArray[np.int64],
        split: str,
        rho: float,
        seed: int,
    ) -> None:
        self.images = colourise(digits, colours, palette)
        self.palette = palette
        self._digit_pixels = digits
        self.group_colours = [f"rgb({r},{g},{b})" for r, g, b in palette.tolist()]
        self.targets = targets
        self.bias = colours
        self.sensitive = self.bias
        self.digits = labels
        self.source_rows = rows
        self.split = split
        self.rho = rho
        self.seed = seed

    @property
    def aligned(self) -> Tensor:
        """Return the mask ``[n]`` of bias-aligned samples (colour index equals target)."""
        return self.targets == self.bias

    @property
    def n_colours(self) -> int:
        """Return the number of background colours (the palette's size)."""
        return int(self.palette.shape[0])

    def render_on(self, colour: int, indices: Tensor | None = None) -> Tensor:
        """Render the digits again, all on one background colour.

        Args:
            colour: Palette index in ``[0, n_colours)``.
            indices: Optional ``[m]`` sample positions (default: every sample).

        Returns:
            ``uint8`` tensor ``[m, 3, 28, 28]``, the same pixels as ``images`` but the background.

        Raises:
            CecoFairError: If ``colour`` is not a palette index.

        """
        if isinstance(colour, bool) or not isinstance(colour, int) or not 0 <= colour < self.n_colours:
            raise CecoFairError(f"colour must be an integer in [0, {self.n_colours}), got {colour!r}")
        digits = self._digit_pixels if indices is None else self._digit_pixels[indices]
        colours = torch.full((digits.shape[0],), colour, dtype=torch.int64)
        return colourise(digits, colours, self.palette)

    def __len__(self) -> int:
        """Return the number of samples."""
        return int(self.targets.shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, int, int]:
        """Return ``(image uint8 [3, 28, 28], target, colour group)`` of one sample.

        Args:
            index: Position in ``[0, len(self))``.

        Returns:
            The sample.

        """
        return self.images[index], int(self.targets[index]), int(self.sensitive[index])


class BiasedMNIST(ColouredDigits):
    """BiasedMNIST: ten digit classes on ten background colours (ReBias rule).

    Args:
        source: MNIST source: ``"embedded"`` (fixed 4,000/1,000 split), ``{"idx_dir": PATH}``
            or ``{"torchvision_root": PATH, "download": bool}`` (official split).
        split: ``"train"``, ``"valid"`` (carved from train, needs ``val_fraction > 0``) or
            ``"test"``.
        rho: Share of each class on its own colour; ``None`` means 0.99 for train/valid and
            the unbiased 0.1 for test.
        seed: Seeds the colouring (with the split) and the validation carve-out.
        val_fraction: Share of the train digits set aside, stratified, as ``"valid"``.
        conflict_order: Order of the nine other colours over the conflicting chunks
            (``"shuffled"`` as in ReBias, or ``"sequential"``).

    Raises:
        CecoFairError: If an argument is out of range.
        DataError: If the source's files are missing or malformed.

    """

    metric_kind: ClassVar[MetricKind] = "bias"
    target_name = "digit"

    def __init__(
        self,
        source: MnistSource = "embedded",
        split: Split = "train",
        rho: float | None = None,
        seed: int = 0,
        val_fraction: float = 0.0,
        conflict_order: ConflictOrder = "shuffled",
    ) -> None:
        _check_arguments(split, rho, seed, val_fraction)
        if conflict_order not in ("shuffled", "sequential"):
            raise CecoFairError(BAD_CONFLICT_ORDER.format(value=conflict_order))
        normalise_source(source)
        resolved_rho = (0.1 if split == "test" else 0.99) if rho is None else float(rho)
        digits, labels, rows = select_digits(source, split, seed, val_fraction)
        colours = rebias_colours(
            labels.numpy(),
            resolved_rho,
            split_rng(seed, split),
            n_colours=10,
            conflict_order=conflict_order,
        )
        super().__init__(
            digits,
            labels,
            labels.clone(),
            torch.from_numpy(colours),
            torch.tensor(PALETTE, dtype=torch.uint8),
            rows=rows,
            split=split,
            rho=resolved_rho,
            seed=seed,
        )
        self.n_classes = 10
        self.n_groups = 10
        self.class_names = [str(digit) for digit in range(10)]
        self.group_names = list(COLOUR_NAMES)
        logger.info(
            "BiasedMNIST %s: %d digits, rho=%.4g, %d bias-aligned",
            split,
            len(self),
            resolved_rho,
            int(self.aligned.sum()),
        )


class ColoredMNIST(ColouredDigits):
    """ColoredMNIST: digit ≥ 5 as a binary target, red or green background as the group.

    Group ``t`` (0 red ``(255, 0, 0)``, 1 green ``(0, 255, 0)``) is given to ``⌊n_t·ρ⌋``
    shuffled samples of target class ``t`` and group ``1 − t`` to the rest.

    Args:
        source: MNIST source, as for :class:`BiasedMNIST`.
        split: ``"train"``, ``"valid"`` or ``"test"``.
        rho: Share of each target class on its own colour; ``None`` means 0.9 for train/valid
            and 0.5 for test.
        seed: Seeds the colouring (with the split) and the validation carve-out.
        val_fraction: Share of the train digits set aside, stratified, as ``"valid"``.

    Raises:
        CecoFairError: If an argument is out of range.
        DataError: If the source's files are missing or malformed.

    """

    metric_kind: ClassVar[MetricKind] = "group"
    target_name = "digit ≥ 5"

    def __init__(
        self,
        source: MnistSource = "embedded",
        split: Split = "train",
        rho: float | None = None,
        seed: int = 0,
        val_fraction: float = 0.0,
    ) -> None:
        _check_arguments(split, rho, seed, val_fraction)
        normalise_source(source)
        resolved_rho = (0.5 if split == "test" else 0.9) if rho is None else float(rho)
        digits, labels, rows = select_digits(source, split, seed, val_fraction)
        targets = (labels >= 5).to(torch.int64)
        colours = binary_colours(targets.numpy(), resolved_rho, split_rng(seed, split))
        super().__init__(
            digits,
            labels,
            targets,
            torch.from_numpy(colours),
            torch.tensor(BINARY_PALETTE, dtype=torch.uint8),
            rows=rows,
            split=split,
            rho=resolved_rho,
            seed=seed,
        )
        self.n_classes = 2
        self.n_groups = 2
        self.class_names = ["digit 0-4", "digit 5-9"]
        self.group_names = ["red", "green"]
