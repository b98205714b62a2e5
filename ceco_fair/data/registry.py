"""Datasets by name, their options, and cheap checks of their files before any work starts.

Every dataset implements :class:`~ceco_fair.data.base.FairnessDataset`. A name is a key of
:data:`DATASETS` or ``"package.module:ClassName"``: a class of your own, imported when named,
constructed as ``ClassName(split=..., **options)`` (plus ``seed=`` when its signature has a
``seed`` parameter) and checked against the protocol.
"""

from __future__ import annotations

import contextlib
import inspect
import typing
from collections.abc import Iterator, Mapping, Sequence
from importlib import import_module
from typing import Any, Final

from ceco_fair.common.config import closest
from ceco_fair.common.user_code import load_callable, user_code
from ceco_fair.data.base import FairnessDataset, check_dataset, check_dataset_class
from ceco_fair.errors import CecoFairError


class _BuiltinDatasets(Mapping[str, type[FairnessDataset]]):
    """Built-in dataset classes by name, each module imported only when its class is asked for."""

    def __init__(self, paths: Mapping[str, str]) -> None:
        self._paths = dict(paths)

    def __getitem__(self, name: str) -> type[FairnessDataset]:
        module, _, attribute = self._paths[name].partition(":")
        factory: type[FairnessDataset] = getattr(import_module(module), attribute)
        return factory

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)


DATASETS: Final[Mapping[str, type[FairnessDataset]]] = _BuiltinDatasets(
    {
        "biased_mnist": "ceco_fair.data.biased_mnist:BiasedMNIST",
        "colored_mnist": "ceco_fair.data.biased_mnist:ColoredMNIST",
        "utkface": "ceco_fair.data.utkface:UTKFace",
        "celeba": "ceco_fair.data.celeba:CelebA",
    }
)
"""Built-in datasets by name; a class's module is imported on first lookup."""
REQUIRED: Final = inspect.Parameter.empty
"""Default reported by :func:`dataset_options` for an option that must be given."""

FACTORY_SEPARATOR: Final = ":"
UNKNOWN_DATASET = "unknown dataset {value!r}: expected one of {allowed}{hint}"
UNKNOWN_OPTION = "unknown option {key!r} for dataset {name!r}: expected one of {allowed}{hint}"
MISSING_OPTION = "dataset {name!r} needs option {key!r}"


def import_factory(name: str) -> type[FairnessDataset]:
    """Import a user's dataset class named ``"package.module:ClassName"`` and check its class members.

    Args:
        name: The module path and the class name, joined by ``:``.

    Returns:
        The class.

    Raises:
        CecoFairError: If the module cannot be imported, lacks the class, or the class lacks
            ``metric_kind``, ``takes_rho`` or ``preflight``.
    """
    factory = load_callable(name, "data.dataset", "a built-in dataset")
    if not isinstance(factory, type):
        raise CecoFairError(f"data.dataset: {name} is not a class")
    check_dataset_class(factory, name)
    return factory


def dataset_class(name: str) -> type[FairnessDataset]:
    """Look a dataset class up by name.

    Args:
        name: A key of :data:`DATASETS` or ``"package.module:ClassName"``.

    Returns:
        The class.

    Raises:
        CecoFairError: If the name is unknown (with the closest valid name) or names a class
            that cannot be imported or lacks the protocol's class members.

    """
    if FACTORY_SEPARATOR in name:
        return import_factory(name)
    if name not in DATASETS:
        raise CecoFairError(
            UNKNOWN_DATASET.format(value=name, allowed=list(DATASETS), hint=closest(name, DATASETS, listed=False))
        )
    return DATASETS[name]


def calling_dataset(name: str, step: str) -> contextlib.AbstractContextManager[None]:
    """Where a user dataset class is called: its exceptions become one line naming it and ``step``.

    Built-in classes are called directly (their errors are :class:`CecoFairError` already).
    """
    if FACTORY_SEPARATOR not in name:
        return contextlib.nullcontext()
    return user_code(f"data.dataset {name!r} ({step})")


def dataset_options(name: str) -> dict[str, Any]:
    """List the keyword options of a dataset with their defaults.

    Args:
        name: A key of :data:`DATASETS` or ``"package.module:ClassName"``.

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
        if parameter.name != "split" and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    }


def dataset_option_types(name: str) -> dict[str, Any]:
    """List the declared types of a dataset's keyword options.

    A default does not always tell an option's type (``source="embedded"`` also accepts a
    mapping such as ``{"idx_dir": PATH}``); the annotations do.

    Args:
        name: A key of :data:`DATASETS` or ``"package.module:ClassName"``.

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
        name: A key of :data:`DATASETS` or ``"package.module:ClassName"``.
        options: Keyword options meant for the dataset (``split`` not included).

    Raises:
        CecoFairError: If an option is unknown (with the closest valid one) or a required one
            is missing.

    """
    known = dataset_options(name)
    for key in options:
        if key not in known:
            raise CecoFairError(
                UNKNOWN_OPTION.format(key=key, name=name, allowed=list(known), hint=closest(key, known, listed=False))
            )
    for key, default in known.items():
        if default is REQUIRED and key not in options:
            raise CecoFairError(MISSING_OPTION.format(name=name, key=key))


def takes_seed(name: str) -> bool:
    """Whether the dataset's constructor has a ``seed`` parameter (the runner passes the run's seed)."""
    return "seed" in dataset_options(name)


def build_dataset(name: str, split: str, **kwargs: Any) -> FairnessDataset:
    """Build one split of a dataset and check it against :class:`FairnessDataset`.

    Args:
        name: A key of :data:`DATASETS` or ``"package.module:ClassName"``.
        split: ``"train"``, ``"valid"`` or ``"test"``.
        **kwargs: The dataset's options (see :func:`dataset_options`).

    Returns:
        The dataset.

    Raises:
        CecoFairError: If the name or an option is invalid, or the built dataset lacks a
            member of the protocol.
        DataError: If the data files are missing or malformed.
        UserCodeError: If a user dataset class raised another exception (named on one line).

    """
    check_options(name, kwargs)
    factory = dataset_class(name)
    with calling_dataset(name, f"split {split!r}"):
        dataset = factory(split=split, **kwargs)  # type: ignore[call-arg]
    return check_dataset(dataset, name)


def preflight(name: str, *, splits: Sequence[str] = ("train", "test"), **kwargs: Any) -> None:
    """Check cheaply, before training, that a dataset's files are where they should be.

    Each dataset class's ``preflight`` says what it checks (for MNIST: the IDX files' headers
    and sizes; UTKFace: parsable image names and the ``split_file``; CelebA: the tables, the
    attribute names and at least one listed image). Nothing is decoded.

    Args:
        name: A key of :data:`DATASETS` or ``"package.module:ClassName"``.
        splits: Splits that will be built.
        **kwargs: The dataset's options.

    Raises:
        CecoFairError: If the name or an option is invalid.
        DataError: If files or folders are missing or incomplete; the message gives the
            expected layout.
        UserCodeError: If a user dataset's ``preflight`` raised another exception.

    """
    check_options(name, kwargs)
    factory = dataset_class(name)
    with calling_dataset(name, "preflight"):
        factory.preflight({**dataset_options(name), **kwargs}, splits)
