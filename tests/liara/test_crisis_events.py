"""The agency's side of the service: a crisis's event stream, idempotent starts, pages of crises
and who cancelled. On the dev server with an in-process worker.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from app.temporal.errors import InvalidCrisisRequestError
from app.temporal.models import PhaseStatus
from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.errors import CrisisNotFoundError, IdempotencyConflictError
from tests.helpers import assert_eventually
from tests.helpers.service import all_wait
from tests.helpers.workflows import gated_crisis, phase, until, worker

pytestmark = pytest.mark.integration


async def events_of(agency: LiaraTemporalAgency, workflow_id: str, after: int | None = None) -> list[dict]:
    return [event async for event in agency.crisis_events(workflow_id, after=after)]


async def test_the_events_of_a_crisis_tell_each_change_then_end_with_the_result(
    dev_server, task_queue, tmp_path, agency
):
    async with worker(dev_server, task_queue, tmp_path):
        workflow_id = await gated_crisis(
            agency, phase("recon-1", "recon", 1), phase("strike-2", "strike", 2, requires_approval=True)
        )
        following = asyncio.ensure_future(events_of(agency, workflow_id))
        await until(agency, workflow_id, "strike-2", PhaseStatus.AWAITING_APPROVAL)
        await agency.approve_phase(workflow_id, "strike-2", approved_by="alice")
        events = await asyncio.wait_for(following, 60)
        # Resuming after an event gives exactly the later ones, from the finished crisis too.
        resumed = await events_of(agency, workflow_id, after=4)

    kinds = [(e["event"], e["data"].get("phase_id"), e["data"].get("status")) for e in events]
    assert kinds == [
        ("phase", "recon-1", "running"),
        ("phase", "recon-1", "completed"),
        ("phase", "strike-2", "awaiting_approval"),
        ("approval_required", "strike-2", None),
        ("decision", "strike-2", None),
        ("phase", "strike-2", "running"),
        ("phase", "strike-2", "completed"),
        ("finished", None, "completed"),
    ]
    assert [e["id"] for e in events] == list(range(len(events)))
    decision = events[4]["data"]
    assert (decision["decided_by"], decision["approved"], decision["approvals"]) == ("alice", True, 1)
    assert events[-1]["data"]["result"]["success"] is True
    assert resumed == events[5:]


async def test_events_of_an_unknown_crisis_are_a_clear_error(agency):
    with pytest.raises(CrisisNotFoundError):
        await events_of(agency, "crisis-workflow-does-not-exist")


async def test_a_cancel_records_who_asked(dev_server, task_queue, tmp_path, agency):
    async with worker(dev_server, task_queue, tmp_path):
        workflow_id = await gated_crisis(agency, phase("strike-1", "strike", 1, requires_approval=True))
        await until(agency, workflow_id, "strike-1", PhaseStatus.AWAITING_APPROVAL)
        await agency.cancel_crisis(workflow_id, cancelled_by="alice")
        events = await asyncio.wait_for(events_of(agency, workflow_id), 60)
    crisis_id = workflow_id.removeprefix("crisis-workflow-")
    record = json.loads((Path(tmp_path) / "crises" / f"{crisis_id}.json").read_text())
    assert [(c["stage"], c["obeyed"], c["reason"]) for c in record["cancel_requests"]] == [
        ("running", True, "cancelled by alice")
    ]
    assert events[-1]["event"] == "finished" and events[-1]["data"]["status"] == "cancelled"


async def test_one_idempotency_key_starts_one_crisis_even_concurrently(agency):
    key = f"alert-{uuid.uuid4()}"
    missions = [phase("recon-1", "recon", 1)]
    started = await asyncio.gather(
        *(agency.start_crisis("target-alpha", missions, "pager", idempotency_key=key) for _ in range(4))
    )
    assert len({s["workflow_id"] for s in started}) == 1
    assert sorted(s["created"] for s in started) == [False, False, False, True]
    with pytest.raises(IdempotencyConflictError, match="was already used for another request"):
        await agency.start_crisis("target-beta", missions, "pager", idempotency_key=key)
    await dev_handle_terminate(agency, started[0]["workflow_id"])


async def dev_handle_terminate(agency: LiaraTemporalAgency, workflow_id: str) -> None:
    await agency.client.get_workflow_handle(workflow_id).terminate("test over")


async def test_crises_come_in_pages_with_a_cursor(agency, task_queue):
    target = f"target-{uuid.uuid4().hex[:8]}"
    ids = [
        await agency.trigger_crisis_response(target, [phase("recon-1", "recon", 1, target=target)]) for _ in range(5)
    ]

    async def listed_all() -> list[str]:
        seen, cursor = [], None
        while True:
            page = await agency.list_crises_page(target=target, limit=2, cursor=cursor)
            assert len(page["crises"]) <= 2
            seen += [row["workflow_id"] for row in page["crises"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return seen

    for _ in range(100):  # visibility is eventually consistent
        if sorted(await listed_all()) == sorted(ids):
            break
        await asyncio.sleep(0.2)
    assert sorted(await listed_all()) == sorted(ids)
    with pytest.raises(InvalidCrisisRequestError, match="cursor"):
        await agency.list_crises_page(target=target, cursor="not-a-cursor!")
    for workflow_id in ids:
        await dev_handle_terminate(agency, workflow_id)


async def test_many_readers_of_one_crisis_leave_room_for_decisions(dev_server, task_queue, tmp_path, agency):
    # Temporal holds at most 10 updates in flight per workflow, and a decision is one of them.
    readers = 12
    async with worker(dev_server, task_queue, tmp_path):
        workflow_id = await gated_crisis(agency, phase("strike-1", "strike", 1, requires_approval=True))
        seen: list[list[dict]] = [[] for _ in range(readers)]

        async def read(into: list[dict]) -> None:
            async for event in agency.crisis_events(workflow_id):
                into.append(event)

        following = [asyncio.ensure_future(read(events)) for events in seen]

        await assert_eventually(lambda: all_wait(dev_server.client, workflow_id, following, seen), timeout=60)
        decision = await agency.approve_phase(workflow_id, "strike-1", approved_by="alice")
        await asyncio.wait_for(asyncio.gather(*following), 60)

    assert decision["decided_by"] == "alice"
    kinds = [event["event"] for event in seen[0]]
    assert kinds[-1] == "finished" and "decision" in kinds
    assert all(events == seen[0] for events in seen), "every reader gets every event"
