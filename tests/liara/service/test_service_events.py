"""``GET /v1/crises/{id}/events`` end to end: Server-Sent Events of a real crisis from the real
``liara serve`` subprocess, read by httpx until ``finished``; a dropped stream resumed with
``Last-Event-ID``; heartbeats while idle; and the bound on streams per token.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest

from tests.helpers import assert_eventually
from tests.helpers.service import all_wait, assert_problem, crisis_body, phase, phase_status, sse, start

pytestmark = pytest.mark.integration

#: The module's service allows this many streams per token (the default).
STREAMS_PER_TOKEN = 20


@pytest.fixture
async def http(liara_service):
    async with httpx.AsyncClient(base_url=liara_service.url, timeout=httpx.Timeout(30, read=60)) as client:
        yield client


async def read_all(http: httpx.AsyncClient, workflow_id: str, token: dict[str, str], **headers: str) -> list[dict]:
    """Every event of a stream until it ends (comments left out)."""
    async with http.stream("GET", f"/v1/crises/{workflow_id}/events", headers={**token, **headers}) as response:
        assert response.status_code == 200, await response.aread()
        return [item async for item in sse(response) if "comment" not in item]


async def test_the_events_of_a_crisis_until_finished(http, service_tokens):
    viewer, operator, approver = (service_tokens.headers(n) for n in ("viewer-1", "operator-1", "approver-1"))
    body = crisis_body(
        phase("recon-1", compensate_action="cleanup"),
        phase("gate-2", "strike", requires_approval=True),
        failure_policy="abort",
    )
    workflow_id = await start(http, operator, body)
    events: list[dict[str, Any]] = []
    comments: list[str] = []
    async with http.stream("GET", f"/v1/crises/{workflow_id}/events", headers=viewer) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for item in sse(response):
            if "comment" in item:
                comments.append(item["comment"])
                continue
            events.append(item)
            if item["event"] == "approval_required":
                await asyncio.sleep(1.2)  # idle: heartbeats flow meanwhile
                rejected = await http.post(
                    f"/v1/crises/{workflow_id}/phases/gate-2/reject", json={"reason": "abort"}, headers=approver
                )
                assert rejected.status_code == 200, rejected.text

    assert [e["id"] for e in events] == list(range(len(events)))
    kinds = [e["event"] for e in events]
    assert {"phase", "approval_required", "decision", "compensation", "finished"} <= set(kinds)
    assert kinds[-1] == "finished" and kinds.count("finished") == 1
    assert "keep-alive" in comments
    statuses = [(e["data"]["phase_id"], e["data"]["status"]) for e in events if e["event"] == "phase"]
    assert ("recon-1", "completed") in statuses and ("gate-2", "failed") in statuses
    (decision,) = [e["data"] for e in events if e["event"] == "decision"]
    assert (decision["decided_by"], decision["approved"]) == ("approver-1", False)
    finished = events[-1]["data"]
    assert finished["result"]["success"] is False
    assert [c["phase_id"] for c in finished["result"]["compensations"]] == ["recon-1"]


async def test_a_dropped_stream_resumes_with_last_event_id_with_exactly_the_later_events(http, service_tokens):
    viewer, approver = service_tokens.headers("viewer-1"), service_tokens.headers("approver-1")
    body = crisis_body(phase("gate-1", requires_approval=True), phase("recon-2"))
    workflow_id = await start(http, service_tokens.headers("operator-1"), body)
    seen: list[dict[str, Any]] = []
    async with http.stream("GET", f"/v1/crises/{workflow_id}/events", headers=viewer) as response:
        async for item in sse(response):
            if "comment" not in item:
                seen.append(item)
                if item["event"] == "approval_required":
                    break  # the connection drops here
    approved = await http.post(f"/v1/crises/{workflow_id}/phases/gate-1/approve", headers=approver)
    assert approved.status_code == 200, approved.text

    resumed = await read_all(http, workflow_id, viewer, **{"Last-Event-ID": str(seen[-1]["id"])})
    everything = await read_all(http, workflow_id, viewer)
    assert everything[: len(seen)] == seen
    assert resumed == everything[len(seen) :]
    assert resumed[0]["id"] == seen[-1]["id"] + 1 and resumed[-1]["event"] == "finished"


async def test_many_streams_of_one_crisis_leave_room_for_decisions(http, service_tokens, dev_server):
    # Temporal holds at most 10 updates in flight per workflow, and a decision is one of them.
    viewer, approver = service_tokens.headers("viewer-1"), service_tokens.headers("approver-1")
    workflow_id = await start(
        http, service_tokens.headers("operator-1"), crisis_body(phase("gate-1", requires_approval=True))
    )
    streams = 12
    seen: list[list[dict[str, Any]]] = [[] for _ in range(streams)]

    async def read(into: list[dict[str, Any]]) -> None:
        async with http.stream("GET", f"/v1/crises/{workflow_id}/events", headers=viewer) as response:
            assert response.status_code == 200, await response.aread()
            async for item in sse(response):
                if "comment" not in item:
                    into.append(item)

    reading = [asyncio.ensure_future(read(events)) for events in seen]

    await assert_eventually(lambda: all_wait(dev_server.client, workflow_id, reading, seen), timeout=60)
    approved = await http.post(f"/v1/crises/{workflow_id}/phases/gate-1/approve", headers=approver)
    assert approved.status_code == 200, approved.text
    await asyncio.wait_for(asyncio.gather(*reading), 60)
    kinds = [event["event"] for event in seen[0]]
    assert kinds[-1] == "finished" and "decision" in kinds
    assert [event["id"] for event in seen[0]] == list(range(len(kinds)))
    assert all(events == seen[0] for events in seen), "every stream gets every event"


async def test_open_streams_per_token_are_bounded(http, service_tokens):
    viewer, operator = service_tokens.headers("viewer-1"), service_tokens.headers("operator-1")
    workflow_id = await start(http, operator, crisis_body(phase("gate-1", requires_approval=True)))
    await assert_eventually(lambda: _awaits_approval(http, viewer, workflow_id), timeout=60, interval=0.3)
    url = f"/v1/crises/{workflow_id}/events"
    async with contextlib.AsyncExitStack() as held:
        streams = [
            await held.enter_async_context(http.stream("GET", url, headers=viewer)) for _ in range(STREAMS_PER_TOKEN)
        ]
        assert {stream.status_code for stream in streams} == {200}
        refused = assert_problem(await http.get(url, headers=viewer), 429, "too-many-streams")
        assert f"already holds {STREAMS_PER_TOKEN} open event streams" in refused["detail"]
        async with http.stream("GET", url, headers=operator) as theirs:  # the bound is per token
            assert theirs.status_code == 200
        await streams[0].aclose()

        async def reopens() -> bool:
            async with http.stream("GET", url, headers=viewer) as again:
                return again.status_code == 200

        await assert_eventually(reopens, timeout=10)
    cancelled = await http.post(f"/v1/crises/{workflow_id}/cancel", headers=operator)
    assert cancelled.status_code == 202


async def _awaits_approval(http: httpx.AsyncClient, token: dict[str, str], workflow_id: str) -> bool:
    return await phase_status(http, token, workflow_id, "gate-1") == "awaiting_approval"
