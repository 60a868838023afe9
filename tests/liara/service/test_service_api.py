"""The HTTP service end to end: a real ``liara serve`` subprocess with a token file, a real worker
and dev server, driven through httpx. Every crisis endpoint, each error status, what each role
may do, idempotent starts, pages, quorum approvals, and a graceful stop during a long poll.
"""

from __future__ import annotations

import asyncio
import signal
import uuid

import httpx
import pytest
from temporalio.client import WorkflowUpdateStage
from temporalio.contrib.workflow_streams import PollInput, PollResult

from cognition.liara.agency import LiaraTemporalAgency
from tests.helpers import assert_eventually
from tests.helpers.cli import run_cli
from tests.helpers.service import (
    STREAM_POLL_UPDATE,
    WRONG_JSON_TYPES,
    ServiceProcess,
    assert_problem,
    create_token,
    crisis_body,
    phase,
    phase_status,
    sse,
    start,
)

pytestmark = pytest.mark.integration

#: The module's service allows this many long polls per token (the default).
LONG_POLLS = 20


@pytest.fixture
async def http(liara_service):
    async with httpx.AsyncClient(base_url=liara_service.url, timeout=90) as client:
        yield client


async def test_health_readiness_and_the_api_document_need_no_token(http, dev_server):
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "address": dev_server.address, "namespace": "default"}
    document = (await http.get("/openapi.json")).json()
    assert {"/v1/crises", "/v1/crises/{workflow_id}/events", "/readyz"} <= set(document["paths"])
    assert "Problem" in document["components"]["schemas"]
    for started in ("/v1/crises", "/v1/playbooks/{name}/crises"):
        created = document["paths"][started]["post"]["responses"]["201"]
        assert created["headers"]["Location"]["schema"] == {"type": "string"}, created
    docs = await http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_a_crisis_runs_from_start_to_result_and_is_listed(http, service_tokens):
    operator, viewer = service_tokens.headers("operator-1"), service_tokens.headers("viewer-1")
    body = crisis_body(phase("recon-1"), phase("secure-2", "secure"), retry={"maximum_attempts": 2})
    started = await http.post("/v1/crises", json=body, headers=operator)
    assert started.status_code == 201, started.text
    workflow_id = started.json()["workflow_id"]
    assert started.json()["created"] is True
    assert started.headers["location"] == f"/v1/crises/{workflow_id}"
    assert workflow_id == f"crisis-workflow-{started.json()['crisis_id']}"

    report = await http.get(started.headers["location"], headers=viewer)
    assert report.status_code == 200
    assert report.json()["workflow_id"] == workflow_id
    assert report.json()["status"] in ("running", "completed")

    outcome = await http.get(f"/v1/crises/{workflow_id}/result", params={"wait": 60}, headers=viewer)
    assert outcome.status_code == 200, outcome.text
    result = outcome.json()["result"]
    assert (outcome.json()["status"], result["success"]) == ("completed", True)
    assert [p["phase_id"] for p in result["phases"]] == ["recon-1", "secure-2"]

    listed = await http.get("/v1/crises", params={"target": body["target_member"]}, headers=viewer)
    (row,) = listed.json()["crises"]
    assert (row["workflow_id"], row["initiated_by"], row["status"]) == (workflow_id, "operator-1", "completed")
    mine = await http.get("/v1/crises", params={"initiated_by": "operator-1", "limit": 200}, headers=viewer)
    assert workflow_id in [row["workflow_id"] for row in mine.json()["crises"]]


async def test_the_result_is_202_while_the_crisis_runs(http, service_tokens):
    operator = service_tokens.headers("operator-1")
    workflow_id = await start(http, operator, crisis_body(phase("gate-1", requires_approval=True)))
    running = await http.get(f"/v1/crises/{workflow_id}/result", headers=operator)
    assert running.status_code == 202
    assert running.json() == {"workflow_id": workflow_id, "status": "running", "result": None, "error": None}
    waited = await http.get(f"/v1/crises/{workflow_id}/result", params={"wait": 1}, headers=operator)
    assert waited.status_code == 202
    await http.post(f"/v1/crises/{workflow_id}/cancel", headers=operator)


