"""The scripted model server (scripts/scripted_model_server.py) against the official ``openai``
client, so that it speaks the Chat Completions wire format as real providers do: answers, tool
calls, JSON answers, streaming, errors, hangs, and its command line.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageFunctionToolCall
from pydantic import BaseModel

from scripts.local_postgres import free_port
from scripts.scripted_model_server import (
    Answer,
    Failure,
    Hang,
    ScriptedModelServer,
    ScriptError,
    Step,
    ToolCalls,
    load_script,
    split_deltas,
)
from tests.helpers import REPO_ROOT

API_KEY = "sk-test-123"
MODEL = "gpt-test-mini"
MESSAGES: list[Any] = [{"role": "user", "content": "Is web-1 up?"}]
LOOKUP_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "The state of a host.",
        "parameters": {"type": "object", "properties": {"host": {"type": "string"}}, "required": ["host"]},
    },
}
#: A strict tool, as the client's stream helper parses arguments only for those.
STRICT_LOOKUP_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "lookup",
        "strict": True,
        "parameters": {
            "type": "object",
            "properties": {"host": {"type": "string"}, "ports": {"type": "array", "items": {"type": "integer"}}},
            "required": ["host", "ports"],
            "additionalProperties": False,
        },
    },
}
STATUS_SCHEMA = {
    "type": "object",
    "properties": {"host": {"type": "string"}, "up": {"type": "boolean"}},
    "required": ["host", "up"],
    "additionalProperties": False,
}


class HostStatus(BaseModel):
    host: str
    up: bool


@pytest.fixture
def server() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer([], api_key=API_KEY, chunk_delay=0.002) as running:
        yield running


def async_client(server: ScriptedModelServer, **options: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0, **options)


def sync_client(server: ScriptedModelServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0)


async def test_plain_answer(server: ScriptedModelServer) -> None:
    server.set_script([Answer("web-1 is up.", usage=(42, 7))])
    completion = await async_client(server).chat.completions.create(model=MODEL, messages=MESSAGES)

    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == MODEL
    (choice,) = completion.choices
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == "web-1 is up."
    assert choice.message.tool_calls is None
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (42, 7)
    assert completion.usage.total_tokens == 49
    assert server.calls == 1
    assert server.remaining == 0


async def test_tool_call_then_parallel_tool_calls(server: ScriptedModelServer) -> None:
    server.set_script(
        [
            ToolCalls([("lookup", {"host": "web-1"})]),
            ToolCalls([("lookup", {"host": "web-2"}), ("restart", {"host": "web-3", "force": True})], text="Both."),
        ]
    )
    client = async_client(server)

    first = (await client.chat.completions.create(model=MODEL, messages=MESSAGES, tools=[LOOKUP_TOOL])).choices[0]
    assert first.finish_reason == "tool_calls"
    assert first.message.content is None
    assert first.message.tool_calls is not None
    (call,) = first.message.tool_calls
    assert call.type == "function"
    assert call.function.name == "lookup"
    assert isinstance(call.function.arguments, str)
    assert json.loads(call.function.arguments) == {"host": "web-1"}

    second = (await client.chat.completions.create(model=MODEL, messages=MESSAGES, tools=[LOOKUP_TOOL])).choices[0]
    assert second.finish_reason == "tool_calls"
    assert second.message.content == "Both."
    assert second.message.tool_calls is not None
    calls = [
        (c.function.name, json.loads(c.function.arguments))
        for c in second.message.tool_calls
        if isinstance(c, ChatCompletionMessageFunctionToolCall)
    ]
    assert calls == [("lookup", {"host": "web-2"}), ("restart", {"host": "web-3", "force": True})]
    ids = [call.id] + [c.id for c in second.message.tool_calls]
    assert all(id_.startswith("call_") for id_ in ids)
    assert len(set(ids)) == 3


async def test_json_answer_for_a_json_schema_response_format(server: ScriptedModelServer) -> None:
    response_format: Any = {
        "type": "json_schema",
        "json_schema": {"name": "host_status", "schema": STATUS_SCHEMA, "strict": True},
    }
    server.set_script([Answer(json={"host": "web-1", "up": True}), Answer(json={"host": "web-2", "up": False})])

    completion = await async_client(server).chat.completions.create(
        model=MODEL, messages=MESSAGES, response_format=response_format
    )
    content = completion.choices[0].message.content
    assert content is not None
    assert json.loads(content) == {"host": "web-1", "up": True}
    assert server.requests[0].body["response_format"] == response_format

    # The synchronous client's parse() reads the content into the model it was given.
    parsed = sync_client(server).chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=HostStatus)
    assert parsed.choices[0].message.parsed == HostStatus(host="web-2", up=False)


async def test_streamed_answer_with_usage() -> None:
    text = "web-1 answers on port 443, and its certificate is valid for 30 more days."
    # A delay long enough to see the chunks arrive one after another.
    with ScriptedModelServer([Answer(text, usage=(12, 9))], api_key=API_KEY, chunk_delay=0.02) as server:
        stream = await async_client(server).chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        chunks, arrivals = [], []
        async for chunk in stream:
            chunks.append(chunk)
            arrivals.append(time.monotonic())

    assert all(chunk.object == "chat.completion.chunk" and chunk.model == MODEL for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    deltas = [chunk.choices[0].delta.content for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]
    assert len(deltas) > 3
    assert "".join(deltas) == text
    assert arrivals[-1] - arrivals[0] >= 0.02 * (len(chunks) - 1) * 0.8
    finishing = chunks[-2]
    assert finishing.choices[0].finish_reason == "stop"
    assert finishing.usage is None
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (12, 9, 21)


async def test_streamed_answer_without_usage(server: ScriptedModelServer) -> None:
    server.set_script([Answer("All quiet.")])
    stream = await async_client(server).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    chunks = [chunk async for chunk in stream]
    assert all(chunk.usage is None and len(chunk.choices) == 1 for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == "All quiet."


async def test_streamed_parallel_tool_calls(server: ScriptedModelServer) -> None:
    calls = [("lookup", {"host": "web-1", "ports": [22, 443]}), ("lookup", {"host": "db-1", "note": "a, b: c"})]
    server.set_script([ToolCalls(calls), ToolCalls(calls[:1], text="Looking.")])
    client = async_client(server)

    stream = await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, tools=[LOOKUP_TOOL], stream=True, stream_options={"include_usage": True}
    )
    names: dict[int, str] = {}
    ids: dict[int, str] = {}
    arguments: dict[int, list[str]] = {}
    finish_reasons = []
    async for chunk in stream:
        for choice in chunk.choices:
            finish_reasons.append(choice.finish_reason)
            for delta in choice.delta.tool_calls or []:
                if delta.id is not None:
                    # The first delta of a call names it, with its id; the later ones only add arguments.
                    assert delta.index not in ids
                    assert delta.function is not None and delta.function.name is not None
                    ids[delta.index] = delta.id
                    names[delta.index] = delta.function.name
                    arguments[delta.index] = []
                assert delta.function is not None
                arguments[delta.index].append(delta.function.arguments or "")
    assert [reason for reason in finish_reasons if reason] == ["tool_calls"]
    assert names == {0: "lookup", 1: "lookup"}
    assert len(set(ids.values())) == 2
    assert all(len(pieces) > 2 for pieces in arguments.values())
    assert [json.loads("".join(arguments[index])) for index in (0, 1)] == [args for _, args in calls]

    # The client's own stream helper puts the chunks back together into a completion.
    async with client.chat.completions.stream(model=MODEL, messages=MESSAGES, tools=[STRICT_LOOKUP_TOOL]) as helper:
        final = await helper.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Looking."
    assert message.tool_calls is not None
    assert message.tool_calls[0].function.parsed_arguments == calls[0][1]
    assert final.choices[0].finish_reason == "tool_calls"


async def test_rate_limit_with_retry_after(server: ScriptedModelServer) -> None:
    server.set_script([Failure(429, "Slow down.", retry_after=1.5), Answer("ok")])
    with pytest.raises(openai.RateLimitError) as raised:
        await async_client(server).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert raised.value.status_code == 429
    assert raised.value.response.headers["retry-after"] == "1.5"
    assert raised.value.type == "rate_limit_error"
    assert raised.value.code == "rate_limit_exceeded"
    assert "Slow down." in raised.value.message
    assert server.calls == 0
    assert server.requests[0].answered is False


async def test_server_error_and_bad_request(server: ScriptedModelServer) -> None:
    server.set_script([Failure(500), Failure(400, "Invalid 'messages[1].role': unknown role 'robot'.")])
    client = async_client(server)
    with pytest.raises(openai.InternalServerError) as server_error:
        await client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert server_error.value.status_code == 500
    assert server_error.value.type == "server_error"
    assert "retry-after" not in server_error.value.response.headers

    with pytest.raises(openai.BadRequestError) as bad_request:
        await client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert "unknown role 'robot'" in bad_request.value.message
    assert bad_request.value.body == {
        "message": "Invalid 'messages[1].role': unknown role 'robot'.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


async def test_wrong_or_missing_key_uses_no_step(server: ScriptedModelServer) -> None:
    server.set_script([Answer("for the right key")])
    wrong = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-wrong-456", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as raised:
        await wrong.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert raised.value.status_code == 401
    async with httpx.AsyncClient() as http:
        missing = await http.post(f"{server.base_url}/chat/completions", json={"model": MODEL, "messages": MESSAGES})
    assert missing.status_code == 401
    assert "API key" in missing.json()["error"]["message"]

    assert server.remaining == 1
    right = await async_client(server).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert right.choices[0].message.content == "for the right key"
    assert [request.answered for request in server.requests] == [False, False, True]


async def test_invalid_requests_use_no_step(server: ScriptedModelServer) -> None:
    server.set_script([Answer("valid")])
    url = f"{server.base_url}/chat/completions"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(headers=headers) as http:
        no_messages = await http.post(url, json={"model": MODEL})
        no_model = await http.post(url, json={"messages": MESSAGES})
        not_json = await http.post(url, content=b"{model", headers={"content-type": "application/json"})
        elsewhere = await http.post(f"{server.base_url}/completions", json={"model": MODEL, "prompt": "hi"})
    assert (no_messages.status_code, no_messages.json()["error"]["param"]) == (400, "messages")
    assert (no_model.status_code, no_model.json()["error"]["param"]) == (400, "model")
    assert not_json.status_code == 400
    assert elsewhere.status_code == 404
    assert elsewhere.json()["error"]["type"] == "not_found_error"
    assert server.remaining == 1
    assert (await async_client(server).chat.completions.create(model=MODEL, messages=MESSAGES)).choices[0].message


async def test_hang_times_out_and_the_server_answers_the_next_request(server: ScriptedModelServer) -> None:
    server.set_script([Hang(), Answer("back")])
    client = async_client(server)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(model=MODEL, messages=MESSAGES, timeout=0.5)
    assert time.monotonic() - started < 3

    # The server sees the client go away and lets the request go.
    deadline = time.monotonic() + 3
    while server.hanging and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert server.hanging == 0
    assert server.requests[0].answered is False

    started = time.monotonic()
    completion = await client.chat.completions.create(model=MODEL, messages=MESSAGES, timeout=5)
    assert completion.choices[0].message.content == "back"
    assert time.monotonic() - started < 1


async def test_hang_then_answer() -> None:
    with ScriptedModelServer([Hang(0.3, then=Answer("late"))]) as server:
        started = time.monotonic()
        completion = await async_client(server).chat.completions.create(model=MODEL, messages=MESSAGES)
        assert time.monotonic() - started >= 0.3
        assert completion.choices[0].message.content == "late"
        assert server.calls == 1


async def test_stop_does_not_wait_for_hung_requests() -> None:
    server = ScriptedModelServer([Hang()], api_key=API_KEY).start()
    call = asyncio.create_task(async_client(server).chat.completions.create(model=MODEL, messages=MESSAGES))
    deadline = time.monotonic() + 5
    while not server.hanging and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert server.hanging == 1

    started = time.monotonic()
    await asyncio.to_thread(server.stop)
    assert time.monotonic() - started < 2
    with pytest.raises(openai.InternalServerError) as raised:
        await asyncio.wait_for(call, 5)
    assert raised.value.status_code == 503


async def test_a_script_that_ran_out(server: ScriptedModelServer) -> None:
    server.set_script([Answer("only one")])
    client = async_client(server)
    await client.chat.completions.create(model=MODEL, messages=MESSAGES)
    with pytest.raises(openai.InternalServerError) as raised:
        await client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert "no step left" in raised.value.message
    assert server.calls == 1

    server.set_script([Answer("a new script")])
    again = await client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert again.choices[0].message.content == "a new script"


async def test_a_function_script_sees_each_request(server: ScriptedModelServer) -> None:
    def script(body: dict[str, Any]) -> Step | None:
        last = body["messages"][-1]
        if last["role"] == "tool":
            return Answer(f"the tool said {last['content']}")
        return ToolCalls([("lookup", {"host": "web-1"})])

    server.set_script(script)
    client = async_client(server)
    first = (await client.chat.completions.create(model=MODEL, messages=MESSAGES)).choices[0].message
    assert first.tool_calls is not None
    tool_call: Any = first.tool_calls[0]
    follow_up: list[Any] = [
        *MESSAGES,
        first.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": tool_call.id, "content": "up"},
    ]
    second = await client.chat.completions.create(model=MODEL, messages=follow_up)
    assert second.choices[0].message.content == "the tool said up"
    assert server.remaining is None
    assert server.calls == 2


async def test_requests_are_recorded_with_bodies_and_headers(server: ScriptedModelServer) -> None:
    server.set_script([Answer("one"), Answer("two")])
    client = async_client(server)
    await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, tools=[LOOKUP_TOOL], temperature=0, extra_headers={"X-Mission": "m-7"}
    )
    await client.chat.completions.create(model="other-model", messages=[*MESSAGES, {"role": "user", "content": "?"}])

    first, second = server.requests
    assert first.body["model"] == MODEL
    assert first.body["messages"] == MESSAGES
    assert first.body["tools"] == [LOOKUP_TOOL]
    assert first.body["temperature"] == 0
    assert first.headers["authorization"] == f"Bearer {API_KEY}"
    assert first.headers["x-mission"] == "m-7"
    assert "OpenAI/Python" in first.headers["user-agent"]
    assert second.body["model"] == "other-model"
    assert len(second.body["messages"]) == 2
    assert first.answered and second.answered

    models = await client.models.list()
    assert [model.id for model in models.data] == [MODEL, "other-model"]


async def test_models_lists_a_default_model_before_any_request(server: ScriptedModelServer) -> None:
    models = sync_client(server).models.list()
    assert [model.id for model in models.data] == ["scripted-model"]


def test_steps_from_json(tmp_path: Path) -> None:
    assert Step.from_json({"answer": "hi", "usage": [3, 4]}) == Answer("hi", usage=(3, 4))
    assert Step.from_json({"json": {"up": True}}) == Answer(json={"up": True})
    assert Step.from_json({"tool_calls": [["lookup", {"host": "web-1"}]], "text": "so"}) == ToolCalls(
        [("lookup", {"host": "web-1"})], text="so"
    )
    assert Step.from_json({"failure": 429, "retry_after": 1}) == Failure(429, retry_after=1.0)
    assert Step.from_json({"hang": 10, "then": {"answer": "late"}}) == Hang(10.0, then=Answer("late"))
    for bad in ([1], {"answer": "x", "json": {}}, {"answer": 3}, {"failure": 200}, {"hang": 1, "extra": 2}):
        with pytest.raises(ScriptError):
            Step.from_json(bad)

    script = tmp_path / "steps.json"
    script.write_text(json.dumps([{"answer": "a"}, {"hang": 1}]))
    assert load_script(script) == [Answer("a"), Hang(1.0)]
    script.write_text(json.dumps([{"answer": "a"}, {"tool_calls": [["lookup"]]}]))
    with pytest.raises(ScriptError, match="step 2"):
        load_script(script)


def test_split_deltas_joins_back() -> None:
    text = 'The host "web-1" is up, and {"a": [1, 2]} holds.'
    pieces = split_deltas(text)
    assert "".join(pieces) == text
    assert len(pieces) > 5
    long_text = "word " * 1000
    assert "".join(split_deltas(long_text)) == long_text
    assert len(split_deltas(long_text)) <= 16
    assert split_deltas("") == []


async def start_command(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO_ROOT / "scripts" / "scripted_model_server.py"),
        *args,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_command_line_serves_a_script_file(tmp_path: Path) -> None:
    script = tmp_path / "steps.json"
    script.write_text(json.dumps([{"tool_calls": [["lookup", {"host": "web-1"}]]}, {"answer": "web-1 is up"}]))
    port = free_port()
    process = await start_command("--port", str(port), "--script", str(script), "--api-key", "sk-cli")
    try:
        assert process.stdout is not None and process.stderr is not None
        line = await asyncio.wait_for(process.stdout.readline(), 15)
        base_url = f"http://127.0.0.1:{port}/v1"
        assert line.decode() == f"Scripted model server listening on {base_url}\n"

        client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-cli", max_retries=0)
        first = await client.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert first.choices[0].message.tool_calls is not None
        (call,) = first.choices[0].message.tool_calls
        assert isinstance(call, ChatCompletionMessageFunctionToolCall)
        assert (call.function.name, json.loads(call.function.arguments)) == ("lookup", {"host": "web-1"})
        second = await client.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert second.choices[0].message.content == "web-1 is up"
        await client.close()

        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
        assert await process.stderr.read() == b""
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize(
    "content, expected",
    [
        ('[{"answer": "ok"}, {"tool_calls": "lookup"}]', "step 2 of the script"),
        ("[{oops", "is not JSON"),
        ('{"answer": "ok"}', "must be a JSON list of steps"),
        (None, "cannot read the script"),
    ],
)
async def test_command_line_rejects_a_bad_script(tmp_path: Path, content: str | None, expected: str) -> None:
    script = tmp_path / "steps.json"
    if content is not None:
        script.write_text(content)
    process = await start_command("--port", str(free_port()), "--script", str(script))
    stdout, stderr = await asyncio.wait_for(process.communicate(), 15)
    assert process.returncode == 1
    assert stdout == b""
    message = stderr.decode()
    assert message.count("\n") == 1 and message.startswith("Error: ")
    assert expected.lower() in message.lower()
    assert "Traceback" not in message
