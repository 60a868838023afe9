"""Where a crisis stands: the state of its workflow, the workers polling its task queue, its
progress while it runs and, in one sentence, why it waits: no worker polling its task queue, a
phase awaiting approval, an activity or a workflow task that keeps failing. What blocks it is
said with the command that would let it go on (``liara worker --task-queue Q``, ``liara approve
WORKFLOW_ID PHASE``).

A crisis that waits for a record store to be usable again, for an agent being retried or for a
worker that can decode its history would otherwise seem to hang for no reason.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.failure.v1 import Failure
from temporalio.api.taskqueue.v1 import PollerInfo, TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, GetWorkflowExecutionHistoryReverseRequest
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.exceptions import CancelledError, TerminatedError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError
from temporalio.service import RPCError

from app.temporal.client import DEFAULT_ADDRESS, DEFAULT_NAMESPACE, ConnectionSettings
from app.temporal.workflows import CrisisResponseWorkflow

#: How long a status call waits for a worker to answer the progress query.
PROGRESS_QUERY_TIMEOUT = timedelta(seconds=3)
#: A live worker polls again as soon as a long poll (at most about a minute) ends; the server
#: lists a worker for minutes after its last poll, so one not seen for longer than this is gone.
LIVE_POLLER_SECONDS = 75
#: Longest cause of a failing workflow task quoted by a status.
_PROBLEM_CHARS = 300
#: Parts of a pydantic message that say nothing to an operator (and may quote the payload).
_PYDANTIC_NOISE = re.compile(r"\s*\[type=[^\]]*\]|\s*For further information visit \S+")
_STATUS_NAMES = {
    WorkflowExecutionStatus.RUNNING: "running",
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "continued_as_new",
    WorkflowExecutionStatus.TIMED_OUT: "timed_out",
}
#: How a workflow ended without a result, by the cause of its failure.
_END_STATES: dict[type[BaseException], str] = {
    CancelledError: "cancelled",
    TerminatedError: "terminated",
    TemporalTimeoutError: "timed_out",
}


def status_name(status: WorkflowExecutionStatus | None) -> str:
    """A workflow's state as the agency names it: running, completed, cancelled..."""
    return _STATUS_NAMES.get(status, "unknown") if status else "unknown"


def end_state(cause: BaseException | None) -> str:
    """How a workflow ended without a result, by the cause of its failure: cancelled, failed..."""
    return _END_STATES.get(type(cause), "failed") if cause is not None else "failed"


def live_pollers(pollers: Iterable[PollerInfo]) -> int:
    """How many of a task queue's listed pollers are workers still polling it."""
    seen_since = datetime.now(UTC) - timedelta(seconds=LIVE_POLLER_SECONDS)
    return sum(
        not poller.HasField("last_access_time") or poller.last_access_time.ToDatetime(UTC) >= seen_since
        for poller in pollers
    )


async def workflow_pollers(client: Client, task_queue: str) -> int:
    """How many workers poll ``task_queue`` for workflow tasks now (an ``RPCError`` if Temporal cannot tell)."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return live_pollers(response.pollers)


def liara_command(*words: str, options: Sequence[str] = ()) -> str:
    """A ``liara`` command line, quoted for a shell, with connection ``options`` before the command."""
    return shlex.join(["liara", *options, *words])


def worker_command(settings: ConnectionSettings, task_queue: str) -> str:
    """The command that starts a worker polling ``task_queue`` where ``settings`` connect (their
    address and namespace said when they are not the defaults).
    """
    words = ["worker"]
    if settings.address != DEFAULT_ADDRESS:
        words += ["--address", settings.address]
    if settings.namespace != DEFAULT_NAMESPACE:
        words += ["--namespace", settings.namespace]
    return liara_command(*words, "--task-queue", task_queue)


def no_worker_note(settings: ConnectionSettings, task_queue: str) -> str:
    return f"no worker polls task queue {task_queue!r}: start one with `{worker_command(settings, task_queue)}`"


def awaiting_approval(workflow_id: str, phases: Iterable[Mapping[str, Any]], options: Sequence[str] = ()) -> list[str]:
    """For each phase that awaits approval: ``awaiting approval of PHASE (n of m)`` (its approvals
    so far of those it needs) and the commands that decide it.
    """
    return [
        f"awaiting approval of {phase['phase_id']} ({phase.get('approvals') or 0} of "
        f"{phase.get('approvals_required') or 1}): decide with "
        f"`{liara_command('approve', workflow_id, phase['phase_id'], options=options)}` or "
        f"`{liara_command('reject', workflow_id, phase['phase_id'], options=options)}`"
        for phase in phases
        if phase.get("status") == "awaiting_approval"
    ]


async def running_details(
    client: Client, handle: WorkflowHandle[Any, Any], task_queue: str, settings: ConnectionSettings | None = None
) -> dict[str, Any]:
    """A running crisis's progress, from its workflow's ``progress`` query, or a ``note`` on why no
    worker told it (an ``RPCError`` if Temporal cannot say who polls ``task_queue``); the note
    names the worker command for ``settings``.
    """
    # With nobody polling the crisis's task queue, a query would only wait out its timeout:
    # say so at once.
    workers = await workflow_pollers(client, task_queue)
    if workers:
        try:
            progress = await handle.query(CrisisResponseWorkflow.progress, rpc_timeout=PROGRESS_QUERY_TIMEOUT)
        except (WorkflowQueryFailedError, RPCError):
            note = "no worker answered the progress query in time"
        else:
            return progress.model_dump(mode="json")
    else:
        note = no_worker_note(settings or ConnectionSettings(namespace=client.namespace), task_queue)
    return {"stage": "unknown", "note": note, "workers_polling": workers}


async def blocked_if_known(
    client: Client, handle: WorkflowHandle[Any, Any], settings: ConnectionSettings
) -> str | None:
    """What keeps a running crisis from going on, with the command that would let it (no worker
    polling its task queue, phases awaiting approval), or None if nothing does or Temporal
    cannot tell now.
    """
    try:
        description = await handle.describe()
        if description.status != WorkflowExecutionStatus.RUNNING:
            return None
        details = await running_details(client, handle, description.task_queue, settings)
    except RPCError:
        return None
    if details.get("workers_polling") == 0:
        return details["note"]
    gates = awaiting_approval(handle.id, details.get("phases") or [])
    return f"it is {'; '.join(gates)}" if gates else None


async def problem_if_known(client: Client, handle: WorkflowHandle[Any, Any]) -> str | None:
    """``waiting_problem`` of the crisis ``handle`` names, or None if Temporal cannot tell now."""
    try:
        return await waiting_problem(client, await handle.describe())
    except RPCError:
        return None


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