async def test_pages_of_crises_follow_the_cursor(http, service_tokens):
    operator = service_tokens.headers("operator-1")
    target = f"target-{uuid.uuid4().hex[:10]}"
    started = {await start(http, operator, crisis_body(phase("recon-1"), target=target)) for _ in range(3)}
    for workflow_id in started:
        await http.get(f"/v1/crises/{workflow_id}/result", params={"wait": 60}, headers=operator)

    async def listed() -> bool:
        # Once all have closed: Temporal orders running crises before closed ones, so a crisis
        # closing between two pages would move.
        page = await http.get("/v1/crises", params={"target": target}, headers=operator)
        return [row["status"] for row in page.json()["crises"]] == ["completed"] * 3

    await assert_eventually(listed, timeout=30)
    first = (await http.get("/v1/crises", params={"target": target, "limit": 2}, headers=operator)).json()
    assert len(first["crises"]) == 2 and first["next_cursor"]
    params = {"target": target, "limit": 2, "cursor": first["next_cursor"]}
    second = (await http.get("/v1/crises", params=params, headers=operator)).json()
    assert len(second["crises"]) == 1 and second["next_cursor"] is None
    assert {row["workflow_id"] for row in first["crises"] + second["crises"]} == started


async def test_one_idempotency_key_starts_one_crisis_and_refuses_another_body(http, service_tokens):
    operator, admin = service_tokens.headers("operator-1"), service_tokens.headers("admin-1")
    body = crisis_body(phase("recon-1"))
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    first, second = await asyncio.gather(
        http.post("/v1/crises", json=body, headers={**operator, **key}),
        http.post("/v1/crises", json=body, headers={**operator, **key}),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 201], (first.text, second.text)
    assert first.json()["workflow_id"] == second.json()["workflow_id"]
    assert {first.json()["created"], second.json()["created"]} == {True, False}
    assert first.headers["location"] == second.headers["location"]

    async def one_crisis() -> bool:
        page = await http.get("/v1/crises", params={"target": body["target_member"]}, headers=operator)
        return [row["workflow_id"] for row in page.json()["crises"]] == [first.json()["workflow_id"]]

    await assert_eventually(one_crisis, timeout=30)

    other = await http.post("/v1/crises", json=crisis_body(phase("recon-1")), headers={**operator, **key})
    assert "already used for another request" in assert_problem(other, 409, "idempotency-conflict")["detail"]
    # Keys belong to their token: another token's same key is another crisis.
    theirs = await http.post("/v1/crises", json=body, headers={**admin, **key})
    assert theirs.status_code == 201 and theirs.json()["workflow_id"] != first.json()["workflow_id"]


async def test_a_crisis_id_of_a_schedules_run_or_an_idempotency_keys_form_is_422(http, service_tokens):
    """Taken by a caller, it could hold the record of a run a schedule has yet to start, or be
    another token's key's crisis before that key is first sent."""
    operator = service_tokens.headers("operator-1")
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    keyed = await http.post("/v1/crises", json=crisis_body(phase("recon-1")), headers={**operator, **key})
    assert keyed.status_code == 201, keyed.text
    assert keyed.json()["crisis_id"].startswith("crisis-key-"), "the agency's own ids keep their form"
    for crisis_id, says in (
        ("sched-nightly-2026-12-02T03-00-00Z", "begins with sched-, which only the runs of schedules take"),
        (f"crisis-key-{uuid.uuid4().hex}", "has the form crisis-key-<32 hex digits>, which only the crises of"),
    ):
        refused = await http.post(
            "/v1/crises", json=crisis_body(phase("recon-1"), crisis_id=crisis_id), headers=operator
        )
        problem = assert_problem(refused, 422, "invalid-request")
        assert problem["detail"].startswith(f"Invalid crisis request: /crisis_id: {says}"), problem
        assert [(e["field"], e["pointer"]) for e in problem["errors"]] == [("body.crisis_id", "/crisis_id")]
        missing = await http.get(f"/v1/crises/crisis-workflow-{crisis_id}", headers=operator)
        assert_problem(missing, 404, "crisis-not-found")


