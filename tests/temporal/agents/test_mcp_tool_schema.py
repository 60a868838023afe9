"""An ``mcp`` executor with one tool and no ``parameters``, called by a language-model agent: the
model sees the arguments' schema the MCP server lists for that tool, asked once per worker.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import pytest

from cognition.liara.agency import LiaraTemporalAgency
from scripts.scripted_model_server import Answer, ScriptedModelServer, ToolCalls
from tests.helpers import REPO_ROOT
from tests.helpers.model_agents import KEY, agent_config, agent_worker, triage_missions

pytestmark = pytest.mark.integration

MCP_SERVER = REPO_ROOT / "tests" / "temporal" / "agents" / "mcp_scanner_server.py"


def scanner(tool: str) -> str:
    """``[executors.scanner]``: the MCP test server's ``tool`` over stdio, its schema left to the server."""
    return f"""
[executors.scanner]
type = "mcp"
command = {json.dumps([sys.executable, str(MCP_SERVER), "stdio"])}
tool = "{tool}"
description = "Scans a host for open ports"
"""


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer([], api_key=KEY) as server:
        yield server


async def run_crises(dev_server, task_queue: str, count: int) -> list[dict]:
    async with LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as agency:
        results = []
        for _ in range(count):
            workflow_id = await agency.trigger_crisis_response("web-1", triage_missions(), "tester")
            results.append(await agency.wait_for_crisis_completion(workflow_id, timeout=60))
        return results


async def test_a_single_tool_mcp_executor_takes_its_arguments_schema_from_its_server(
    dev_server, task_queue, tmp_path, model, monkeypatch, caplog
):
    model.set_script(
        [ToolCalls([("scanner", {"target": "web-1", "depth": 2})]), Answer("two ports open"), Answer("again")]
    )
    config = agent_config(model.base_url, tools='["scanner"]') + scanner("scan")
    async with agent_worker(dev_server.client, task_queue, tmp_path, config, monkeypatch):
        first, second = await run_crises(dev_server, task_queue, 2)

    assert first["success"] and second["success"], (first, second)
    (tool,) = model.requests[0].body["tools"]
    schema = tool["function"]["parameters"]
    assert schema["type"] == "object" and schema["required"] == ["target"]
    assert schema["properties"]["target"]["type"] == "string"
    assert schema["properties"]["depth"] == {"default": 1, "title": "Depth", "type": "integer"}
    assert model.requests[2].body["tools"] == model.requests[0].body["tools"]  # the next crisis's phase too
    # The model's arguments went to the tool as its own.
    result = json.loads(model.requests[1].body["messages"][-1]["content"])
    assert result == {"target": "web-1", "depth": 2, "open_ports": [22, 443]}


async def test_a_server_that_lists_no_such_tool_leaves_the_schema_empty_with_a_warning(
    dev_server, task_queue, tmp_path, model, monkeypatch, caplog
):
    model.set_script([Answer("nothing to scan")])
    config = agent_config(model.base_url, tools='["scanner"]') + scanner("sweep")
    with caplog.at_level("WARNING", logger="liara.worker"):
        async with agent_worker(dev_server.client, task_queue, tmp_path, config, monkeypatch):
            (result,) = await run_crises(dev_server, task_queue, 1)

    assert result["success"], result
    (tool,) = model.requests[0].body["tools"]
    assert tool["function"]["parameters"] == {"type": "object", "properties": {}}
    assert "Tool scanner goes to the model without its arguments' schema: MCP server" in caplog.text
    assert "lists no tool 'sweep'" in caplog.text
