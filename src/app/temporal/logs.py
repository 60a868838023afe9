"""Worker logging: the quick reference's ``LEVEL - message`` lines, or one JSON object per line.

Every record a worker logs carries ``crisis_id``, ``workflow_id`` and ``phase_id`` attributes
(None when unknown), whatever its format. The workflow id is the SDK's: the ``temporal_workflow``
details its workflow logger adds, or, for anything logged while an activity runs (executors
included, whatever logger they use), the activity's own info. Liara adds only what the SDK does
not know:

- for activities, :class:`CrisisLogInterceptor` (on the worker) keeps the crisis id and phase id
  of the activity's input for everything logged while it runs;
- workflow code passes ``extra={"crisis_id": ..., "phase_id": ...}`` to ``workflow.logger``.

The text format shows none of them (its lines stay exactly as the quick reference prints them);
``--log-format json`` writes them as keys of each line when they are known.

A failed attempt of an agent or of a webhook delivery is one line (:func:`log_failed_attempt`):
what failed, on which attempt, and when the next one comes. The SDK would also log each such
failure itself, as "Completing activity as failed" with the whole traceback, on every retry:
that record is left out for a failure logged here (other failures, such as a bug raising an
unexpected exception, keep it). The failure category ``BENIGN`` would quiet the SDK as well, but
it also drops the failure from the SDK's metrics (``temporal_activity_execution_failed``), which
the monitoring relies on.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

CRISIS_FIELDS = ("crisis_id", "workflow_id", "phase_id")

#: The crisis and phase of the activity running in this context.
_context: ContextVar[Mapping[str, str | None] | None] = ContextVar("liara_crisis_log_context", default=None)


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


@contextmanager
def crisis_log_context(crisis_id: str | None, *, phase_id: str | None = None) -> Iterator[None]:
    """Records logged inside carry this crisis (and phase)."""
    token = _context.set({"crisis_id": crisis_id, "phase_id": phase_id})
    try:
        yield
    finally:
        _context.reset(token)


def crisis_fields_of(argument: object) -> tuple[str | None, str | None]:
    """``(crisis_id, phase_id)`` of an activity's input: every crisis activity takes a model with
    a ``crisis_id``; a phase's comes from its ``phase`` (a mission) or ``outcome`` (a log entry).
    """
    crisis_id = getattr(argument, "crisis_id", None)
    phase = getattr(argument, "phase", None) or getattr(argument, "outcome", None)
    phase_id = getattr(phase, "phase_id", None)
    return (
        crisis_id if isinstance(crisis_id, str) else None,
        phase_id if isinstance(phase_id, str) else None,
    )


class CrisisLogInterceptor(Interceptor):
    """Worker interceptor: records logged while an activity runs carry its crisis, workflow and phase ids."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _CrisisLogActivityInbound(next)


class _CrisisLogActivityInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        crisis_id, phase_id = crisis_fields_of(input.args[0] if input.args else None)
        with crisis_log_context(crisis_id, phase_id=phase_id):
            return await super().execute_activity(input)


