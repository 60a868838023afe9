"""Typed errors of the engine, and their base: each message is one sentence a user can act on. The
errors only the agency raises are in cognition.liara.errors.
"""

from __future__ import annotations

from temporalio.exceptions import FailureError


class LiaraError(Exception):
    """Base class of every error the agency raises for a problem a user can fix."""


class InvalidCrisisRequestError(LiaraError, ValueError):
    """The crisis request breaks a rule; nothing was started."""


class TemporalUnavailableError(LiaraError, ConnectionError):
    """The Temporal server cannot be reached or refused the connection settings."""


class CrisisRecordError(LiaraError, OSError):
    """A crisis record cannot be read or written."""


class CrisisIdTakenError(CrisisRecordError):
    """A new crisis would replace the record of an earlier crisis with the same id (whose workflow
    Temporal no longer has): it must not start; retrying cannot help.
    """


def innermost_message(err: BaseException) -> str:
    """The message of the root cause of a chain: for a failed activity, the agent's own error."""
    while err.__cause__ is not None:
        err = err.__cause__
    # A Temporal failure's str() prefixes its error type; the message alone reads better.
    message = err.message if isinstance(err, FailureError) else str(err)
    return message or type(err).__name__
