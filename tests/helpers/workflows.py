"""The crisis workflow on a test server: in-process workers with the real activities or a
stand-in agent, requests and phases, and starting, following and reading crises.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from app.temporal.activities import CrisisActivities
from app.temporal.models import AgentReport, CrisisRequest, CrisisResult, PhaseAssignment, PhaseStatus
from app.temporal.records import FileRecordStore
from app.temporal.workflows import CrisisResponseWorkflow
from cognition.liara.actions import missions_from_actions
from cognition.liara.agency import LiaraTemporalAgency
from tests.helpers import assert_eventually


@asynccontextmanager
async def crisis_worker(client: Client, task_queue: str, store: FileRecordStore, mission=None):
    """An in-process worker with the real activities, or ``mission`` standing in for the agent."""
    real = CrisisActivities(store)
    activities = [
        real.validate_crisis_request,
        real.initialize_crisis_response,
        mission or real.perform_agent_mission,
        real.log_mission_phase,
        real.finalize_crisis_response,
        real.hold_final_write,
    ]
    async with crisis_workflow_worker(client, task_queue, activities):
        yield


def crisis_workflow_worker(client: Client, task_queue: str, activities: list) -> Worker:
    """An in-process worker of the crisis workflow with exactly ``activities``."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[CrisisResponseWorkflow],
        activities=activities,
    )


def crisis_request(
    crisis_id: str = "crisis-test-1", actions: tuple[str, ...] = ("recon", "secure", "extract", "cleanup"), **extra: Any
) -> CrisisRequest:
    return CrisisRequest(
        crisis_id=crisis_id,
        target_member="target-alpha",
        missions=missions_from_actions("target-alpha", actions),
        initiated_by="tester",
        **extra,
    )


class Agents:
    """A stand-in agent: records every call, fails the actions in ``failing``, and holds the
    actions in ``holding`` until released (heartbeating, so cancellation reaches it).
    """

    def __init__(self, failing: tuple[str, ...] = (), holding: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple[str, str]] = []
        self.failing = failing
        self.holding = holding
        self.release = asyncio.Event()
        self.cancelled: list[str] = []

    @activity.defn(name="perform_agent_mission")
    async def perform(self, assignment: PhaseAssignment) -> AgentReport:
        phase = assignment.phase
        self.calls.append((phase.phase_id, phase.action))
        if phase.action in self.holding:
            try:
                while not self.release.is_set():
                    activity.heartbeat()
                    await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                self.cancelled.append(phase.phase_id)
                raise
        if phase.action in self.failing:
            raise ApplicationError(f"{phase.action} went wrong", non_retryable=True)
        # Writes nothing, so the workflow writes each entry itself.
        return AgentReport(phase_id=phase.phase_id, agent_id=phase.agent_id, attempt=1, output={"done": phase.action})


def phase(phase_id: str, action: str, priority: int, **extra: object) -> dict[str, object]:
    return {
        "phase_id": phase_id,
        "agent_id": f"{action}-agent-001",
        "action": action,
        "target": "target-alpha",
        "priority": priority,
        **extra,
    }


def request(crisis_id: str, *phases: dict[str, object], **extra: object) -> CrisisRequest:
    return CrisisRequest.model_validate(
        {"crisis_id": crisis_id, "target_member": "target-alpha", "missions": list(phases), **extra}
    )


async def start(env, queue: str, crisis: CrisisRequest) -> WorkflowHandle:
    return await env.client.start_workflow(
        CrisisResponseWorkflow.run, crisis, id=f"crisis-workflow-{crisis.crisis_id}", task_queue=queue
    )


async def phase_status(handle: WorkflowHandle, phase_id: str) -> PhaseStatus | None:
    progress = await handle.query(CrisisResponseWorkflow.progress)
    return next((p.status for p in progress.phases if p.phase_id == phase_id), None)


async def every_run(env, handle) -> list[WorkflowHistory]:
    """The history of each run of the crisis, first run first (following continue-as-new)."""
    histories = []
    run = env.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
    while True:
        history = await run.fetch_history()
        histories.append(history)
        last = history.events[-1]
        if not last.HasField("workflow_execution_continued_as_new_event_attributes"):
            return histories
        run = env.client.get_workflow_handle(
            handle.id, run_id=last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        )


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


async def run_crisis(env: WorkflowEnvironment, task_queue: str, request: CrisisRequest) -> CrisisResult:
    return await env.client.execute_workflow(
        CrisisResponseWorkflow.run, request, id=f"crisis-workflow-{request.crisis_id}", task_queue=task_queue
    )


def read_record(store: FileRecordStore, crisis_id: str) -> dict[str, Any]:
    return json.loads((store.directory / f"{crisis_id}.json").read_text(encoding="utf-8"))


def worker(dev_server, task_queue: str, tmp_path: Path):
    real = CrisisActivities(FileRecordStore(tmp_path / "crises"))
    activities = [
        real.initialize_crisis_response,
        real.perform_agent_mission,
        real.log_mission_phase,
        real.finalize_crisis_response,
        real.hold_final_write,
    ]
    return crisis_workflow_worker(dev_server.client, task_queue, activities)


async def gated_crisis(agency: LiaraTemporalAgency, *phases: dict) -> str:
    return await agency.trigger_crisis_response(
        "target-alpha", list(phases), initiated_by="tester", crisis_id=f"crisis-gate-{uuid.uuid4().hex[:8]}"
    )


async def until(agency: LiaraTemporalAgency, workflow_id: str, phase_id: str, status: PhaseStatus) -> None:
    async def reached() -> bool:
        report = await agency.get_crisis_status(workflow_id)
        return any(p["phase_id"] == phase_id and p["status"] == status for p in report.get("phases", []))

    await assert_eventually(reached, timeout=60)
