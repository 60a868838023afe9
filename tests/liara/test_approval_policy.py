"""The approval policy of ``liara.toml``: four eyes by default, rules by action that a crisis's
author cannot lower, whoever they name alone deciding, on every way a crisis starts or grows.
On the dev server, with an in-process worker, the Python API and the service.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from app.temporal.config import ConfigError
from app.temporal.errors import InvalidCrisisRequestError
from app.temporal.models import PhaseStatus
from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.errors import DecisionRefusedError
from cognition.liara.playbooks import load, locate
from tests.helpers.service import assert_problem, crisis_body
from tests.helpers.service import phase as service_phase
from tests.helpers.workflows import phase, until, worker

pytestmark = pytest.mark.integration

POLICY = """
[approvals.actions."rotate-*"]
approvals = 2
approvers = ["alice", "bob"]
roles = ["approver"]

[approvals.actions."isolate-host"]
approvals = 1
"""


@pytest.fixture
def policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "liara.toml"
    config.write_text(POLICY)
    monkeypatch.setenv("LIARA_CONFIG", str(config))
    return config


async def start(agency: LiaraTemporalAgency, *phases: dict, initiated_by: str = "carol") -> str:
    started = await agency.start_crisis("target-alpha", list(phases), initiated_by)
    return started["workflow_id"]


async def test_whoever_started_a_crisis_may_not_decide_its_gates(dev_server, task_queue, tmp_path, agency):
    async with worker(dev_server, task_queue, tmp_path):
        workflow_id = await start(agency, phase("strike-1", "strike", 1, requires_approval=True))
        await until(agency, workflow_id, "strike-1", PhaseStatus.AWAITING_APPROVAL)
        with pytest.raises(DecisionRefusedError) as refused:
            await agency.approve_phase(workflow_id, "strike-1", approved_by="carol")
        assert str(refused.value).endswith(
            "carol started crisis "
            f"{workflow_id.removeprefix('crisis-workflow-')} and may not decide its gates (four eyes): "
            "another approver must decide."
        )
        with pytest.raises(DecisionRefusedError):
            await agency.reject_phase(workflow_id, "strike-1", rejected_by="carol")
        await agency.approve_phase(workflow_id, "strike-1", approved_by="dave")
        result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)
    assert result["success"] and result["phases"][0]["approved_by"] == "dave"


async def test_a_one_person_team_may_let_the_starter_decide(dev_server, task_queue, tmp_path, agency, monkeypatch):
    config = tmp_path / "liara.toml"
    config.write_text("[approvals]\nself_approval = true\n")
    monkeypatch.setenv("LIARA_CONFIG", str(config))
    async with worker(dev_server, task_queue, tmp_path):
        workflow_id = await start(agency, phase("strike-1", "strike", 1, requires_approval=True))
        await until(agency, workflow_id, "strike-1", PhaseStatus.AWAITING_APPROVAL)
        await agency.approve_phase(workflow_id, "strike-1", approved_by="carol")
        result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)
    assert result["success"]


async def test_a_rule_gates_its_actions_with_its_quorum_and_its_approvers(
    dev_server, task_queue, tmp_path, agency, policy
):
    async with worker(dev_server, task_queue, tmp_path):
        # The author asked for no gate at all; the policy gates the rotation with two approvers.
        workflow_id = await start(agency, phase("rotate", "rotate-secrets", 1))
        await until(agency, workflow_id, "rotate", PhaseStatus.AWAITING_APPROVAL)
        status = await agency.get_crisis_status(workflow_id)
        assert (status["phases"][0]["requires_approval"], status["phases"][0]["approvals_required"]) == (True, 2)
        with pytest.raises(DecisionRefusedError) as refused:
            await agency.approve_phase(workflow_id, "rotate", approved_by="dave")
        assert str(refused.value).endswith(
            "dave may not decide phase 'rotate': its approval policy lets alice, bob or anyone with the role "
            "approver decide."
        )
        await agency.approve_phase(workflow_id, "rotate", approved_by="alice")
        await agency.decide(workflow_id, "rotate", approved=True, decided_by="erin", role="approver")
        result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)
    assert result["success"] and result["phases"][0]["approved_by"] == "alice, erin"
    decisions = result["phases"][0]["decisions"]
    assert [(d["decided_by"], d["role"]) for d in decisions] == [("alice", None), ("erin", "approver")]


async def test_a_rule_applies_to_phases_added_later(dev_server, task_queue, tmp_path, agency, policy):
    async with worker(dev_server, task_queue, tmp_path):
        workflow_id = await start(agency, phase("hold", "hold", 1, params={"duration": 30}))
        await until(agency, workflow_id, "hold", PhaseStatus.RUNNING)
        progress = await agency.add_phases(workflow_id, [phase("isolate", "isolate-host", 2)])
        added = next(p for p in progress["phases"] if p["phase_id"] == "isolate")
        assert added["requires_approval"] is True
        await agency.cancel_crisis(workflow_id, cancelled_by="test")


async def test_a_request_cannot_set_what_the_policy_sets(agency, policy):
    gated = phase("rotate", "rotate-secrets", 1)
    for attempt in (
        agency.start_crisis("target-alpha", [{**gated, "approvers": {"names": ["carol"]}}], "carol"),
        agency.start_crisis("target-alpha", [gated], "carol", self_approval=True),
    ):
        with pytest.raises(InvalidCrisisRequestError, match="is set by the approval policy"):
            await attempt


def test_the_shipped_playbook_gate_cannot_be_switched_off_by_an_input() -> None:
    rendered = load(locate("credential-rotation")).render({"service": "billing", "approvers": 1})
    rotate = next(p for p in rendered["missions"] if p["phase_id"] == "rotate")
    assert rotate["requires_approval"] is True and rotate["approvals_required"] == 1


async def test_a_role_the_service_does_not_know_is_a_configuration_error(agency, tmp_path, monkeypatch):
    config = tmp_path / "liara.toml"
    config.write_text('[approvals.actions."rotate-*"]\nroles = ["boss"]\n')
    monkeypatch.setenv("LIARA_CONFIG", str(config))
    with pytest.raises(ConfigError) as refused:
        await agency.start_crisis("target-alpha", [phase("rotate", "rotate-secrets", 1)], "carol")
    assert str(refused.value) == (
        f"Configuration file {config} names an unknown role 'boss' in approvals.actions.rotate-*.roles "
        "(the roles are admin, approver, operator, viewer)."
    )


async def test_the_service_decides_as_the_token_and_refuses_what_the_policy_sets(liara_service, service_tokens):
    operator, approver = service_tokens.headers("operator-1"), service_tokens.headers("approver-1")
    async with httpx.AsyncClient(base_url=liara_service.url, timeout=60) as http:
        body = crisis_body(service_phase("gate-1", "strike", requires_approval=True))
        started = await http.post("/v1/crises", json=body, headers=operator)
        assert started.status_code == 201, started.text
        workflow_id = started.json()["workflow_id"]
        for _ in range(100):
            status = (await http.get(f"/v1/crises/{workflow_id}", headers=operator)).json()
            if status["phases"] and status["phases"][0]["status"] == "awaiting_approval":
                break
            await asyncio.sleep(0.1)
        decided = await http.post(f"/v1/crises/{workflow_id}/phases/gate-1/approve", headers=approver)
        assert decided.status_code == 200, decided.text
        assert (decided.json()["decided_by"], decided.json()["role"]) == ("approver-1", "approver")
        sneaked = crisis_body({**service_phase("gate-2", "strike"), "approvers": {"names": ["operator-1"]}})
        refused = await http.post("/v1/crises", json=sneaked, headers=operator)
        problem = assert_problem(refused, 422, "invalid-request")
        assert "/missions/0/approvers: is set by the approval policy" in problem["detail"]
