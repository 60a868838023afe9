"""Steering a running crisis: approval gates, abort with compensation, cancel, added phases.

The workflow runs on the time-skipping test server (approval timeouts take no real time) with
the real bookkeeping activities and a stand-in agent registered as ``perform_agent_mission``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import CancelledError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from app.temporal.models import (
    ApprovalDecision,
    CrisisResult,
    MissionPhase,
    PhaseStatus,
)
from app.temporal.records import FileRecordStore
from app.temporal.workflows import CrisisResponseWorkflow
from tests.helpers import assert_eventually
from tests.helpers.servers import time_skipping_server
from tests.helpers.workflows import Agents, crisis_worker, phase, phase_status, request, start


def mission(phase_id: str, action: str, priority: int) -> MissionPhase:
    return MissionPhase.model_validate(phase(phase_id, action, priority))


@pytest_asyncio.fixture(scope="module")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of this module's own: its timers (an approval's hour-long timeout)
    skip only when nothing else on the server holds time back, which other modules' crises on a
    shared server could.
    """
    async with time_skipping_server() as env:
        yield env


@pytest.fixture
def store(tmp_path: Path) -> FileRecordStore:
    return FileRecordStore(tmp_path / "crises")


def read_record(store: FileRecordStore, crisis_id: str) -> dict:
    return json.loads(store.path_for(crisis_id).read_text())


async def test_an_approved_phase_runs_and_records_its_approver(time_skipping_env, task_queue, store):
    agents = Agents()
    crisis = request("crisis-approved", phase("strike-1", "strike", 1, requires_approval=True))
    async with crisis_worker(time_skipping_env.client, task_queue, store, agents.perform):
        handle = await start(time_skipping_env, task_queue, crisis)
        await assert_eventually(lambda: _is(handle, "strike-1", PhaseStatus.AWAITING_APPROVAL))
        assert agents.calls == []
        await handle.execute_update(
            CrisisResponseWorkflow.decide_approval,
            ApprovalDecision(phase_id="strike-1", approved=True, decided_by="commander"),
        )
        result: CrisisResult = await handle.result()
    assert result.success
    assert result.phases[0].approved_by == "commander"
    assert agents.calls == [("strike-1", "strike")]
    assert read_record(store, "crisis-approved")["phases"][0]["approved_by"] == "commander"


async def test_a_rejected_phase_fails_without_running(time_skipping_env, task_queue, store):
    agents = Agents()
    crisis = request(
        "crisis-rejected", phase("strike-1", "strike", 1, requires_approval=True), phase("extract-2", "extract", 2)
    )
    async with crisis_worker(time_skipping_env.client, task_queue, store, agents.perform):
        handle = await start(time_skipping_env, task_queue, crisis)
        await assert_eventually(lambda: _is(handle, "strike-1", PhaseStatus.AWAITING_APPROVAL))
        await handle.execute_update(
            CrisisResponseWorkflow.decide_approval,
            ApprovalDecision(phase_id="strike-1", approved=False, decided_by="commander", reason="too risky"),
        )
        result: CrisisResult = await handle.result()
    assert not result.success
    assert (result.phases[0].status, result.phases[0].error) == (PhaseStatus.FAILED, "rejected by commander: too risky")
    assert agents.calls == [("extract-2", "extract")]


async def test_an_unanswered_approval_times_out_and_fails_the_phase(time_skipping_env, task_queue, store):
    agents = Agents()
    crisis = request(
        "crisis-approval-timeout", phase("strike-1", "strike", 1, requires_approval=True, approval_timeout=3600)
    )
    async with crisis_worker(time_skipping_env.client, task_queue, store, agents.perform):
        result: CrisisResult = await (await start(time_skipping_env, task_queue, crisis)).result()
    assert result.phases[0].status == PhaseStatus.FAILED
    assert result.phases[0].error == "approval timed out after 3600 s"
    assert agents.calls == []


