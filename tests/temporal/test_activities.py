"""The crisis activities run directly in an ``ActivityEnvironment`` (no Temporal server), on
each record store (``store`` is files, then PostgreSQL); ``validate_crisis_request`` also through
a worker, as another workflow calls it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, RetryState
from temporalio.testing import ActivityEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from app.temporal.activities import CrisisActivities
from app.temporal.models import (
    INVALID_REQUEST_ERROR,
    CrisisCompletion,
    CrisisRequest,
    CrisisSnapshot,
    MissionPhase,
    PhaseAssignment,
    PhaseLogEntry,
    PhaseOutcome,
    PhaseStatus,
)
from app.temporal.records import FileRecordStore, PostgresRecordStore, RecordStore, format_timestamp
from cognition.liara.actions import missions_from_actions

STARTED = datetime(2026, 1, 16, 10, 30, tzinfo=UTC)
ACTIONS = ("recon", "secure", "extract", "cleanup")


@pytest.fixture
def store(any_store: RecordStore) -> RecordStore:
    return any_store


@pytest.fixture
def activities(store: RecordStore) -> CrisisActivities:
    return CrisisActivities(store)


@pytest.fixture
def env() -> ActivityEnvironment:
    return ActivityEnvironment()


def spec_phases() -> list[MissionPhase]:
    return [MissionPhase.model_validate(m) for m in missions_from_actions("target-alpha", ACTIONS)]


def outcome(phase: MissionPhase, status: PhaseStatus = PhaseStatus.PENDING, **extra: object) -> PhaseOutcome:
    return PhaseOutcome(phase_id=phase.phase_id, agent_id=phase.agent_id, action=phase.action, status=status, **extra)


async def start(activities: CrisisActivities, env: ActivityEnvironment, crisis_id: str = "crisis-1") -> None:
    await env.run(
        activities.initialize_crisis_response,
        CrisisSnapshot(
            crisis_id=crisis_id,
            workflow_id=f"crisis-workflow-{crisis_id}",
            run_id="run-1",
            target="target-alpha",
            initiated_by="tester",
            started_at=STARTED,
            phases=[outcome(p) for p in spec_phases()],
        ),
    )


async def test_validate_returns_the_phases_in_priority_order(
    activities: CrisisActivities, env: ActivityEnvironment
) -> None:
    missions = [
        {**m, "priority": priority}
        for m, priority in zip(missions_from_actions("target-alpha", ACTIONS), (3, 1, 3, 0), strict=True)
    ]
    request = CrisisRequest(crisis_id="crisis-1", target_member="target-alpha", missions=missions)

    ordered = await env.run(activities.validate_crisis_request, request)

    assert [p.phase_id for p in ordered] == ["cleanup-phase-4", "secure-phase-2", "recon-phase-1", "extract-phase-3"]
    assert all(isinstance(p, MissionPhase) for p in ordered)


async def test_validate_fails_an_invalid_request_without_retry(
    activities: CrisisActivities, env: ActivityEnvironment
) -> None:
    recon = spec_phases()[0]
    request = CrisisRequest.model_construct(crisis_id="crisis-1", target_member="target-alpha", missions=[recon, recon])

    with pytest.raises(ApplicationError) as caught:
        await env.run(activities.validate_crisis_request, request)

    err = caught.value
    assert err.non_retryable is True
    assert err.type == INVALID_REQUEST_ERROR == "InvalidCrisisRequest"
    assert "missions: " in err.message
    assert "'recon-phase-1' appears more than once" in err.message


async def test_validate_names_each_bad_field(activities: CrisisActivities, env: ActivityEnvironment) -> None:
    bad_phase = MissionPhase.model_construct(**{**spec_phases()[0].model_dump(), "phase_id": "../escape"})
    request = CrisisRequest.model_construct(crisis_id="a/b", target_member="target-alpha", missions=[bad_phase])

    with pytest.raises(ApplicationError) as caught:
        await env.run(activities.validate_crisis_request, request)

    assert caught.value.message.startswith("invalid crisis request: crisis_id: ")
    assert "missions.0.phase_id: " in caught.value.message


@workflow.defn(name="ChecksACrisisRequest")
class ChecksACrisisRequest:
    """Another workflow, which has a crisis request checked by the ``validate_crisis_request`` activity."""

    @workflow.run
    async def run(self, request: dict) -> list[MissionPhase]:
        return await workflow.execute_activity(
            "validate_crisis_request",
            request,
            result_type=list[MissionPhase],
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=10), maximum_attempts=2),
        )


async def check_through_a_worker(env, task_queue: str, tmp_path: Path, request: dict) -> list[MissionPhase]:
    activities = CrisisActivities(FileRecordStore(tmp_path / "crises"))
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[ChecksACrisisRequest],
        activities=[activities.validate_crisis_request],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        return await env.client.execute_workflow(
            ChecksACrisisRequest.run, request, id=f"check-{task_queue}", task_queue=task_queue
        )


async def test_validate_through_a_worker_fails_a_bad_request_at_once_in_one_line(
    time_skipping_env, task_queue: str, tmp_path: Path
) -> None:
    bad = {"crisis_id": "crisis-1", "target_member": "target-alpha", "missions": []}
    with pytest.raises(WorkflowFailureError) as caught:
        await check_through_a_worker(time_skipping_env, task_queue, tmp_path, bad)

    failure = caught.value.cause
    assert isinstance(failure, ActivityError) and failure.retry_state == RetryState.NON_RETRYABLE_FAILURE
    err = failure.cause
    assert isinstance(err, ApplicationError) and (err.type, err.non_retryable) == (INVALID_REQUEST_ERROR, True)
    assert err.message == "invalid crisis request: missions: give at least one phase"


async def test_validate_through_a_worker_orders_a_request_with_fields_it_does_not_know(
    time_skipping_env, task_queue: str, tmp_path: Path
) -> None:
    missions = [m.model_dump() for m in spec_phases()]
    missions[0]["priority"] = 9
    newer = {"crisis_id": "crisis-1", "target_member": "target-alpha", "missions": missions, "urgency": "high"}
    ordered = await check_through_a_worker(time_skipping_env, task_queue, tmp_path, newer)
    assert [p.phase_id for p in ordered] == ["secure-phase-2", "extract-phase-3", "cleanup-phase-4", "recon-phase-1"]


async def test_perform_agent_mission_logs_the_deployment(
    activities: CrisisActivities, env: ActivityEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="liara.activities")
    recon = spec_phases()[0]
    assignment = PhaseAssignment(crisis_id="crisis-1", workflow_id="crisis-workflow-crisis-1", phase=recon)

    report = await env.run(activities.perform_agent_mission, assignment)

    assert (report.phase_id, report.agent_id, report.attempt) == ("recon-phase-1", "recon-agent-001", 1)
    assert [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "liara.activities"] == [
        (
            "INFO",
            "AGENT DEPLOYMENT - Phase: recon-phase-1 | Agent: recon-agent-001 | Action: reconnaissance | "
            "Target: target-alpha",
        ),
        ("INFO", "Agent recon-agent-001 deployed successfully for mission phase recon-phase-1"),
    ]


async def test_perform_agent_mission_warns_on_a_retry(
    activities: CrisisActivities, env: ActivityEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="liara.activities")
    env.info = dataclasses.replace(env.info, attempt=3)
    secure = spec_phases()[1]

    report = await env.run(
        activities.perform_agent_mission, PhaseAssignment(crisis_id="crisis-1", workflow_id="wf", phase=secure)
    )

    assert report.attempt == 3
    messages = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "liara.activities"]
    assert messages[0] == ("WARNING", "Retrying mission phase secure-phase-2 (attempt 3)")
    assert len(messages) == 3


async def test_perform_agent_mission_records_its_completed_phase_when_asked(
    activities: CrisisActivities, env: ActivityEnvironment, store: RecordStore
) -> None:
    await start(activities, env)
    secure = spec_phases()[1]
    env.info = dataclasses.replace(env.info, attempt=2)
    entry = outcome(secure, approved_by="commander")
    assignment = PhaseAssignment(crisis_id="crisis-1", workflow_id="wf", phase=secure, entry=entry, record=True)

    report = await env.run(activities.perform_agent_mission, assignment)

    assert report.recorded is True
    recorded = (await store.read("crisis-1"))["phases"][1]
    assert recorded["phase_id"] == "secure-phase-2"
    assert (recorded["status"], recorded["attempts"], recorded["approved_by"]) == ("completed", 2, "commander")
    # One clock: the attempt's start on the server plus the agent's run time, in the record and the report.
    assert env.info.started_time <= report.finished_at < env.info.started_time + timedelta(seconds=5)
    assert recorded["timestamp"] == format_timestamp(report.finished_at)
    assert [p["status"] for p in (await store.read("crisis-1"))["phases"]] == [
        "pending",
        "completed",
        "pending",
        "pending",
    ]


async def test_perform_agent_mission_leaves_the_record_to_the_workflow_when_the_store_fails(
    env: ActivityEnvironment, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FileRecordStore(tmp_path / "crises")
    activities = CrisisActivities(store)
    await start(activities, env)
    store.path_for("crisis-1").write_text("{not json")
    recon = spec_phases()[0]
    assignment = PhaseAssignment(crisis_id="crisis-1", workflow_id="wf", phase=recon, entry=outcome(recon), record=True)

    report = await env.run(activities.perform_agent_mission, assignment)

    assert (report.phase_id, report.recorded) == ("recon-phase-1", False)  # the agent's success stands
    assert store.path_for("crisis-1").read_text() == "{not json"
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "liara.activities"]
    assert len(warning) == 1 and "recon-phase-1 completed but is not recorded yet" in warning[0], warning


async def test_initialize_creates_the_record(
    activities: CrisisActivities, env: ActivityEnvironment, store: RecordStore
) -> None:
    await start(activities, env)
    record = await store.read("crisis-1")
    assert record["status"] == "running"
    assert [p["phase_id"] for p in record["phases"]] == [
        "recon-phase-1",
        "secure-phase-2",
        "extract-phase-3",
        "cleanup-phase-4",
    ]


async def test_log_mission_phase_twice_keeps_one_entry(
    activities: CrisisActivities, env: ActivityEnvironment, store: RecordStore
) -> None:
    await start(activities, env)
    recon = spec_phases()[0]
    entry = PhaseLogEntry(
        crisis_id="crisis-1",
        target="target-alpha",
        outcome=outcome(recon, PhaseStatus.COMPLETED, attempts=1, timestamp=STARTED + timedelta(seconds=1)),
    )

    await env.run(activities.log_mission_phase, entry)
    after_first = await store.read("crisis-1")
    await env.run(activities.log_mission_phase, entry)  # the same activity, retried

    assert await store.read("crisis-1") == after_first
    record = after_first
    assert [p["phase_id"] for p in record["phases"]].count("recon-phase-1") == 1
    assert (record["phases"][0]["status"], record["phases"][0]["timestamp"]) == (
        "completed",
        "2026-01-16T10:30:01.000Z",
    )
    assert record["summary"] == {"completed_phases": 1, "failed_phases": 0, "total_phases": 4}


async def test_log_mission_phase_records_a_failure_with_its_error(
    activities: CrisisActivities, env: ActivityEnvironment, store: RecordStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="liara.activities")
    await start(activities, env)
    secure = spec_phases()[1]
    failed = outcome(secure, PhaseStatus.FAILED, attempts=3, error="perimeter breached", timestamp=STARTED)

    await env.run(
        activities.log_mission_phase, PhaseLogEntry(crisis_id="crisis-1", target="target-alpha", outcome=failed)
    )

    record = await store.read("crisis-1")
    assert (record["phases"][1]["status"], record["phases"][1]["error"]) == ("failed", "perimeter breached")
    assert record["summary"] == {"completed_phases": 0, "failed_phases": 1, "total_phases": 4}
    assert ("WARNING", "Mission phase secure-phase-2 failed (crisis crisis-1): perimeter breached") in [
        (r.levelname, r.getMessage()) for r in caplog.records if r.name == "liara.activities"
    ]


async def test_finalize_returns_the_absolute_record_path(
    env: ActivityEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    activities = CrisisActivities(FileRecordStore(Path("relative") / "crises"))
    await start(activities, env)
    phases = [
        outcome(p, PhaseStatus.COMPLETED, attempts=1, timestamp=STARTED + timedelta(seconds=1)) for p in spec_phases()
    ]

    path = await env.run(
        activities.finalize_crisis_response,
        CrisisCompletion(
            crisis_id="crisis-1", status="completed", completed_at=STARTED + timedelta(seconds=2), phases=phases
        ),
    )

    assert Path(path).is_absolute()
    assert path == str((tmp_path / "relative" / "crises" / "crisis-1.json").resolve())
    record = json.loads(Path(path).read_text())
    assert (record["status"], record["completed_at"]) == ("completed", "2026-01-16T10:30:02.000Z")
    assert record["summary"] == {"completed_phases": 4, "failed_phases": 0, "total_phases": 4}


async def test_finalize_returns_where_the_record_is_in_postgresql(
    env: ActivityEnvironment, pg_store: PostgresRecordStore, postgres
) -> None:
    activities = CrisisActivities(pg_store)
    await start(activities, env)

    location = await env.run(
        activities.finalize_crisis_response,
        CrisisCompletion(crisis_id="crisis-1", status="completed", completed_at=STARTED, phases=[]),
    )

    assert location == f"postgresql://{postgres.host}:{postgres.port}/{postgres.database}#crisis-1"
    assert postgres.password not in location and "@" not in location
    assert (await pg_store.read("crisis-1"))["status"] == "completed"


def test_all_lists_the_five_activities_by_their_spec_names(activities: CrisisActivities) -> None:
    names = [fn.__temporal_activity_definition.name for fn in activities.all()]  # type: ignore[attr-defined]
    assert names == [
        "validate_crisis_request",
        "initialize_crisis_response",
        "perform_agent_mission",
        "log_mission_phase",
        "finalize_crisis_response",
    ]
