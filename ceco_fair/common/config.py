"""Typed configuration from plain mappings: unknown keys, wrong types and bad values fail early.

:func:`from_mapping` builds a (frozen) dataclass from a YAML mapping, checking every key against the
dataclass's fields (suggesting the closest valid name), every value against the field's type, and
re-raising the dataclass's own range checks with the key's full path.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from ceco_fair.errors import CecoFairError, ProtocolError

T = TypeVar("T")


def closest(name: object, valid: Iterable[str], *, most: int = 1, fold_case: bool = False, listed: bool = True) -> str:
    """The one closest-name hint of every error message: `` (did you mean 'x'?)``.

    Args:
        name: the value given (written with ``str``).
        valid: the valid names.
        most: how many close names to suggest at most (joined by ``or``).
        fold_case: whether names equal to ``name`` up to case come first.
        listed: without a close name, whether to list the valid names (`` (valid: a, b)``) or
            return ``""`` (for a message that lists them itself).

    Returns:
        The hint, with its leading space, or ``""``.
    """
    valid = sorted(valid)
    text = str(name)
    folded = [choice for choice in valid if choice.lower() == text.lower()] if fold_case else []
    matches = list(dict.fromkeys(folded + difflib.get_close_matches(text, valid, n=most, cutoff=0.5)))
    if matches:
        return f" (did you mean {' or '.join(repr(match) for match in matches)}?)"
    return f" (valid: {', '.join(valid)})" if valid and listed else ""


def check_keys(mapping: Mapping[str, Any], valid: Iterable[str], path: str) -> None:
    """Raise :class:`ProtocolError` naming the first key of ``mapping`` not in ``valid``."""
    valid = set(valid)
    for key in mapping:
        if key not in valid:
            where = f"{path}.{key}" if path else str(key)
            raise ProtocolError(f"{where}: unknown key{closest(str(key), valid)}")


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is tuple:
        return f"a list of {len(typing.get_args(annotation))} numbers"
    if dataclasses.is_dataclass(annotation):
        return "a mapping"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def coerce(value: Any, annotation: Any, path: str) -> Any:
    """Check ``value`` against ``annotation`` and convert it (lists to tuples, mappings to dataclasses).

    Raises:
        ProtocolError: the value does not fit the type; the message names ``path``.
    """
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        errors: list[str] = []
        for option in typing.get_args(annotation):
            try:
                return coerce(value, option, path)
            except ProtocolError as error:
                errors.append(str(error))
        raise ProtocolError(f"{path}: expected {_type_name(annotation)}, got {value!r}")
    if annotation is type(None):
        if value is None:
            return None
    elif origin is typing.Literal:
        if value in typing.get_args(annotation):
            return value
    elif origin is tuple:
        args = typing.get_args(annotation)
        if isinstance(value, list | tuple) and len(value) == len(args):
            return tuple(
                coerce(item, arg, f"{path}[{i}]") for i, (item, arg) in enumerate(zip(value, args, strict=False))
            )
    elif origin in (Mapping, dict) or annotation in (Mapping, dict):
        if isinstance(value, Mapping):
            return dict(value)
    elif origin is list:
        (arg,) = typing.get_args(annotation)
        if isinstance(value, list):
            return [coerce(item, arg, f"{path}[{i}]") for i, item in enumerate(value)]
    elif dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        if isinstance(value, Mapping):
            return from_mapping(annotation, value, path)
    elif annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif annotation is str:
        if isinstance(value, str):
            return value
    else:
        return value
    raise ProtocolError(f"{path}: expected {_type_name(annotation)}, got {value!r}")


def from_mapping(cls: type[T], mapping: Mapping[str, Any], path: str) -> T:
    """Build dataclass ``cls`` from ``mapping``, validating keys, types and values.

    Args:
        cls: a dataclass whose fields all have defaults or appear in ``mapping``.
        mapping: the configuration section.
        path: the section's dotted path, used in messages (``train.optimizer``).

    Raises:
        ProtocolError: unknown key, missing required key, wrong type or invalid value.
    """
    if not isinstance(mapping, Mapping):
        raise ProtocolError(f"{path}: expected a mapping, got {mapping!r}")
    assert dataclasses.is_dataclass(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    check_keys(mapping, fields, path)
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for name, field in fields.items():
        where = f"{path}.{name}" if path else name
        if name in mapping:
            values[name] = coerce(mapping[name], hints[name], where)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ProtocolError(f"{where}: required key is missing")
    try:
        return cls(**values)
    except ProtocolError:
        raise
    except CecoFairError as error:
        message = str(error)
        raise ProtocolError(message if message.startswith(path) or not path else f"{path}: {message}") from None


def to_plain(value: Any) -> Any:
    """A dataclass tree as plain dicts, lists and scalars (for YAML / JSON)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    return value
