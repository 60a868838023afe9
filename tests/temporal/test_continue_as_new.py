"""A crisis whose history grows past its budget continues as a new run, losing nothing: its
phases and their outputs, its decisions, its record, its events. On the time-skipping server.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError, WorkflowHistory, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer

from app.temporal.errors import InvalidCrisisRequestError
from app.temporal.models import (
    CARRY_LIMIT_BYTES,
    INVALID_REQUEST_ERROR,
    AgentReport,
    ApprovalDecision,
    CrisisResult,
    MissionPhase,
    PhaseAssignment,
    PhaseStatus,
)
from app.temporal.records import FileRecordStore
from app.temporal.workflows import CrisisResponseWorkflow
from cognition.liara.crisis_requests import build_request
from tests.helpers import assert_eventually
from tests.helpers.workflows import Agents, crisis_worker, every_run, phase, phase_status, request, start


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
    runs = await every_run(time_skipping_env, handle)
    assert len(runs) > 2, "the crisis continued as new runs"
    assert all(len(history.events) < 2 * 60 for history in runs), "each run stays near its budget"
    record = json.loads(store.path_for("crisis-long").read_text())
    assert record["status"] == "completed"
    assert [p["status"] for p in record["phases"]] == ["completed"] * 24
    assert record["superseded_run_ids"], "each later run took the record over"
    assert record["started_at"] == result.started_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert len(record["phases"]) == len({p["phase_id"] for p in record["phases"]}), "no phase twice"

    await assert_every_run_replays(runs)


async def assert_every_run_replays(runs: list[WorkflowHistory]) -> None:
    replayer = Replayer(workflows=[CrisisResponseWorkflow], data_converter=pydantic_data_converter)
    replayed = await replayer.replay_workflows(_iterate(runs), raise_on_replay_failure=False)
    assert replayed.replay_failures == {}


async def _iterate(runs: list[WorkflowHistory]):
    for history in runs:
        yield history


def padded(count: int, pad: int) -> list[dict[str, object]]:
    """``count`` sequential phases, each with ``pad`` bytes of params."""
    return [phase(f"scan-{i:03d}", "scan", 1, params={"pad": "p" * pad}) for i in range(count)]


async def continued_as_new_inputs(env, handle) -> list[list[bytes]]:
    """The payloads each run of the crisis carried into the next, first run first."""
    return [
        [
            payload.data
            for payload in history.events[-1].workflow_execution_continued_as_new_event_attributes.input.payloads
        ]
        for history in (await every_run(env, handle))[:-1]
    ]


async def test_a_crisis_carries_its_request_once_into_each_run(time_skipping_env, task_queue, store):
    crisis = request("crisis-carried-once", *padded(150, 3000), history_budget_events=50)
    request_bytes = len(crisis.model_dump_json())
    assert request_bytes > 400_000
    async with crisis_worker(time_skipping_env.client, task_queue, store, Agents().perform):
        handle = await start(time_skipping_env, task_queue, crisis)
        result: CrisisResult = await handle.result()

    assert result.success and result.summary.completed_phases == 150
    carried = await continued_as_new_inputs(time_skipping_env, handle)
    assert len(carried) > 3, "the crisis continued as new several times"
    for request_payload, state_payload in carried:
        assert len(request_payload) == pytest.approx(request_bytes, rel=0.01)
        assert b"p" * 3000 not in state_payload, "the phases are carried in the request only"
        assert len(state_payload) < request_bytes / 2


def test_a_request_too_large_to_carry_is_refused_in_one_sentence() -> None:
    with pytest.raises(InvalidCrisisRequestError) as refused:
        build_request(target_member="target-alpha", missions=padded(200, 3000))
    message = str(refused.value)
    assert re.fullmatch(
        r"Invalid crisis request: the request is \d+ bytes as JSON, more than the 524288 a crisis can carry; "
        r"keep large data out of params and inputs, or split it into several crises\.",
        message,
    ), message


async def test_a_request_too_large_to_carry_fails_its_crisis_at_once(time_skipping_env, task_queue, store):
    raw = {"crisis_id": "crisis-too-large", "target_member": "target-alpha", "missions": padded(200, 3000)}
    agents = Agents()
    async with crisis_worker(time_skipping_env.client, task_queue, store, agents.perform):
        handle = await time_skipping_env.client.start_workflow(
            "CrisisResponseWorkflow", raw, id="crisis-workflow-crisis-too-large", task_queue=task_queue
        )
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and (cause.type, cause.non_retryable) == (INVALID_REQUEST_ERROR, True)
    assert cause.message.startswith("invalid crisis request: the request is ")
    assert agents.calls == []


async def test_phases_that_would_make_the_crisis_too_large_to_carry_are_refused(time_skipping_env, task_queue, store):
    agents = Agents(holding=("scan",))
    crisis = request("crisis-grown-too-large", *padded(100, 3000))
    async with crisis_worker(time_skipping_env.client, task_queue, store, agents.perform):
        handle = await start(time_skipping_env, task_queue, crisis)
        await assert_eventually(lambda: _running(handle, "scan-000"))
        more = [MissionPhase.model_validate(p) for p in padded(100, 3000)]
        more = [p.model_copy(update={"phase_id": f"more-{i:03d}"}) for i, p in enumerate(more)]
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(CrisisResponseWorkflow.add_phases, more)
        await handle.execute_update(CrisisResponseWorkflow.add_phases, more[:10])
        agents.release.set()
        result: CrisisResult = await handle.result()
    assert re.fullmatch(
        r"with these phases the crisis would carry \d+ bytes of request and phases, more than the 524288 it can "
        r"carry; start another crisis for them",
        refused.value.cause.message,
    ), refused.value.cause
    assert result.summary.total_phases == 110


async def _running(handle, phase_id: str) -> bool:
    return await phase_status(handle, phase_id) == PhaseStatus.RUNNING


@activity.defn(name="perform_agent_mission")
async def fails_at_length(assignment: PhaseAssignment) -> AgentReport:
    raise ApplicationError("\u26a0" * 600, non_retryable=True)  # cut at 500 characters, 4 bytes each


async def test_a_crisis_carries_what_fits_into_a_new_run_and_goes_on_in_its_run_past_that(
    time_skipping_env, task_queue, store
):
    """Long errors on a thousand phases: past its first budget the crisis keeps its latest events
    only (the oldest would not fit); past its second even its phases would not, and it goes on.
    """
    budget = 2500
    phases = [phase(f"p-{i:04d}", "scan", 1) for i in range(1000)]
    crisis = request("crisis-carried-bounded", *phases, history_budget_events=budget)
    async with crisis_worker(time_skipping_env.client, task_queue, store, fails_at_length):
        handle = await start(time_skipping_env, task_queue, crisis)
        result: CrisisResult = await handle.result()

    cut = "\u26a0" * 499 + "…"
    assert result.summary.failed_phases == 1000 and all(p.error == cut for p in result.phases)
    runs = await every_run(time_skipping_env, handle)
    assert len(runs) == 2
    carried = runs[0].events[-1].workflow_execution_continued_as_new_event_attributes.input.payloads
    assert sum(len(payload.data) for payload in carried) <= CARRY_LIMIT_BYTES
    events = json.loads(carried[1].data)["events"]
    assert events["base_offset"] > 0 and events["log"], "the oldest events dropped, the latest carried"
    assert len(runs[1].events) > budget, "too much to carry: the second run went on past its budget"
    record = json.loads(store.path_for("crisis-carried-bounded").read_text())
    assert [p["error"] for p in record["phases"]] == [cut] * 1000
    await assert_every_run_replays(runs)