async def test_each_role_may_do_what_it_allows_and_no_more(http, service_tokens):
    body = crisis_body(phase("gate-1", requires_approval=True))
    for name in ("viewer-1", "approver-1"):
        refused = await http.post("/v1/crises", json=body, headers=service_tokens.headers(name))
        assert f"Token {name!r} has role" in assert_problem(refused, 403, "forbidden")["detail"]
    workflow_id = await start(http, service_tokens.headers("operator-1"), body)
    await start(http, service_tokens.headers("admin-1"), crisis_body(phase("recon-1")))

    for name in service_tokens.by_name:  # everyone reads
        assert (await http.get(f"/v1/crises/{workflow_id}", headers=service_tokens.headers(name))).status_code == 200
        assert (await http.get("/v1/crises", headers=service_tokens.headers(name))).status_code == 200
    await assert_eventually(
        lambda: _awaits(http, service_tokens.headers("viewer-1"), workflow_id, "gate-1"), timeout=60, interval=0.3
    )
    approve = f"/v1/crises/{workflow_id}/phases/gate-1/approve"
    for name in ("viewer-1", "operator-1"):
        assert_problem(await http.post(approve, headers=service_tokens.headers(name)), 403, "forbidden")
    cancel = f"/v1/crises/{workflow_id}/cancel"
    for name in ("viewer-1", "approver-1"):
        assert_problem(await http.post(cancel, headers=service_tokens.headers(name)), 403, "forbidden")
    decided = await http.post(approve, headers=service_tokens.headers("admin-1"))
    assert decided.status_code == 200, decided.text
    assert (decided.json()["decided_by"], decided.json()["approved"]) == ("admin-1", True)


async def _awaits(http: httpx.AsyncClient, token: dict[str, str], workflow_id: str, phase_id: str) -> bool:
    return await phase_status(http, token, workflow_id, phase_id) == "awaiting_approval"


async def test_every_field_of_a_status_is_one_the_document_declares(http, service_tokens, dev_server):
    operator = service_tokens.headers("operator-1")
    schema = (await http.get("/openapi.json")).json()["components"]["schemas"]["CrisisReport"]
    assert schema["additionalProperties"] is False
    body = crisis_body(phase("recon-1", compensate_action="withdraw"), phase("gate-2", requires_approval=True))
    workflow_id = await start(http, operator, body)
    await assert_eventually(lambda: _awaits(http, operator, workflow_id, "gate-2"), timeout=60, interval=0.3)
    running = (await http.get(f"/v1/crises/{workflow_id}", headers=operator)).json()
    assert (await http.post(f"/v1/crises/{workflow_id}/cancel", headers=operator)).status_code == 202
    ended = await http.get(f"/v1/crises/{workflow_id}/result", params={"wait": 60}, headers=operator)
    assert ended.json()["status"] == "cancelled"
    cancelled = (await http.get(f"/v1/crises/{workflow_id}", headers=operator)).json()
    # A crisis on a task queue no worker polls is queued.
    queue = f"liara-test-unpolled-{uuid.uuid4()}"
    async with LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=queue) as agency:
        queued_id = await agency.trigger_crisis_response("target-alpha", [phase()], "tester")
    try:
        queued = (await http.get(f"/v1/crises/{queued_id}", headers=operator)).json()
    finally:
        await dev_server.client.get_workflow_handle(queued_id).terminate("test over: no worker on this queue")

    assert {"crisis_id", "target", "running_phases"} <= running.keys()
    assert {"crisis_id", "target", "phases", "cancel_requests", "record_path"} <= cancelled.keys()
    assert {"note", "workers_polling"} <= queued.keys()
    for report in (running, cancelled, queued):
        assert report.keys() <= schema["properties"].keys(), report.keys() - schema["properties"].keys()


