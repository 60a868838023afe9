"""What keeps a language-model agent's conversation inside Temporal's limits, on the dev server
with an in-process worker and the scripted model server: a tool result or an answer too long to
carry is kept whole beside the crisis record (the conversation carries its beginning and where the
rest is), and a loop longer than the crisis's history budget goes on in a new run of the crisis
with its whole conversation, no step made twice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.temporal.agent_steps import MAX_ANSWER_CHARS, MAX_TOOL_RESULT_CHARS
from cognition.liara.agency import LiaraTemporalAgency
from scripts.scripted_model_server import Answer, ScriptedModelServer, ToolCalls
from tests.helpers.histories import history_text
from tests.helpers.model_agents import KEY, agent_config, agent_worker, triage_missions

pytestmark = pytest.mark.integration

KEPT_AT = re.compile(r"… \(cut: (\d+) more characters; the whole is kept at (\S+)\)$")


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer([], api_key=KEY) as server:
        yield server


async def run_crisis(dev_server, task_queue: str, **options: Any) -> tuple[str, dict[str, Any]]:
    async with LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as agency:
        workflow_id = await agency.trigger_crisis_response("web-1", triage_missions(), "tester", **options)
        return workflow_id, await agency.wait_for_crisis_completion(workflow_id, timeout=90)


def kept_at(text: str, limit: int) -> tuple[int, Path]:
    """How many characters a shortened message left out, and where the whole of it is."""
    found = KEPT_AT.search(text)
    assert found is not None, text[-300:]
    assert text.index("… (cut:") == limit
    return int(found.group(1)), Path(found.group(2))


async def test_a_tool_result_too_long_to_carry_is_kept_whole_beside_the_record(
    dev_server, task_queue, tmp_path, model, monkeypatch
):
    model.set_script([ToolCalls([("lookup", {"host": "web-1", "size": 40_000})]), Answer("web-1 is clean")])
    async with agent_worker(
        dev_server.client, task_queue, tmp_path, agent_config(model.base_url), monkeypatch
    ) as store:
        workflow_id, result = await run_crisis(dev_server, task_queue)
        record = await store.read(result["crisis_id"])

    assert result["success"], result
    tool_message = model.requests[1].body["messages"][-1]
    left_out, path = kept_at(tool_message["content"], MAX_TOOL_RESULT_CHARS)
    whole = path.read_text()
    assert json.loads(whole) == {"host": "web-1", "owner": "ops", "notes": "x" * 40_000}
    assert left_out == len(whole) - MAX_TOOL_RESULT_CHARS
    assert tool_message["content"].startswith(whole[:MAX_TOOL_RESULT_CHARS])
    assert path.parent == tmp_path / "crises" / f"{result['crisis_id']}.kept"
    assert await store.kept(result["crisis_id"], path.stem) == whole

    # The record's transcript says where the whole result is; the history never carries it.
    assert record is not None
    assert record["phases"][0]["transcript"][3]["content"] == tool_message["content"]
    history = history_text(await dev_server.client.get_workflow_handle(workflow_id).fetch_history())
    assert "x" * (MAX_TOOL_RESULT_CHARS + 1) not in history


async def test_an_answer_too_long_to_carry_is_the_output_s_beginning_and_kept_whole(
    dev_server, task_queue, tmp_path, model, monkeypatch
):
    answer = "".join(f"line {index}\n" for index in range(6_000))
    assert len(answer) > MAX_ANSWER_CHARS
    model.set_script([Answer(answer)])
    async with agent_worker(dev_server.client, task_queue, tmp_path, agent_config(model.base_url), monkeypatch):
        _, result = await run_crisis(dev_server, task_queue)

    assert result["success"], result
    output = result["phases"][0]["output"]["answer"]
    left_out, path = kept_at(output, MAX_ANSWER_CHARS)
    assert output.startswith(answer[:MAX_ANSWER_CHARS])
    assert path.read_text() == answer and left_out == len(answer) - MAX_ANSWER_CHARS


async def test_a_loop_past_the_history_budget_goes_on_in_a_new_run_with_its_whole_conversation(
    dev_server, task_queue, tmp_path, model, monkeypatch
):
    turns = 7
    model.set_script(
        [ToolCalls([("lookup", {"host": f"web-{turn}"})], usage=(10, 2)) for turn in range(1, turns)]
        + [Answer("all clean", usage=(10, 2))]
    )
    config = agent_config(model.base_url).replace("max_turns = 4", f"max_turns = {turns + 1}")
    async with agent_worker(dev_server.client, task_queue, tmp_path, config, monkeypatch) as store:
        workflow_id, result = await run_crisis(dev_server, task_queue, history_budget_events=50)
        record = await store.read(result["crisis_id"])
    description = await dev_server.client.get_workflow_handle(workflow_id).describe()

    assert result["success"], result
    (phase,) = result["phases"]
    assert phase["output"] == {"answer": "all clean"}
    assert phase["usage"]["model_calls"] == turns and phase["usage"]["total_tokens"] == turns * 12
    # It continued as new at least once...
    assert description.run_id != description.raw_description.workflow_execution_info.first_run_id
    # ...each model call made once, each carrying every message before it: system, task, then a
    # call and its result per turn.
    assert len(model.requests) == turns
    for made, request in enumerate(model.requests):
        assert len(request.body["messages"]) == 2 + 2 * made
    looked_up = [json.loads(m["content"])["host"] for m in model.requests[-1].body["messages"] if m["role"] == "tool"]
    assert looked_up == [f"web-{turn}" for turn in range(1, turns)]
    assert record is not None
    transcript = record["phases"][0]["transcript"]
    assert transcript[:-1] == model.requests[-1].body["messages"]
    assert transcript[-1]["content"] == "all clean"
