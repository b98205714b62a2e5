"""UTKFace faces with a binary (or five-way) target and sensitive attribute from the file names.

The aligned & cropped release names its files ``[age]_[gender]_[race]_[date&time].jpg.chip.jpg``
(plain ``[age]_[gender]_[race]_[date&time].jpg`` names are accepted too): age 0-116, gender
0 male / 1 female, race 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others.

Known irregular names of the public release:

* ``39_1_20170116174525125.jpg.chip.jpg``, ``61_1_20170109142408075.jpg.chip.jpg`` and
  ``61_1_20170109150557335.jpg.chip.jpg`` lack the race field: skipped and listed in
  ``.skipped``;
* ``24_0_1_20170116220224657 .jpg.chip.jpg`` (a space before the extension) and
  ``55_0_0_20170116232725357jpg.chip.jpg`` (no dot before ``jpg``) have all four numbers intact:
  they are used, and listed in ``.irregular`` with what is odd about them.

Attribute coding (``target`` and ``sensitive`` each one of ``"gender"``, ``"race"``, ``"age"``):

* gender: 0 male, 1 female;
* race: with ``race_binary`` 0 White, 1 non-White; otherwise the five codes above;
* age, ``age_bins="biascon"`` (Hong & Yang, NeurIPS 2021): 0 for age ≥ 20, 1 for age ≤ 10, ages
  11-19 dropped. This order is BiasCon's, so that with target gender the bias-aligned pairs are
  (male, ≥ 20) and (female, ≤ 10) as in their code;
* age, ``age_bins="fscl"`` (Park et al., CVPR 2022): 0 for age < 35, 1 for age ≥ 35.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from ceco_fair.data.base import SPLITS, Split, check_split_and_seed, floor_share
from ceco_fair.data.images import FileImageDataset, check_image_size
from ceco_fair.errors import CecoFairError, DataError
from ceco_fair.metrics.specs import MetricKind

logger = logging.getLogger(__name__)

Attribute = Literal["gender", "race", "age"]
AgeBins = Literal["biascon", "fscl"]

IMAGE_FOLDER: Final = "UTKFace"
ATTRIBUTES: Final = ("gender", "race", "age")
AGE_BINS: Final = ("biascon", "fscl")
SPLIT_FRACTIONS: Final = (0.8, 0.1, 0.1)
GENDER_NAMES: Final = ("male", "female")
RACE_NAMES: Final = ("White", "Black", "Asian", "Indian", "Others")
RACE_BINARY_NAMES: Final = ("White", "non-White")
AGE_BIN_NAMES: Final = {"biascon": ("age>=20", "age<=10"), "fscl": ("age<35", "age>=35")}
MAX_AGE: Final = 120
_SPLIT_STREAM: Final = 0
_SUBSAMPLE_STREAM: Final = 1

_NAME = re.compile(r"^(?P<age>\d+)_(?P<gender>\d+)_(?P<race>\d+)_(?P<stamp>\d+)(?P<tail>.*)$")
_NO_RACE = re.compile(r"^\d+_\d+_\d+(?!\d|_)")
_REGULAR_TAILS: Final = (".jpg.chip.jpg", ".jpg")
_TOLERATED_TAIL = re.compile(r"^(?P<space>\s*)(?P<dot>\.?)jpg(\.chip\.jpg)?$", re.IGNORECASE)

EXPECTED_LAYOUT: Final = (
    "expected ROOT/UTKFace/[age]_[gender]_[race]_[date&time].jpg.chip.jpg (the aligned & "
    "cropped release; ROOT may also be the UTKFace folder itself; plain "
    "[age]_[gender]_[race]_[date&time].jpg names are accepted)"
)
ROOT_MISSING = "UTKFace folder {root} does not exist; " + EXPECTED_LAYOUT
NO_IMAGES = "UTKFace folder {folder} holds no image with a parsable name; " + EXPECTED_LAYOUT
UNKNOWN_ATTRIBUTE = "{argument} must be one of {allowed}, got {value!r}"
SAME_ATTRIBUTE = "target and sensitive must differ, both are {value!r}"
UNKNOWN_AGE_BINS = "age_bins must be one of {allowed}, got {value!r}"
BAD_BIAS_RATE = "bias_rate must be None or a number in (0, 1], got {value!r}"
BIAS_RATE_NEEDS_BINARY = (
    "bias_rate needs a binary target and sensitive attribute, got {n_classes} target classes "
    "and {n_groups} groups (set race_binary=True)"
)
SPLIT_FILE_MISSING = "split_file {path} does not exist; expected a CSV with columns filename,split"
SPLIT_FILE_COLUMNS = "split_file {path} has columns {columns}; expected filename,split"
SPLIT_FILE_VALUE = "split_file {path} row {row}: split {value!r} is not one of train, valid, test"
SPLIT_FILE_DUPLICATE = "split_file {path} lists {name!r} more than once"
SPLIT_FILE_NO_MATCH = "split_file {path} names none of the images in {folder}"
EMPTY_SPLIT = "UTKFace split {split!r} is empty ({n_usable} usable images in {folder})"


@dataclass(frozen=True)
class UTKFaceRecord:
    """Attributes parsed from one UTKFace file name.

    Attributes:
        filename: The file name.
        age: Age in years.
        gender: 0 male, 1 female.
        race: 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others.
        irregular: What is odd about an accepted name (``None`` for a regular name).

    """

    filename: str
    age: int
    gender: int
    race: int
    irregular: str | None = None


def _parse(name: str) -> UTKFaceRecord | str:
    """Parse a name into a record, or return why it cannot be parsed."""
    match = _NAME.match(name)
    if match is None:
        if _NO_RACE.match(name):
            return "three fields (age_gender_datetime): the race field is missing"
        return "does not follow [age]_[gender]_[race]_[date&time].jpg"
    tail = match["tail"]
    irregular: str | None = None
    if tail.lower() not in _REGULAR_TAILS:
        tolerated = _TOLERATED_TAIL.match(tail)
        if tolerated is None:
            return f"unexpected extension {tail!r}"
        problems = []
        if tolerated["space"]:
            problems.append("whitespace before the extension")
        if not tolerated["dot"]:
            problems.append("no dot before 'jpg'")
        irregular = " and ".join(problems)
    age, gender, race = int(match["age"]), int(match["gender"]), int(match["race"])
    if age > MAX_AGE:
        return f"age {age} is above {MAX_AGE}"
    if gender not in (0, 1):
        return f"gender {gender} is not 0 or 1"
    if not 0 <= race < len(RACE_NAMES):
        return f"race {race} is not in 0..4"
    return UTKFaceRecord(name, age, gender, race, irregular)


def parse_utkface_name(name: str) -> UTKFaceRecord:
    """Parse the attributes out of one UTKFace file name.

    Args:
        name: A file name such as ``"25_1_3_20170104231305129.jpg.chip.jpg"``.

    Returns:
        The parsed record (``irregular`` says what is odd about a tolerated name).

    Raises:
        DataError: If the name cannot be parsed; the message names the file and the reason.

    """
    parsed = _parse(name)
    if isinstance(parsed, str):
        raise DataError(f"UTKFace file name {name!r}: {parsed}")
    return parsed


def resolve_folder(root: str | os.PathLike[str]) -> Path:
    """Find the image folder: ``root/UTKFace`` if present, else ``root`` itself.

    Args:
        root: The folder holding ``UTKFace/``, or that folder itself.

    Returns:
        The folder holding the images.

    Raises:
        DataError: If neither exists.

    """
    path = Path(root).expanduser()
    if (path / IMAGE_FOLDER).is_dir():
        return path / IMAGE_FOLDER
    if path.is_dir():
        return path
    raise DataError(ROOT_MISSING.format(root=path))


def scan_folder(folder: Path) -> tuple[list[UTKFaceRecord], list[tuple[str, str]]]:
    """Parse the names of every file in a folder.

    Args:
        folder: The image folder.

    Returns:
        ``(records, skipped)``: parsed records sorted by file name, and ``(file name, reason)``
        for every file whose name cannot be parsed.

    """
    names = sorted(entry.name for entry in os.scandir(folder) if entry.is_file())
    records: list[UTKFaceRecord] = []
    skipped: list[tuple[str, str]] = []
    for name in names:
        parsed = _parse(name)
        if isinstance(parsed, str):
            skipped.append((name, parsed))
            logger.warning("skipping UTKFace file %r: %s", name, parsed)
        else:
            records.append(parsed)
            if parsed.irregular:
                logger.info("UTKFace file %r parsed despite %s", name, parsed.irregular)
    return records, skipped


def encode_attribute(
    attribute: str, table: pd.DataFrame, *, race_binary: bool, age_bins: str
) -> tuple[npt.NDArray[np.int64], list[str]]:
    """Code one attribute as class indices (see the module docstring).

    Args:
        attribute: ``"gender"``, ``"race"`` or ``"age"``.
        table: Columns ``age``, ``gender``, ``race``; ``[n]`` rows.
        race_binary: Code race as White / non-White.
        age_bins: ``"biascon"`` or ``"fscl"``.

    Returns:
        ``(codes [n], class names)``; code ``-1`` marks samples the binning drops.

    """
    if attribute == "gender":
        return table["gender"].to_numpy(np.int64), list(GENDER_NAMES)
    if attribute == "race":
        race = table["race"].to_numpy(np.int64)
        if race_binary:
            return (race != 0).astype(np.int64), list(RACE_BINARY_NAMES)
        return race, list(RACE_NAMES)
    age = table["age"].to_numpy(np.int64)
    if age_bins == "biascon":
        codes = np.where(age >= 20, 0, np.where(age <= 10, 1, -1)).astype(np.int64)
    else:
        codes = (age >= 35).astype(np.int64)
    return codes, list(AGE_BIN_NAMES[age_bins])


def stratified_assignment(
    cells: npt.NDArray[np.int64],
    rng: np.random.Generator,
    fractions: Sequence[float] = SPLIT_FRACTIONS,
) -> npt.NDArray[np.int64]:
    """Assign samples to splits, the same fractions within every cell.

    In each cell of ``n`` samples (shuffled), the first ``round(n·f0)`` go to split 0, up to
    ``round(n·(f0+f1))`` to split 1 and the rest to split 2 (rounding half up).

    Args:
        cells: ``[n]`` cell index of each sample.
        rng: Source of the shuffles.
        fractions: Fractions of splits 0, 1, 2 (summing to 1).

    Returns:
        ``[n]`` split codes in ``{0, 1, 2}``.

    """
    codes = np.empty(len(cells), dtype=np.int64)
    bounds = np.cumsum(fractions)[:-1]
    for cell in np.unique(cells):
        members = rng.permutation(np.flatnonzero(cells == cell))
        cuts = np.floor(len(members) * bounds + 0.5).astype(np.int64)
        for code, part in enumerate(np.split(members, cuts)):
            codes[part] = code
    return codes


def read_split_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a user split: a CSV with columns ``filename`` and ``split``.

    Args:
        path: The CSV file; ``split`` values are ``train``, ``valid`` or ``test``; a
            ``filename`` may carry folders, only its last part is used.

    Returns:
        File name -> split.

    Raises:
        DataError: If the file is missing, lacks the columns, or holds a bad or duplicate row.

    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(SPLIT_FILE_MISSING.format(path=file))
    table = pd.read_csv(file, dtype=str, keep_default_na=False)
    if not {"filename", "split"} <= set(table.columns):
        raise DataError(SPLIT_FILE_COLUMNS.format(path=file, columns=list(table.columns)))
    mapping: dict[str, str] = {}
    for row, (filename, split) in enumerate(zip(table["filename"], table["split"], strict=True)):
        value = split.strip()
        if value not in SPLITS:
            raise DataError(SPLIT_FILE_VALUE.format(path=file, row=row + 2, value=split))
        name = Path(filename).name
        if name in mapping:
            raise DataError(SPLIT_FILE_DUPLICATE.format(path=file, name=name))
        mapping[name] = value
    return mapping


def check_attribute_options(target: str, sensitive: str, age_bins: str) -> None:
    """Validate the attribute choices of :class:`UTKFace`.

    Args:
        target: Target attribute name.
        sensitive: Sensitive attribute name.
        age_bins: Age binning name.

    Raises:
        CecoFairError: If a name is unknown or target equals sensitive.

    """
    for argument, value in (("target", target), ("sensitive", sensitive)):
        if value not in ATTRIBUTES:
            raise CecoFairError(UNKNOWN_ATTRIBUTE.format(argument=argument, allowed=list(ATTRIBUTES), value=value))
    if target == sensitive:
        raise CecoFairError(SAME_ATTRIBUTE.format(value=target))
    if age_bins not in AGE_BINS:
        raise CecoFairError(UNKNOWN_AGE_BINS.format(allowed=list(AGE_BINS), value=age_bins))


def _check_arguments(split: str, seed: int, bias_rate: float | None) -> None:
    check_split_and_seed(split, seed)
    if bias_rate is not None and (
        isinstance(bias_rate, bool) or not isinstance(bias_rate, int | float) or not 0.0 < bias_rate <= 1.0
    ):
        raise CecoFairError(BAD_BIAS_RATE.format(value=bias_rate))


def bias_rate_mask(
    targets: npt.NDArray[np.int64],
    sensitive: npt.NDArray[np.int64],
    bias_rate: float,
    rng: np.random.Generator,
) -> npt.NDArray[np.bool_]:
    """Select BiasCon's controlled imbalance from binary targets and groups.

    For each group ``g``: keep every bias-aligned sample (target ``g``, group ``g``; ``n_major``
    of them) and ``⌊n_major·(1 − bias_rate)⌋`` randomly chosen bias-conflicting ones (target
    ``1 − g``, group ``g``), or all of them if fewer exist.

    Args:
        targets: ``[n]`` binary targets.
        sensitive: ``[n]`` binary groups.
        bias_rate: Share of bias-aligned samples aimed at, in ``(0, 1]``.
        rng: Source of the choice of conflicting samples.

    Returns:
        ``[n]`` boolean mask of the kept samples.

    """
    keep: npt.NDArray[np.bool_] = np.equal(targets, sensitive)
    minor_share = 1 - Fraction(repr(float(bias_rate)))
    for group in (0, 1):
        n_major = int(np.sum((targets == group) & (sensitive == group)))
        conflicting = np.flatnonzero((targets == 1 - group) & (sensitive == group))
        wanted = floor_share(n_major, minor_share)
        if wanted > len(conflicting):
            logger.warning(
                "bias_rate %.4g: group %d has %d bias-conflicting samples, fewer than the %d wanted; keeping all",
                bias_rate,
                group,
                len(conflicting),
                wanted,
            )
        keep[rng.permutation(conflicting)[:wanted]] = True
    return keep


class UTKFace(FileImageDataset):
    """UTKFace images with a target and a sensitive attribute parsed from the file names.

    Items are ``(image uint8 [3, image_size, image_size], target, sensitive)``; images are
    decoded with ``torchvision.io`` when read and resized (antialiased) to a square.

    Args:
        root: The folder holding ``UTKFace/``, or that folder itself.
        split: ``"train"``, ``"valid"`` or ``"test"``.
        target: ``"gender"``, ``"race"`` or ``"age"``.
        sensitive: ``"gender"``, ``"race"`` or ``"age"`` (not the target).
        race_binary: Code race as White (0) / non-White (1) instead of five classes.
        age_bins: ``"biascon"`` (0: ≥ 20, 1: ≤ 10, 11-19 dropped) or ``"fscl"``
            (0: < 35, 1: ≥ 35); used when target or sensitive is age.
        image_size: Side of the square output images.
        seed: Seeds the 80/10/10 split (stratified by (target, sensitive) cell) and the
            ``bias_rate`` subsampling.
        split_file: Optional CSV with columns ``filename,split`` replacing the seeded split;
            images it does not list are left out.
        bias_rate: For the train split only: keep all bias-aligned samples (target ==
            sensitive) and ``⌊n_major·(1 − bias_rate)⌋`` bias-conflicting ones per group, as
            BiasCon does (0.9 in their protocol). Needs binary target and sensitive.
        preflight: Decode every image of the split once (progress bar) and drop those that
            fail, listing them in ``.skipped``. Without it an undecodable image raises
            :class:`~ceco_fair.errors.DataError` when read.
        cache_dir: Folder of the decoded-image cache: every image of the folder is decoded and
            resized once into a memory-mapped ``uint8`` array there (built on first use, shared
            by every split, seed and attribute pair, later runs and concurrent processes) and
            read from it, pixel for pixel as without it; ``None`` decodes on every read.

    Attributes:
        folder: The image folder.
        skipped: ``(file name, reason)`` for unparsable names and undecodable images.
        irregular: ``(file name, note)`` for names used despite an odd extension.
        n_classes: Number of target classes.
        n_groups: Number of sensitive groups.
        class_names: Names of the target classes.
        group_names: Names of the sensitive groups.

    Raises:
        CecoFairError: If an argument is invalid.
        DataError: If the folder is missing, holds no parsable image, or the split file is bad.

    """

    metric_kind: ClassVar[MetricKind] = "group"
    takes_rho: ClassVar[bool] = False
    validation_labels: ClassVar[str] = "groups"

    @classmethod
    def preflight(cls, options: Mapping[str, Any], splits: Sequence[str]) -> None:
        """Check the attribute options, that the folder holds parsable image names and a ``split_file``."""
        check_attribute_options(options["target"], options["sensitive"], options["age_bins"])
        cls.check_root(options["root"])
        if options["split_file"] is not None:
            read_split_file(options["split_file"])

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: Split = "train",
        target: Attribute = "gender",
        sensitive: Attribute = "race",
        *,
        race_binary: bool = True,
        age_bins: AgeBins = "biascon",
        image_size: int = 64,
        seed: int = 0,
        split_file: str | os.PathLike[str] | None = None,
        bias_rate: float | None = None,
        preflight: bool = False,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        _check_arguments(split, seed, bias_rate)
        check_attribute_options(target, sensitive, age_bins)
        check_image_size(image_size)
        folder = resolve_folder(root)
        records, skipped = scan_folder(folder)
        if not records:
            raise DataError(NO_IMAGES.format(folder=folder))
        table = pd.DataFrame([asdict(record) for record in records])
        target_codes, class_names = encode_attribute(target, table, race_binary=race_binary, age_bins=age_bins)
        group_codes, group_names = encode_attribute(sensitive, table, race_binary=race_binary, age_bins=age_bins)
        usable = (target_codes >= 0) & (group_codes >= 0)
        if not usable.all():
            logger.info("UTKFace: %d images fall outside the age bins", int((~usable).sum()))
        if split_file is None:
            cells = target_codes * len(group_names) + group_codes
            assigned = np.full(len(table), -1, dtype=np.int64)
            rng = np.random.default_rng([seed, _SPLIT_STREAM])
            assigned[usable] = stratified_assignment(cells[usable], rng)
            chosen = assigned == SPLITS.index(split)
        else:
            chosen = usable & self._listed(table, folder, skipped, split_file, split)
        if not chosen.any():
            raise DataError(EMPTY_SPLIT.format(split=split, n_usable=int(usable.sum()), folder=folder))
        rows = np.flatnonzero(chosen)
        super().__init__(
            [folder / name for name in table["filename"].iloc[rows]],
            target_codes[rows],
            group_codes[rows],
            table.iloc[rows][["filename", "age", "gender", "race"]],
            image_size=image_size,
            crop=None,
            skipped=skipped,
            cache_dir=cache_dir,
            cache_files=[folder / name for name in table["filename"]],
        )
        self.folder = folder
        self.split = split
        self.target_attribute = target
        self.sensitive_attribute = sensitive
        self.target_name = str(target)
        self.sensitive_name = str(sensitive)
        self.irregular = [(record.filename, record.irregular) for record in records if record.irregular]
        self.n_classes = len(class_names)
        self.n_groups = len(group_names)
        self.class_names = class_names
        self.group_names = group_names
        if preflight:
            self.verify()
        if bias_rate is not None and split == "train":
            if self.n_classes != 2 or self.n_groups != 2:
                raise CecoFairError(BIAS_RATE_NEEDS_BINARY.format(n_classes=self.n_classes, n_groups=self.n_groups))
            self.keep(
                bias_rate_mask(
                    self.targets.numpy(),
                    self.sensitive.numpy(),
                    bias_rate,
                    np.random.default_rng([seed, _SUBSAMPLE_STREAM]),
                )
            )
        logger.info("UTKFace %s: %d images (%s vs %s)", split, len(self), target, sensitive)

    @staticmethod
    def _listed(
        table: pd.DataFrame,
        folder: Path,
        skipped: list[tuple[str, str]],
        split_file: str | os.PathLike[str],
        split: str,
    ) -> npt.NDArray[np.bool_]:
        mapping = read_split_file(split_file)
        present = set(table["filename"]) | {name for name, _ in skipped}
        absent = [name for name in mapping if name not in present]
        if len(absent) == len(mapping):
            raise DataError(SPLIT_FILE_NO_MATCH.format(path=split_file, folder=folder))
        if absent:
            logger.warning(
                "split_file %s lists %d files not in %s (e.g. %s)",
                split_file,
                len(absent),
                folder,
                absent[:3],
            )
        chosen: npt.NDArray[np.bool_] = np.array([mapping.get(name) == split for name in table["filename"]], dtype=bool)
        return chosen

    @staticmethod
    def expected_layout() -> str:
        """Describe the folder layout UTKFace expects.

        Returns:
            A one-line description.

        """
        return EXPECTED_LAYOUT

    @classmethod
    def check_root(cls, root: str | os.PathLike[str]) -> Path:
        """Check cheaply (names only, no decoding) that a folder holds UTKFace images.

        Args:
            root: The folder holding ``UTKFace/``, or that folder itself.

        Returns:
            The image folder.

        Raises:
            DataError: If the folder is missing or holds no parsable image name; the message
                gives the expected layout.

        """
        folder = resolve_folder(root)
        names = (entry.name for entry in os.scandir(folder) if entry.is_file())
        if not any(isinstance(_parse(name), UTKFaceRecord) for name in names):
            raise DataError(NO_IMAGES.format(folder=folder))
        return folder