async def test_abort_skips_the_rest_and_compensates_completed_phases_last_first(time_skipping_env, task_queue, store):
    agents = Agents(failing=("extract",))
    crisis = request(
        "crisis-abort",
        phase("recon-1", "reconnaissance", 1, compensate_action="withdraw-scouts"),
        phase("secure-2", "secure", 2, compensate_action="release-perimeter"),
        phase("hold-3", "hold", 3),
        phase("extract-4", "extract", 4),
        phase("cleanup-5", "cleanup", 5, compensate_action="never-run"),
        failure_policy="abort",
    )
    async with crisis_worker(time_skipping_env.client, task_queue, store, agents.perform):
        result: CrisisResult = await (await start(time_skipping_env, task_queue, crisis)).result()
    assert [p.status for p in result.phases] == [
        PhaseStatus.COMPLETED,
        PhaseStatus.COMPLETED,
        PhaseStatus.COMPLETED,
        PhaseStatus.FAILED,
        PhaseStatus.SKIPPED,
    ]
    assert agents.calls[-2:] == [("secure-2", "release-perimeter"), ("recon-1", "withdraw-scouts")]
    assert [(c.phase_id, c.action, c.status) for c in result.compensations] == [
        ("secure-2", "release-perimeter", PhaseStatus.COMPLETED),
        ("recon-1", "withdraw-scouts", PhaseStatus.COMPLETED),
    ]
    record = read_record(store, "crisis-abort")
    assert record["status"] == "failed"
    assert [c["action"] for c in record["compensations"]] == ["release-perimeter", "withdraw-scouts"]
    assert record["phases"][4]["status"] == "skipped"


async def test_continue_policy_never_compensates(time_skipping_env, task_queue, store):
    agents = Agents(failing=("extract",))
    crisis = request(
        "crisis-continue",
        phase("secure-1", "secure", 1, compensate_action="release-perimeter"),
        phase("extract-2", "extract", 2),
        phase("cleanup-3", "cleanup", 3),
    )
    async with crisis_worker(time_skipping_env.client, task_queue, store, agents.perform):
        result: CrisisResult = await (await start(time_skipping_env, task_queue, crisis)).result()
    assert [p.status for p in result.phases][2] == PhaseStatus.COMPLETED
    assert result.compensations == []
    assert ("secure-1", "release-perimeter") not in agents.calls


async def test_cancel_stops_the_running_agent_skips_the_rest_and_compensates(time_skipping_env, task_queue, store):
    agents = Agents(holding=("extract",))
    crisis = request(
        "crisis-cancel",
        phase("secure-1", "secure", 1, compensate_action="release-perimeter"),
        phase("extract-2", "extract", 2),
        phase("cleanup-3", "cleanup", 3),
        heartbeat_timeout_seconds=5,
    )
    async with crisis_worker(time_skipping_env.client, task_queue, store, agents.perform):
        handle = await start(time_skipping_env, task_queue, crisis)
        await assert_eventually(lambda: _is(handle, "extract-2", PhaseStatus.RUNNING))
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    assert agents.cancelled == ["extract-2"]
    assert ("cleanup-3", "cleanup") not in agents.calls
    assert agents.calls[-1] == ("secure-1", "release-perimeter")
    record = read_record(store, "crisis-cancel")
    assert record["status"] == "cancelled"
    assert [p["status"] for p in record["phases"]] == ["completed", "cancelled", "skipped"]
    assert record["compensations"][0]["action"] == "release-perimeter"


async def test_phases_added_by_update_run_after_the_others(time_skipping_env, task_queue, store):
    agents = Agents(holding=("secure",))
    crisis = request("crisis-added", phase("secure-1", "secure", 1))
    async with crisis_worker(time_skipping_env.client, task_queue, store, agents.perform):
        handle = await start(time_skipping_env, task_queue, crisis)
        await assert_eventually(lambda: _is(handle, "secure-1", PhaseStatus.RUNNING))
        progress = await handle.execute_update(
            CrisisResponseWorkflow.add_phases,
            [
                MissionPhase.model_validate(phase("cleanup-3", "cleanup", 9)),
                MissionPhase.model_validate(phase("extract-2", "extract", 2)),
            ],
        )
        assert [p.phase_id for p in progress.phases] == ["secure-1", "extract-2", "cleanup-3"]
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(CrisisResponseWorkflow.add_phases, [mission("secure-1", "secure", 1)])
        assert "already part of the crisis" in str(refused.value.cause)
        agents.release.set()
        result: CrisisResult = await handle.result()
        with pytest.raises((WorkflowUpdateFailedError, RPCError)):
            await handle.execute_update(CrisisResponseWorkflow.add_phases, [mission("late-4", "late", 4)])
    assert [p.phase_id for p in result.phases] == ["secure-1", "extract-2", "cleanup-3"]
    assert result.success
    assert [c[0] for c in agents.calls] == ["secure-1", "extract-2", "cleanup-3"]
    assert read_record(store, "crisis-added")["summary"]["total_phases"] == 3


async def _is(handle: WorkflowHandle, phase_id: str, status: PhaseStatus) -> bool:
    return await phase_status(handle, phase_id) == status
