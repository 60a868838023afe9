"""The kinds of problem the service answers with, and the agency's errors each one stands for.

Kept apart from the web framework: ``liara --api`` reads the same table the other way round, to
raise the agency's own error for a problem the service sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.temporal.errors import InvalidCrisisRequestError, LiaraError, TemporalUnavailableError
from cognition.liara.errors import (
    CrisisAlreadyExistsError,
    CrisisFailedError,
    CrisisNotFoundError,
    CrisisNotRunningError,
    CrisisWaitTimeoutError,
    DecisionRefusedError,
    IdempotencyConflictError,
    PlaybookNotFoundError,
    TemporalBusyError,
    TemporalSetupError,
)
from cognition.liara.service.tokens import TokenFileError


@dataclass(frozen=True)
class ProblemType:
    slug: str
    status: int
    title: str


UNAUTHORIZED = ProblemType("unauthorized", 401, "Authentication required")
FORBIDDEN = ProblemType("forbidden", 403, "Not allowed")
NOT_FOUND = ProblemType("not-found", 404, "Not found")
METHOD_NOT_ALLOWED = ProblemType("method-not-allowed", 405, "Method not allowed")
BODY_TOO_LARGE = ProblemType("body-too-large", 413, "Request body too large")
INVALID_REQUEST = ProblemType("invalid-request", 422, "Invalid request")
TOO_MANY_STREAMS = ProblemType("too-many-streams", 429, "Too many open event streams")
TOO_MANY_LONG_POLLS = ProblemType("too-many-long-polls", 429, "Too many long polls")
#: A token's start quotas; answered with ``Retry-After``.
TOO_MANY_STARTS = ProblemType("too-many-starts", 429, "Too many crisis starts")
TOO_MANY_RUNNING_CRISES = ProblemType("too-many-running-crises", 429, "Too many running crises")
INTERNAL = ProblemType("internal", 500, "Internal error")
#: Temporal refused for now; answered with ``Retry-After``.
TEMPORAL_BUSY = ProblemType("temporal-busy", 429, "Temporal busy")
RETRY_AFTER_SECONDS = 1

#: The agency's errors by status; a subclass takes the entry of its nearest listed ancestor.
LIARA_PROBLEMS: dict[type[LiaraError], ProblemType] = {
    InvalidCrisisRequestError: INVALID_REQUEST,
    CrisisNotFoundError: ProblemType("crisis-not-found", 404, "No such crisis"),
    PlaybookNotFoundError: ProblemType("playbook-not-found", 404, "No such playbook"),
    CrisisAlreadyExistsError: ProblemType("crisis-exists", 409, "Crisis id already used"),
    IdempotencyConflictError: ProblemType("idempotency-conflict", 409, "Idempotency key used for another request"),
    CrisisNotRunningError: ProblemType("crisis-not-running", 409, "Crisis can no longer change"),
    DecisionRefusedError: ProblemType("decision-refused", 409, "Decision refused"),
    CrisisFailedError: ProblemType("crisis-ended", 409, "Crisis ended without a result"),
    CrisisWaitTimeoutError: ProblemType("worker-timeout", 504, "No worker answered in time"),
    TemporalBusyError: TEMPORAL_BUSY,
    TemporalUnavailableError: ProblemType("temporal-unavailable", 503, "Temporal unavailable"),
    TemporalSetupError: ProblemType("temporal-setup", 503, "Temporal namespace not set up"),
    TokenFileError: ProblemType("token-file", 503, "Token file unusable"),
    LiaraError: ProblemType("service-configuration", 503, "Service misconfigured"),
}
