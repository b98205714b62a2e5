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


class UserCodeError(CecoFairError):
    """Code a protocol names (a dataset, a loss, an encoder factory) raised or broke its contract.

    The message is one line: where it happened (``run <id>, epoch 1, step 3``), the user object
    and what it did. ``details`` keeps the full traceback of the user's exception for the run's log
    file (and stderr with ``--traceback``).

    Args:
        message: the user object and what it did (``methods[1] 'm:Loss' raised ValueError: ...``).
        where: the places it happened, outermost first (``run <id>``, ``epoch 1, step 3``).
        details: the formatted traceback of the user's exception ("" when nothing was raised).
    """

    def __init__(self, message: str, *, where: tuple[str, ...] = (), details: str = "") -> None:
        self.message = message
        self.where = where
        self.details = details
        super().__init__(f"{', '.join(where)}: {message}" if where else message)

    def at(self, *where: str) -> UserCodeError:
        """The same error, located further out: ``where`` goes before the places already named."""
        return UserCodeError(self.message, where=(*where, *self.where), details=self.details)


def with_prefix(error: CecoFairError, prefix: str) -> CecoFairError:
    """``error`` with ``prefix: `` before its message (a file name), of the same type and details."""
    if isinstance(error, UserCodeError):
        return error.at(prefix)
    return type(error)(f"{prefix}: {error}")
