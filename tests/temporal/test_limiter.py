"""The limiter workflow with in-process workers on the dev server: steps of workflows that hold
permits with ``step_permits`` (the crisis's own code, sandboxed) never hold more than the limit
allows; the limiter carries its state into new runs as its history grows, and those histories
replay; an idle limiter ends, and the next request starts it again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

with workflow.unsafe.imports_passed_through():
    from app.temporal.limits import limiter, step_permits
    from app.temporal.limits.limiter import LimiterWorkflow, limiter_id
    from app.temporal.limits.serving import limiter_status, limits_worker
    from app.temporal.models import StepLimit
    from tests.helpers import assert_eventually
    from tests.helpers.servers import DevServer

pytestmark = pytest.mark.integration


class Holding:
    """How many ``hold`` activities run at once, and the most that did."""

    now = 0
    most = 0


@activity.defn
async def hold(seconds: float) -> None:
    Holding.now += 1
    Holding.most = max(Holding.most, Holding.now)
    try:
        await asyncio.sleep(seconds)
    finally:
        Holding.now -= 1


@workflow.defn
class Requester:
    """Holds a permit of ``limit`` around a ``hold`` activity, ``times`` times over."""

    @workflow.run
    async def run(self, limit: StepLimit, times: int) -> int:
        for _ in range(times):
            async with step_permits([limit], "step"):
                await workflow.execute_activity(hold, 0.05, start_to_close_timeout=timedelta(seconds=30))
        return times


@asynccontextmanager
async def workers(client: Client, task_queue: str) -> AsyncIterator[None]:
    async with (
        Worker(client, task_queue=task_queue, workflows=[Requester], activities=[hold]),
        limits_worker(client, task_queue),
    ):
        yield


async def run_requesters(client: Client, task_queue: str, limit: StepLimit, count: int, times: int) -> None:
    handles = [
        await client.start_workflow(
            Requester.run, args=[limit, times], id=f"requester-{uuid.uuid4()}", task_queue=task_queue
        )
        for _ in range(count)
    ]
    assert await asyncio.gather(*(handle.result() for handle in handles)) == [times] * count


async def test_permits_within_the_limit_across_runs_of_the_limiter_which_replay(
    dev_server: DevServer, task_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limiter, "HISTORY_BUDGET_EVENTS", 60)
    Holding.now = Holding.most = 0
    limit = StepLimit(kind="model", name="held", concurrent=2)
    client = dev_server.client
    async with workers(client, task_queue):
        await run_requesters(client, task_queue, limit, count=6, times=4)
        status = await limiter_status(client, task_queue, limit)

    assert Holding.most == 2
    assert status is not None and (status.in_use, status.waiting, status.granted) == (0, 0, 24)
    runs = [run async for run in client.list_workflows(f"WorkflowId = '{limiter_id(task_queue, limit)}'")]
    assert sum(run.status == WorkflowExecutionStatus.CONTINUED_AS_NEW for run in runs) >= 2, runs
    # Sandboxed, as the recorded crisis histories replay, but with the limiter's module as this
    # test set it (the sandbox would import it afresh, with its own history budget).
    restrictions = SandboxRestrictions.default.with_passthrough_modules(limiter.__name__)
    replayer = Replayer(
        workflows=[LimiterWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=SandboxedWorkflowRunner(restrictions=restrictions),
    )
    for run in runs:
        history = await client.get_workflow_handle(run.id, run_id=run.run_id).fetch_history()
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, result.replay_failure


async def test_an_idle_limiter_ends_and_the_next_request_starts_it_again(
    dev_server: DevServer, task_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limiter, "IDLE_TIMEOUT", timedelta(seconds=1))
    monkeypatch.setattr(limiter, "IDLE_CHECK_INTERVAL", timedelta(seconds=1))
    limit = StepLimit(kind="tool", name="lookup", concurrent=1, per_minute=600)
    client = dev_server.client
    handle = client.get_workflow_handle(limiter_id(task_queue, limit))
    async with workers(client, task_queue):
        await run_requesters(client, task_queue, limit, count=1, times=2)

        async def ended() -> bool:
            return (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED

        await assert_eventually(ended, timeout=20)
        await run_requesters(client, task_queue, limit, count=1, times=1)
        status = await limiter_status(client, task_queue, limit)
    assert status is not None and status.granted == 1  # a new run
