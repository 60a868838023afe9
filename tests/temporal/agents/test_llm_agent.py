"""A language-model agent as a phase, on the dev server with an in-process worker and the scripted
OpenAI-compatible server: each model call and each tool call its own activity, tools run by their
executors, the answer as the phase's output, usage summed, the transcript in the record, the key
nowhere but in the model's requests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.errors import DecisionRefusedError
from scripts.scripted_model_server import Answer, Failure, ScriptedModelServer, ToolCalls
from tests.helpers import assert_eventually
from tests.helpers.histories import history_text
from tests.helpers.model_agents import KEY, agent_config, agent_worker, gated_tool, triage_missions

pytestmark = pytest.mark.integration


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer([], api_key=KEY) as server:
        yield server


async def run_crisis(dev_server, task_queue: str, missions: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    async with LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as agency:
        workflow_id = await agency.trigger_crisis_response("web-1", missions, "tester")
        return workflow_id, await agency.wait_for_crisis_completion(workflow_id, timeout=60)


async def history_json(client: Client, workflow_id: str) -> tuple[str, list[Any]]:
    """The history as text, its payloads decoded, and its events."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return history_text(history), list(history.events)


async def test_an_agent_calls_a_tool_and_answers_each_step_an_activity(
    dev_server, task_queue, tmp_path, model, monkeypatch
):
    model.set_script(
        [ToolCalls([("lookup", {"host": "web-1"})], usage=(20, 7)), Answer("web-1 is clean", usage=(40, 9))]
    )
    async with agent_worker(
        dev_server.client, task_queue, tmp_path, agent_config(model.base_url), monkeypatch
    ) as store:
        workflow_id, result = await run_crisis(dev_server, task_queue, triage_missions(severity="high"))

    assert result["success"], result
    (phase,) = result["phases"]
    assert phase["output"] == {"answer": "web-1 is clean"}
    expected_usage = {"prompt_tokens": 60, "completion_tokens": 16, "total_tokens": 76, "model_calls": 2}
    assert phase["usage"] == expected_usage
    assert result["usage"] == expected_usage
    assert "transcript" not in phase or phase["transcript"] is None  # the crisis does not carry it

    first, second = (request.body for request in model.requests)
    assert first["model"] == "scripted-analyst"
    assert first["messages"][0] == {"role": "system", "content": "You are a security analyst."}
    task = first["messages"][1]["content"]
    assert task.startswith("Is web-1 compromised?") and '"severity": "high"' in task
    (tool,) = first["tools"]
    assert tool["function"]["name"] == "lookup" and tool["function"]["parameters"]["required"] == ["host"]
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool" and json.loads(tool_message["content"]) == {"host": "web-1", "owner": "ops"}
    assert all(request.headers["authorization"] == f"Bearer {KEY}" for request in model.requests)

    # One activity per step: the phase's, two model calls and one tool call.
    text, events = await history_json(dev_server.client, workflow_id)
    scheduled = [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled == ["perform_agent_mission", "call_model", "call_tool", "call_model"]

    record = json.loads(store.path_for(result["crisis_id"]).read_text())
    (entry,) = record["phases"]
    assert entry["usage"] == expected_usage and record["usage"] == expected_usage
    assert [message["role"] for message in entry["transcript"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert entry["transcript"][2]["tool_calls"][0]["function"]["name"] == "lookup"
    # The key is in the worker's environment and the model's requests, nowhere else.
    assert "Is web-1 compromised?" in text  # (payloads are read)
    assert KEY not in text and KEY not in json.dumps(result) and KEY not in json.dumps(record)


async def test_parallel_tool_calls_run_side_by_side_and_a_failed_tool_is_told_to_the_model(
    dev_server, task_queue, tmp_path, model, monkeypatch
):
    model.set_script(
        [
            ToolCalls([("lookup", {"host": "web-1"}), ("lookup", {"host": "web-2"}), ("lookup", {"host": "fail"})]),
            Answer("two hosts known, one lookup failed"),
        ]
    )
    async with agent_worker(dev_server.client, task_queue, tmp_path, agent_config(model.base_url), monkeypatch):
        workflow_id, result = await run_crisis(dev_server, task_queue, triage_missions())

    assert result["success"], result
    tool_messages = [message for message in model.requests[1].body["messages"] if message["role"] == "tool"]
    contents = [message["content"] for message in tool_messages]
    assert json.loads(contents[0])["host"] == "web-1" and json.loads(contents[1])["host"] == "web-2"
    assert contents[2].startswith("error: ") and "no such host" in contents[2], contents[2]
    # The three calls were scheduled in one workflow task, before any of them completed.
    _, events = await history_json(dev_server.client, workflow_id)
    kinds = [event.event_type for event in events]
    first_tool = next(
        index
        for index, event in enumerate(events)
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.activity_type.name == "call_tool"
    )
    assert kinds[first_tool : first_tool + 3] == [EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED] * 3


async def test_a_rate_limited_model_call_waits_as_retry_after_says(
    dev_server, task_queue, tmp_path, model, monkeypatch
):
    model.set_script([Failure(429, "Rate limit reached", retry_after=2), Answer("done")])
    async with agent_worker(dev_server.client, task_queue, tmp_path, agent_config(model.base_url), monkeypatch):
        _, result = await run_crisis(dev_server, task_queue, triage_missions())

    assert result["success"] and result["phases"][0]["output"] == {"answer": "done"}, result
    first, second = model.requests
    # The phase's retry policy would have retried after 0.1 s; Retry-After said 2.
    assert second.received_at - first.received_at >= 1.9, (first.received_at, second.received_at)
    assert result["phases"][0]["usage"]["model_calls"] == 1  # the refused call spent nothing


async def test_a_refused_model_call_fails_the_phase_at_once_with_the_providers_message(
    dev_server, task_queue, tmp_path, model, monkeypatch
):
    model.set_script([Failure(400, "Invalid value for 'model': no such model")])
    async with agent_worker(dev_server.client, task_queue, tmp_path, agent_config(model.base_url), monkeypatch):
        _, result = await run_crisis(dev_server, task_queue, triage_missions())

    (phase,) = result["phases"]
    assert phase["status"] == "failed" and len(model.requests) == 1
    assert phase["error"] == (
        f"Model 'scripted-analyst' at {model.base_url}/chat/completions answered HTTP 400: "
        "Invalid value for 'model': no such model."
    )


async def test_an_agent_that_never_answers_within_max_turns_fails(dev_server, task_queue, tmp_path, model, monkeypatch):
    model.set_script([ToolCalls([("lookup", {"host": f"web-{turn}"})]) for turn in range(4)])
    async with agent_worker(dev_server.client, task_queue, tmp_path, agent_config(model.base_url), monkeypatch):
        _, result = await run_crisis(dev_server, task_queue, triage_missions())

    (phase,) = result["phases"]
    assert phase["status"] == "failed"
    assert phase["error"] == "Phase triage's agent gave no answer within 4 model calls (max_turns)."
    assert phase["usage"]["model_calls"] == 4


async def test_an_output_schema_makes_the_answer_the_phases_json_output(
    dev_server, task_queue, tmp_path, model, monkeypatch
):
    schema = '{ type = "object", properties = { verdict = { type = "string" } }, required = ["verdict"] }'
    model.set_script([Answer(json={"verdict": "contain"})])
    toml = agent_config(model.base_url, tools="[]", extra=f"output_schema = {schema}")
    async with agent_worker(dev_server.client, task_queue, tmp_path, toml, monkeypatch):
        _, result = await run_crisis(dev_server, task_queue, triage_missions())

    assert result["phases"][0]["output"] == {"verdict": "contain"}, result
    (request,) = model.requests
    assert request.body["response_format"]["json_schema"]["schema"]["required"] == ["verdict"]
    assert "tools" not in request.body


async def test_a_phase_without_a_prompt_fails_without_calling_the_model(
    dev_server, task_queue, tmp_path, model, monkeypatch
):
    missions = triage_missions()
    missions[0]["params"] = {"severity": "high"}
    async with agent_worker(dev_server.client, task_queue, tmp_path, agent_config(model.base_url), monkeypatch):
        _, result = await run_crisis(dev_server, task_queue, missions)

    error = result["phases"][0]["error"]
    assert error == "Phase triage's language-model agent needs its task as params.prompt (a text)."
    assert model.requests == []


async def test_a_conversation_past_its_size_limit_ends_the_phase(dev_server, task_queue, tmp_path, model, monkeypatch):
    """Tool results are cut to 16,000 characters each; 34 of them pass the 512 KiB a model call may carry."""
    model.set_script([ToolCalls([("lookup", {"host": f"web-{index}", "size": 20_000}) for index in range(34)])])
    async with agent_worker(dev_server.client, task_queue, tmp_path, agent_config(model.base_url), monkeypatch):
        _, result = await run_crisis(dev_server, task_queue, triage_missions())

    (phase,) = result["phases"]
    assert phase["error"] == (
        "Phase triage's conversation grew past 512 KiB after 1 model calls: "
        "ask for shorter tool results or fewer turns."
    )
    assert len(model.requests) == 1


def gated_config(base_url: str, approvals: int = 1) -> str:
    """The analyst may call ``isolate``, each call of which waits for approval."""
    return agent_config(base_url, tools='["lookup", "isolate"]') + gated_tool(
        "isolate", "Isolates a host from the network", approvals
    )


async def awaiting_tool_call(agency: LiaraTemporalAgency, workflow_id: str) -> dict[str, Any]:
    """The agent phase once its tool call awaits approval."""
    found: dict[str, Any] = {}

    async def waits() -> bool:
        status = await agency.get_crisis_status(workflow_id)
        assert status["status"] == "running", status
        if "phases" not in status:  # no worker answered the progress query in time (a busy machine)
            return False
        (phase,) = status["phases"]
        found.update(phase)
        return phase["status"] == "awaiting_approval"

    await assert_eventually(waits, timeout=30, interval=0.2)
    return found


async def test_a_gated_tool_call_waits_for_an_approval_that_may_edit_its_arguments(
    dev_server, task_queue, tmp_path, model, monkeypatch
):
    model.set_script([ToolCalls([("isolate", {"host": "web-1"})]), Answer("web-1 isolated")])
    async with (
        agent_worker(dev_server.client, task_queue, tmp_path, gated_config(model.base_url), monkeypatch) as store,
        LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as agency,
    ):
        workflow_id = await agency.trigger_crisis_response("web-1", triage_missions(), "tester")
        phase = await awaiting_tool_call(agency, workflow_id)
        assert phase["pending_tool_call"] == {
            "call_id": phase["pending_tool_call"]["call_id"],
            "tool": "isolate",
            "arguments": {"host": "web-1"},
            "approvals_required": 1,
        }
        assert model.calls == 1  # the tool has not run: the model waits for its result
        with pytest.raises(DecisionRefusedError, match="four eyes"):
            await agency.approve_phase(workflow_id, "triage", "tester")
        decision = await agency.approve_phase(workflow_id, "triage", "approver-1", arguments={"host": "web-1-lab"})
        assert (decision["tool"], decision["arguments"]) == ("isolate", {"host": "web-1-lab"})
        result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)

    assert result["success"] and result["phases"][0]["output"] == {"answer": "web-1 isolated"}, result
    (tool_message,) = [m for m in model.requests[1].body["messages"] if m["role"] == "tool"]
    assert json.loads(tool_message["content"])["host"] == "web-1-lab"  # it ran with the approver's arguments
    (entry,) = json.loads(store.path_for(result["crisis_id"]).read_text())["phases"]
    (recorded,) = entry["decisions"]
    assert (recorded["decided_by"], recorded["tool"], recorded["arguments"]) == (
        "approver-1",
        "isolate",
        {"host": "web-1-lab"},
    )
    assert entry["transcript"][2]["tool_calls"][0]["function"]["arguments"] == '{"host": "web-1"}'  # the model's


async def test_a_rejected_tool_call_tells_the_model_why_and_the_agent_goes_on(
    dev_server, task_queue, tmp_path, model, monkeypatch
):
    model.set_script([ToolCalls([("isolate", {"host": "db-1"})]), Answer("db-1 left online as told")])
    async with (
        agent_worker(dev_server.client, task_queue, tmp_path, gated_config(model.base_url), monkeypatch),
        LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as agency,
    ):
        workflow_id = await agency.trigger_crisis_response("web-1", triage_missions(), "tester")
        await awaiting_tool_call(agency, workflow_id)
        await agency.reject_phase(workflow_id, "triage", "approver-1", reason="db-1 serves payments")
        result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)

    assert result["success"] and result["phases"][0]["output"] == {"answer": "db-1 left online as told"}
    (tool_message,) = [m for m in model.requests[1].body["messages"] if m["role"] == "tool"]
    assert tool_message["content"] == "not run: the call was rejected by approver-1: db-1 serves payments"


async def test_a_gated_tool_with_a_quorum_runs_once_enough_approvers_have(
    dev_server, task_queue, tmp_path, model, monkeypatch
):
    model.set_script([ToolCalls([("isolate", {"host": "web-1"})]), Answer("done")])
    toml = gated_config(model.base_url, approvals=2)
    async with (
        agent_worker(dev_server.client, task_queue, tmp_path, toml, monkeypatch),
        LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as agency,
    ):
        workflow_id = await agency.trigger_crisis_response("web-1", triage_missions(), "tester")
        await awaiting_tool_call(agency, workflow_id)
        first = await agency.approve_phase(workflow_id, "triage", "approver-1")
        assert (first["approvals"], first["approvals_required"]) == (1, 2)
        with pytest.raises(DecisionRefusedError, match="already approved"):
            await agency.approve_phase(workflow_id, "triage", "approver-1")
        phase = await awaiting_tool_call(agency, workflow_id)
        assert phase["approvals"] == 1 and model.calls == 1
        await agency.approve_phase(workflow_id, "triage", "approver-2")
        result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)

    assert result["success"], result
    assert [d["decided_by"] for d in result["phases"][0]["decisions"]] == ["approver-1", "approver-2"]


