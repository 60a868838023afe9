"""Crisis workflow tests.

Unit tests run the workflow on the time-skipping test server with in-process workers; the
``integration`` tests drive the CLI and worker scripts as subprocesses on a real dev server and
read the record files they write.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from app.temporal.activities import CRISIS_ID_TAKEN_ERROR, CrisisActivities
from app.temporal.errors import CrisisRecordError
from app.temporal.models import AgentReport, CrisisResult, CrisisSnapshot, PhaseAssignment
from app.temporal.records import CrisisRun, FileRecordStore
from app.temporal.workflows import CrisisResponseWorkflow
from cognition.liara.actions import missions_from_actions
from cognition.liara.agency import LiaraTemporalAgency
from tests.helpers.cli import run_cli
from tests.helpers.processes import WorkerProcess
from tests.helpers.workflows import crisis_request, crisis_worker, crisis_workflow_worker


@pytest.fixture
def store(tmp_path: Path) -> FileRecordStore:
    return FileRecordStore(tmp_path / "crises")


async def test_crisis_runs_every_phase_in_order_and_writes_the_record(time_skipping_env, task_queue, store):
    request = crisis_request()
    async with crisis_worker(time_skipping_env.client, task_queue, store):
        result: CrisisResult = await time_skipping_env.client.execute_workflow(
            CrisisResponseWorkflow.run, request, id=f"crisis-workflow-{request.crisis_id}", task_queue=task_queue
        )
    assert result.success
    assert [p.phase_id for p in result.phases] == [
        "recon-phase-1",
        "secure-phase-2",
        "extract-phase-3",
        "cleanup-phase-4",
    ]
    record = json.loads((store.directory / "crisis-test-1.json").read_text())
    assert record["status"] == "completed"
    assert record["summary"] == {"completed_phases": 4, "failed_phases": 0, "total_phases": 4}
    assert result.record_path == str((store.directory / "crisis-test-1.json").resolve())


async def test_the_server_runs_one_activity_per_phase_and_the_worker_writes_the_records(
    time_skipping_env, task_queue, store
):
    """The request check and the record writes stay in the worker: the first phase's activity
    creates the record, each phase's activity writes its entry, the last one's with the final state.
    """
    request = crisis_request("crisis-lean")
    async with crisis_worker(time_skipping_env.client, task_queue, store):
        handle = await time_skipping_env.client.start_workflow(
            CrisisResponseWorkflow.run, request, id=f"crisis-workflow-{request.crisis_id}", task_queue=task_queue
        )
        await handle.result()
    events = (await handle.fetch_history()).events
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled == ["perform_agent_mission"] * 4
    local = [
        e
        for e in events
        if e.HasField("marker_recorded_event_attributes")
        and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]
    assert local == []  # no write of the workflow's own
    record = json.loads(store.path_for("crisis-lean").read_text())
    assert record["status"] == "completed"
    assert [p["status"] for p in record["phases"]] == ["completed"] * 4


async def test_the_first_phase_runs_only_once_its_activity_has_created_the_record(time_skipping_env, task_queue, store):
    request = crisis_request("crisis-created-first", ("recon", "secure"))
    seen: list[tuple[str, dict | None]] = []
    real = CrisisActivities(store)

    @activity.defn(name="perform_agent_mission")
    async def perform(assignment: PhaseAssignment) -> AgentReport:
        report = await real.perform_agent_mission(assignment)
        seen.append((assignment.phase.phase_id, await store.read("crisis-created-first")))
        return report

    async with crisis_worker(time_skipping_env.client, task_queue, store, perform):
        await time_skipping_env.client.execute_workflow(
            CrisisResponseWorkflow.run, request, id=f"crisis-workflow-{request.crisis_id}", task_queue=task_queue
        )
    (first, record), (second, _) = seen
    assert (first, second) == ("recon-phase-1", "secure-phase-2")
    assert record is not None and record["status"] == "running"
    assert [p["status"] for p in record["phases"]] == ["completed", "pending"]


async def test_a_record_the_first_phase_cannot_create_keeps_its_agent_from_running_until_it_exists(
    time_skipping_env, task_queue, store
):
    """The store fails when the first phase's activity creates the record: the agent does not run,
    the workflow creates the record itself (here at its first try), then runs the phase.
    """
    request = crisis_request("crisis-created-later", ("recon",))
    real = CrisisActivities(store)
    agents: list[bool] = []

    class FailingOnce(FileRecordStore):
        failed = False

        async def create(self, crisis, *, run=None):
            if not FailingOnce.failed:
                FailingOnce.failed = True
                raise CrisisRecordError("the disk is full")
            return await super().create(crisis, run=run)

    flaky = CrisisActivities(FailingOnce(store.directory))

    @activity.defn(name="perform_agent_mission")
    async def perform(assignment: PhaseAssignment) -> AgentReport:
        report = await flaky.perform_agent_mission(assignment)
        agents.append(report.created is not False)
        return report

    @activity.defn(name="initialize_crisis_response")
    async def initialize(crisis: CrisisSnapshot) -> None:
        await real.initialize_crisis_response(crisis)

    activities = [initialize, perform, real.log_mission_phase, real.finalize_crisis_response, real.hold_final_write]
    async with crisis_workflow_worker(time_skipping_env.client, task_queue, activities):
        result: CrisisResult = await time_skipping_env.client.execute_workflow(
            CrisisResponseWorkflow.run, request, id=f"crisis-workflow-{request.crisis_id}", task_queue=task_queue
        )
    assert agents == [False, True]  # refused before its agent ran, then run once the record existed
    assert result.success
    assert json.loads(store.path_for("crisis-created-later").read_text())["status"] == "completed"


async def test_a_crisis_reusing_the_id_of_an_earlier_crisis_fails_before_its_first_agent_runs(
    time_skipping_env, task_queue, store
):
    workflow_id = "crisis-workflow-crisis-id-kept"
    # The record of an earlier crisis with this id, whose workflow Temporal no longer has.
    earlier = CrisisSnapshot(
        crisis_id="crisis-id-kept",
        workflow_id=workflow_id,
        run_id="earlier-run",
        first_run_id="earlier-run",
        target="target-alpha",
        initiated_by="tester",
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    await store.create(earlier, run=CrisisRun(namespace="default", workflow_id=workflow_id, run_id="earlier-run"))
    kept = store.path_for("crisis-id-kept").read_bytes()
    agents: list[str] = []

    @activity.defn(name="perform_agent_mission")
    async def perform(assignment: PhaseAssignment) -> AgentReport:
        report = await CrisisActivities(store).perform_agent_mission(assignment)
        if report.created is not False:
            agents.append(assignment.phase.phase_id)
        return report

    async with crisis_worker(time_skipping_env.client, task_queue, store, perform):
        handle = await time_skipping_env.client.start_workflow(
            CrisisResponseWorkflow.run,
            crisis_request("crisis-id-kept", ("recon",)),
            id=workflow_id,
            task_queue=task_queue,
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == CRISIS_ID_TAKEN_ERROR
    assert cause.message.startswith("Crisis crisis-id-kept cannot start: crisis record ")
    assert agents == [], "no agent ran"
    assert store.path_for("crisis-id-kept").read_bytes() == kept, "the earlier record stays as it was"


async def test_a_phase_that_keeps_failing_is_recorded_and_the_rest_continue(time_skipping_env, task_queue, store):
    attempts: dict[str, int] = {}

    @activity.defn(name="perform_agent_mission")
    async def secure_always_fails(assignment: PhaseAssignment) -> AgentReport:
        phase = assignment.phase
        attempts[phase.phase_id] = attempts.get(phase.phase_id, 0) + 1
        if phase.action == "secure":
            raise ApplicationError("perimeter breached")
        return AgentReport(phase_id=phase.phase_id, agent_id=phase.agent_id, attempt=activity.info().attempt)

    request = crisis_request("crisis-test-2")
    async with crisis_worker(time_skipping_env.client, task_queue, store, secure_always_fails):
        result: CrisisResult = await time_skipping_env.client.execute_workflow(
            CrisisResponseWorkflow.run, request, id=f"crisis-workflow-{request.crisis_id}", task_queue=task_queue
        )
    assert not result.success
    assert result.failed_phases == ["secure-phase-2"]
    assert attempts == {"recon-phase-1": 1, "secure-phase-2": 3, "extract-phase-3": 1, "cleanup-phase-4": 1}
    failed = result.phases[1]
    assert (failed.status.value, failed.attempts, failed.error) == ("failed", 3, "perimeter breached")
    record = json.loads((store.directory / "crisis-test-2.json").read_text())
    assert record["status"] == "failed"
    assert record["summary"] == {"completed_phases": 3, "failed_phases": 1, "total_phases": 4}
    assert record["phases"][1]["error"] == "perimeter breached"


@pytest.mark.integration
def test_cli_trigger_then_wait_runs_the_spec_crisis_on_a_worker_process(
    liara_env, liara_worker: WorkerProcess, tmp_path
):
    started = run_cli(liara_env, tmp_path, "trigger", "target-alpha", "recon", "secure", "extract", "cleanup")
    assert started.returncode == 0, started.stderr
    workflow_id = started.stdout.strip()
    assert workflow_id.startswith("crisis-workflow-crisis-target-alpha-")

    waited = run_cli(liara_env, tmp_path, "wait", workflow_id, "--json")
    assert waited.returncode == 0, waited.stderr
    result = json.loads(waited.stdout)
    assert result["success"] is True

    crisis_id = workflow_id.removeprefix("crisis-workflow-")
    record = json.loads((Path(liara_env["LIARA_CRISIS_DIR"]) / f"{crisis_id}.json").read_text())
    assert record["status"] == "completed"
    assert [p["phase_id"] for p in record["phases"]] == [
        "recon-phase-1",
        "secure-phase-2",
        "extract-phase-3",
        "cleanup-phase-4",
    ]
    deployment = "Phase: recon-phase-1 | Agent: recon-agent-001 | Action: reconnaissance | Target: target-alpha"
    assert f"INFO - AGENT DEPLOYMENT - {deployment}" in liara_worker.output
    assert "Agent recon-agent-001 deployed successfully for mission phase recon-phase-1" in liara_worker.output


@pytest.mark.integration
async def test_main_worker_records_a_failed_phase_with_its_retries_and_runs_the_rest(liara_env, task_queue, tmp_path):
    """The Python API against ``src/app/temporal/worker.py``: a phase whose agent keeps failing
    is retried per its policy, recorded as failed with the agent's error, and the crisis goes on.
    """
    worker = WorkerProcess("src/app/temporal/worker.py", liara_env, tmp_path)
    quick_retry = {"maximum_attempts": 2, "initial_interval_seconds": 0.1, "maximum_interval_seconds": 0.1}
    missions = missions_from_actions("target-alpha", ["recon", "secure", "extract"])
    missions[1]["params"] = {"fail": "always"}
    try:
        async with LiaraTemporalAgency(temporal_host=liara_env["TEMPORAL_ADDRESS"], task_queue=task_queue) as agency:
            workflow_id = await agency.trigger_crisis_response(
                target_member="target-alpha", missions=missions, initiated_by="tester", retry=quick_retry
            )
            result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)
    finally:
        assert worker.stop() == 0
    assert (result["success"], result["failed_phases"]) == (False, ["secure-phase-2"])
    secure = result["phases"][1]
    assert (secure["status"], secure["attempts"]) == ("failed", 2)
    assert [p["status"] for p in result["phases"]] == ["completed", "failed", "completed"]
    record = json.loads(Path(result["record_path"]).read_text())
    assert record["status"] == "failed"
    assert record["summary"] == {"completed_phases": 2, "failed_phases": 1, "total_phases": 3}
    assert record["phases"][1]["error"] == secure["error"]
    assert "Retrying mission phase secure-phase-2 (attempt 2)" in worker.output
