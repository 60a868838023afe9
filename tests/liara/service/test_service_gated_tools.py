"""An agent's gated tool call decided through a real ``liara serve`` with tokens and through the
command line: a quorum over HTTP, four eyes refused, a rejection whose reason the model reads,
an approval with edited arguments from ``liara --api ... approve --arguments``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.scripted_model_server import Answer, ScriptedModelServer, ToolCalls
from tests.helpers import assert_eventually
from tests.helpers.cli import assert_one_sentence_error, cli
from tests.helpers.model_agents import KEY, agent_config, agent_worker_process, gated_tool, triage
from tests.helpers.processes import WorkerProcess
from tests.helpers.service import assert_problem, crisis_body, start

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer([], api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def service_worker(
    service_env: dict[str, str], service_dir: Path, model: ScriptedModelServer
) -> Iterator[WorkerProcess]:
    """The module's worker: the analyst may call ``lookup`` and the gated ``isolate``."""
    gated = gated_tool("isolate", "Isolates a host from the network", approvals=2)
    config = agent_config(model.base_url, tools='["lookup", "isolate"]') + gated
    with agent_worker_process(service_env, service_dir, model.base_url, config) as worker:
        yield worker


@pytest.fixture
async def http(liara_service) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=liara_service.url, timeout=90) as client:
        yield client


async def awaiting_tool_call(http: httpx.AsyncClient, token: dict[str, str], workflow_id: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def waits() -> bool:
        report = (await http.get(f"/v1/crises/{workflow_id}", headers=token)).json()
        (phase,) = report["phases"]
        found.update(phase)
        return phase["status"] == "awaiting_approval"

    await assert_eventually(waits, timeout=60, interval=0.3)
    return found


def tool_results(request: Any) -> list[str]:
    return [message["content"] for message in request.body["messages"] if message["role"] == "tool"]


async def test_a_quorum_over_http_approves_a_tool_call_and_four_eyes_hold(http, service_tokens, model):
    model.set_script([ToolCalls([("isolate", {"host": "web-1"})]), Answer("web-1 isolated")])
    calls_before = model.calls
    admin = service_tokens.headers("admin-1")
    workflow_id = await start(http, admin, crisis_body(triage()))
    phase = await awaiting_tool_call(http, admin, workflow_id)
    assert phase["pending_tool_call"]["tool"] == "isolate"
    assert phase["pending_tool_call"]["arguments"] == {"host": "web-1"}
    assert (phase["approvals"], phase["approvals_required"]) == (0, 2)
    approve = f"/v1/crises/{workflow_id}/phases/triage/approve"

    # Whoever started the crisis may not decide its agent's tool calls either.
    own = await http.post(approve, headers=admin)
    assert "four eyes" in assert_problem(own, 409, "decision-refused")["detail"]
    first = await http.post(approve, headers=service_tokens.headers("approver-1"))
    assert first.status_code == 200, first.text
    assert (first.json()["tool"], first.json()["approvals"], first.json()["approvals_required"]) == ("isolate", 1, 2)
    assert model.calls - calls_before == 1  # the tool has not run: the model still waits for its result
    second = await http.post(approve, headers=service_tokens.headers("approver-2"))
    assert second.status_code == 200, second.text

    ended = await http.get(f"/v1/crises/{workflow_id}/result", params={"wait": 60}, headers=admin)
    result = ended.json()["result"]
    assert result["success"] and result["phases"][0]["output"] == {"answer": "web-1 isolated"}, result
    assert [d["decided_by"] for d in result["phases"][0]["decisions"]] == ["approver-1", "approver-2"]
    assert json.loads(tool_results(model.requests[-1])[0])["host"] == "web-1"


async def test_a_rejected_tool_call_over_http_is_told_to_the_model(http, service_tokens, model):
    model.set_script([ToolCalls([("isolate", {"host": "db-1"})]), Answer("db-1 stays online")])
    operator = service_tokens.headers("operator-1")
    workflow_id = await start(http, operator, crisis_body(triage()))
    await awaiting_tool_call(http, operator, workflow_id)
    rejected = await http.post(
        f"/v1/crises/{workflow_id}/phases/triage/reject",
        json={"reason": "db-1 serves payments"},
        headers=service_tokens.headers("approver-1"),
    )
    assert rejected.status_code == 200, rejected.text
    ended = await http.get(f"/v1/crises/{workflow_id}/result", params={"wait": 60}, headers=operator)
    assert ended.json()["result"]["success"]
    assert tool_results(model.requests[-1]) == ["not run: the call was rejected by approver-1: db-1 serves payments"]


async def test_the_command_line_approves_a_tool_call_with_edited_arguments(
    http, service_tokens, liara_service, model, service_env, tmp_path
):
    model.set_script([ToolCalls([("isolate", {"host": "web-1"})]), Answer("done")])
    operator = service_tokens.headers("operator-1")
    workflow_id = await start(http, operator, crisis_body(triage()))
    await awaiting_tool_call(http, operator, workflow_id)
    clean = {key: value for key, value in service_env.items() if not key.startswith(("TEMPORAL_", "LIARA_"))}

    def shell(token: str) -> dict[str, str]:
        return {**clean, "LIARA_API_URL": liara_service.url, "LIARA_API_TOKEN": service_tokens.by_name[token]}

    bad = await cli(shell("approver-1"), tmp_path, "approve", workflow_id, "triage", "--arguments", "web-1-lab")
    assert bad.returncode != 0
    assert "--arguments" in bad.stderr and "is not JSON" in bad.stderr and "Traceback" not in bad.stderr
    edited = '{"host": "web-1-lab"}'
    for approver in ("approver-1", "approver-2"):
        approved = await cli(shell(approver), tmp_path, "approve", workflow_id, "triage", "--arguments", edited)
        assert approved.returncode == 0, approved.stderr
        assert approved.stdout.startswith(f"Tool call isolate of phase triage of {workflow_id} approved by {approver}")
    ended = await http.get(f"/v1/crises/{workflow_id}/result", params={"wait": 60}, headers=operator)
    decisions = ended.json()["result"]["phases"][0]["decisions"]
    assert [d["arguments"] for d in decisions] == [{"host": "web-1-lab"}] * 2
    assert json.loads(tool_results(model.requests[-1])[0])["host"] == "web-1-lab"

    # Arguments go with a tool call only.
    again = await cli(shell("approver-1"), tmp_path, "approve", workflow_id, "triage", "--arguments", edited)
    assert again.returncode == 1
    assert_one_sentence_error(again.stderr)
