"""More behaviour of ``CrisisResponseWorkflow`` on the time-skipping test server.

Each test runs an in-process worker (``crisis_worker``) on its own task queue with the real
bookkeeping activities writing to ``tmp_path``, and a double standing in for the agent.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from app.temporal.models import (
    INVALID_REQUEST_ERROR,
    AgentReport,
    CrisisRequest,
    MissionPhase,
    PhaseAssignment,
    PhaseStatus,
)
from app.temporal.records import FileRecordStore
from app.temporal.records.document import format_timestamp
from app.temporal.workflows import CrisisResponseWorkflow
from cognition.liara.actions import missions_from_actions
from tests.helpers import assert_eventually
from tests.helpers.servers import DevServer
from tests.helpers.workflows import crisis_request, crisis_worker, read_record, run_crisis

SPEC_PHASES = ["recon-phase-1", "secure-phase-2", "extract-phase-3", "cleanup-phase-4"]


@pytest.fixture
def store(tmp_path: Path) -> FileRecordStore:
    return FileRecordStore(tmp_path / "crises")


def report(assignment: PhaseAssignment) -> AgentReport:
    phase = assignment.phase
    return AgentReport(phase_id=phase.phase_id, agent_id=phase.agent_id, attempt=activity.info().attempt)


async def test_phases_run_by_priority_keeping_the_given_order_for_ties(
    time_skipping_env: WorkflowEnvironment, task_queue: str, store: FileRecordStore
) -> None:
    seen: list[str] = []

    @activity.defn(name="perform_agent_mission")
    async def mission(assignment: PhaseAssignment) -> AgentReport:
        seen.append(assignment.phase.phase_id)
        return report(assignment)

    priorities = {"a": 2, "b": 1, "c": 2, "d": 0, "e": 1, "f": 2}
    missions = [
        {
            "phase_id": phase_id,
            "agent_id": f"agent-{phase_id}",
            "action": "secure",
            "target": "target-alpha",
            "priority": p,
        }
        for phase_id, p in priorities.items()
    ]
    request = CrisisRequest(crisis_id="crisis-order", target_member="target-alpha", missions=missions)
    async with crisis_worker(time_skipping_env.client, task_queue, store, mission):
        result = await run_crisis(time_skipping_env, task_queue, request)

    assert seen == ["d", "b", "e", "a", "c", "f"]
    assert [p.phase_id for p in result.phases] == seen
    assert [p["phase_id"] for p in read_record(store, "crisis-order")["phases"]] == seen
    assert result.success


async def test_a_transient_failure_completes_the_phase_on_the_third_attempt(
    time_skipping_env: WorkflowEnvironment, task_queue: str, store: FileRecordStore
) -> None:
    calls: dict[str, int] = {}

    @activity.defn(name="perform_agent_mission")
    async def flaky_secure(assignment: PhaseAssignment) -> AgentReport:
        phase_id = assignment.phase.phase_id
        calls[phase_id] = calls.get(phase_id, 0) + 1
        if phase_id == "secure-phase-2" and activity.info().attempt < 3:
            raise ApplicationError(f"radio silence on attempt {activity.info().attempt}")
        return report(assignment)

    request = crisis_request("crisis-transient")
    async with crisis_worker(time_skipping_env.client, task_queue, store, flaky_secure):
        result = await run_crisis(time_skipping_env, task_queue, request)

    assert result.success
    assert result.status == "completed"
    assert calls == {"recon-phase-1": 1, "secure-phase-2": 3, "extract-phase-3": 1, "cleanup-phase-4": 1}
    secure = result.phases[1]
    assert (secure.phase_id, secure.status, secure.attempts, secure.error) == (
        "secure-phase-2",
        PhaseStatus.COMPLETED,
        3,
        None,
    )
    record = read_record(store, "crisis-transient")
    assert (record["phases"][1]["status"], record["phases"][1]["attempts"]) == ("completed", 3)
    assert record["summary"] == {"completed_phases": 4, "failed_phases": 0, "total_phases": 4}


async def test_a_per_crisis_retry_override_sets_the_number_of_attempts(
    time_skipping_env: WorkflowEnvironment, task_queue: str, store: FileRecordStore
) -> None:
    attempts: list[int] = []

    @activity.defn(name="perform_agent_mission")
    async def extract_always_fails(assignment: PhaseAssignment) -> AgentReport:
        if assignment.phase.phase_id == "extract-phase-3":
            attempts.append(activity.info().attempt)
            raise ApplicationError("extraction point compromised")
        return report(assignment)

    request = crisis_request("crisis-override", retry={"maximum_attempts": 5})
    async with crisis_worker(time_skipping_env.client, task_queue, store, extract_always_fails):
        result = await run_crisis(time_skipping_env, task_queue, request)

    assert attempts == [1, 2, 3, 4, 5]
    assert not result.success
    assert result.failed_phases == ["extract-phase-3"]
    extract = result.phases[2]
    assert (extract.status, extract.attempts, extract.error) == (PhaseStatus.FAILED, 5, "extraction point compromised")
    assert result.phases[3].status == PhaseStatus.COMPLETED


async def test_a_non_retryable_failure_is_attempted_once_and_the_rest_still_run(
    time_skipping_env: WorkflowEnvironment, task_queue: str, store: FileRecordStore
) -> None:
    calls: list[tuple[str, int]] = []

    @activity.defn(name="perform_agent_mission")
    async def secure_refused(assignment: PhaseAssignment) -> AgentReport:
        calls.append((assignment.phase.phase_id, activity.info().attempt))
        if assignment.phase.phase_id == "secure-phase-2":
            raise ApplicationError("agent lacks clearance", type="ClearanceDenied", non_retryable=True)
        return report(assignment)

    request = crisis_request("crisis-non-retryable")
    async with crisis_worker(time_skipping_env.client, task_queue, store, secure_refused):
        result = await run_crisis(time_skipping_env, task_queue, request)

    assert calls == [(phase_id, 1) for phase_id in SPEC_PHASES]
    assert result.status == "failed"
    assert result.failed_phases == ["secure-phase-2"]
    secure = result.phases[1]
    # The recorded error is the agent's own message, without the SDK's type prefix.
    assert (secure.status, secure.attempts, secure.error) == (
        PhaseStatus.FAILED,
        None,
        "agent lacks clearance",
    )
    assert [p.status for p in result.phases] == [
        PhaseStatus.COMPLETED,
        PhaseStatus.FAILED,
        PhaseStatus.COMPLETED,
        PhaseStatus.COMPLETED,
    ]
    record = read_record(store, "crisis-non-retryable")
    assert record["status"] == "failed"
    assert record["summary"] == {"completed_phases": 3, "failed_phases": 1, "total_phases": 4}


# Were the input decoded as a ``CrisisRequest`` (instead of ``CrisisInput``), the converter's
# error would fail the workflow task over and over and ``result()`` would never return: this
# guard turns that hang into a failure well before the suite's 300 s timeout.
@pytest.mark.timeout(60)
async def test_an_invalid_request_that_bypasses_client_validation_fails_the_crisis(
    time_skipping_env: WorkflowEnvironment, task_queue: str, store: FileRecordStore
) -> None:
    missions: list[str] = []

    @activity.defn(name="perform_agent_mission")
    async def mission(assignment: PhaseAssignment) -> AgentReport:
        missions.append(assignment.phase.phase_id)
        return report(assignment)

    recon = MissionPhase.model_validate(missions_from_actions("target-alpha", ["recon"])[0])
    request = CrisisRequest.model_construct(
        crisis_id="crisis-invalid", target_member="target-alpha", missions=[recon, recon]
    )
    async with crisis_worker(time_skipping_env.client, task_queue, store, mission):
        handle = await time_skipping_env.client.start_workflow(
            CrisisResponseWorkflow.run, request, id="crisis-workflow-crisis-invalid", task_queue=task_queue
        )
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result()

    cause = caught.value.cause
    assert isinstance(cause, ApplicationError), repr(cause)
    assert (cause.type, cause.non_retryable) == (INVALID_REQUEST_ERROR, True)
    # The one-line message the agency gives, not pydantic's (which quotes the input).
    assert cause.message == "invalid crisis request: missions: phase_id 'recon-phase-1' appears more than once"
    assert missions == []
    assert not (store.directory / "crisis-invalid.json").exists()


async def test_progress_of_a_running_crisis(
    time_skipping_env: WorkflowEnvironment, task_queue: str, store: FileRecordStore
) -> None:
    extract_started = asyncio.Event()
    release = asyncio.Event()

    @activity.defn(name="perform_agent_mission")
    async def extract_waits(assignment: PhaseAssignment) -> AgentReport:
        if assignment.phase.phase_id == "extract-phase-3":
            extract_started.set()
            await release.wait()
        return report(assignment)

    # Generous timeouts: queries do not skip time, so the blocked phase must not time out meanwhile.
    request = crisis_request("crisis-progress", phase_timeout_seconds=3600, heartbeat_timeout_seconds=3600)
    async with crisis_worker(time_skipping_env.client, task_queue, store, extract_waits):
        handle = await time_skipping_env.client.start_workflow(
            CrisisResponseWorkflow.run, request, id="crisis-workflow-crisis-progress", task_queue=task_queue
        )
        try:
            await asyncio.wait_for(extract_started.wait(), timeout=60)

            async def extract_is_current() -> bool:
                progress = await handle.query(CrisisResponseWorkflow.progress)
                return progress.current_phase == "extract-phase-3"

            await assert_eventually(extract_is_current)
            progress = await handle.query(CrisisResponseWorkflow.progress)
        finally:
            release.set()
        result = await handle.result()
        done = await handle.query(CrisisResponseWorkflow.progress)

    assert (progress.crisis_id, progress.target, progress.stage) == ("crisis-progress", "target-alpha", "running")
    assert [(p.phase_id, p.status) for p in progress.phases] == [
        ("recon-phase-1", PhaseStatus.COMPLETED),
        ("secure-phase-2", PhaseStatus.COMPLETED),
        ("extract-phase-3", PhaseStatus.RUNNING),
        ("cleanup-phase-4", PhaseStatus.PENDING),
    ]
    assert progress.phases[0].attempts == 1
    assert (progress.summary.completed_phases, progress.summary.total_phases) == (2, 4)
    assert result.success
    assert (done.stage, done.current_phase) == ("done", None)
    assert done.summary.completed_phases == 4


async def test_default_retry_backoff_is_honoured_in_workflow_time(
    time_skipping_env: WorkflowEnvironment, task_queue: str, store: FileRecordStore
) -> None:
    started: list[tuple[int, datetime]] = []

    @activity.defn(name="perform_agent_mission")
    async def recon_fails_twice(assignment: PhaseAssignment) -> AgentReport:
        info = activity.info()
        if assignment.phase.phase_id == "recon-phase-1":
            started.append((info.attempt, info.started_time))
            if info.attempt < 3:
                raise ApplicationError("no signal")
        return report(assignment)

    request = crisis_request("crisis-backoff")
    async with crisis_worker(time_skipping_env.client, task_queue, store, recon_fails_twice):
        result = await run_crisis(time_skipping_env, task_queue, request)

    assert [attempt for attempt, _ in started] == [1, 2, 3]
    assert result.success
    assert result.phases[0].attempts == 3
    # Server time, which the test server skips ahead (never wall-clock): the second attempt starts
    # after the 2 s initial interval, the third after 2 s x 2, and the workflow saw that time pass.
    first, second, third = (moment for _, moment in started)
    assert second - first >= timedelta(seconds=2)
    assert third - second >= timedelta(seconds=4)
    recon_done = result.phases[0].timestamp
    assert recon_done is not None
    assert recon_done - result.started_at >= timedelta(seconds=6)


async def test_the_result_says_who_started_the_crisis(
    time_skipping_env: WorkflowEnvironment, task_queue: str, store: FileRecordStore
) -> None:
    request = crisis_request("crisis-initiated", ("recon",)).model_copy(update={"initiated_by": "alice@example.com"})
    async with crisis_worker(time_skipping_env.client, task_queue, store):
        result = await run_crisis(time_skipping_env, task_queue, request)
    assert result.initiated_by == "alice@example.com"
    assert read_record(store, "crisis-initiated")["initiated_by"] == "alice@example.com"


async def test_started_at_is_when_the_crisis_started_not_when_a_worker_first_ran_it(
    dev_server: DevServer, task_queue: str, store: FileRecordStore
) -> None:
    request = crisis_request(f"crisis-late-worker-{task_queue[-8:]}", ("recon",))
    handle = await dev_server.client.start_workflow(
        CrisisResponseWorkflow.run, request, id=f"crisis-workflow-{request.crisis_id}", task_queue=task_queue
    )
    await asyncio.sleep(2)  # no worker polls the crisis's queue yet
    async with crisis_worker(dev_server.client, task_queue, store):
        result = await handle.result()
    started = (await handle.describe()).start_time
    assert result.started_at == started
    assert read_record(store, request.crisis_id)["started_at"] == format_timestamp(started)
    assert result.phases[0].timestamp - started >= timedelta(seconds=2)
