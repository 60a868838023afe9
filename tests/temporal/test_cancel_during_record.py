"""A cancel that arrives while a record is being written takes the usual cancel path: the record
write finishes, the remaining phases are skipped, completed phases are compensated and the record
is finalized as cancelled (before the fix the crisis ended at once, its record left ``running``).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from concurrent.futures import Executor
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError

from app.temporal.activities import CrisisActivities
from app.temporal.models import AgentReport, CrisisRequest, CrisisStart, PhaseAssignment, PhaseLogEntry
from app.temporal.records import CrisisRecordStore
from app.temporal.workflows import CrisisResponseWorkflow
from tests.conftest import assert_eventually
from tests.temporal.test_crisis_control import phase, request
from tests.temporal.test_liara_workflows import crisis_workflow_worker

pytestmark = pytest.mark.integration


async def cancel_seen_by_the_workflow(handle: WorkflowHandle) -> bool:
    events = [event async for event in handle.fetch_history_events()]
    requested = [
        index
        for index, event in enumerate(events)
        if event.HasField("workflow_execution_cancel_requested_event_attributes")
    ]
    return bool(requested) and any(
        event.HasField("workflow_task_completed_event_attributes") for event in events[requested[0] :]
    )


async def cancel_while_writing(
    client: Client,
    task_queue: str,
    executor: Executor,
    activities: list,
    crisis: CrisisRequest,
    writing: asyncio.Event,
    release: asyncio.Event,
    task_timeout: timedelta | None = None,
) -> WorkflowFailureError:
    """Run ``crisis``; once a record write has begun (``writing``), cancel it, let the workflow
    see the cancel, then let the write finish (``release``); return how the crisis failed.
    """
    async with crisis_workflow_worker(client, task_queue, executor, activities):
        handle = await client.start_workflow(
            CrisisResponseWorkflow.run,
            crisis,
            id=f"crisis-workflow-{crisis.crisis_id}",
            task_queue=task_queue,
            task_timeout=task_timeout,
        )
        await asyncio.wait_for(writing.wait(), 60)
        await handle.cancel()
        await assert_eventually(lambda: cancel_seen_by_the_workflow(handle), timeout=60)
        release.set()
        with pytest.raises(WorkflowFailureError) as failure:
            await asyncio.wait_for(handle.result(), 60)
    return failure.value


async def test_a_cancel_during_a_phase_record_write_still_compensates_and_finalizes(
    dev_server, task_queue, executor, tmp_path: Path
):
    store = CrisisRecordStore(tmp_path / "crises")
    real = CrisisActivities(store)
    writing_first_record = asyncio.Event()
    release = asyncio.Event()
    calls: list[tuple[str, str]] = []

    @activity.defn(name="log_mission_phase")
    async def slow_first_log(entry: PhaseLogEntry) -> None:
        calls.append(("log", entry.outcome.phase_id))
        if len(calls) == 2:  # the record of the first phase, after its mission
            writing_first_record.set()
            await release.wait()
        await real.log_mission_phase(entry)

    @activity.defn(name="perform_agent_mission")
    async def perform(assignment: PhaseAssignment) -> AgentReport:
        calls.append((assignment.phase.action, assignment.phase.phase_id))
        return AgentReport(phase_id=assignment.phase.phase_id, agent_id=assignment.phase.agent_id, attempt=1)

    crisis_id = f"crisis-cancel-in-record-{uuid.uuid4().hex[:8]}"
    crisis = request(
        crisis_id,
        phase("secure-1", "secure", 1, compensate_action="release-perimeter"),
        phase("extract-2", "extract", 2),
    )
    activities = [
        real.validate_crisis_request,
        real.initialize_crisis_response,
        perform,
        slow_first_log,
        real.finalize_crisis_response,
    ]
    failure = await cancel_while_writing(
        dev_server.client, task_queue, executor, activities, crisis, writing_first_record, release
    )

    assert isinstance(failure.cause, CancelledError)
    assert calls == [
        ("secure", "secure-1"),
        ("log", "secure-1"),
        ("release-perimeter", "secure-1"),
        ("log", "secure-1"),
    ], "the first record write finished, extract-2 never ran, secure-1 was compensated"
    record = json.loads(store.path_for(crisis_id).read_text())
    assert record["status"] == "cancelled"
    assert [(p["phase_id"], p["status"]) for p in record["phases"]] == [
        ("secure-1", "completed"),
        ("extract-2", "skipped"),
    ]
    assert [(c["action"], c["status"]) for c in record["compensations"]] == [("release-perimeter", "completed")]


async def test_a_cancel_while_the_record_is_created_ends_the_crisis_before_its_phases_with_the_record_final(
    dev_server, task_queue, executor, tmp_path: Path
):
    store = CrisisRecordStore(tmp_path / "crises")
    real = CrisisActivities(store)
    creating = asyncio.Event()
    release = asyncio.Event()
    missions: list[str] = []

    @activity.defn(name="initialize_crisis_response")
    async def slow_initialize(start: CrisisStart) -> None:
        creating.set()
        await release.wait()
        await real.initialize_crisis_response(start)

    @activity.defn(name="perform_agent_mission")
    async def perform(assignment: PhaseAssignment) -> AgentReport:
        missions.append(assignment.phase.phase_id)
        return AgentReport(phase_id=assignment.phase.phase_id, agent_id=assignment.phase.agent_id, attempt=1)

    crisis_id = f"crisis-cancel-in-create-{uuid.uuid4().hex[:8]}"
    crisis = request(crisis_id, phase("secure-1", "secure", 1, compensate_action="release-perimeter"))
    activities = [slow_initialize, perform, real.log_mission_phase, real.finalize_crisis_response]
    # The record is created by a local activity, inside a workflow task: a short task timeout
    # makes the worker heartbeat that task, and so see the cancel, sooner.
    failure = await cancel_while_writing(
        dev_server.client, task_queue, executor, activities, crisis, creating, release, timedelta(seconds=2)
    )

    assert isinstance(failure.cause, CancelledError)
    assert missions == [], "no phase ran"
    record = json.loads(store.path_for(crisis_id).read_text())
    assert record["status"] == "cancelled"
    assert record["completed_at"] is not None
    assert [(p["phase_id"], p["status"]) for p in record["phases"]] == [("secure-1", "skipped")]
    assert record["compensations"] == []
