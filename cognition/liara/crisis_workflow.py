"""Calls on one crisis's workflow: the digest of its request, its result, an update while it runs,
its event stream. Each Temporal error is told as the agency's own, in one sentence.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.contrib.workflow_streams import WorkflowStreamClient
from temporalio.service import RPCError, RPCStatusCode

from app.temporal.client import ConnectionSettings
from app.temporal.crisis.events import EVENT_TOPIC
from app.temporal.errors import LiaraError, TemporalUnavailableError, innermost_message
from app.temporal.models import CrisisEvent, CrisisResult, EventKind
from app.temporal.visibility import CRISIS_WORKFLOW_TYPE
from cognition.liara.crisis_requests import REQUEST_DIGEST_MEMO
from cognition.liara.diagnostics import end_state, status_name, workflow_pollers
from cognition.liara.errors import CrisisFailedError, CrisisNotRunningError, CrisisWaitTimeoutError
from cognition.liara.rpc_errors import no_such_crisis, translate_rpc_error


async def started_digest(client: Client, settings: ConnectionSettings, workflow_id: str) -> str | None:
    """The digest of the request a crisis was started with, from its workflow's memo."""
    try:
        memo = await (await client.get_workflow_handle(workflow_id).describe()).memo()
    except RPCError as err:
        raise translate_rpc_error(err, settings, workflow_id) from None
    return memo.get(REQUEST_DIGEST_MEMO)


async def described_crisis(
    client: Client, settings: ConnectionSettings, workflow_id: str
) -> tuple[WorkflowHandle[Any, Any], WorkflowExecutionDescription]:
    """The handle of a crisis and its description. A workflow of another type is no crisis: the
    agency sees and steers crisis workflows only (a webhook delivery's id is predictable, and
    cancelling one would silence an alert).
    """
    handle = client.get_workflow_handle(workflow_id)
    try:
        description = await handle.describe()
    except RPCError as err:
        raise translate_rpc_error(err, settings, workflow_id) from None
    if description.workflow_type != CRISIS_WORKFLOW_TYPE:
        raise no_such_crisis(settings, workflow_id)
    return handle, description


async def running_handle(
    client: Client, settings: ConnectionSettings, workflow_id: str, action: str
) -> tuple[WorkflowHandle[Any, Any], WorkflowExecutionDescription]:
    """The handle of a running crisis and its description; a clear error if it is unknown or has ended."""
    handle, description = await described_crisis(client, settings, workflow_id)
    if description.status != WorkflowExecutionStatus.RUNNING:
        state = status_name(description.status)
        raise CrisisNotRunningError(f"Cannot {action} crisis workflow {workflow_id}: it has already ended ({state}).")
    return handle, description


async def send_update(
    client: Client,
    settings: ConnectionSettings,
    workflow_id: str,
    update: Any,
    argument: Any,
    *,
    action: str,
    timeout: float,
    refused: type[LiaraError],
) -> Any:
    """Send an update to a running crisis and return its result: a worker must take it within
    ``timeout`` seconds; a refusal by the workflow's validator raises ``refused``.
    """
    handle, description = await running_handle(client, settings, workflow_id, action)
    task_queue = description.task_queue or settings.task_queue
    try:
        workers = await workflow_pollers(client, task_queue)
    except RPCError as err:
        raise translate_rpc_error(err, settings, workflow_id) from None
    if not workers:
        # Sent now, the update would wait for a worker and might take effect long after.
        raise TemporalUnavailableError(
            f"Cannot {action} {workflow_id}: no worker polls task queue {task_queue!r}; "
            "start one with `python cognition/liara/worker.py`."
        )
    try:
        return await handle.execute_update(update, argument, rpc_timeout=timedelta(seconds=timeout))
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        raise CrisisWaitTimeoutError(
            f"Cannot {action} {workflow_id}: no worker answered within {timeout:g} s; "
            f"check the workers with `liara doctor`, then the crisis with `liara status {workflow_id}`."
        ) from None
    except WorkflowUpdateFailedError as err:
        raise refused(f"Cannot {action} {workflow_id}: {innermost_message(err)}.") from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:  # it was running a moment ago: it has ended since
            raise CrisisNotRunningError(f"Cannot {action} crisis workflow {workflow_id}: it has ended.") from None
        raise translate_rpc_error(err, settings, workflow_id) from None


async def crisis_result(handle: WorkflowHandle[Any, Any], settings: ConnectionSettings) -> dict[str, Any]:
    """The crisis's result once it has one; ``CrisisFailedError`` if its workflow ended without one."""
    try:
        result = await handle.result()
    except WorkflowFailureError as err:
        status = end_state(err.cause)
        raise CrisisFailedError(
            f"Crisis workflow {handle.id} ended as {status}: {innermost_message(err)}", status
        ) from None
    except RPCError as err:
        raise translate_rpc_error(err, settings, handle.id) from None
    # Decoded untyped: a crisis's result is validated into its model, which puts its defaults back.
    try:
        return CrisisResult.model_validate(result).model_dump(mode="json")
    except ValidationError:
        return result  # not a crisis's: the caller tells so


def shaped_as_crisis_result(result: Any) -> bool:
    """Whether ``result`` is what a crisis returns (a workflow that returned it is a crisis)."""
    try:
        CrisisResult.model_validate(result)
    except ValidationError:
        return False
    return True


async def ending_error(handle: WorkflowHandle[Any, Any], settings: ConnectionSettings) -> str:
    """How the crisis's workflow ended without a result ("" if it has one)."""
    try:
        await crisis_result(handle, settings)
    except CrisisFailedError as err:
        return str(err)
    return ""


async def read_events(
    connect: Callable[[], Awaitable[Client]], settings: ConnectionSettings, workflow_id: str
) -> AsyncGenerator[dict[str, Any], None]:
    """Every event of the crisis's stream, from the first, as ``crisis_events`` gives them
    (connecting with ``connect`` once read).
    """
    client = await connect()
    handle, _ = await described_crisis(client, settings, workflow_id)
    stream = WorkflowStreamClient.create(client, workflow_id)
    events = stream.subscribe(EVENT_TOPIC, result_type=CrisisEvent)
    while True:
        try:
            item = await anext(events)
        except StopAsyncIteration:
            return
        except RPCError as err:
            raise translate_rpc_error(err, settings, workflow_id) from None
        event: CrisisEvent = item.data
        data = event.model_dump(mode="json", exclude_none=True)
        if event.kind == EventKind.FINISHED:
            try:
                data = {**data, "result": await crisis_result(handle, settings)}
            except CrisisFailedError as err:
                data = {**data, "status": err.status, "error": str(err)}
        yield {"id": item.offset, "event": event.kind.value, "data": data}
        if event.kind == EventKind.FINISHED:
            return
