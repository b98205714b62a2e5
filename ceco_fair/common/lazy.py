"""The one lazy-export helper: a package's public names imported from their modules on first access.

A package lists each lazy name once with its module (``{"group_metrics": "ceco_fair.metrics.group"}``)
and sets ``__getattr__ = lazy_exports(__name__, _LAZY)``, so importing the package loads none of
them (nor torch) until one is read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

NO_ATTRIBUTE = "module {package!r} has no attribute {name!r}"


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) that imports each exported name from its module when first read.

    Args:
        package: the package's ``__name__`` (named in the error).
        exports: public name -> the module that defines it.

    Returns:
        ``__getattr__(name)``: the attribute of ``exports[name]``'s module.

    Raises:
        AttributeError: (from the returned function) for a name not in ``exports``.
    """

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(import_module(exports[name]), name)
        raise AttributeError(NO_ATTRIBUTE.format(package=package, name=name))

    return __getattr__
