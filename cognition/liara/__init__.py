"""The Liara agency: the Python API, command line and dedicated worker over the crisis engine."""

from app.temporal.errors import CrisisRecordError, InvalidCrisisRequestError, LiaraError, TemporalUnavailableError
from cognition.liara.errors import (
    CrisisAlreadyExistsError,
    CrisisFailedError,
    CrisisNotFoundError,
    CrisisNotRunningError,
    CrisisWaitTimeoutError,
    DecisionRefusedError,
    IdempotencyConflictError,
    TemporalBusyError,
    TemporalSetupError,
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
