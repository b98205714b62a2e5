"""Progress bars of long work, with one switch for the whole process (the CLI's ``--quiet``).

Every bar of the package goes through :func:`progress_bar`, so that ``python -m ceco_fair.run
--quiet`` shows none: not the training epochs', nor the probe's, nor a decoded-image cache's build.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any, NoReturn, TypeVar, overload

from tqdm.auto import tqdm

Item = TypeVar("Item")


class _Switch:
    """Whether progress bars are shown in this process (they are unless switched off)."""

    shown = True


@overload
def progress_bar(iterable: Iterable[Item], *, hidden: bool | None = False, **options: Any) -> tqdm[Item]: ...


@overload
def progress_bar(iterable: None = None, *, hidden: bool | None = False, **options: Any) -> tqdm[NoReturn]: ...


def progress_bar(iterable: Iterable[Any] | None = None, *, hidden: bool | None = False, **options: Any) -> tqdm[Any]:
    """A ``tqdm`` bar over ``iterable``, hidden when ``hidden`` or while bars are switched off.

    Args:
        iterable: what the bar iterates over (``None`` for a bar updated by hand).
        hidden: hide this bar; ``None``: hide it when the output is not a terminal (tqdm's rule).
        **options: ``tqdm`` options (``desc``, ``total``, ``unit``, ``leave``, ...).
    """
    return tqdm(iterable, disable=True if not _Switch.shown else hidden, **options)


@contextlib.contextmanager
def progress_bars(shown: bool) -> Iterator[None]:
    """Show (``True``) or hide every progress bar made inside the block; the previous setting comes back after."""
    before = _Switch.shown
    _Switch.shown = shown
    try:
        yield
    finally:
        _Switch.shown = before