async def test_a_crisis_at_its_token_budget_waits_at_an_extend_budget_gate_then_goes_on(
    dev_server, task_queue, tmp_path, model, monkeypatch
):
    lookups = [ToolCalls([("lookup", {"host": f"web-{n}"})], usage=(20, 7)) for n in (1, 2)]
    model.set_script([*lookups, Answer("both clean", usage=(30, 5))])
    async with (
        agent_worker(dev_server.client, task_queue, tmp_path, agent_config(model.base_url), monkeypatch) as store,
        LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as agency,
    ):
        workflow_id = await agency.trigger_crisis_response("web-1", triage_missions(), "tester", token_budget=50)
        phase = await awaiting_tool_call(agency, workflow_id)
        # Two calls spent 54 tokens: the third waits, and the gate says what was spent and allowed.
        assert model.calls == 2
        assert phase["pending_budget"]["scope"] == "crisis"
        assert phase["pending_budget"]["token_budget"] == 50
        assert phase["pending_budget"]["spent"]["total_tokens"] == 54
        with pytest.raises(DecisionRefusedError, match="four eyes"):
            await agency.approve_phase(workflow_id, "triage", "tester", extend_tokens=100)
        decision = await agency.approve_phase(workflow_id, "triage", "approver-1", extend_tokens=100)
        assert (decision["tool"], decision["extend_tokens"]) == ("extend-budget", 100)
        result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)

    assert result["success"] and result["phases"][0]["output"] == {"answer": "both clean"}, result
    assert result["usage"]["total_tokens"] == 89 and model.calls == 3
    (entry,) = json.loads(store.path_for(result["crisis_id"]).read_text())["phases"]
    assert [(d["decided_by"], d["tool"], d["tool_call_id"], d.get("extend_tokens")) for d in entry["decisions"]] == [
        ("approver-1", "extend-budget", "budget-1", 100)
    ]


