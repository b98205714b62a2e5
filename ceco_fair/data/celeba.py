"""CelebA faces with one binary target attribute and one or more binary sensitive attributes.

Layout (torchvision's): ``ROOT/celeba/`` (or ``ROOT`` itself) holding ``img_align_celeba/``
(``000001.jpg`` … ``202599.jpg``), ``list_attr_celeba.txt`` and ``list_eval_partition.txt``; or
the CSV variant ``list_attr_celeba.csv`` (an ``image_id`` column then one column per attribute)
and ``list_eval_partition.csv`` (``image_id,partition``). The text tables are parsed here rather
than by torchvision, whose class checks the md5 sums of complete copies: CRLF line ends and runs
of spaces are accepted, and a first-line count that disagrees with the rows is only a warning.

Attribute values −1/1 become 0/1. Partitions: 0 train, 1 valid, 2 test.

With several sensitive attributes ``[a_0, a_1, …]`` the group index is ``Σ_k a_k · 2^k`` in the
listed order: ``["Male", "Young"]`` gives 0 = not Male & not Young, 1 = Male & not Young,
2 = not Male & Young, 3 = Male & Young.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

import numpy as np
import pandas as pd

from ceco_fair.common.config import closest
from ceco_fair.data.base import Split, check_split_and_seed
from ceco_fair.data.images import Crop, FileImageDataset, check_crop, check_image_size
from ceco_fair.errors import CecoFairError, DataError
from ceco_fair.metrics.specs import MetricKind
from ceco_fair.results.layout import LIST_SEPARATOR

logger = logging.getLogger(__name__)


CELEBA_FOLDER: Final = "celeba"
IMAGE_FOLDER: Final = "img_align_celeba"
ATTRIBUTE_FILES: Final = ("list_attr_celeba.txt", "list_attr_celeba.csv")
PARTITION_FILES: Final = ("list_eval_partition.txt", "list_eval_partition.csv")
PARTITIONS: Final = {"train": 0, "valid": 1, "test": 2}
ID_COLUMN: Final = "image_id"
PARTITION_COLUMN: Final = "partition"
_EXAMPLES: Final = 5

EXPECTED_LAYOUT: Final = (
    "expected ROOT/celeba/ (or ROOT itself) holding img_align_celeba/000001.jpg..., "
    "list_attr_celeba.txt (or .csv) and list_eval_partition.txt (or .csv)"
)
ROOT_MISSING = "CelebA folder {root} does not exist; " + EXPECTED_LAYOUT
FILE_MISSING = "CelebA folder {folder} lacks {missing}; " + EXPECTED_LAYOUT
NO_IMAGES = "none of the {n_listed} images listed in {table} is in {images}; " + EXPECTED_LAYOUT
BAD_COUNT_LINE = "{path} line 1 should be the image count, got {line!r}"
NO_NAMES = "{path} has no attribute names ({where})"
UNREADABLE_TABLE = "cannot parse {path}: {reason}"
BAD_VALUES = "{path} column {column!r} holds values other than -1 and 1 (e.g. {value!r})"
SHORT_ROW = "{path} row {name!r} has fewer values than the {n_names} attribute names"
BAD_PARTITION = "{path} holds partition values other than 0, 1, 2 (e.g. {value!r})"
BAD_COLUMNS = "{path} has columns {columns}; expected {expected}"
DUPLICATE_IDS = "{path} lists {name!r} more than once"
UNKNOWN_ATTRIBUTE = "unknown CelebA attribute {value!r} for {argument}{hint}"
BAD_SENSITIVE = "sensitive must be an attribute name or a non-empty list of distinct names, got {v!r}"
TARGET_IN_SENSITIVE = "target {value!r} is also a sensitive attribute"
EMPTY_SPLIT = "CelebA split {split!r} has no image present in {images}"


@dataclass(frozen=True)
class CelebALayout:
    """Where the parts of a CelebA copy are, and how complete it is.

    Attributes:
        folder: The CelebA folder.
        attribute_file: The attribute table.
        partition_file: The partition table.
        image_folder: The folder of aligned images.
        n_listed: Images listed in the partition table.
        n_missing: Listed images absent from the image folder.
        missing_examples: A few of the absent file names.

    """

    folder: Path
    attribute_file: Path
    partition_file: Path
    image_folder: Path
    n_listed: int = 0
    n_missing: int = 0
    missing_examples: tuple[str, ...] = ()


def locate(root: str | os.PathLike[str]) -> CelebALayout:
    """Find the tables and the image folder of a CelebA copy (no counting).

    Args:
        root: The folder holding ``celeba/``, or that folder itself.

    Returns:
        The layout with zero counts.

    Raises:
        DataError: If the folder, a table or the image folder is missing.

    """
    path = Path(root).expanduser()
    folder = path / CELEBA_FOLDER if (path / CELEBA_FOLDER).is_dir() else path
    if not folder.is_dir():
        raise DataError(ROOT_MISSING.format(root=path))
    found: list[Path] = []
    missing: list[str] = []
    for candidates in (ATTRIBUTE_FILES, PARTITION_FILES):
        present = [folder / name for name in candidates if (folder / name).is_file()]
        if present:
            found.append(present[0])
        else:
            missing.append(" or ".join(candidates))
    images = folder / IMAGE_FOLDER
    if (images / IMAGE_FOLDER).is_dir():
        images = images / IMAGE_FOLDER
    if not images.is_dir():
        missing.append(f"{IMAGE_FOLDER}/")
    if missing:
        raise DataError(FILE_MISSING.format(folder=folder, missing=", ".join(missing)))
    return CelebALayout(folder, found[0], found[1], images)


def read_attribute_names(path: Path) -> list[str]:
    """Read only the attribute names of an attribute table.

    Args:
        path: ``list_attr_celeba.txt`` (names on line 2) or ``list_attr_celeba.csv``
            (header after ``image_id``).

    Returns:
        The attribute names in column order.

    Raises:
        DataError: If the names are missing.

    """
    with path.open("r", encoding="utf-8", newline=None) as handle:
        first, second = handle.readline(), handle.readline()
    if path.suffix == ".csv":
        columns = [column.strip() for column in first.split(",")]
        if len(columns) < 2 or columns[0] != ID_COLUMN:
            raise DataError(BAD_COLUMNS.format(path=path, columns=columns, expected=f"{ID_COLUMN},<names>"))
        return columns[1:]
    names = second.split()
    if not names:
        raise DataError(NO_NAMES.format(path=path, where="line 2"))
    return names


def _read_table(path: Path, **options: Any) -> pd.DataFrame:
    try:
        with warnings.catch_warnings():
            # Rows longer than the names make pandas drop values with only a warning.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table: pd.DataFrame = pd.read_csv(path, dtype={ID_COLUMN: str}, **options)
    except (ValueError, pd.errors.ParserError, pd.errors.ParserWarning) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(UNREADABLE_TABLE.format(path=path, reason=reason)) from exc
    return table


def _check_ids(path: Path, ids: pd.Series) -> None:
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise DataError(DUPLICATE_IDS.format(path=path, name=duplicated.iloc[0]))


def read_attributes(path: Path) -> pd.DataFrame:
    """Parse an attribute table.

    Args:
        path: ``list_attr_celeba.txt`` (line 1 a count, line 2 the names, then
            ``file v_1 … v_k`` separated by runs of spaces, LF or CRLF) or
            ``list_attr_celeba.csv``.

    Returns:
        Table indexed by image file name, one ``int8`` column per attribute with values 0/1,
        rows in file order.

    Raises:
        DataError: If the table is malformed (bad count line, missing names, values other than
            −1/1, duplicate file names).

    """
    names = read_attribute_names(path)
    if path.suffix == ".csv":
        table = _read_table(path)
    else:
        with path.open("r", encoding="utf-8", newline=None) as handle:
            count_line = handle.readline().strip()
        try:
            declared = int(count_line)
        except ValueError as exc:
            raise DataError(BAD_COUNT_LINE.format(path=path, line=count_line)) from exc
        table = _read_table(path, sep=r"\s+", skiprows=2, header=None, names=[ID_COLUMN, *names], index_col=False)
        if declared != len(table):
            logger.warning(
                "%s announces %d images on line 1 but lists %d; using the rows",
                path,
                declared,
                len(table),
            )
    _check_ids(path, table[ID_COLUMN])
    values = table[names]
    short = values.isna().any(axis=1)
    if short.any():
        name = table[ID_COLUMN][short].iloc[0]
        raise DataError(SHORT_ROW.format(path=path, name=name, n_names=len(names)))
    matrix = values.to_numpy()
    valid = (matrix == 1) | (matrix == -1)
    if not valid.all():
        row, column = np.argwhere(~valid)[0]
        raise DataError(BAD_VALUES.format(path=path, column=names[column], value=matrix[row, column]))
    binary = (matrix == 1).astype(np.int8)
    index = pd.Index(table[ID_COLUMN], name=ID_COLUMN)
    frame: pd.DataFrame = pd.DataFrame(binary, index=index, columns=names)
    return frame


def read_partition(path: Path) -> pd.Series:
    """Parse a partition table.

    Args:
        path: ``list_eval_partition.txt`` (``file 0|1|2`` per line) or
            ``list_eval_partition.csv`` (columns ``image_id,partition``).

    Returns:
        Partition code (0 train, 1 valid, 2 test) indexed by image file name.

    Raises:
        DataError: If the table is malformed.

    """
    if path.suffix == ".csv":
        table = _read_table(path)
        expected = [ID_COLUMN, PARTITION_COLUMN]
        if list(table.columns[:2]) != expected:
            raise DataError(BAD_COLUMNS.format(path=path, columns=list(table.columns), expected=expected))
    else:
        table = _read_table(path, sep=r"\s+", header=None, names=[ID_COLUMN, PARTITION_COLUMN], index_col=False)
    _check_ids(path, table[ID_COLUMN])
    codes = table[PARTITION_COLUMN]
    valid = codes.isin(tuple(PARTITIONS.values()))
    if not valid.all():
        raise DataError(BAD_PARTITION.format(path=path, value=codes[~valid].iloc[0]))
    series: pd.Series = pd.Series(
        codes.to_numpy(np.int64),
        index=pd.Index(table[ID_COLUMN], name=ID_COLUMN),
        name=PARTITION_COLUMN,
    )
    return series


def check_attribute(value: object, names: Sequence[str], argument: str) -> str:
    """Check that an attribute name exists.

    Args:
        value: The name given.
        names: The valid attribute names.
        argument: The argument it was given for (named in the error).

    Returns:
        The name.

    Raises:
        CecoFairError: If it is not a valid name; the message suggests the closest ones.

    """
    if isinstance(value, str) and value in names:
        return value
    hint = closest(value, names, most=3, fold_case=True, listed=False)
    raise CecoFairError(UNKNOWN_ATTRIBUTE.format(value=value, argument=argument, hint=hint))


def sensitive_tuple(sensitive: str | Sequence[str]) -> tuple[str, ...]:
    """Normalise the sensitive argument to a tuple of names.

    Args:
        sensitive: One name or a list of names.

    Returns:
        The names, in order.

    Raises:
        CecoFairError: If the list is empty, holds non-strings or repeats a name.

    """
    names = (sensitive,) if isinstance(sensitive, str) else tuple(sensitive)
    if not names or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise CecoFairError(BAD_SENSITIVE.format(v=sensitive))
    return names


def check_attributes(names: Sequence[str], target: str, sensitive: str | Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """Validate a target and sensitive attributes against the table's names.

    Args:
        names: Attribute names of the table.
        target: Target attribute.
        sensitive: Sensitive attribute or list of attributes.

    Returns:
        ``(target, sensitive names)``.

    Raises:
        CecoFairError: If a name is unknown or the target is also sensitive.

    """
    chosen = check_attribute(target, names, "target")
    groups = tuple(check_attribute(name, names, "sensitive") for name in sensitive_tuple(sensitive))
    if chosen in groups:
        raise CecoFairError(TARGET_IN_SENSITIVE.format(value=chosen))
    return chosen, groups


def group_names(sensitive: Sequence[str]) -> list[str]:
    """Name the groups ``Σ_k a_k · 2^k`` of binary sensitive attributes.

    Args:
        sensitive: Attribute names in bit order.

    Returns:
        ``2^len(sensitive)`` names, e.g. ``["not Male", "Male"]``.

    """
    return [
        ", ".join(name if (group >> bit) & 1 else f"not {name}" for bit, name in enumerate(sensitive))
        for group in range(2 ** len(sensitive))
    ]


class CelebA(FileImageDataset):
    """CelebA images with a binary target attribute and binary-coded sensitive groups.

    Items are ``(image uint8 [3, image_size, image_size], target, sensitive)``.

    Args:
        root: The folder holding ``celeba/``, or that folder itself (see the module docstring).
        split: ``"train"``, ``"valid"`` or ``"test"`` (official partitions 0, 1, 2).
        target: Target attribute name, e.g. ``"Attractive"``.
        sensitive: Sensitive attribute name or list of names (group ``Σ_k a_k · 2^k``).
        image_size: Side of the square output images.
        crop: Optional centre crop, a side or ``(height, width)`` in pixels of the 178×218
            aligned images, applied before resizing; ``None`` resizes the whole image.
        seed: Accepted so every dataset takes the same run arguments; CelebA's official
            partitions involve no randomness.
        cache_dir: Folder of the decoded-image cache: every image of the split is decoded and
            resized once into a memory-mapped ``uint8`` array there (built on first use, shared
            by later runs and concurrent processes) and read from it, pixel for pixel as without
            it; ``None`` decodes on every read.

    Attributes:
        layout: Where the tables and images are.
        skipped: ``(file name, reason)`` for listed images of the split absent from the folder.
        attributes: The split's rows of the attribute table (``image_id`` then 0/1 columns).
        attribute_names: All attribute names of the table.

    Raises:
        CecoFairError: If an argument or attribute name is invalid.
        DataError: If the folder or its tables are missing or malformed, or no image of the
            split is present.

    """

    metric_kind: ClassVar[MetricKind] = "group"
    takes_rho: ClassVar[bool] = False
    validation_labels: ClassVar[str] = "groups"

    @classmethod
    def preflight(cls, options: Mapping[str, Any], splits: Sequence[str]) -> None:
        """Check the tables, the image folder and the attribute names (nothing is decoded)."""
        cls.check_root(options["root"], target=options["target"], sensitive=options["sensitive"])

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: Split = "train",
        target: str = "Attractive",
        sensitive: str | Sequence[str] = "Male",
        *,
        image_size: int = 128,
        crop: Crop | None = None,
        seed: int = 0,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        check_split_and_seed(split, seed)
        check_image_size(image_size)
        crop_size = check_crop(crop)
        layout = locate(root)
        table = read_attributes(layout.attribute_file)
        names = list(table.columns)
        target, groups = check_attributes(names, target, sensitive)
        partition = read_partition(layout.partition_file)
        joined = table.join(partition, how="inner")
        if len(joined) < len(table):
            logger.warning(
                "%d images of %s have no partition in %s; left out",
                len(table) - len(joined),
                layout.attribute_file,
                layout.partition_file,
            )
        rows = joined[joined[PARTITION_COLUMN] == PARTITIONS[split]]
        present = rows.index.isin(set(os.listdir(layout.image_folder)))
        skipped = [(str(name), "image file missing") for name in rows.index[~present]]
        if skipped:
            logger.warning(
                "CelebA %s: %d listed images missing from %s (e.g. %s); skipped",
                split,
                len(skipped),
                layout.image_folder,
                [name for name, _ in skipped[:_EXAMPLES]],
            )
        rows = rows[present]
        if rows.empty:
            raise DataError(EMPTY_SPLIT.format(split=split, images=layout.image_folder))
        bits = rows[list(groups)].to_numpy(np.int64)
        super().__init__(
            [layout.image_folder / str(name) for name in rows.index],
            rows[target].to_numpy(np.int64),
            bits @ (1 << np.arange(len(groups), dtype=np.int64)),
            rows[names].reset_index(),
            image_size=image_size,
            crop=crop_size,
            skipped=skipped,
            cache_dir=cache_dir,
        )
        self.layout = layout
        self.split = split
        self.target_attribute = target
        self.sensitive_attributes = list(groups)
        self.target_name = target
        self.sensitive_name = LIST_SEPARATOR.join(groups)
        self.attribute_names = names
        self.n_classes = 2
        self.n_groups = 2 ** len(groups)
        self.class_names = [f"not {target}", target]
        self.group_names = group_names(groups)
        logger.info("CelebA %s: %d images (%s vs %s)", split, len(self), target, list(groups))

    @staticmethod
    def expected_layout() -> str:
        """Describe the folder layout CelebA expects.

        Returns:
            A one-line description.

        """
        return EXPECTED_LAYOUT

    @classmethod
    def check_root(
        cls,
        root: str | os.PathLike[str],
        *,
        target: str | None = None,
        sensitive: str | Sequence[str] | None = None,
    ) -> CelebALayout:
        """Check cheaply that a folder holds CelebA and count the listed images that are missing.

        Reads the partition table and the attribute names, lists the image folder, decodes
        nothing. Some missing images (a partial copy) are a warning; all missing is an error.

        Args:
            root: The folder holding ``celeba/``, or that folder itself.
            target: Optional target attribute name to validate.
            sensitive: Optional sensitive attribute name(s) to validate.

        Returns:
            The layout with ``n_listed``, ``n_missing`` and a few missing names.

        Raises:
            DataError: If the folder or a table is missing or malformed, or no listed image is
                present.
            CecoFairError: If a given attribute name is unknown.

        """
        layout = locate(root)
        names = read_attribute_names(layout.attribute_file)
        if target is not None and sensitive is not None:
            check_attributes(names, target, sensitive)
        elif target is not None:
            check_attribute(target, names, "target")
        elif sensitive is not None:
            for name in sensitive_tuple(sensitive):
                check_attribute(name, names, "sensitive")
        listed = read_partition(layout.partition_file).index
        present = listed.isin(set(os.listdir(layout.image_folder)))
        missing = listed[~present]
        if len(missing) == len(listed):
            raise DataError(
                NO_IMAGES.format(n_listed=len(listed), table=layout.partition_file, images=layout.image_folder)
            )
        if len(missing):
            logger.warning(
                "%d of %d listed CelebA images are missing from %s (e.g. %s)",
                len(missing),
                len(listed),
                layout.image_folder,
                list(missing[:_EXAMPLES]),
            )
        return CelebALayout(
            layout.folder,
            layout.attribute_file,
            layout.partition_file,
            layout.image_folder,
            n_listed=len(listed),
            n_missing=len(missing),
            missing_examples=tuple(str(name) for name in missing[:_EXAMPLES]),
        )
