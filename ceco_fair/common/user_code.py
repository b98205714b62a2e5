"""Code a protocol names: ``"package.module:Name"`` resolved to an object, and keyword checks.

A protocol can name Python code to run, as a script can: an encoder factory (``encoder.arch``), a
loss class (a method's ``name``) or a dataset class (``data.dataset``). Validation imports the module
and checks the keyword arguments against the callable's signature without calling it, so
``--dry-run`` runs none of it. Every call into that code goes through :func:`user_code`, which turns
whatever it raises into one :class:`~ceco_fair.errors.UserCodeError` line naming the object, and
keeps the traceback for the log.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ceco_fair.common.config import closest
from ceco_fair.errors import CecoFairError, UserCodeError

MESSAGE_LIMIT = 300
"""Characters of a user exception's message kept in the one-line error (the log has it all)."""


def is_user_spec(name: object) -> bool:
    """Whether ``name`` has the form ``"package.module:Name"`` (a colon between two non-empty parts)."""
    if not isinstance(name, str):
        return False
    module_name, _, attribute = name.partition(":")
    return bool(module_name) and bool(attribute)


def spec_attribute(spec: str) -> str:
    """The ``Name`` of ``"package.module:Name"``."""
    return spec.partition(":")[2]


def load_callable(spec: str, key: str, expected: str) -> Callable[..., Any]:
    """Import ``"package.module:Name"`` and return the callable it names.

    Args:
        spec: ``"package.module:Name"``.
        key: the protocol key holding ``spec``, named in errors (``encoder.arch``).
        expected: what the key accepts, for the message of a malformed ``spec``.

    Raises:
        CecoFairError: malformed spec, a module that fails to import, or no such callable.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise CecoFairError(f"{key} {spec!r}: expected {expected} or 'package.module:Name'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise CecoFairError(f"{key} {spec!r}: cannot import module {module_name!r} ({error})") from None
    except Exception as error:  # user code: any failure while importing it
        raise CecoFairError(
            f"{key} {spec!r}: importing {module_name!r} raised {type(error).__name__}: {error}"
        ) from None
    found = getattr(module, attribute, None)
    if not callable(found):
        raise CecoFairError(f"{key} {spec!r}: {module_name} has no callable {attribute!r}")
    return found  # type: ignore[no-any-return]


def check_call_arguments(function: Callable[..., Any], kwargs: Mapping[str, Any], key: str, spec: str) -> None:
    """Check that ``function(**kwargs)`` fits its signature, without calling it.

    Every name must be a keyword parameter (or the function takes ``**kwargs``), and every
    parameter without a default must be given.

    Args:
        function: a class (its ``__init__`` is checked) or any callable.
        kwargs: the keyword arguments the protocol gives.
        key: the protocol key holding them, named in errors (``methods[0]``).
        spec: the ``"package.module:Name"`` of ``function``, named in errors.

    Raises:
        CecoFairError: an unknown keyword (with the closest valid name) or a missing one.
    """
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # builtins without a signature: nothing to check
        return
    parameters = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        accepted = None
    else:
        accepted = [
            p.name
            for p in parameters
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        ]
    if accepted is not None:
        for name in kwargs:
            if name not in accepted:
                raise CecoFairError(f"{key}.{name}: {spec} takes no keyword {name!r}{closest(str(name), accepted)}")
    for parameter in parameters:
        required = parameter.default is inspect.Parameter.empty and parameter.kind in (
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            inspect.Parameter.KEYWORD_ONLY,
        )
        if required and parameter.name not in kwargs:
            raise CecoFairError(f"{key}.{parameter.name}: {spec} requires the keyword {parameter.name!r}")


def describe_exception(error: BaseException) -> str:
    """``ValueError: the message`` on one line (whitespace collapsed, at most :data:`MESSAGE_LIMIT` characters)."""
    text = " ".join(str(error).split())
    if len(text) > MESSAGE_LIMIT:
        text = text[: MESSAGE_LIMIT - 3] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@contextlib.contextmanager
def user_code(subject: str) -> Iterator[None]:
    """Run a block that calls user code; an exception it raises becomes one :class:`UserCodeError` line.

    A :class:`CecoFairError` passes unchanged (user code may raise one on purpose, as a dataset's
    ``preflight`` raises :class:`~ceco_fair.errors.DataError`); ``KeyboardInterrupt`` too.

    Args:
        subject: the user object, as the protocol names it (``methods[1] 'mylosses:MyLoss'``).

    Raises:
        UserCodeError: ``<subject> raised <Type>: <message>``, the traceback in ``details``.
    """
    try:
        yield
    except CecoFairError:
        raise
    except Exception as error:  # user code: whatever it raises is reported in one line
        raise UserCodeError(f"{subject} raised {describe_exception(error)}", details=traceback.format_exc()) from None


def call_user(function: Callable[..., Any], kwargs: Mapping[str, Any], key: str, spec: str) -> Any:
    """Call ``function(**kwargs)``; any exception becomes one :class:`UserCodeError` line naming ``key``."""
    with user_code(f"{key} {spec!r}"):
        return function(**kwargs)
