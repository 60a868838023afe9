"""``liara bench --gate N``: the worker memory that N crises waiting at an approval gate need, and
how fast approving them all drains them."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.progress import Progress
from temporalio.client import Client

from app.temporal.client import ConnectionSettings
from app.temporal.errors import TemporalUnavailableError
from app.temporal.worker_options import MAX_CACHED_WORKFLOWS
from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.bench.workers import WorkerGroup, proc_peak_rss_mib, proc_rss_mib, wait_for_pollers
from cognition.liara.errors import CrisisNotRunningError, CrisisWaitTimeoutError, DecisionRefusedError

#: Starts and approvals in flight at once.
IN_FLIGHT = 50
#: Attempts at one approval while the server is overloaded.
APPROVAL_ATTEMPTS = 8
#: How long the crises may take to reach the gate, and to complete once approved.
WAIT_SECONDS = 1200


async def measure_gate_memory(
    settings: ConnectionSettings, crises: int, progress: Progress, *, max_cached_workflows: int = MAX_CACHED_WORKFLOWS
) -> dict[str, Any]:
    """Worker RSS with ``crises`` crises waiting at an approval gate, then the time approving them
    all takes to drain them.

    The worker keeps at most ``max_cached_workflows`` of them in memory; the others are replayed
    from their histories when their approval comes. Crises left open are terminated afterwards.
    """
    gate = [
        {"phase_id": "gate", "agent_id": "agent-001", "action": "bench", "target": "bench", "requires_approval": True}
    ]
    cache = ("--max-cached-workflows", str(max_cached_workflows))
    with tempfile.TemporaryDirectory(prefix="liara-bench-") as records:
        group = WorkerGroup("liara", 1, settings, Path(records), cache)
        agency = LiaraTemporalAgency(
            temporal_host=settings.address, namespace=settings.namespace, task_queue=group.task_queue
        )
        client = await agency.connect()
        workflow_ids: list[str] = []
        in_queue = f"WorkflowType = 'CrisisResponseWorkflow' AND TaskQueue = '{group.task_queue}'"
        try:
            await wait_for_pollers(agency, group, "liara")
            pid = group.processes[0].pid
            rss_idle = proc_rss_mib(pid)
            workflow_ids = await _each(
                progress,
                f"starting {crises} gated crises",
                [lambda: agency.trigger_crisis_response("bench", gate, "bench") for _ in range(crises)],
            )
            await _until_count(
                client, f"{in_queue} AND CrisisStatus = 'awaiting_approval'", crises, "waiting at the gate", progress
            )
            rss_gated = proc_rss_mib(pid)
            retries: list[str] = []
            approving = time.monotonic()
            await _each(
                progress,
                f"approving {crises} crises",
                [lambda w=w: _approve(agency, w, retries) for w in workflow_ids],
            )
            await _until_count(client, f"{in_queue} AND CrisisStatus = 'completed'", crises, "completed", progress)
            # Rounded first, so the rate printed beside it is the one its figures give.
            drain_seconds = round(time.monotonic() - approving, 2)
            figures = {
                "gated_crises": crises,
                "max_cached_workflows": max_cached_workflows,
                "worker_rss_idle_mib": round(rss_idle, 1),
                "worker_rss_mib": round(rss_gated, 1),
                "worker_rss_after_mib": round(proc_rss_mib(pid), 1),
                "worker_peak_rss_mib": round(proc_peak_rss_mib(pid), 1),
                "drain_seconds": drain_seconds,
                "drained_per_second": round(crises / drain_seconds, 1),
                "approvals_retried": len(retries),
            }
        finally:
            still_open = [w async for w in client.list_workflows(f"{in_queue} AND ExecutionStatus = 'Running'")]
            await asyncio.gather(
                *(client.get_workflow_handle(w.id).terminate("benchmark over") for w in still_open),
                return_exceptions=True,
            )
            group.stop()
    return figures


async def _approve(agency: LiaraTemporalAgency, workflow_id: str, retries: list[str]) -> None:
    """Approve the crisis's gate, again (noted in ``retries``) while the server is too busy to take
    it: thousands of approvals at once can overload an embedded server. A refusal or an ended
    crisis after a retry means an earlier attempt took effect before its answer was lost.
    """
    for attempt in range(APPROVAL_ATTEMPTS):
        try:
            await agency.approve_phase(workflow_id, "gate", "bench-approver")
            return
        except (TemporalUnavailableError, CrisisWaitTimeoutError):
            retries.append(workflow_id)
            await asyncio.sleep(min(2**attempt, 10))
        except (DecisionRefusedError, CrisisNotRunningError):
            if attempt == 0:
                raise
            return
    raise TemporalUnavailableError(f"Could not approve {workflow_id} in {APPROVAL_ATTEMPTS} attempts.")


async def _each(progress: Progress, description: str, calls: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Every call's answer, at most ``IN_FLIGHT`` of them at once."""
    task = progress.add_task(description, total=len(calls))
    limit = asyncio.Semaphore(IN_FLIGHT)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with limit:
            answer = await call()
            progress.advance(task)
            return answer

    return list(await asyncio.gather(*(one(call) for call in calls)))


async def _until_count(client: Client, query: str, expected: int, description: str, progress: Progress) -> None:
    task = progress.add_task(description, total=expected)
    deadline = time.monotonic() + WAIT_SECONDS
    while (count := (await client.count_workflows(query)).count) < expected:
        progress.update(task, completed=count)
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {count} of {expected} crises {description} within {WAIT_SECONDS} s")
        await asyncio.sleep(0.5)
