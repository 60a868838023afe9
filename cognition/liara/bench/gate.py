"""``liara bench --gate N``: the worker memory that N crises waiting at an approval gate need."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.progress import Progress

from app.temporal.client import ConnectionSettings
from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.bench.workers import WorkerGroup, proc_peak_rss_mib, proc_rss_mib, wait_for_pollers


async def measure_gate_memory(settings: ConnectionSettings, crises: int, progress: Progress) -> dict[str, Any]:
    """Worker RSS with ``crises`` crises in flight, each waiting at an approval gate.

    Every waiting crisis stays in the worker's workflow cache, so this is the memory a worker
    needs to hold that many open crises. The crises are terminated afterwards.
    """
    gate = [
        {"phase_id": "gate", "agent_id": "agent-001", "action": "bench", "target": "bench", "requires_approval": True}
    ]
    with tempfile.TemporaryDirectory(prefix="liara-bench-") as records:
        group = WorkerGroup("liara", 1, settings, Path(records))
        agency = LiaraTemporalAgency(
            temporal_host=settings.address, namespace=settings.namespace, task_queue=group.task_queue
        )
        client = await agency.connect()
        workflow_ids: list[str] = []
        try:
            await wait_for_pollers(agency, group, "liara")
            rss_idle = proc_rss_mib(group.processes[0].pid)
            starting = progress.add_task(f"starting {crises} gated crises", total=crises)
            limit = asyncio.Semaphore(50)

            async def start_one() -> str:
                async with limit:
                    workflow_id = await agency.trigger_crisis_response("bench", gate, "bench")
                    progress.advance(starting)
                    return workflow_id

            workflow_ids = list(await asyncio.gather(*(start_one() for _ in range(crises))))
            waiting = progress.add_task("waiting at the gate", total=crises)
            query = (
                f"WorkflowType = 'CrisisResponseWorkflow' AND TaskQueue = '{group.task_queue}' "
                "AND CrisisStatus = 'awaiting_approval'"
            )
            deadline = time.monotonic() + 600
            while (count := (await client.count_workflows(query)).count) < crises:
                progress.update(waiting, completed=count)
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {count} of {crises} crises reached the approval gate")
                await asyncio.sleep(0.5)
            pid = group.processes[0].pid
            figures = {
                "gated_crises": crises,
                "worker_rss_idle_mib": round(rss_idle, 1),
                "worker_rss_mib": round(proc_rss_mib(pid), 1),
                "worker_peak_rss_mib": round(proc_peak_rss_mib(pid), 1),
            }
        finally:
            await asyncio.gather(
                *(client.get_workflow_handle(w).terminate("benchmark over") for w in workflow_ids),
                return_exceptions=True,
            )
            group.stop()
    return figures
