"""``POST /v1/crises/{workflow_id}/rerun`` end to end: a real ``liara serve`` subprocess, worker and
dev server. An operator reruns a crisis from one of its phases with a changed param: the phases
before it keep their outputs and run no agent, the answer names the rerun (``Location``) and what
it reused, and the records name each other. Each bad rerun is a problem of its own status.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from temporalio.api.enums.v1 import EventType

from tests.helpers.service import assert_problem, crisis_body, phase, start

pytestmark = pytest.mark.integration


@pytest.fixture
async def http(liara_service):
    async with httpx.AsyncClient(base_url=liara_service.url, timeout=90) as client:
        yield client


async def result_of(http: httpx.AsyncClient, token: dict[str, str], workflow_id: str) -> dict:
    outcome = await http.get(f"/v1/crises/{workflow_id}/result", params={"wait": 60}, headers=token)
    assert outcome.status_code == 200, outcome.text
    return outcome.json()["result"]


def record_of(service_dir: Path, workflow_id: str) -> dict:
    return json.loads((service_dir / "crises" / f"{workflow_id.removeprefix('crisis-workflow-')}.json").read_text())


async def test_an_operator_reruns_a_crisis_from_a_phase_with_a_changed_param(
    http, service_tokens, service_dir, dev_server
):
    operator = service_tokens.headers("operator-1")
    body = crisis_body(phase("recon-1", params={"output": {"hosts": 1}}), phase("scan-2", params={"output": {"n": 1}}))
    original = await start(http, operator, body)
    before = await result_of(http, operator, original)

    answer = await http.post(
        f"/v1/crises/{original}/rerun",
        json={"from_phase": "scan-2", "overrides": {"scan-2.params.output": {"n": 2}}},
        headers=operator,
    )

    assert answer.status_code == 201, answer.text
    started = answer.json()
    rerun = started["workflow_id"]
    assert answer.headers["location"] == f"/v1/crises/{rerun}"
    assert (started["created"], started["reused"], started["linked"]) == (True, ["recon-1"], True)
    assert started["rerun_of"] == {
        "workflow_id": original,
        "crisis_id": original.removeprefix("crisis-workflow-"),
        "from_phase": "scan-2",
        "overrides": {"scan-2.params.output": {"n": 2}},
    }
    after = await result_of(http, operator, rerun)
    assert after["initiated_by"] == "operator-1" and after["success"] is True
    recon, scan = after["phases"]
    assert (recon["output"], recon["reused_from"]) == (before["phases"][0]["output"], original)
    assert (scan["output"], scan["reused_from"]) == ({"n": 2}, None)
    scheduled = [
        event
        async for event in dev_server.client.get_workflow_handle(rerun).fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.activity_type.name == "perform_agent_mission"
    ]
    assert len(scheduled) == 1  # scan-2's only
    assert record_of(service_dir, rerun)["rerun_of"] == started["rerun_of"]
    assert [listed["workflow_id"] for listed in record_of(service_dir, original)["reruns"]] == [rerun]

    # The API document declares it, with its Location.
    document = (await http.get("/openapi.json")).json()
    created = document["paths"]["/v1/crises/{workflow_id}/rerun"]["post"]["responses"]["201"]
    assert created["headers"]["Location"]["schema"] == {"type": "string"}


async def test_bad_reruns_are_problems(http, service_tokens):
    operator, viewer = service_tokens.headers("operator-1"), service_tokens.headers("viewer-1")
    original = await start(http, operator, crisis_body(phase("recon-1")))
    await result_of(http, operator, original)

    async def rerun(workflow_id: str, body: dict, token: dict[str, str] = operator) -> httpx.Response:
        return await http.post(f"/v1/crises/{workflow_id}/rerun", json=body, headers=token)

    assert_problem(await rerun(original, {"from_phase": "recon-1"}, viewer), 403, "forbidden")
    missing = assert_problem(await rerun("crisis-workflow-no-such", {"from_phase": "recon-1"}), 404, "crisis-not-found")
    assert "crisis-workflow-no-such" in missing["detail"]
    ghost = assert_problem(await rerun(original, {"from_phase": "ghost"}), 422, "invalid-request")
    assert ghost["detail"] == f"Crisis workflow {original} has no phase 'ghost' (its phases: recon-1)."
    bad = assert_problem(await rerun(original, {"from_phase": "recon-1", "with": {}}), 422, "invalid-request")
    assert bad["errors"][0]["pointer"] == "/with"
    override = await rerun(original, {"from_phase": "recon-1", "overrides": {"recon-1.depends_on": ["x"]}})
    assert "not 'depends_on'" in assert_problem(override, 422, "invalid-request")["detail"]

    running = await start(http, operator, crisis_body(phase("gate-1", requires_approval=True)))
    refused = assert_problem(await rerun(running, {"from_phase": "gate-1"}), 409, "crisis-running")
    assert refused["title"] == "Crisis still running"
    assert refused["detail"] == (
        f"Crisis workflow {running} is still running: wait for it to end (or cancel it), then rerun it."
    )
    await http.post(f"/v1/crises/{running}/cancel", headers=operator)
