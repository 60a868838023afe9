"""What the metrics tests share: crises started straight on a client, the SDK's metric
families the dashboard reads, and the advice for a metrics port in use.
"""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.client import Client, WorkflowHandle

from app.temporal.models import CrisisRequest
from app.temporal.workflows import CrisisResponseWorkflow


def crisis_request(*phases: dict[str, Any], crisis_id: str | None = None, **extra: Any) -> CrisisRequest:
    """A crisis on target-alpha of ``phases`` (each an ``<action>-agent``'s, prioritised in order);
    ``extra`` are further request fields. A fresh crisis id unless given.
    """
    return CrisisRequest.model_validate(
        {
            "crisis_id": crisis_id or f"crisis-{uuid.uuid4().hex[:12]}",
            "target_member": "target-alpha",
            "missions": [
                {"agent_id": f"{p['action']}-agent", "target": "target-alpha", "priority": n, **p}
                for n, p in enumerate(phases, start=1)
            ],
            **extra,
        }
    )


async def start_crisis(client: Client, request: CrisisRequest, task_queue: str) -> WorkflowHandle:
    """Start the crisis workflow of ``request`` on ``task_queue``, as the Python API names it."""
    return await client.start_workflow(
        CrisisResponseWorkflow.run, request, id=f"crisis-workflow-{request.crisis_id}", task_queue=task_queue
    )


#: Metric families of the Temporal SDK (Core) the dashboard reads; the integration test in
#: test_metrics.py checks that a worker's /metrics endpoint really has each of them.
SDK_DASHBOARD_METRICS = {
    "temporal_workflow_task_schedule_to_start_latency",
    "temporal_activity_schedule_to_start_latency",
    "temporal_activity_execution_latency",
    "temporal_activity_execution_failed",
    "temporal_worker_task_slots_available",
    "temporal_worker_task_slots_used",
    "temporal_num_pollers",
    "temporal_sticky_cache_size",
    "temporal_worker_start",
}


#: How a worker ends the sentence about a metrics port that another process holds.
PORT_IN_USE_ADVICE = "it is already in use; choose another --metrics-port or stop the process holding it."
