"""A reset crisis: the new run takes its record over, and the replaced run can no longer write it;
a new crisis with the crisis id of one Temporal no longer has leaves its record alone."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest, ResetWorkflowExecutionRequest
from temporalio.service import RPCError

from app.temporal.activities import CrisisActivities
from app.temporal.errors import LiaraError
from app.temporal.models import PhaseStatus
from app.temporal.records import CrisisRun, FileRecordStore
from cognition.liara.agency import LiaraTemporalAgency
from tests.helpers import assert_eventually
from tests.helpers.records import ended
from tests.helpers.workflows import crisis_workflow_worker, phase

pytestmark = pytest.mark.integration


def recording_activities(store: FileRecordStore) -> list[Callable[..., Any]]:
    """The crisis activities, writing their records to ``store``."""
    real = CrisisActivities(store)
    return [
        real.initialize_crisis_response,
        real.perform_agent_mission,
        real.log_mission_phase,
        real.finalize_crisis_response,
        real.hold_final_write,
    ]


async def test_a_reset_run_takes_the_record_over(dev_server, task_queue, tmp_path: Path):
    store = FileRecordStore(tmp_path / "crises")
    activities = recording_activities(store)
    crisis_id = f"crisis-reset-{uuid.uuid4().hex[:8]}"
    async with (
        LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as agency,
        crisis_workflow_worker(dev_server.client, task_queue, activities),
    ):
        workflow_id = await agency.trigger_crisis_response(
            "target-alpha", [phase("recon-1", "recon", 1), phase("secure-2", "secure", 2)], crisis_id=crisis_id
        )
        await agency.wait_for_crisis_completion(workflow_id, timeout=60)
        handle = dev_server.client.get_workflow_handle(workflow_id)
        first_run = (await handle.describe()).run_id
        events = [event async for event in handle.fetch_history_events()]
        # Back to just after the first workflow task: the record was created, no phase has run.
        first_task = next(e.event_id for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
        reset = await dev_server.client.workflow_service.reset_workflow_execution(
            ResetWorkflowExecutionRequest(
                namespace=dev_server.client.namespace,
                workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=first_run),
                reason="test: run it again",
                workflow_task_finish_event_id=first_task,
                request_id=str(uuid.uuid4()),
            )
        )
        result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)

    assert result["success"]
    record = json.loads(store.path_for(crisis_id).read_text())
    assert (record["run_id"], record["superseded_run_ids"]) == (reset.run_id, [first_run])
    assert (record["status"], [p["status"] for p in record["phases"]]) == ("completed", ["completed", "completed"])

    # A write that the replaced run's abandoned attempt still makes is dropped.
    replaced = CrisisRun(namespace=dev_server.client.namespace, workflow_id=workflow_id, run_id=first_run)
    late = ended("secure-2", PhaseStatus.FAILED, 1, error="an abandoned attempt of the replaced run")
    assert await store.upsert_phase(crisis_id, late, run=replaced) is None
    assert json.loads(store.path_for(crisis_id).read_text()) == record


async def test_a_new_crisis_reusing_a_recorded_crisis_id_fails_and_leaves_the_record(
    dev_server, task_queue, tmp_path: Path
):
    """Once Temporal no longer has a crisis's workflow (here deleted, as its retention would), its
    crisis id can be started again: the new crisis stops at once, and the record stays the first's."""
    store = FileRecordStore(tmp_path / "crises")
    activities = recording_activities(store)
    crisis_id = f"crisis-reused-{uuid.uuid4().hex[:8]}"
    async with (
        LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as agency,
        crisis_workflow_worker(dev_server.client, task_queue, activities),
    ):
        workflow_id = await agency.trigger_crisis_response(
            "target-alpha", [phase("recon-1", "recon", 1)], crisis_id=crisis_id
        )
        await agency.wait_for_crisis_completion(workflow_id, timeout=60)
        earlier = store.path_for(crisis_id).read_text()
        await dev_server.client.workflow_service.delete_workflow_execution(
            DeleteWorkflowExecutionRequest(
                namespace=dev_server.client.namespace, workflow_execution=WorkflowExecution(workflow_id=workflow_id)
            )
        )

        async def deleted() -> bool:
            try:
                await dev_server.client.get_workflow_handle(workflow_id).describe()
            except RPCError:
                return True
            return False

        # The session's dev server deletes it in a few seconds (DEV_SERVER_TEST_ARGUMENTS), a
        # server with Temporal's defaults in about 30 s.
        await assert_eventually(deleted, timeout=120, interval=0.5)
        again = await agency.trigger_crisis_response(
            "target-beta", [phase("secure-2", "secure", 2)], crisis_id=crisis_id
        )
        with pytest.raises(LiaraError) as failed:
            await agency.wait_for_crisis_completion(again, timeout=60)

    assert "that of an earlier crisis with this id" in str(failed.value), failed.value
    assert "start it under another crisis id" in str(failed.value), failed.value
    assert store.path_for(crisis_id).read_text() == earlier
