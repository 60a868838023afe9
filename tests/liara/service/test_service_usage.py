"""The HTTP API tells what language-model agents spent: ``GET /v1/crises/{id}`` per agent phase and
in all while the crisis runs, the result endpoint in its result, and the API document describes
both. The module's worker runs the agent against the scripted model server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from cognition.liara.service.schemas import CrisisOutcome, CrisisReport
from scripts.scripted_model_server import ScriptedModelServer
from tests.helpers import assert_eventually
from tests.helpers.model_agents import KEY, USAGE, agent_worker_process, gate, script, triage
from tests.helpers.processes import WorkerProcess
from tests.helpers.service import crisis_body, phase_status, start

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer([], api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def service_worker(
    service_env: dict[str, str], service_dir: Path, model: ScriptedModelServer
) -> Iterator[WorkerProcess]:
    """The module's worker, with the language-model agent (the service itself runs without it)."""
    with agent_worker_process(service_env, service_dir, model.base_url) as worker:
        yield worker


@pytest.fixture
async def http(liara_service) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=liara_service.url, timeout=90) as client:
        yield client


async def test_a_crisis_tells_its_agents_usage_while_it_runs_and_in_its_result(http, service_tokens, model):
    model.set_script(script())
    operator, approver = service_tokens.headers("operator-1"), service_tokens.headers("approver-1")
    target = "web-1"
    workflow_id = await start(http, operator, crisis_body(triage(target), gate(target), target=target))

    async def at_the_gate() -> bool:
        return await phase_status(http, operator, workflow_id, "contain") == "awaiting_approval"

    await assert_eventually(at_the_gate, timeout=60, interval=0.5)
    answer = await http.get(f"/v1/crises/{workflow_id}", headers=operator)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    CrisisReport.model_validate(report)
    assert report["status"] == "running" and report["usage"] == USAGE
    agent, waiting = report["phases"]
    assert agent["usage"] == USAGE and waiting["usage"] is None
    assert agent.get("transcript") is None  # the record alone keeps it

    running = await http.get(f"/v1/crises/{workflow_id}/result", headers=operator)
    assert running.status_code == 202 and running.json()["result"] is None

    decided = await http.post(f"/v1/crises/{workflow_id}/phases/contain/approve", headers=approver)
    assert decided.status_code == 200, decided.text
    ended = await http.get(f"/v1/crises/{workflow_id}/result", params={"wait": 60}, headers=operator)
    assert ended.status_code == 200, ended.text
    outcome = CrisisOutcome.model_validate(ended.json())
    assert outcome.result is not None and outcome.result.success
    assert ended.json()["result"]["usage"] == USAGE
    assert ended.json()["result"]["phases"][0]["usage"] == USAGE

    # Once it ended, its status tells the result's usage.
    finished = (await http.get(f"/v1/crises/{workflow_id}", headers=operator)).json()
    assert finished["result"]["usage"] == USAGE


async def test_the_api_document_describes_usage(http):
    document = (await http.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    usage = schemas["ModelUsage"]
    if "$ref" in usage:  # as it is written: the cost only where a model has prices
        usage = schemas[usage["$ref"].rsplit("/", 1)[-1]]
    counts = {"prompt_tokens", "completion_tokens", "total_tokens", "model_calls"}
    assert set(usage["properties"]) == {*counts, "cost"} and set(usage["required"]) == counts
    assert all(usage["properties"][count]["type"] == "integer" for count in counts)
    assert usage["properties"]["cost"]["type"] == "number"
    reference = "#/components/schemas/ModelUsage"
    for schema in ("CrisisReport", "CrisisResult", "PhaseReport", "PhaseOutcome"):
        field = schemas[schema]["properties"]["usage"]
        assert {"$ref": reference} in field["anyOf"], (schema, field)
        assert field.get("description"), schema
