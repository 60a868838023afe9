"""The limits task queue: the worker every crisis worker with ``[limits]`` runs beside its own
(app.temporal.worker), its two activities, and what ``liara doctor`` asks the limiters.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from app.temporal.limits.limiter import (
    ACQUIRE_SIGNAL,
    HOLDERS_GONE_ACTIVITY,
    REQUEST_PERMIT_ACTIVITY,
    STATUS_QUERY,
    Holder,
    LimiterState,
    LimiterStatus,
    LimiterWorkflow,
    PermitRequest,
    limiter_id,
    limits_task_queue,
)
from app.temporal.models import StepLimit

#: How long ``liara doctor`` waits for a limiter's answer.
STATUS_TIMEOUT = timedelta(seconds=5)


@activity.defn(name=REQUEST_PERMIT_ACTIVITY)
async def request_permit(request: PermitRequest) -> None:
    """Hand ``request`` to its limiter, starting the limiter if it is not running (signal-with-start)."""
    await activity.client().start_workflow(
        LimiterWorkflow.run,
        LimiterState(limit=request.limit),
        id=request.limiter_id,
        task_queue=activity.info().task_queue,
        start_signal=ACQUIRE_SIGNAL,
        start_signal_args=[request],
    )


@activity.defn(name=HOLDERS_GONE_ACTIVITY)
async def holders_gone(holders: list[Holder]) -> list[str]:
    """The requests among ``holders`` whose crisis runs have closed."""
    client = activity.client()

    async def closed(holder: Holder) -> bool:
        try:
            described = await client.get_workflow_handle(holder.workflow_id, run_id=holder.run_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return True
            raise
        return described.status != WorkflowExecutionStatus.RUNNING

    found = await asyncio.gather(*(closed(holder) for holder in holders))
    return [holder.request_id for holder, gone in zip(holders, found, strict=True) if gone]


def limits_worker(client: Client, task_queue: str, *, graceful_shutdown: timedelta = timedelta()) -> Worker:
    """The worker of the limiters of the crises of ``task_queue`` (on its limits task queue)."""
    return Worker(
        client,
        task_queue=limits_task_queue(task_queue),
        workflows=[LimiterWorkflow],
        activities=[request_permit, holders_gone],
        graceful_shutdown_timeout=graceful_shutdown,
        # As the crisis workflow's (app.temporal.worker): the limiter keeps no state outside its instance.
        workflow_runner=UnsandboxedWorkflowRunner(),
    )


async def limiter_status(client: Client, task_queue: str, limit: StepLimit) -> LimiterStatus | None:
    """What ``limit``'s limiter says now; None if it is not running (no permit held or asked for
    in the last minutes). Raises ``RPCError`` if it cannot be asked (e.g. no worker polls its queue).
    """
    handle = client.get_workflow_handle(limiter_id(task_queue, limit))
    try:
        described = await handle.describe(rpc_timeout=STATUS_TIMEOUT)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if described.status != WorkflowExecutionStatus.RUNNING:
        return None
    return await handle.query(STATUS_QUERY, result_type=LimiterStatus, rpc_timeout=STATUS_TIMEOUT)