class CrisisContextFilter(logging.Filter):
    """Gives every record ``crisis_id``, ``workflow_id`` and ``phase_id`` attributes (None when unknown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        known = {**(_context.get() or {}), "workflow_id": _workflow_id(record)}
        for field in CRISIS_FIELDS:
            if getattr(record, field, None) is None:
                setattr(record, field, known.get(field))
        return True


def _workflow_id(record: logging.LogRecord) -> str | None:
    """The workflow a record is about, as the SDK knows it."""
    details = getattr(record, "temporal_workflow", None) or getattr(record, "temporal_activity", None)
    if isinstance(details, Mapping) and details.get("workflow_id"):
        return details["workflow_id"]
    return activity.info().workflow_id if activity.in_activity() else None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the crisis fields when known."""

    def __init__(self, *, process_name: bool = False) -> None:
        super().__init__()
        self.process_name = process_name

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.process_name:
            line["process"] = record.processName
        for field in CRISIS_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                line[field] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str = "INFO", log_format: LogFormat | str = LogFormat.TEXT) -> None:
    """``LEVEL - message`` lines, as the quick reference shows them (prefixed by the worker
    process's name when several run side by side), or JSON lines with ``log_format="json"``.
    """
    child = multiprocessing.parent_process() is not None
    handler = logging.StreamHandler()
    if LogFormat(log_format) == LogFormat.JSON:
        handler.setFormatter(JsonFormatter(process_name=child))
    else:
        layout = "%(levelname)s - [%(processName)s] %(message)s" if child else "%(levelname)s - %(message)s"
        handler.setFormatter(logging.Formatter(layout))
    handler.addFilter(CrisisContextFilter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # httpx logs each request at INFO: a second line for every delivery attempt and agent call.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The ids are in our own messages (and JSON keys) already; the SDK would append its whole info dict.
    workflow.logger.workflow_info_on_message = False


#: The SDK's logger of activity failures ("Completing activity as failed", with the traceback).
SDK_ACTIVITY_LOGGER = "temporalio.activity"
#: Marks an exception whose failed attempt :func:`log_failed_attempt` logged already.
_LOGGED_MARK = "_liara_attempt_logged"
#: Temporal's retry policy where an activity has none of its own.
_DEFAULT_INITIAL_INTERVAL = timedelta(seconds=1)
_DEFAULT_BACKOFF = 2.0


def log_failed_attempt(log: logging.Logger, subject: str, err: ApplicationError, hint: str = "") -> None:
    """Log the attempt of the running activity that ``err`` fails as one warning: ``SUBJECT failed on
    attempt N: MESSAGE Next attempt in 4 s.`` (or why none follows), then ``hint`` when it is
    retried; the SDK's own record of the failure, with its traceback, is left out.
    """
    info = activity.info()
    retried, when = next_attempt(err, info)
    log.warning(
        "%s failed on attempt %d: %s %s%s",
        subject,
        info.attempt,
        err.message,
        when,
        f" {hint}" if retried and hint else "",
    )
    setattr(err, _LOGGED_MARK, True)
    _quiet_logged_failures()


def next_attempt(err: ApplicationError, info: activity.Info) -> tuple[bool, str]:
    """Whether Temporal retries an attempt that failed with ``err``, and when, as a sentence."""
    policy = info.retry_policy
    if err.non_retryable or (policy is not None and err.type in (policy.non_retryable_error_types or ())):
        return False, "It is not retried."
    if policy is not None and policy.maximum_attempts and info.attempt >= policy.maximum_attempts:
        return False, f"No attempt is left ({policy.maximum_attempts} at most)."
    initial = policy.initial_interval if policy is not None else _DEFAULT_INITIAL_INTERVAL
    backoff = policy.backoff_coefficient if policy is not None else _DEFAULT_BACKOFF
    longest = (policy.maximum_interval if policy is not None else None) or initial * 100
    delay = err.next_retry_delay or min(initial * backoff ** (info.attempt - 1), longest)
    if (
        info.schedule_to_close_timeout
        and info.scheduled_time + info.schedule_to_close_timeout < datetime.now(UTC) + delay
    ):
        return False, "No attempt is left before its deadline."
    return True, f"Next attempt in {_duration(delay)}."


def _duration(delay: timedelta) -> str:
    seconds = delay.total_seconds()
    if seconds < 120:
        return f"{round(seconds, 1):g} s"
    if seconds < 7200:
        return f"{round(seconds / 60, 1):g} min"
    return f"{round(seconds / 3600, 1):g} h"


class _LoggedFailureFilter(logging.Filter):
    """Leaves out the SDK's record of a failure :func:`log_failed_attempt` logged already."""

    def filter(self, record: logging.LogRecord) -> bool:
        failure = record.exc_info[1] if record.exc_info else None
        return not getattr(failure, _LOGGED_MARK, False)


def _quiet_logged_failures() -> None:
    sdk = logging.getLogger(SDK_ACTIVITY_LOGGER)
    if not any(isinstance(existing, _LoggedFailureFilter) for existing in sdk.filters):
        sdk.addFilter(_LoggedFailureFilter())
