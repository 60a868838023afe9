"""Typed errors of the Liara Temporal Agency. Each message is one sentence a user can act on."""

from __future__ import annotations

from temporalio.exceptions import FailureError


class LiaraError(Exception):
    """Base class of every error the agency raises for a problem a user can fix."""


class InvalidCrisisRequestError(LiaraError, ValueError):
    """The crisis request breaks a rule; nothing was started."""


class TemporalUnavailableError(LiaraError, ConnectionError):
    """The Temporal server cannot be reached or refused the connection settings."""


class TemporalBusyError(TemporalUnavailableError):
    """Temporal refused a request for now (a rate limit, too many updates in flight on a crisis): retry it."""


class TemporalSetupError(LiaraError):
    """The Temporal namespace lacks something crises need (such as their search attributes)."""


class CrisisNotRunningError(LiaraError):
    """The crisis has ended (or its phases are over), so it can no longer be changed."""


class DecisionRefusedError(LiaraError):
    """An approve or reject that the crisis refused: another decision came first, the approval
    timed out, or the phase does not await approval. Exactly one decision per phase counts.
    """


class CrisisNotFoundError(LiaraError, LookupError):
    """No crisis workflow with this id exists in the namespace."""


class PlaybookNotFoundError(LiaraError, LookupError):
    """No playbook of that name in the playbooks directory."""


class CrisisAlreadyExistsError(LiaraError):
    """A crisis with this id was already started; crisis ids are never reused."""


class IdempotencyConflictError(LiaraError):
    """An idempotency key was used before for another request; nothing new was started."""


class CrisisWaitTimeoutError(LiaraError, TimeoutError):
    """The crisis did not finish within the time the caller was willing to wait."""


class CrisisFailedError(LiaraError):
    """The crisis workflow itself ended without a result (failed, cancelled, terminated, timed out)."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


class CrisisRecordError(LiaraError, OSError):
    """A crisis record cannot be read or written."""


def innermost_message(err: BaseException) -> str:
    """The message of the root cause of a chain: for a failed activity, the agent's own error."""
    while err.__cause__ is not None:
        err = err.__cause__
    # A Temporal failure's str() prefixes its error type; the message alone reads better.
    message = err.message if isinstance(err, FailureError) else str(err)
    return message or type(err).__name__