async def test_requests_without_a_valid_token_are_401(http, service_tokens, service_env, service_dir):
    for headers in ({}, {"Authorization": "Bearer liara_not-a-token"}, {"Authorization": "Basic YTpi"}):
        refused = await http.get("/v1/crises", headers=headers)
        assert_problem(refused, 401, "unauthorized")
        assert refused.headers["www-authenticate"].startswith("Bearer")
    # A token created or revoked while the service runs counts from the next request on.
    name = f"temp-{uuid.uuid4().hex[:8]}"
    token = await asyncio.to_thread(create_token, service_env, service_dir, service_tokens.path, name, "viewer")
    fresh = {"Authorization": f"Bearer {token}"}
    assert (await http.get("/v1/crises", headers=fresh)).status_code == 200
    revoked = await asyncio.to_thread(
        run_cli, service_env, service_dir, "token", "revoke", name, "--tokens", str(service_tokens.path)
    )
    assert revoked.returncode == 0, revoked.stderr
    assert_problem(await http.get("/v1/crises", headers=fresh), 401, "unauthorized")


async def test_unknown_crises_are_404_and_ended_ones_409(http, service_tokens):
    admin = service_tokens.headers("admin-1")
    missing = "crisis-workflow-does-not-exist"
    for method, path in (
        ("GET", f"/v1/crises/{missing}"),
        ("GET", f"/v1/crises/{missing}/result"),
        ("GET", f"/v1/crises/{missing}/events"),
        ("POST", f"/v1/crises/{missing}/cancel"),
    ):
        problem = assert_problem(await http.request(method, path, headers=admin), 404, "crisis-not-found")
        assert missing in problem["detail"]
    assert_problem(await http.get("/v1/nothing-here", headers=admin), 404, "not-found")

    workflow_id = await start(http, admin, crisis_body(phase("recon-1")))
    done = await http.get(f"/v1/crises/{workflow_id}/result", params={"wait": 60}, headers=admin)
    assert done.status_code == 200
    assert_problem(await http.post(f"/v1/crises/{workflow_id}/cancel", headers=admin), 409, "crisis-not-running")
    added = await http.post(f"/v1/crises/{workflow_id}/phases", json={"missions": [phase("x-2")]}, headers=admin)
    assert_problem(added, 409, "crisis-not-running")
    decided = await http.post(f"/v1/crises/{workflow_id}/phases/recon-1/approve", headers=admin)
    assert_problem(decided, 409, "crisis-not-running")
    reused = crisis_body(phase("recon-1"), crisis_id=done.json()["result"]["crisis_id"])
    assert_problem(await http.post("/v1/crises", json=reused, headers=admin), 409, "crisis-exists")


async def test_bad_requests_are_422_naming_each_bad_field(http, service_tokens):
    admin = service_tokens.headers("admin-1")
    body = crisis_body(phase("recon-1", priority=-1, surprise=True), initiated_by="someone-else")
    body["target_member"] = "../escape"
    problem = assert_problem(await http.post("/v1/crises", json=body, headers=admin), 422, "invalid-request")
    assert {e["field"] for e in problem["errors"]} == {
        "body.target_member",
        "body.missions.0.priority",
        "body.missions.0.surprise",
        "body.initiated_by",
    }
    # Each named by where it is in the body, as a JSON pointer, and what its rule means.
    assert problem["detail"].startswith("Invalid request: /target_member: use only letters, digits")
    assert {e["pointer"] for e in problem["errors"]} == {
        "/target_member",
        "/missions/0/priority",
        "/missions/0/surprise",
        "/initiated_by",
    }

    duplicated = crisis_body(phase("recon-1"), phase("recon-1"))
    problem = assert_problem(await http.post("/v1/crises", json=duplicated, headers=admin), 422, "invalid-request")
    assert "phase_id 'recon-1' appears more than once" in problem["detail"]

    for params, field in (
        ({"limit": 0}, "query.limit"),
        ({"limit": 201}, "query.limit"),
        ({"status": "asleep"}, "query.status"),
        ({"colour": "red"}, "query.colour"),
    ):
        problem = assert_problem(await http.get("/v1/crises", params=params, headers=admin), 422, "invalid-request")
        assert [e["field"] for e in problem["errors"]] == [field]
    bad_cursor = await http.get("/v1/crises", params={"cursor": "bm90LWEtdG9rZW4="}, headers=admin)
    assert "cursor" in assert_problem(bad_cursor, 422, "invalid-request")["detail"]
    waited = await http.get("/v1/crises/crisis-workflow-x/result", params={"wait": 61}, headers=admin)
    assert [e["field"] for e in assert_problem(waited, 422, "invalid-request")["errors"]] == ["query.wait"]
    not_json = await http.post("/v1/crises", content=b"{", headers={**admin, "Content-Type": "application/json"})
    assert_problem(not_json, 422, "invalid-request")


