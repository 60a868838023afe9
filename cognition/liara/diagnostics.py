"""Why a running crisis waits, in one sentence: an activity or a workflow task that keeps failing.

A crisis that waits for a record store to be usable again, for an agent being retried or for a
worker that can decode its history would otherwise seem to hang for no reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.failure.v1 import Failure
from temporalio.api.taskqueue.v1 import PollerInfo
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryReverseRequest
from temporalio.client import Client, WorkflowExecutionDescription

#: A live worker polls again as soon as a long poll (at most about a minute) ends; the server
#: lists a worker for minutes after its last poll, so one not seen for longer than this is gone.
LIVE_POLLER_SECONDS = 75
#: Longest cause of a failing workflow task quoted by a status.
_PROBLEM_CHARS = 300
#: Parts of a pydantic message that say nothing to an operator (and may quote the payload).
_PYDANTIC_NOISE = re.compile(r"\s*\[type=[^\]]*\]|\s*For further information visit \S+")


def live_pollers(pollers: Iterable[PollerInfo]) -> int:
    """How many of a task queue's listed pollers are workers still polling it."""
    seen_since = datetime.now(UTC) - timedelta(seconds=LIVE_POLLER_SECONDS)
    return sum(
        not poller.HasField("last_access_time") or poller.last_access_time.ToDatetime(UTC) >= seen_since
        for poller in pollers
    )


async def waiting_problem(client: Client, description: WorkflowExecutionDescription) -> str | None:
    """One sentence on why a running crisis waits, if an activity or its workflow task keeps failing."""
    return retry_problem(description) or await workflow_task_problem(client, description)


def retry_problem(description: WorkflowExecutionDescription) -> str | None:
    """One sentence on an activity of a running crisis that failed and waits for its next attempt.

    The record activities retry until the record store is usable again (a full disk, an unwritable
    directory, a corrupt record).
    """
    for pending in description.raw_description.pending_activities:
        if pending.attempt > 1 and pending.HasField("last_failure"):
            reason = pending.last_failure.message.rstrip(".") or "no message"
            return f"{pending.activity_type.name} has failed {_times(pending.attempt - 1)} so far: {reason}."
    return None


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def _root_message(failure: Failure) -> str:
    """The message of a failure's innermost cause, on one line."""
    while failure.HasField("cause"):
        failure = failure.cause
    lines = [line.strip() for line in _PYDANTIC_NOISE.sub("", failure.message).splitlines() if line.strip()]
    line = ": ".join(lines) or "no message"
    return line if len(line) <= _PROBLEM_CHARS else line[: _PROBLEM_CHARS - 1] + "…"


async def workflow_task_problem(client: Client, description: WorkflowExecutionDescription) -> str | None:
    """One sentence on a workflow task that fails and is retried: say, a worker of another
    release sent something this worker cannot decode. The crisis waits; nothing is lost.
    """
    pending = description.raw_description.pending_workflow_task
    if pending.attempt <= 1:
        return None
    response = await client.workflow_service.get_workflow_execution_history_reverse(
        GetWorkflowExecutionHistoryReverseRequest(
            namespace=client.namespace,
            execution=WorkflowExecution(workflow_id=description.id, run_id=description.run_id),
            maximum_page_size=100,
        )
    )
    for event in response.history.events:
        if event.HasField("workflow_task_failed_event_attributes"):
            reason = _root_message(event.workflow_task_failed_event_attributes.failure).rstrip(".")
            return (
                f"the workflow task has failed {_times(pending.attempt - 1)} and is retried: {reason}. "
                "Check that every worker runs the same release."
            )
    return f"the workflow task has failed {_times(pending.attempt - 1)} and is retried."