async def test_a_rejected_extension_of_a_phases_budget_fails_the_phase_with_the_reason(
    dev_server, task_queue, tmp_path, model, monkeypatch
):
    model.set_script([ToolCalls([("lookup", {"host": "web-1"})], usage=(20, 7)), Answer("never asked")])
    toml = agent_config(model.base_url, extra="token_budget = 20")
    async with (
        agent_worker(dev_server.client, task_queue, tmp_path, toml, monkeypatch),
        LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as agency,
    ):
        workflow_id = await agency.trigger_crisis_response("web-1", triage_missions(), "tester")
        phase = await awaiting_tool_call(agency, workflow_id)
        assert (phase["pending_budget"]["scope"], phase["pending_budget"]["token_budget"]) == ("phase", 20)
        with pytest.raises(DecisionRefusedError, match="a rejection runs nothing"):
            await agency.decide(workflow_id, "triage", approved=False, decided_by="approver-1", extend_tokens=10)
        await agency.reject_phase(workflow_id, "triage", "approver-1", reason="enough for this one")
        result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)

    (phase,) = result["phases"]
    assert phase["status"] == "failed" and model.calls == 1
    assert phase["error"] == (
        "Phase triage's agent reached its phase's budget (27 of 20 tokens): the extension was rejected by "
        "approver-1: enough for this one"
    )
    assert phase["usage"]["total_tokens"] == 27