@pytest.mark.parametrize(("fields", "field", "says"), WRONG_JSON_TYPES.values(), ids=WRONG_JSON_TYPES.keys())
async def test_a_value_of_another_json_type_is_422_as_from_a_missions_file(http, service_tokens, fields, field, says):
    """The same values the Python API and a missions file refuse (test_bad_input), refused alike."""
    admin = service_tokens.headers("admin-1")
    refused = await http.post("/v1/crises", json=crisis_body(phase("recon-1", **fields)), headers=admin)
    problem = assert_problem(refused, 422, "invalid-request")
    pointer = "/missions/0/" + field.replace(".", "/")
    assert problem["detail"] == f"Invalid request: {pointer}: {says}."
    assert problem["errors"] == [{"field": f"body.missions.0.{field}", "pointer": pointer, "message": says}]


async def test_bad_bodies_are_told_in_words_with_where(http, service_tokens):
    admin = service_tokens.headers("admin-1")
    broken = b'{"target_member": "target-alpha",\n "missions": [}'
    not_json = await http.post("/v1/crises", content=broken, headers={**admin, "Content-Type": "application/json"})
    problem = assert_problem(not_json, 422, "invalid-request")
    assert problem["detail"] == "The request body is not valid JSON: Expecting value at line 2, column 15."
    assert problem["errors"] == [{"field": "body", "pointer": "", "message": problem["detail"]}]

    for path, body in (("/v1/crises", crisis_body()), ("/v1/crises/crisis-workflow-x/phases", {"missions": []})):
        empty = assert_problem(await http.post(path, json=body, headers=admin), 422, "invalid-request")
        assert empty["detail"] == "Invalid request: /missions: give at least one phase.", path

    keyed = {**admin, "Idempotency-Key": "two words"}
    spaced = await http.post("/v1/crises", json=crisis_body(phase("recon-1")), headers=keyed)
    problem = assert_problem(spaced, 422, "invalid-request")
    assert problem["detail"] == (
        "Invalid request: header Idempotency-Key: use only printable ASCII characters, without spaces."
    )
    retry = {"initial_interval_seconds": 5, "maximum_interval_seconds": 1}
    crossed = await http.post("/v1/crises", json=crisis_body(phase("recon-1"), retry=retry), headers=admin)
    problem = assert_problem(crossed, 422, "invalid-request")
    assert problem["detail"] == (
        "Invalid request: /retry: maximum_interval_seconds (1) must not be less than initial_interval_seconds (5)."
    )
    # A rule across phases, which the agency checks: the body's field, by JSON pointer, too.
    twice = await http.post("/v1/crises", json=crisis_body(phase("recon-1"), phase("recon-1")), headers=admin)
    problem = assert_problem(twice, 422, "invalid-request")
    assert problem["detail"] == "Invalid crisis request: /missions: phase_id 'recon-1' appears more than once."
    assert [(e["field"], e["pointer"]) for e in problem["errors"]] == [("body.missions", "/missions")]
    for said in [problem["detail"]] + [e["message"] for e in problem["errors"]]:
        assert "pattern" not in said and "Value error" not in said and "List should" not in said


async def test_a_body_over_the_limit_is_413_whether_declared_or_streamed(http, service_tokens):
    admin = service_tokens.headers("admin-1")
    big = crisis_body(phase("recon-1", params={"blob": "x" * (1024 * 1024)}))
    problem = assert_problem(await http.post("/v1/crises", json=big, headers=admin), 413, "body-too-large")
    assert "1048576 bytes" in problem["detail"]

    async def chunks():
        for _ in range(20):
            yield b" " * 65536

    streamed = await http.post("/v1/crises", content=chunks(), headers={**admin, "Content-Type": "application/json"})
    assert_problem(streamed, 413, "body-too-large")


