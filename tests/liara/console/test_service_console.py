"""What the service adds for the operator console: ``/v1/me``, phases from action words, the page
and its files with their security headers, ``/v1/console``, the input a playbook's target comes
from (in-process, no Temporal needed), and, against a real ``liara serve`` subprocess and worker,
a listing's progress summaries, the approvals inbox, and a gated phase's params as planned and
the crisis status a listing shows, in a crisis's status.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.temporal.models import MAX_PARALLEL
from app.temporal.visibility import CRISIS_STATUSES
from cognition.liara.actions import missions_from_actions
from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.console import ASSETS
from cognition.liara.service.config import DEFAULT_WEB_UI_URL, ServiceSettings
from cognition.liara.service.main import create_app
from cognition.liara.service.tokens import TokenFile, TokenVerifier
from tests.helpers import REPO_ROOT, assert_eventually
from tests.helpers.service import TOKEN_ROLES, assert_problem, crisis_body, phase, phase_status, start

#: How long the service gives one crisis's lookup.
LOOKUP_TIMEOUT = ServiceSettings().lookup_timeout_seconds
#: A Temporal address nothing listens on: these routes must not need one.
NO_TEMPORAL = "127.0.0.1:1"


def in_process(tokens: TokenVerifier | None) -> httpx.AsyncClient:
    """The app, called in this process (its lifespan, which connects to Temporal, never runs)."""
    app = create_app(LiaraTemporalAgency(temporal_host=NO_TEMPORAL), tokens=tokens)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost")


@pytest.fixture
async def local() -> AsyncIterator[httpx.AsyncClient]:
    """The service without a token file, as on loopback."""
    async with in_process(None) as client:
        yield client


@pytest.fixture
def token_file(tmp_path: Path) -> dict[str, dict[str, str]]:
    """A token per role: headers by token name."""
    file = TokenFile(tmp_path / "tokens.json")
    return {name: {"Authorization": f"Bearer {file.create(name, role)}"} for name, role in TOKEN_ROLES.items()}


@pytest.fixture
async def guarded(tmp_path: Path, token_file: dict[str, dict[str, str]]) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(TokenVerifier(TokenFile(tmp_path / "tokens.json"))) as client:
        yield client


async def test_me_without_tokens_is_local_an_admin(local):
    me = await local.get("/v1/me")
    assert me.status_code == 200, me.text
    assert me.json() == {"name": "local", "role": "admin", "permissions": ["read", "operate", "decide"]}


async def test_me_names_each_token_its_role_and_what_it_allows(guarded, token_file):
    allowed = {"viewer": ["read"], "operator": ["read", "operate"], "approver": ["read", "decide"]}
    allowed["admin"] = ["read", "operate", "decide"]
    for name, role in TOKEN_ROLES.items():
        me = await guarded.get("/v1/me", headers=token_file[name])
        assert me.json() == {"name": name, "role": role, "permissions": allowed[role]}
    assert_problem(await guarded.get("/v1/me"), 401, "unauthorized")
    assert_problem(await guarded.get("/v1/me", headers={"Authorization": "Bearer liara_nope"}), 401, "unauthorized")


async def test_action_words_become_the_phases_trigger_makes(guarded, token_file):
    body = {"target_member": "target-alpha", "actions": ["recon", "secure", "recon"]}
    made = await guarded.post("/v1/missions/from-actions", json=body, headers=token_file["viewer-1"])
    assert made.status_code == 200, made.text
    assert made.json() == {"missions": missions_from_actions("target-alpha", body["actions"])}
    assert made.json()["missions"][0] == {
        "phase_id": "recon-phase-1",
        "agent_id": "recon-agent-001",
        "action": "reconnaissance",
        "target": "target-alpha",
        "priority": 1,
    }

    bad = {"target_member": "../escape", "actions": ["recon", "rec!on"]}
    problem = assert_problem(
        await guarded.post("/v1/missions/from-actions", json=bad, headers=token_file["viewer-1"]),
        422,
        "invalid-request",
    )
    # Each field's message says what its rule means, as the detail does, not the pattern.
    assert {(e["field"], e["message"]) for e in problem["errors"]} == {
        ("body.target_member", "use only letters, digits, '.', '_' and '-', starting with a letter or digit"),
        ("body.actions.1", "use a word of letters, digits, '_' and '-', starting with a letter"),
    }
    none = await guarded.post("/v1/missions/from-actions", json={"target_member": "t", "actions": []})
    assert_problem(none, 401, "unauthorized")


async def test_the_page_and_its_files_carry_a_strict_policy(local):
    page = await local.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "'unsafe-inline'" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    # No inline script or style: everything the page loads is one of its own files.
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text) and "<style" not in page.text
    assert " style=" not in page.text
    loaded = re.findall(r'(?:src|href)="(/console/[^"]+)"', page.text)
    assert {"/console/app.js", "/console/style.css"} <= set(loaded)
    for path in {*loaded, *(f"/console/{file.name}" for file in ASSETS.iterdir())}:
        asset = await local.get(path)
        assert asset.status_code == 200, path
        assert asset.headers["content-security-policy"] == policy
        assert asset.headers["x-content-type-options"] == "nosniff"
    assert (await local.get("/console/app.js")).headers["content-type"].startswith("text/javascript")
    assert_problem(await local.get("/console/missing.js"), 404, "not-found")
    # The API's own answers carry a policy of their own, which loads nothing: the console's is the page's.
    api_policy = (await local.get("/healthz")).headers["content-security-policy"]
    assert api_policy != policy and "default-src 'none'" in api_policy and "frame-ancestors 'none'" in api_policy


async def test_every_import_of_the_scripts_is_one_of_its_files():
    for script in ASSETS.glob("*.js"):
        for imported in re.findall(r'from "\./([^"]+)"', script.read_text()):
            assert (ASSETS / imported).is_file(), (script.name, imported)


async def test_console_settings_name_the_namespace_web_ui_statuses_and_most_parallel(guarded, token_file):
    settings = await guarded.get("/v1/console", headers=token_file["viewer-1"])
    assert settings.json() == {
        "namespace": "default",
        "web_ui_url": DEFAULT_WEB_UI_URL,
        "statuses": list(CRISIS_STATUSES),
        "max_parallel": MAX_PARALLEL,
    }
    assert_problem(await guarded.get("/v1/console"), 401, "unauthorized")


@pytest.fixture
async def http(liara_service) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=liara_service.url, timeout=90) as client:
        yield client


@pytest.mark.integration
async def test_a_listing_with_progress_tells_each_crisis_phases_done_of_total(http, service_tokens):
    operator = service_tokens.headers("operator-1")
    target = f"target-{uuid.uuid4().hex[:10]}"
    done = await start(http, operator, crisis_body(phase("recon-1"), phase("secure-2", "secure"), target=target))
    gated = await start(
        http, operator, crisis_body(phase("recon-1"), phase("gate-2", requires_approval=True), target=target)
    )
    await http.get(f"/v1/crises/{done}/result", params={"wait": 60}, headers=operator)
    await assert_eventually(lambda: _awaits(http, operator, gated, "gate-2"), timeout=60, interval=0.3)

    async def summarised() -> bool:
        page = await http.get("/v1/crises", params={"target": target, "progress": "true"}, headers=operator)
        rows = {row["workflow_id"]: row for row in page.json()["crises"]}
        return rows.keys() == {done, gated} and rows[done]["status"] == "completed"

    await assert_eventually(summarised, timeout=30)
    page = await http.get("/v1/crises", params={"target": target, "progress": "true"}, headers=operator)
    summaries = {row["workflow_id"]: row["summary"] for row in page.json()["crises"]}
    assert summaries[done] == {"completed_phases": 2, "failed_phases": 0, "total_phases": 2}
    assert summaries[gated] == {"completed_phases": 1, "failed_phases": 0, "total_phases": 2}
    plain = await http.get("/v1/crises", params={"target": target}, headers=operator)
    assert [row["summary"] for row in plain.json()["crises"]] == [None, None]

    # Cancelled, it has no result: its summary comes from its record.
    await http.post(f"/v1/crises/{gated}/cancel", headers=operator)
    cancelled = ("cancelled", {"completed_phases": 1, "failed_phases": 0, "total_phases": 2})

    async def told() -> bool:
        page = await http.get("/v1/crises", params={"target": target, "progress": "true"}, headers=operator)
        rows = {row["workflow_id"]: row for row in page.json()["crises"]}
        return (rows[gated]["status"], rows[gated]["summary"]) == cancelled

    await assert_eventually(told, timeout=30, interval=0.3)


@pytest.mark.integration
async def test_a_listing_does_not_wait_for_crises_no_worker_can_tell(dev_server, liara_service, service_tokens):
    # A crisis on a task queue nobody polls: its query would wait out the lookup timeout.
    target = f"target-{uuid.uuid4().hex[:10]}"
    unpolled = LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=f"nobody-{uuid.uuid4().hex[:8]}")
    workflow_id = await unpolled.trigger_crisis_response(target, [phase("recon-1")], "ops-1")
    try:
        async with httpx.AsyncClient(base_url=liara_service.url, timeout=LOOKUP_TIMEOUT / 2) as quick:
            page = await quick.get(
                "/v1/crises",
                params={"target": target, "progress": "true"},
                headers=service_tokens.headers("viewer-1"),
            )
        assert page.status_code == 200, page.text
        assert [(row["workflow_id"], row["summary"]) for row in page.json()["crises"]] == [(workflow_id, None)]
    finally:
        await dev_server.client.get_workflow_handle(workflow_id).terminate("test over")


@pytest.mark.integration
async def test_the_inbox_lists_phases_awaiting_approval_with_their_quorum(http, service_tokens):
    operator, viewer = service_tokens.headers("operator-1"), service_tokens.headers("viewer-1")
    body = crisis_body(phase("recon-1"), phase("strike-2", "strike", approvals_required=2))
    workflow_id = await start(http, operator, body)

    async def pending() -> list[dict]:
        inbox = await http.get("/v1/approvals", headers=viewer)
        assert inbox.status_code == 200, inbox.text
        return [item for item in inbox.json()["approvals"] if item["workflow_id"] == workflow_id]

    async def listed(approvals: int) -> bool:
        return [item["approvals"] for item in await pending()] == [approvals]

    await assert_eventually(lambda: listed(0), timeout=60, interval=0.3)
    (item,) = await pending()
    assert (item["target"], item["initiated_by"]) == (body["target_member"], "operator-1")
    assert (item["phase"]["phase_id"], item["phase"]["approvals_required"]) == ("strike-2", 2)

    approved = await http.post(
        f"/v1/crises/{workflow_id}/phases/strike-2/approve", headers=service_tokens.headers("approver-1")
    )
    assert approved.status_code == 200, approved.text
    await assert_eventually(lambda: listed(1), timeout=30, interval=0.3)
    (item,) = await pending()
    assert [d["decided_by"] for d in item["phase"]["decisions"]] == ["approver-1"]

    await http.post(f"/v1/crises/{workflow_id}/phases/strike-2/approve", headers=service_tokens.headers("approver-2"))

    async def decided() -> bool:
        return await pending() == []

    await assert_eventually(decided, timeout=30, interval=0.3)


@pytest.mark.integration
async def test_two_gates_open_at_once_both_stay_in_the_inbox_until_each_is_decided(http, service_tokens):
    operator, viewer = service_tokens.headers("operator-1"), service_tokens.headers("viewer-1")
    body = crisis_body(
        phase("scan-1", "scan"),
        phase("logs-2", "collect", depends_on=["scan-1"], requires_approval=True),
        phase("probe-3", "probe", depends_on=["scan-1"], requires_approval=True),
    )
    workflow_id = await start(http, operator, body)

    async def inbox() -> list[str]:
        answer = await http.get("/v1/approvals", headers=viewer)
        assert answer.status_code == 200, answer.text
        return sorted(
            item["phase"]["phase_id"] for item in answer.json()["approvals"] if item["workflow_id"] == workflow_id
        )

    async def listed(*phase_ids: str) -> bool:
        return await inbox() == list(phase_ids)

    await assert_eventually(lambda: listed("logs-2", "probe-3"), timeout=60, interval=0.3)
    approved = await http.post(
        f"/v1/crises/{workflow_id}/phases/logs-2/approve", headers=service_tokens.headers("approver-1")
    )
    assert approved.status_code == 200, approved.text

    async def ran() -> bool:
        return await phase_status(http, operator, workflow_id, "logs-2") == "completed"

    await assert_eventually(ran, timeout=30, interval=0.3)
    assert await inbox() == ["probe-3"]  # the crisis still reads awaiting_approval
    await http.post(f"/v1/crises/{workflow_id}/phases/probe-3/approve", headers=service_tokens.headers("approver-1"))
    await assert_eventually(lambda: listed(), timeout=30, interval=0.3)


async def _awaits(http: httpx.AsyncClient, token: dict[str, str], workflow_id: str, phase_id: str) -> bool:
    return await phase_status(http, token, workflow_id, phase_id) == "awaiting_approval"


async def test_a_playbook_names_the_input_its_target_comes_from(guarded, token_file, monkeypatch):
    monkeypatch.setenv("LIARA_PLAYBOOKS", str(REPO_ROOT / "playbooks"))
    listed = await guarded.get("/v1/playbooks", headers=token_file["viewer-1"])
    assert listed.status_code == 200, listed.text
    assert {book["name"]: book["target_member"] for book in listed.json()} == {
        "ai-triage": "${inputs.host}",
        "credential-rotation": "${inputs.service}",
        "health-check": "${inputs.site}",
        "incident-response": "${inputs.host}",
    }
    shown = await guarded.get("/v1/playbooks/incident-response", headers=token_file["viewer-1"])
    assert shown.json()["target_member"] == "${inputs.host}"


@pytest.mark.integration
async def test_a_phase_awaiting_approval_comes_with_its_params_as_planned(http, service_tokens):
    operator, viewer = service_tokens.headers("operator-1"), service_tokens.headers("viewer-1")
    planned = {"host": "${phases.scan-1.output.host}", "mode": "full"}
    body = crisis_body(
        phase("scan-1", "scan", params={"output": {"host": "web-7"}}),
        phase("contain-2", "contain", depends_on=["scan-1"], requires_approval=True, params=planned),
    )
    workflow_id = await start(http, operator, body)
    await assert_eventually(lambda: _awaits(http, operator, workflow_id, "contain-2"), timeout=60, interval=0.3)

    # The crisis's status: its CrisisStatus as a listing reads it, and the gated phase's params
    # as the plan has them (they are resolved only once it runs).
    report = (await http.get(f"/v1/crises/{workflow_id}", headers=viewer)).json()
    assert report["crisis_status"] == "awaiting_approval"
    phases = {entry["phase_id"]: entry for entry in report["phases"]}
    assert (phases["contain-2"]["planned_params"], phases["contain-2"]["params"]) == (planned, None)
    assert "planned_params" not in phases["scan-1"]
    listed = await http.get("/v1/crises", params={"target": body["target_member"]}, headers=viewer)
    assert [row["crisis_status"] for row in listed.json()["crises"]] == ["awaiting_approval"]
    inbox = (await http.get("/v1/approvals", headers=viewer)).json()["approvals"]
    (item,) = [item for item in inbox if item["workflow_id"] == workflow_id]
    assert item["phase"]["planned_params"] == planned

    # A phase added while the crisis runs: its plan is the one the update gave it.
    added = phase("late-3", "report", depends_on=["contain-2"], requires_approval=True, params={"note": "added"})
    extended = await http.post(f"/v1/crises/{workflow_id}/phases", json={"missions": [added]}, headers=operator)
    assert extended.status_code == 200, extended.text
    approver = service_tokens.headers("approver-1")
    await http.post(f"/v1/crises/{workflow_id}/phases/contain-2/approve", headers=approver)
    await assert_eventually(lambda: _awaits(http, operator, workflow_id, "late-3"), timeout=60, interval=0.3)
    report = (await http.get(f"/v1/crises/{workflow_id}", headers=viewer)).json()
    phases = {entry["phase_id"]: entry for entry in report["phases"]}
    assert phases["late-3"]["planned_params"] == {"note": "added"}
    assert phases["contain-2"]["params"] == {"host": "web-7", "mode": "full"}  # resolved, as it ran
    assert "planned_params" not in phases["contain-2"]

    await http.post(f"/v1/crises/{workflow_id}/phases/late-3/approve", headers=approver)
    finished = await http.get(f"/v1/crises/{workflow_id}/result", params={"wait": 60}, headers=viewer)
    assert finished.json()["status"] == "completed", finished.text
    report = (await http.get(f"/v1/crises/{workflow_id}", headers=viewer)).json()
    assert (report["status"], report["crisis_status"]) == ("completed", "completed")
