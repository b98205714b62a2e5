"""Exceptions that carry a one-line, user-facing message.

Every error a user can cause by bad input (a protocol key, a data folder, a tensor shape passed
to a public function) derives from :class:`CecoFairError`, itself a :class:`ValueError`, so the
command line can print the message alone and exit with status 2.
"""

from __future__ import annotations


class CecoFairError(ValueError):
    """Base class of user-facing errors: the message alone says what is wrong and where."""


class ProtocolError(CecoFairError):
    """A protocol file is invalid (unknown key, wrong type, value out of range, empty grid)."""


class DataError(CecoFairError):
    """A dataset folder or file is missing, truncated or malformed."""