async def test_phases_added_and_a_rejection_with_its_reason(http, service_tokens):
    operator, approver = service_tokens.headers("operator-1"), service_tokens.headers("approver-1")
    workflow_id = await start(http, operator, crisis_body(phase("gate-1", requires_approval=True)))
    extra = {"missions": [phase("extra-2", "secure", priority=2, requires_approval=True)]}
    added = await http.post(f"/v1/crises/{workflow_id}/phases", json=extra, headers=operator)
    assert added.status_code == 200, added.text
    assert [p["phase_id"] for p in added.json()["phases"]] == ["gate-1", "extra-2"]
    bad = await http.post(f"/v1/crises/{workflow_id}/phases", json={"missions": []}, headers=operator)
    assert [e["field"] for e in assert_problem(bad, 422, "invalid-request")["errors"]] == ["body.missions"]

    await assert_eventually(lambda: _awaits(http, operator, workflow_id, "gate-1"), timeout=60, interval=0.3)
    rejected = await http.post(
        f"/v1/crises/{workflow_id}/phases/gate-1/reject", json={"reason": "too risky"}, headers=approver
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["approved"] is False and rejected.json()["reason"] == "too risky"
    second_approver = service_tokens.headers("approver-2")
    late = await http.post(f"/v1/crises/{workflow_id}/phases/gate-1/approve", headers=second_approver)
    assert "was already rejected by approver-1" in assert_problem(late, 409, "decision-refused")["detail"]
    await assert_eventually(lambda: _awaits(http, operator, workflow_id, "extra-2"), timeout=60, interval=0.3)
    approved = await http.post(f"/v1/crises/{workflow_id}/phases/extra-2/approve", headers=approver)
    assert approved.status_code == 200, approved.text

    result = (await http.get(f"/v1/crises/{workflow_id}/result", params={"wait": 60}, headers=operator)).json()
    phases = {p["phase_id"]: p for p in result["result"]["phases"]}
    assert phases["gate-1"]["error"] == "rejected by approver-1: too risky"
    assert phases["extra-2"]["status"] == "completed"


async def test_a_crisis_with_every_update_slot_taken_answers_a_retryable_problem(http, service_tokens, dev_server):
    operator, approver = service_tokens.headers("operator-1"), service_tokens.headers("approver-1")
    workflow_id = await start(http, operator, crisis_body(phase("gate-1", requires_approval=True)))
    await assert_eventually(lambda: _awaits(http, operator, workflow_id, "gate-1"), timeout=60, interval=0.3)
    # Polls for an event the crisis never reaches stay in flight: Temporal's 10 per workflow.
    handle = dev_server.client.get_workflow_handle(workflow_id)
    never = PollInput(topics=[], from_offset=1_000_000)
    for _ in range(10):
        await handle.start_update(
            STREAM_POLL_UPDATE, never, wait_for_stage=WorkflowUpdateStage.ACCEPTED, result_type=PollResult
        )

    # Both at once: the service's Temporal client retries each (the SDK's own backoff, some 15 s) before it answers.
    busy, added = await asyncio.gather(
        http.post(f"/v1/crises/{workflow_id}/phases/gate-1/approve", headers=approver),
        http.post(f"/v1/crises/{workflow_id}/phases", json={"missions": [phase("x-2")]}, headers=operator),
    )
    problem = assert_problem(busy, 429, "temporal-busy")
    assert problem["detail"].startswith(f"Temporal cannot take this request for crisis workflow {workflow_id} now")
    assert busy.headers["retry-after"] == "1"
    assert_problem(added, 429, "temporal-busy")
    cancelled = await http.post(f"/v1/crises/{workflow_id}/cancel", headers=operator)
    assert cancelled.status_code == 202, cancelled.text


async def test_long_polls_per_token_are_bounded(http, service_tokens):
    viewer, operator = service_tokens.headers("viewer-1"), service_tokens.headers("operator-1")
    workflow_id = await start(http, operator, crisis_body(phase("gate-1", requires_approval=True)))
    result = f"/v1/crises/{workflow_id}/result"
    polls = [http.get(result, params={"wait": 60}, headers=viewer) for _ in range(LONG_POLLS + 1)]
    held = {asyncio.ensure_future(poll) for poll in polls}
    (first,), held = await asyncio.wait(held, return_when=asyncio.FIRST_COMPLETED)
    problem = assert_problem(first.result(), 429, "too-many-long-polls")
    assert f"Token 'viewer-1' already holds {LONG_POLLS} long polls" in problem["detail"]

    theirs = await http.get(result, params={"wait": 0.5}, headers=operator)  # the bound is per token
    assert theirs.status_code == 202
    assert (await http.get(result, headers=viewer)).status_code == 202, "an answer without waiting is no long poll"
    cancelled = await http.post(f"/v1/crises/{workflow_id}/cancel", headers=operator)
    assert cancelled.status_code == 202
    ended = await asyncio.gather(*held)
    assert [(answer.status_code, answer.json()["status"]) for answer in ended] == [(200, "cancelled")] * LONG_POLLS


async def test_a_cancel_records_who_asked(http, service_tokens):
    operator = service_tokens.headers("operator-1")
    workflow_id = await start(http, operator, crisis_body(phase("gate-1", requires_approval=True)))
    cancelled = await http.post(f"/v1/crises/{workflow_id}/cancel", headers=operator)
    assert cancelled.status_code == 202
    assert cancelled.json() == {"workflow_id": workflow_id, "cancelled_by": "operator-1"}
    outcome = (await http.get(f"/v1/crises/{workflow_id}/result", params={"wait": 60}, headers=operator)).json()
    assert outcome["status"] == "cancelled" and outcome["result"] is None and outcome["error"]


async def test_a_quorum_of_two_approvers_through_the_api(http, service_tokens):
    operator = service_tokens.headers("operator-1")
    body = crisis_body(phase("strike-1", "strike", approvals_required=2))
    workflow_id = await start(http, operator, body)
    await assert_eventually(lambda: _awaits(http, operator, workflow_id, "strike-1"), timeout=60, interval=0.3)
    approve = f"/v1/crises/{workflow_id}/phases/strike-1/approve"

    first = await http.post(approve, headers=service_tokens.headers("approver-1"))
    assert first.status_code == 200, first.text
    assert (first.json()["approvals"], first.json()["approvals_required"]) == (1, 2)
    assert await phase_status(http, operator, workflow_id, "strike-1") == "awaiting_approval"
    twice = await http.post(approve, headers=service_tokens.headers("approver-1"))
    assert "approver-1 has already approved" in assert_problem(twice, 409, "decision-refused")["detail"]

    second = await http.post(approve, headers=service_tokens.headers("approver-2"))
    assert (second.json()["approvals"], second.json()["decided_by"]) == (2, "approver-2")
    result = (await http.get(f"/v1/crises/{workflow_id}/result", params={"wait": 60}, headers=operator)).json()
    (strike,) = result["result"]["phases"]
    assert (strike["status"], strike["approved_by"]) == ("completed", "approver-1, approver-2")


async def test_sigterm_during_a_long_poll_lets_it_finish_ends_streams_and_exits_0(
    service_env, service_dir, service_worker
):
    server = ServiceProcess(service_env, service_dir)
    assert server.url.startswith("http://127.0.0.1:")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        workflow_id = await start(http, {}, crisis_body(phase("gate-1", requires_approval=True)))
        async with http.stream("GET", f"/v1/crises/{workflow_id}/events") as stream:
            polling = asyncio.create_task(http.get(f"/v1/crises/{workflow_id}/result", params={"wait": 4}))
            await asyncio.sleep(1.5)
            server.process.send_signal(signal.SIGTERM)
            answered = await polling
            assert answered.status_code == 202 and answered.json()["status"] == "running"
            # The stream ends though the crisis goes on: its client would resume with Last-Event-ID.
            streamed = [item async for item in sse(stream) if "comment" not in item]
            assert streamed and "finished" not in [item["event"] for item in streamed]
        code = await asyncio.to_thread(server.stop, signal.SIGTERM, 30)
        assert code == 0, server.output
        with pytest.raises(httpx.ConnectError):
            await http.get("/healthz")
        # Cleanup through the agency's own command, as a user would.
        cancelled = await asyncio.to_thread(run_cli, service_env, service_dir, "cancel", workflow_id)
        assert cancelled.returncode == 0, cancelled.stderr
