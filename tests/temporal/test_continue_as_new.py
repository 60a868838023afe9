"""A crisis whose history grows past its budget continues as a new run, losing nothing: its
phases and their outputs, its decisions, its record, its events. On the time-skipping server.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from app.temporal.models import ApprovalDecision, CrisisResult, PhaseStatus
from app.temporal.records import FileRecordStore
from app.temporal.workflows import CrisisResponseWorkflow
from tests.conftest import assert_eventually
from tests.temporal.test_crisis_control import Agents, phase, phase_status, request, start
from tests.temporal.test_liara_workflows import crisis_worker


@pytest.fixture
def store(tmp_path: Path) -> FileRecordStore:
    return FileRecordStore(tmp_path / "crises")


async def test_a_long_crisis_continues_as_new_runs_and_keeps_everything(time_skipping_env, task_queue, store):
    agents = Agents()
    phases = [phase(f"scan-{i:02d}", "scan", i) for i in range(1, 25)]
    phases[3] = phase("strike-04", "strike", 4, requires_approval=True)
    crisis = request("crisis-long", *phases, history_budget_events=60)
    async with crisis_worker(time_skipping_env.client, task_queue, store, agents.perform):
        handle = await start(time_skipping_env, task_queue, crisis)

        async def awaiting() -> bool:
            return await phase_status(handle, "strike-04") == PhaseStatus.AWAITING_APPROVAL

        await assert_eventually(awaiting)
        await handle.execute_update(
            CrisisResponseWorkflow.decide_approval,
            ApprovalDecision(phase_id="strike-04", approved=True, decided_by="commander"),
        )
        result: CrisisResult = await handle.result()

    assert result.success and result.summary.completed_phases == 24
    assert [p.phase_id for p in result.phases] == [p["phase_id"] for p in phases]
    assert all(p.output == {"done": p.action} for p in result.phases), "every output carried over"
    strike = result.phases[3]
    assert (strike.approved_by, [d.decided_by for d in strike.decisions]) == ("commander", ["commander"])
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    assert started.continued_execution_run_id, "the last run continued an earlier one"
    assert len(history.events) < 2 * 60, "each run stays near its budget"
    record = json.loads(store.path_for("crisis-long").read_text())
    assert record["status"] == "completed"
    assert [p["status"] for p in record["phases"]] == ["completed"] * 24
    assert record["superseded_run_ids"], "each later run took the record over"
    assert record["started_at"] == result.started_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert len(record["phases"]) == len({p["phase_id"] for p in record["phases"]}), "no phase twice"

    # Each run's history replays.
    replayer = Replayer(workflows=[CrisisResponseWorkflow], data_converter=pydantic_data_converter)
    replayed = await replayer.replay_workflow(WorkflowHistory.from_json(handle.id, history.to_json()))
    assert replayed.replay_failure is None
