"""Errors the agency raises (the Python API, the command line, the service): each message is one
sentence a user can act on. The engine's own errors (``LiaraError``, the base of all of them,
``InvalidCrisisRequestError``, ``TemporalUnavailableError``, ``CrisisRecordError``) are in
app.temporal.errors.
"""

from __future__ import annotations

from app.temporal.errors import LiaraError, TemporalUnavailableError


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
