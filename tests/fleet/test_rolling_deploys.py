"""Workers and agencies of different releases share crises during a rolling deploy.

What they pass each other tolerates fields it does not know; a payload that cannot be decoded at
all retries the workflow task (``liara status`` says so) instead of failing the crisis; a start
request that breaks a rule still fails at once with the one-line message.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError

from app.temporal.activities import CrisisActivities
from app.temporal.models import CrisisResult, PhaseAssignment
from app.temporal.records import FileRecordStore
from cognition.liara.agency import LiaraTemporalAgency
from tests.helpers import assert_eventually
from tests.helpers.workflows import crisis_workflow_worker, phase

pytestmark = pytest.mark.integration


def worker(dev_server, task_queue: str, tmp_path: Path, perform=None):
    real = CrisisActivities(FileRecordStore(tmp_path / "crises"))
    activities = [
        real.initialize_crisis_response,
        perform or real.perform_agent_mission,
        real.log_mission_phase,
        real.finalize_crisis_response,
        real.hold_final_write,
    ]
    return crisis_workflow_worker(dev_server.client, task_queue, activities)


def raw_request(crisis_id: str, *phases: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"crisis_id": crisis_id, "target_member": "target-alpha", "missions": list(phases), **extra}


async def start_raw(dev_server, task_queue: str, request: dict[str, Any]):
    """Start a crisis as another release of the agency (or a hand-written client) would: plain JSON."""
    return await dev_server.client.start_workflow(
        "CrisisResponseWorkflow", request, id=f"crisis-workflow-{request['crisis_id']}", task_queue=task_queue
    )


async def test_an_activity_result_with_a_field_this_worker_does_not_know_is_accepted(
    dev_server, task_queue, tmp_path: Path
):
    @activity.defn(name="perform_agent_mission")
    async def newer_worker(assignment: PhaseAssignment) -> dict[str, Any]:
        phase_ = assignment.phase
        return {"phase_id": phase_.phase_id, "agent_id": phase_.agent_id, "attempt": 1, "confidence": 0.97}

    crisis_id = f"crisis-newer-worker-{uuid.uuid4().hex[:8]}"
    async with worker(dev_server, task_queue, tmp_path, newer_worker):
        handle = await start_raw(dev_server, task_queue, raw_request(crisis_id, phase("recon-1", "recon", 1)))
        result = CrisisResult.model_validate(await handle.result())
    assert result.success
    record = json.loads((tmp_path / "crises" / f"{crisis_id}.json").read_text())
    assert record["status"] == "completed"


async def test_a_start_request_with_fields_this_worker_does_not_know_runs(dev_server, task_queue, tmp_path: Path):
    crisis_id = f"crisis-newer-agency-{uuid.uuid4().hex[:8]}"
    request = raw_request(
        crisis_id,
        phase("recon-1", "recon", 1, sla_minutes=5),
        urgency="high",
        retry={"maximum_attempts": 2, "jitter": 0.1},
    )
    async with worker(dev_server, task_queue, tmp_path):
        handle = await start_raw(dev_server, task_queue, request)
        result = CrisisResult.model_validate(await handle.result())
    assert result.success
    assert [p.phase_id for p in result.phases] == ["recon-1"]


async def test_an_activity_result_that_cannot_be_decoded_retries_the_task_and_status_says_why(
    dev_server, task_queue, tmp_path: Path
):
    @activity.defn(name="perform_agent_mission")
    async def broken_worker(assignment: PhaseAssignment) -> dict[str, Any]:
        return {"phase_id": assignment.phase.phase_id, "agent_id": "a", "attempt": "the third"}

    crisis_id = f"crisis-undecodable-{uuid.uuid4().hex[:8]}"
    agency = LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue)
    async with worker(dev_server, task_queue, tmp_path, broken_worker), agency:
        handle = await start_raw(dev_server, task_queue, raw_request(crisis_id, phase("recon-1", "recon", 1)))
        workflow_id = handle.id

        async def problem_reported() -> bool:
            return "problem" in await agency.get_crisis_status(workflow_id)

        await assert_eventually(problem_reported, timeout=60)
        status = await agency.get_crisis_status(workflow_id)
        try:
            assert status["status"] == "running", "the crisis waits for a worker that can decode it"
            assert status["problem"].startswith("the workflow task has failed")
            assert re.fullmatch(
                r"the workflow task has failed (once|\d+ times) and is retried: 1 validation error for AgentReport: "
                r"attempt: Input should be a valid integer, unable to parse string as an integer\. "
                r"Check that every worker runs the same release\.",
                status["problem"],
            ), status["problem"]
        finally:
            await handle.terminate("test over")


async def test_an_update_payload_that_cannot_be_decoded_is_refused_and_the_crisis_goes_on(
    dev_server, task_queue, tmp_path: Path
):
    crisis_id = f"crisis-bad-update-{uuid.uuid4().hex[:8]}"
    request = raw_request(crisis_id, phase("hold-1", "hold", 1, params={"duration": 2}))
    async with worker(dev_server, task_queue, tmp_path):
        handle = await start_raw(dev_server, task_queue, request)
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update("add_phases", [{"phase_id": "no spaces allowed", "agent_id": "a"}])
        result = CrisisResult.model_validate(await asyncio.wait_for(handle.result(), 60))
    assert result.success
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
