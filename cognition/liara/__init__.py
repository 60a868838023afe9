"""The Liara agency: the Python API, command line and dedicated worker over the crisis engine."""

from app.temporal.errors import (
    CrisisAlreadyExistsError,
    CrisisFailedError,
    CrisisNotFoundError,
    CrisisNotRunningError,
    CrisisRecordError,
    CrisisWaitTimeoutError,
    DecisionRefusedError,
    IdempotencyConflictError,
    InvalidCrisisRequestError,
    LiaraError,
    TemporalBusyError,
    TemporalSetupError,
    TemporalUnavailableError,
)

__all__ = [
    "CrisisAlreadyExistsError",
    "CrisisFailedError",
    "CrisisNotFoundError",
    "CrisisNotRunningError",
    "CrisisRecordError",
    "CrisisWaitTimeoutError",
    "DecisionRefusedError",
    "IdempotencyConflictError",
    "InvalidCrisisRequestError",
    "LiaraError",
    "TemporalBusyError",
    "TemporalSetupError",
    "TemporalUnavailableError",
]
