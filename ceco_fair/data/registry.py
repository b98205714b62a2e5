"""Datasets by name, their options, and cheap checks of their files before any work starts.

Every dataset yields ``(image uint8 [3, H, W], target int, sensitive int)`` and exposes
``targets``, ``sensitive`` (int64 ``[n]``), ``n_classes``, ``n_groups``, ``class_names`` and
``group_names``.
"""

from __future__ import annotations

import difflib
import inspect
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Final

from torch.utils.data import Dataset

from ceco_fair.data.biased_mnist import BiasedMNIST, ColoredMNIST
from ceco_fair.data.celeba import CelebA
from ceco_fair.data.mnist_sources import preflight_mnist_source
from ceco_fair.data.utkface import UTKFace, check_attribute_options, read_split_file
from ceco_fair.errors import CecoFairError

DATASETS: Final[dict[str, type[Dataset[Any]]]] = {
    "biased_mnist": BiasedMNIST,
    "colored_mnist": ColoredMNIST,
    "utkface": UTKFace,
    "celeba": CelebA,
}
REQUIRED: Final = inspect.Parameter.empty
"""Default reported by :func:`dataset_options` for an option that must be given."""

MNIST_DATASETS: Final = ("biased_mnist", "colored_mnist")
_MNIST_SPLIT_OF: Final = {"train": "train", "valid": "train", "test": "test"}

UNKNOWN_DATASET = "unknown dataset {value!r}: expected one of {allowed}{hint}"
UNKNOWN_OPTION = "unknown option {key!r} for dataset {name!r}: expected one of {allowed}{hint}"
MISSING_OPTION = "dataset {name!r} needs option {key!r}"


def _hint(value: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def dataset_class(name: str) -> type[Dataset[Any]]:
    """Look a dataset class up by name.

    Args:
        name: A key of :data:`DATASETS`.

    Returns:
        The class.

    Raises:
        CecoFairError: If the name is unknown (with the closest valid name).

    """
    if name not in DATASETS:
        raise CecoFairError(
            UNKNOWN_DATASET.format(
                value=name, allowed=list(DATASETS), hint=_hint(name, list(DATASETS))
            )
        )
    return DATASETS[name]


def dataset_options(name: str) -> dict[str, Any]:
    """List the keyword options of a dataset with their defaults.

    Args:
        name: A key of :data:`DATASETS`.

    Returns:
        Option name -> default, in signature order, without ``split``; options without a
        default map to :data:`REQUIRED`.

    Raises:
        CecoFairError: If the name is unknown.

    """
    signature = inspect.signature(dataset_class(name).__init__)
    return {
        parameter.name: parameter.default
        for parameter in list(signature.parameters.values())[1:]
        if parameter.name != "split"
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    }


def dataset_option_types(name: str) -> dict[str, Any]:
    """List the declared types of a dataset's keyword options.

    A default does not always tell an option's type (``source="embedded"`` also accepts a
    mapping such as ``{"idx_dir": PATH}``); the annotations do.

    Args:
        name: A key of :data:`DATASETS`.

    Returns:
        Option name -> resolved annotation (e.g. ``str | Mapping[str, object]``), for the
        options of :func:`dataset_options`.

    Raises:
        CecoFairError: If the name is unknown.
    """
    hints = typing.get_type_hints(dataset_class(name).__init__)
    return {option: hints.get(option, Any) for option in dataset_options(name)}


def check_options(name: str, options: Mapping[str, Any]) -> None:
    """Reject unknown option names and missing required ones.

    Args:
        name: A key of :data:`DATASETS`.
        options: Keyword options meant for the dataset (``split`` not included).

    Raises:
        CecoFairError: If an option is unknown (with the closest valid one) or a required one
            is missing.

    """
    known = dataset_options(name)
    for key in options:
        if key not in known:
            raise CecoFairError(
                UNKNOWN_OPTION.format(
                    key=key, name=name, allowed=list(known), hint=_hint(key, list(known))
                )
            )
    for key, default in known.items():
        if default is REQUIRED and key not in options:
            raise CecoFairError(MISSING_OPTION.format(name=name, key=key))


def build_dataset(name: str, split: str, **kwargs: Any) -> Dataset[Any]:
    """Build one split of a dataset.

    Args:
        name: A key of :data:`DATASETS`.
        split: ``"train"``, ``"valid"`` or ``"test"``.
        **kwargs: The dataset's options (see :func:`dataset_options`).

    Returns:
        The dataset.

    Raises:
        CecoFairError: If the name or an option is invalid.
        DataError: If the data files are missing or malformed.

    """
    check_options(name, kwargs)
    return dataset_class(name)(split=split, **kwargs)  # type: ignore[call-arg]


def preflight(name: str, *, splits: Sequence[str] = ("train", "test"), **kwargs: Any) -> None:
    """Check cheaply, before training, that a dataset's files are where they should be.

    MNIST sources: the needed IDX files exist and are complete (headers and sizes only).
    UTKFace: the folder holds parsable image names; a ``split_file`` is readable. CelebA: the
    tables and image folder exist, the attribute names are valid, at least one listed image is
    present. Nothing is decoded.

    Args:
        name: A key of :data:`DATASETS`.
        splits: Splits that will be built.
        **kwargs: The dataset's options.

    Raises:
        CecoFairError: If the name or an option is invalid.
        DataError: If files or folders are missing or incomplete; the message gives the
            expected layout.

    """
    check_options(name, kwargs)
    options = {**dataset_options(name), **kwargs}
    if name in MNIST_DATASETS:
        needed = sorted({_MNIST_SPLIT_OF.get(split, split) for split in splits})
        preflight_mnist_source(options["source"], needed)
    elif name == "utkface":
        check_attribute_options(options["target"], options["sensitive"], options["age_bins"])
        UTKFace.check_root(options["root"])
        if options["split_file"] is not None:
            read_split_file(options["split_file"])
    else:
        CelebA.check_root(options["root"], target=options["target"], sensitive=options["sensitive"])
