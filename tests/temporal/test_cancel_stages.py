"""A cancel at every stage of a crisis ends it with a finalized record and a correct ``CrisisStatus``.

The rule: a cancel before the crisis winds down stops the running phase, skips the rest,
compensates completed phases and finalizes the record as ``cancelled``; once it winds down
(compensating, finalizing) it runs to its end and the cancel is recorded, not obeyed. Record
writes are never cut short. Each test runs an in-process worker on the dev server with the real
record activities and holds one step until the workflow has seen the cancel.
"""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError

from app.temporal.activities import CrisisActivities
from app.temporal.models import (
    AgentReport,
    CrisisRequest,
    CrisisResult,
    PhaseAssignment,
)
from app.temporal.records import FileRecordStore
from app.temporal.visibility import CRISIS_STATUS, start_attributes
from app.temporal.workflows import CrisisResponseWorkflow
from tests.helpers import assert_eventually
from tests.helpers.workflows import cancel_seen_by_the_workflow, crisis_workflow_worker, phase, request

pytestmark = pytest.mark.integration

#: A record write is a local activity, run inside a workflow task: a short task timeout makes
#: the worker heartbeat that task, and so see a cancel, sooner.
SHORT_TASK_TIMEOUT = timedelta(seconds=2)


class Held:
    """One step of a crisis held until released: ``reached`` is set when it begins."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def hold(self) -> None:
        self.reached.set()
        await self.release.wait()


class Crisis:
    """A crisis on the dev server with the real record activities, some replaced by test doubles."""

    def __init__(self, client: Client, task_queue: str, tmp_path: Path, **doubles: Any) -> None:
        self.client = client
        self.task_queue = task_queue
        self.store = FileRecordStore(tmp_path / "crises")
        self.real = CrisisActivities(self.store)
        self.missions: list[tuple[str, str]] = []
        activities = {
            "initialize_crisis_response": self.real.initialize_crisis_response,
            "perform_agent_mission": self.perform,
            "log_mission_phase": self.real.log_mission_phase,
            "finalize_crisis_response": self.real.finalize_crisis_response,
            "hold_final_write": self.real.hold_final_write,
        }
        self.activities = list({**activities, **doubles}.values())

    @staticmethod
    def report(assignment: PhaseAssignment) -> AgentReport:
        return AgentReport(phase_id=assignment.phase.phase_id, agent_id=assignment.phase.agent_id, attempt=1)

    @activity.defn(name="perform_agent_mission")
    async def perform(self, assignment: PhaseAssignment) -> AgentReport:
        self.missions.append((assignment.phase.action, assignment.phase.phase_id))
        return self.report(assignment)

    async def start(self, crisis: CrisisRequest, **options: Any) -> WorkflowHandle:
        return await self.client.start_workflow(
            CrisisResponseWorkflow.run,
            crisis,
            id=f"crisis-workflow-{crisis.crisis_id}",
            task_queue=self.task_queue,
            search_attributes=start_attributes(crisis.target_member, crisis.initiated_by),
            **options,
        )

    def worker(self):
        return crisis_workflow_worker(self.client, self.task_queue, self.activities)

    def record(self, crisis: CrisisRequest) -> dict[str, Any]:
        return json.loads(self.store.path_for(crisis.crisis_id).read_text())


async def ended(handle: WorkflowHandle) -> tuple[WorkflowExecutionStatus | None, str | None]:
    description = await handle.describe()
    return description.status, description.typed_search_attributes.get(CRISIS_STATUS)


async def cancel_while(handle: WorkflowHandle, held: Held) -> None:
    """Once ``held`` is reached, cancel, wait until the workflow has seen it, then release."""
    await asyncio.wait_for(held.reached.wait(), 60)
    await handle.cancel()
    await assert_eventually(lambda: cancel_seen_by_the_workflow(handle), timeout=60)
    held.release.set()


async def cancelled(handle: WorkflowHandle) -> None:
    with pytest.raises(WorkflowFailureError) as failure:
        await asyncio.wait_for(handle.result(), 60)
    assert isinstance(failure.value.cause, CancelledError)


def unique(name: str) -> str:
    return f"crisis-{name}-{uuid.uuid4().hex[:8]}"


def statuses(entries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(entry["phase_id"], entry["status"]) for entry in entries]


def stages(record: dict[str, Any]) -> list[tuple[str, bool]]:
    return [(note["stage"], note["obeyed"]) for note in record["cancel_requests"]]


def holding(held: Held, real: Callable[[Any], Awaitable[Any]], *, when: Callable[[Any], bool] = lambda _: True):
    """The activity ``real``, held at ``held`` the first time ``when(argument)`` is true."""

    @functools.wraps(real, updated=())  # its argument type, not its activity definition
    async def double(argument: Any) -> Any:
        if when(argument) and not held.reached.is_set():
            await held.hold()
        return await real(argument)

    return activity.defn(name=real.__name__)(double)


# --- before the first workflow task (validating) ----------------------------------------------


async def test_a_cancel_before_any_worker_took_the_crisis_finalizes_it_as_cancelled(dev_server, task_queue, tmp_path):
    crisis = Crisis(dev_server.client, task_queue, tmp_path)
    request_ = request(unique("cancel-validating"), phase("secure-1", "secure", 1, compensate_action="undo"))
    handle = await crisis.start(request_)
    await handle.cancel()  # delivered with the start, in the first workflow task
    async with crisis.worker():
        await cancelled(handle)

    assert crisis.missions == []
    record = crisis.record(request_)
    assert (record["status"], statuses(record["phases"])) == ("cancelled", [("secure-1", "skipped")])
    assert record["completed_at"] is not None and record["compensations"] == []
    assert stages(record) == [("initializing", True)]
    assert await ended(handle) == (WorkflowExecutionStatus.CANCELED, "cancelled")


async def test_an_invalid_request_cancelled_at_once_fails_with_its_reason(dev_server, task_queue, tmp_path):
    crisis = Crisis(dev_server.client, task_queue, tmp_path)
    crisis_id = unique("cancel-invalid")
    invalid = {"crisis_id": crisis_id, "target_member": "target-alpha", "missions": []}
    handle = await dev_server.client.start_workflow(
        "CrisisResponseWorkflow",
        invalid,
        id=f"crisis-workflow-{crisis_id}",
        task_queue=task_queue,
        search_attributes=start_attributes("target-alpha", "tester"),
    )
    await handle.cancel()
    async with crisis.worker():
        with pytest.raises(WorkflowFailureError) as failure:
            await asyncio.wait_for(handle.result(), 60)

    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.message == "invalid crisis request: missions: give at least one phase"
    assert not crisis.store.path_for(crisis_id).exists(), "nothing started, so there is no record"
    assert await ended(handle) == (WorkflowExecutionStatus.FAILED, "failed")


# --- initializing -------------------------------------------------------------------------------


async def test_a_cancel_while_the_record_is_created_ends_the_crisis_before_its_phases_with_the_record_final(
    dev_server, task_queue, tmp_path
):
    held = Held()
    crisis = Crisis(dev_server.client, task_queue, tmp_path)
    crisis.activities[0] = holding(held, crisis.real.initialize_crisis_response)
    # Gated, so the workflow creates the record before it (the activity of a first phase that runs
    # at once creates the record itself, before its agent runs).
    first = phase("secure-1", "secure", 1, compensate_action="undo", requires_approval=True)
    request_ = request(unique("cancel-in-create"), first)
    async with crisis.worker():
        handle = await crisis.start(request_, task_timeout=SHORT_TASK_TIMEOUT)
        await cancel_while(handle, held)
        await cancelled(handle)

    assert crisis.missions == [], "no phase ran"
    record = crisis.record(request_)
    assert (record["status"], statuses(record["phases"])) == ("cancelled", [("secure-1", "skipped")])
    assert record["completed_at"] is not None and record["compensations"] == []
    assert stages(record) == [("initializing", True)]
    assert await ended(handle) == (WorkflowExecutionStatus.CANCELED, "cancelled")


# --- running ------------------------------------------------------------------------------------


async def test_a_cancel_during_a_phase_record_write_still_compensates_and_finalizes(dev_server, task_queue, tmp_path):
    held = Held()
    crisis = Crisis(dev_server.client, task_queue, tmp_path)
    crisis.activities[2] = holding(held, crisis.real.log_mission_phase)
    request_ = request(
        unique("cancel-in-record"),
        phase("secure-1", "secure", 1, compensate_action="release-perimeter"),
        phase("extract-2", "extract", 2),
    )
    async with crisis.worker():
        handle = await crisis.start(request_, task_timeout=SHORT_TASK_TIMEOUT)
        await cancel_while(handle, held)
        await cancelled(handle)

    assert crisis.missions == [("secure", "secure-1"), ("release-perimeter", "secure-1")]
    record = crisis.record(request_)
    assert record["status"] == "cancelled"
    assert statuses(record["phases"]) == [("secure-1", "completed"), ("extract-2", "skipped")]
    assert [(c["action"], c["status"]) for c in record["compensations"]] == [("release-perimeter", "completed")]
    assert stages(record) == [("running", True)]
    assert await ended(handle) == (WorkflowExecutionStatus.CANCELED, "cancelled")


async def test_a_cancel_while_a_phase_runs_stops_it_and_compensates(dev_server, task_queue, tmp_path):
    held = Held()
    crisis = Crisis(dev_server.client, task_queue, tmp_path)
    stopped: list[str] = []

    @activity.defn(name="perform_agent_mission")
    async def extract_hangs(assignment: PhaseAssignment) -> AgentReport:
        crisis.missions.append((assignment.phase.action, assignment.phase.phase_id))
        if assignment.phase.action == "extract":
            held.reached.set()
            try:
                while True:
                    activity.heartbeat()
                    await asyncio.sleep(0.1)
            except asyncio.CancelledError:
                stopped.append(assignment.phase.phase_id)
                raise
        return crisis.report(assignment)

    crisis.activities[1] = extract_hangs
    request_ = request(
        unique("cancel-running"),
        phase("secure-1", "secure", 1, compensate_action="release-perimeter"),
        phase("extract-2", "extract", 2),
        phase("cleanup-3", "cleanup", 3),
        heartbeat_timeout_seconds=5,
    )
    async with crisis.worker():
        handle = await crisis.start(request_)
        await asyncio.wait_for(held.reached.wait(), 60)
        await handle.cancel()
        await cancelled(handle)

    assert stopped == ["extract-2"]
    record = crisis.record(request_)
    assert statuses(record["phases"]) == [
        ("secure-1", "completed"),
        ("extract-2", "cancelled"),
        ("cleanup-3", "skipped"),
    ]
    assert [(c["action"], c["status"]) for c in record["compensations"]] == [("release-perimeter", "completed")]
    assert (record["status"], stages(record)) == ("cancelled", [("running", True)])
    assert await ended(handle) == (WorkflowExecutionStatus.CANCELED, "cancelled")


# --- awaiting approval --------------------------------------------------------------------------


async def test_a_cancel_while_awaiting_approval_cancels_that_phase_and_compensates(dev_server, task_queue, tmp_path):
    crisis = Crisis(dev_server.client, task_queue, tmp_path)
    request_ = request(
        unique("cancel-awaiting"),
        phase("recon-1", "reconnaissance", 1, compensate_action="withdraw-scouts"),
        phase("strike-2", "strike", 2, requires_approval=True),
    )
    async with crisis.worker():
        handle = await crisis.start(request_)

        async def awaiting() -> bool:
            return (await ended(handle))[1] == "awaiting_approval"

        await assert_eventually(awaiting, timeout=60)
        await handle.cancel()
        await cancelled(handle)

    record = crisis.record(request_)
    assert statuses(record["phases"]) == [("recon-1", "completed"), ("strike-2", "cancelled")]
    assert [(c["action"], c["status"]) for c in record["compensations"]] == [("withdraw-scouts", "completed")]
    assert (record["status"], stages(record)) == ("cancelled", [("running", True)])
    assert await ended(handle) == (WorkflowExecutionStatus.CANCELED, "cancelled")


# --- compensating -------------------------------------------------------------------------------


def aborting(*, compensate: bool = True) -> CrisisRequest:
    return request(
        unique("cancel-compensating"),
        phase("secure-1", "secure", 1, compensate_action="release-perimeter" if compensate else None),
        phase("extract-2", "extract", 2),
        phase("cleanup-3", "cleanup", 3),
        failure_policy="abort",
    )


async def test_a_cancel_while_a_compensation_runs_lets_it_finish_and_is_recorded_not_obeyed(
    dev_server, task_queue, tmp_path
):
    held = Held()
    crisis = Crisis(dev_server.client, task_queue, tmp_path)

    @activity.defn(name="perform_agent_mission")
    async def extract_fails_and_the_undo_is_slow(assignment: PhaseAssignment) -> AgentReport:
        crisis.missions.append((assignment.phase.action, assignment.phase.phase_id))
        if assignment.phase.action == "extract":
            raise ApplicationError("extraction failed", non_retryable=True)
        if assignment.compensation:
            held.reached.set()
            while not held.release.is_set():
                activity.heartbeat()  # a cancel of this activity would reach it here
                await asyncio.sleep(0.1)
        return crisis.report(assignment)

    crisis.activities[1] = extract_fails_and_the_undo_is_slow
    request_ = aborting()
    async with crisis.worker():
        handle = await crisis.start(request_)
        await cancel_while(handle, held)
        result: CrisisResult = await asyncio.wait_for(handle.result(), 60)

    assert [(c.action, c.status) for c in result.compensations] == [("release-perimeter", "completed")]
    assert result.status == "failed"
    assert [(note.stage, note.obeyed) for note in result.cancel_requests] == [("compensating", False)]
    record = crisis.record(request_)
    assert [(c["action"], c["status"]) for c in record["compensations"]] == [("release-perimeter", "completed")]
    assert (record["status"], stages(record)) == ("failed", [("compensating", False)])
    assert await ended(handle) == (WorkflowExecutionStatus.COMPLETED, "failed")


async def test_a_cancel_while_a_compensation_is_recorded_still_finalizes(dev_server, task_queue, tmp_path):
    held = Held()
    crisis = Crisis(dev_server.client, task_queue, tmp_path)

    @activity.defn(name="perform_agent_mission")
    async def extract_fails(assignment: PhaseAssignment) -> AgentReport:
        if assignment.phase.action == "extract":
            raise ApplicationError("extraction failed", non_retryable=True)
        return crisis.report(assignment)

    crisis.activities[1] = extract_fails
    crisis.activities[2] = holding(held, crisis.real.log_mission_phase, when=lambda entry: entry.compensation)
    request_ = aborting()
    async with crisis.worker():
        handle = await crisis.start(request_, task_timeout=SHORT_TASK_TIMEOUT)
        await cancel_while(handle, held)
        result: CrisisResult = await asyncio.wait_for(handle.result(), 60)

    record = crisis.record(request_)
    assert record["status"] == result.status == "failed"
    assert record["completed_at"] is not None
    assert [(c["action"], c["status"]) for c in record["compensations"]] == [("release-perimeter", "completed")]
    assert stages(record) == [("compensating", False)]
    assert await ended(handle) == (WorkflowExecutionStatus.COMPLETED, "failed")


# --- finalizing ---------------------------------------------------------------------------------


async def test_a_cancel_while_the_record_is_finalized_is_recorded_and_the_crisis_completes(
    dev_server, task_queue, tmp_path
):
    held = Held()
    crisis = Crisis(dev_server.client, task_queue, tmp_path)

    crisis.activities[3] = holding(held, crisis.real.finalize_crisis_response)
    request_ = request(unique("cancel-finalizing"), phase("secure-1", "secure", 1, compensate_action="undo"))
    async with crisis.worker():
        handle = await crisis.start(request_, task_timeout=SHORT_TASK_TIMEOUT)
        await cancel_while(handle, held)
        result: CrisisResult = await asyncio.wait_for(handle.result(), 60)

    assert (result.status, result.success) == ("completed", True)
    assert [(note.stage, note.obeyed) for note in result.cancel_requests] == [("finalizing", False)]
    assert crisis.missions == [("secure", "secure-1")], "nothing was compensated"
    record = crisis.record(request_)
    assert (record["status"], statuses(record["phases"])) == ("completed", [("secure-1", "completed")])
    assert await ended(handle) == (WorkflowExecutionStatus.COMPLETED, "completed")