async def test_a_model_with_prices_tells_what_its_calls_cost_and_a_cost_budget_gates_it(
    dev_server, task_queue, tmp_path, model, monkeypatch
):
    """20 prompt and 7 completion tokens at 2.0 and 8.0 per million: 0.000096 per call."""
    model.set_script([ToolCalls([("lookup", {"host": "web-1"})], usage=(20, 7)), Answer("clean", usage=(20, 7))])
    toml = agent_config(model.base_url, extra="prompt_price = 2.0\ncompletion_price = 8.0")
    async with (
        agent_worker(dev_server.client, task_queue, tmp_path, toml, monkeypatch),
        LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as agency,
    ):
        workflow_id = await agency.trigger_crisis_response("web-1", triage_missions(), "tester", cost_budget=0.00009)
        phase = await awaiting_tool_call(agency, workflow_id)
        assert phase["pending_budget"]["spent"]["cost"] == 0.000096
        await agency.approve_phase(workflow_id, "triage", "approver-1")  # as much again
        result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)

    assert result["success"], result
    assert result["usage"]["cost"] == 0.000192 and result["phases"][0]["usage"]["cost"] == 0.000192


async def test_a_provider_quoting_the_refused_key_masked_gets_it_taken_out_of_the_error(
    dev_server, task_queue, tmp_path, model, monkeypatch
):
    masked = f"{KEY[:5]}{'*' * 12}{KEY[-4:]}"  # as OpenAI quotes a key it refuses
    said = f"Incorrect API key provided: {masked}. You can find your API key at https://example.org/keys"
    model.set_script([Failure(401, said)])
    async with agent_worker(dev_server.client, task_queue, tmp_path, agent_config(model.base_url), monkeypatch):
        _, result = await run_crisis(dev_server, task_queue, triage_missions())

    error = result["phases"][0]["error"]
    assert error.endswith(
        "answered HTTP 401: Incorrect API key provided: [the key]. You can find your API key at https://example.org/keys."
    ), error
    assert KEY[-4:] not in json.dumps(result)
