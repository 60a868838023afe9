"""Language-model agents in real worker processes (``cognition/liara/worker.py``), against the
scripted OpenAI-compatible server: a worker killed between a tool call and the next model call
costs no completed step, a cancel reaches the model call in flight, an MCP server's tool serves
the model, and the model's key stays in the worker's environment and the model's requests.

One scripted server and one worker (on a queue of its own, logging at DEBUG) serve the module;
the test that kills workers starts its own. Each test reads only the requests it caused.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType, TimeoutType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from app.temporal.records import FileRecordStore
from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.errors import CrisisFailedError
from scripts.scripted_model_server import Answer, Failure, Hang, RecordedRequest, ScriptedModelServer, ToolCalls
from tests.helpers import REPO_ROOT, assert_eventually
from tests.helpers.histories import history_text
from tests.helpers.processes import WorkerProcess, subprocess_env
from tests.helpers.servers import DevServer

pytestmark = pytest.mark.integration

WORKER = "cognition/liara/worker.py"
KEY = "sk-fleet-" + uuid.uuid4().hex
KEY_ENV = "LIARA_TEST_MODEL_KEY"
TOOL = Path(__file__).with_name("llm_lookup_tool.py")
MCP_SERVER = REPO_ROOT / "tests" / "temporal" / "agents" / "mcp_scanner_server.py"
SYSTEM = "You are a security analyst."
#: The crises' heartbeat timeout: a killed worker's model call is retried this soon, and a cancel
#: reaches a heartbeating call within it.
HEARTBEAT_SECONDS = 2
#: How long a model call may wait for a chunk of its answer (the llm executor's timeout_seconds).
MODEL_TIMEOUT_SECONDS = 120
#: How long a cancelled crisis may take to end: far less than MODEL_TIMEOUT_SECONDS, so a cancel
#: that did not reach the hung call (which then ends only when it times out) fails the test.
CANCEL_BOUND_SECONDS = 30
FAST_RETRY = {"initial_interval_seconds": 0.1, "maximum_interval_seconds": 0.1}


def liara_toml(base_url: str, tool_runs: Path) -> str:
    """An analyst agent with two tools: ``lookup`` (a command noting its runs in ``tool_runs``)
    and ``scanner`` (the MCP test server's tools over stdio).
    """
    scanner_command = json.dumps([sys.executable, str(MCP_SERVER), "stdio"])
    return f"""
[agents.actions]
investigate = "analyst"

[executors.analyst]
type = "llm"
base_url = "{base_url}"
model = "scripted-analyst"
api_key_env = "{KEY_ENV}"
system = "{SYSTEM}"
tools = ["lookup", "scanner"]
max_turns = 4
timeout_seconds = {MODEL_TIMEOUT_SECONDS}

[executors.lookup]
type = "command"
argv = {json.dumps([sys.executable, str(TOOL)])}
env = {{ TOOL_RUNS_FILE = {json.dumps(str(tool_runs))} }}
description = "Looks a host up in the inventory"
parameters = {{ type = "object", properties = {{ host = {{ type = "string" }} }}, required = ["host"] }}

[executors.scanner]
type = "mcp"
command = {scanner_command}
tool = "scan"
tools = ["scan", "mission_context"]
description = "Scans a host for open ports (tool scan), or tells what the scanner was sent (tool mission_context)"

[executors.scanner.parameters]
type = "object"
properties.tool = {{ type = "string", enum = ["scan", "mission_context"] }}
properties.arguments.type = "object"
properties.arguments.properties = {{ target = {{ type = "string" }}, depth = {{ type = "integer" }} }}
"""


@dataclass
class Fleet:
    """Where a test's workers run: their environment (queue, records, configuration, key)."""

    address: str
    task_queue: str
    directory: Path
    env: dict[str, str]

    @property
    def tool_runs(self) -> Path:
        return self.directory / "tool-runs.jsonl"

    def runs(self) -> list[dict[str, Any]]:
        """The lookup tool's runs so far."""
        if not self.tool_runs.exists():
            return []
        return [json.loads(line) for line in self.tool_runs.read_text().splitlines()]

    async def record(self, workflow_id: str) -> dict[str, Any]:
        """The record of the crisis of ``workflow_id``, as it stands."""
        record = await FileRecordStore(self.directory / "crises").read(workflow_id.removeprefix("crisis-workflow-"))
        assert record is not None, f"no record of {workflow_id}"
        return record

    def worker(self, *args: str) -> WorkerProcess:
        return WorkerProcess(WORKER, self.env, self.directory, *args)

    @asynccontextmanager
    async def agency(self) -> AsyncIterator[LiaraTemporalAgency]:
        async with LiaraTemporalAgency(temporal_host=self.address, task_queue=self.task_queue) as agency:
            yield agency


def fleet(dev_server: DevServer, directory: Path, model: ScriptedModelServer, task_queue: str) -> Fleet:
    env = subprocess_env(dev_server.address, task_queue, directory / "crises")
    config = directory / "liara.toml"
    config.write_text(liara_toml(model.base_url, directory / "tool-runs.jsonl"))
    env.update({"LIARA_CONFIG": str(config), KEY_ENV: KEY})
    return Fleet(dev_server.address, task_queue, directory, env)


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer([], api_key=KEY) as server:
        yield server


@dataclass
class SharedWorker:
    fleet: Fleet
    process: WorkerProcess


@pytest.fixture(scope="module")
def shared(
    dev_server: DevServer, model: ScriptedModelServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SharedWorker]:
    """One worker process for the tests that do not kill theirs, logging at DEBUG (the most it says)."""
    where = fleet(dev_server, tmp_path_factory.mktemp("llm-fleet"), model, f"liara-test-{uuid.uuid4()}")
    process = where.worker("--log-level", "DEBUG")
    yield SharedWorker(where, process)
    process.stop()


def investigate(prompt: str = "Is web-1 compromised?") -> dict[str, Any]:
    return {
        "phase_id": "triage",
        "agent_id": "analyst-001",
        "action": "investigate",
        "target": "web-1",
        "params": {"prompt": prompt},
        "retry": {"maximum_attempts": 3, **FAST_RETRY},
    }


REPORT = {"phase_id": "report", "agent_id": "reporter-001", "action": "report", "target": "web-1"}


class Requests:
    """The requests the scripted server got from the moment this was made (the server is shared)."""

    def __init__(self, model: ScriptedModelServer) -> None:
        self.model = model
        self.start = len(model.requests)

    def __call__(self) -> list[RecordedRequest]:
        return self.model.requests[self.start :]

    async def until_hung(self, count: int) -> None:
        """Until ``count`` requests arrived and the last one hangs."""

        async def hung() -> bool:
            return len(self()) == count and self.model.hanging == 1

        await assert_eventually(hung, timeout=30)


async def history_of(dev_server: DevServer, workflow_id: str) -> WorkflowHistory:
    return await dev_server.client.get_workflow_handle(workflow_id).fetch_history()


def activity_names(events: list[HistoryEvent]) -> dict[int, str]:
    """Each scheduled activity's event id and type name."""
    return {
        event.event_id: event.activity_task_scheduled_event_attributes.activity_type.name
        for event in events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }


def activity_ends(events: list[HistoryEvent]) -> list[tuple[str, str]]:
    """``(activity name, how it ended)`` for each activity that ended, in order."""
    names = activity_names(events)
    ends = {
        EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: ("completed", "activity_task_completed_event_attributes"),
        EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: ("failed", "activity_task_failed_event_attributes"),
        EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: ("timed out", "activity_task_timed_out_event_attributes"),
        EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: ("cancelled", "activity_task_canceled_event_attributes"),
    }
    found = []
    for event in events:
        if event.event_type in ends:
            how, field = ends[event.event_type]
            found.append((names[getattr(event, field).scheduled_event_id], how))
    return found


def tool_messages(request: RecordedRequest) -> list[str]:
    return [message["content"] for message in request.body["messages"] if message["role"] == "tool"]


def tool_call_ids(request: RecordedRequest) -> list[str]:
    """The ids of the tool calls the conversation of ``request`` holds, in order."""
    return [
        call["id"]
        for message in request.body["messages"]
        if message["role"] == "assistant"
        for call in message.get("tool_calls") or []
    ]


async def test_a_worker_killed_between_a_tool_call_and_the_next_model_call_repeats_nothing(
    dev_server: DevServer, model: ScriptedModelServer, task_queue: str, tmp_path: Path
) -> None:
    """The second model call hangs; the worker making it is killed after the tool call completed.
    A new worker makes the second model call again (after the heartbeat timeout), and only that:
    the first model call and the tool call are in the history, never made again.
    """
    where = fleet(dev_server, tmp_path, model, task_queue)
    requests = Requests(model)
    model.set_script([ToolCalls([("lookup", {"host": "web-1"})], usage=(20, 7)), Hang()])
    # The first worker keeps no crisis in memory (no sticky queue): the crisis's next workflow task
    # goes to the second at once instead of waiting out the dead worker's sticky queue timeout.
    first = await asyncio.to_thread(where.worker, "--max-cached-workflows", "0")
    second: WorkerProcess | None = None
    try:
        async with where.agency() as agency:
            workflow_id = await agency.trigger_crisis_response(
                "web-1", [investigate()], "tester", heartbeat_timeout_seconds=HEARTBEAT_SECONDS, retry=FAST_RETRY
            )
            await requests.until_hung(2)
            events = list((await history_of(dev_server, workflow_id)).events)
            done = [("perform_agent_mission", "completed"), ("call_model", "completed"), ("call_tool", "completed")]
            assert activity_ends(events) == done, "the worker dies after the tool call, during the next model call"
            assert len(where.runs()) == 1

            assert await asyncio.to_thread(first.stop, signal.SIGKILL) == -signal.SIGKILL

            async def hang_over() -> bool:  # the dead worker's connection closed with it
                return model.hanging == 0

            await assert_eventually(hang_over, timeout=10)
            model.set_script([Answer("web-1 is clean", usage=(40, 9))])
            second = await asyncio.to_thread(where.worker)
            result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)
    finally:
        for worker in (first, second):
            if worker is not None and worker.process.poll() is None:
                await asyncio.to_thread(worker.stop)

    assert result["success"], result
    (phase,) = result["phases"]
    assert (phase["status"], phase["output"]) == ("completed", {"answer": "web-1 is clean"})
    # The two answered calls, not the one cut off by the kill.
    expected_usage = {"prompt_tokens": 60, "completion_tokens": 16, "total_tokens": 76, "model_calls": 2}
    assert phase["usage"] == expected_usage and result["usage"] == expected_usage

    # The first call was made once; the second twice (cut off, then on the new worker), alike.
    sent = requests()
    assert [request.answered for request in sent] == [True, False, True]
    assert [len(request.body["messages"]) for request in sent] == [2, 4, 4]
    assert sent[1].body == sent[2].body
    (call_id,) = tool_call_ids(sent[2])
    assert json.loads(tool_messages(sent[2])[0]) == {"host": "web-1", "owner": "ops"}

    # The tool ran once, for that call.
    (run,) = where.runs()
    assert run["idempotency_key"] == f"{workflow_id}/triage/{call_id}"
    assert (run["attempt"], run["params"]) == (1, {"host": "web-1"})

    events = list((await history_of(dev_server, workflow_id)).events)
    names = activity_names(events)
    assert list(names.values()) == ["perform_agent_mission", "call_model", "call_tool", "call_model"]
    retried = [
        event.activity_task_started_event_attributes
        for event in events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and names[event.activity_task_started_event_attributes.scheduled_event_id] == "call_model"
    ][-1]
    assert retried.attempt == 2, "the second model call's first attempt died with the worker"
    assert retried.last_failure.timeout_failure_info.timeout_type == TimeoutType.TIMEOUT_TYPE_HEARTBEAT

    record = json.loads(Path(result["record_path"]).read_text())
    assert record["status"] == "completed" and record["usage"] == expected_usage
    (entry,) = record["phases"]
    assert entry["status"] == "completed" and entry["usage"] == expected_usage
    assert [message["role"] for message in entry["transcript"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert entry["transcript"][:4] == sent[2].body["messages"]
    assert entry["transcript"][4]["content"] == "web-1 is clean"
    assert second is not None and KEY not in first.output + second.output


async def test_a_cancel_reaches_the_model_call_in_flight(
    dev_server: DevServer, model: ScriptedModelServer, shared: SharedWorker
) -> None:
    """The model never answers; a cancel ends the crisis long before the call's own timeout, and
    the worker drops the request: the scripted server sees its client go away.
    """
    requests = Requests(model)
    model.set_script([Hang(seconds=3600)])
    async with shared.fleet.agency() as agency:
        workflow_id = await agency.trigger_crisis_response(
            "web-1", [investigate(), REPORT], "tester", heartbeat_timeout_seconds=HEARTBEAT_SECONDS
        )
        await requests.until_hung(1)
        await agency.cancel_crisis(workflow_id, cancelled_by="tester")
        with pytest.raises(CrisisFailedError):
            await agency.wait_for_crisis_completion(workflow_id, timeout=CANCEL_BOUND_SECONDS)
        status = await agency.get_crisis_status(workflow_id)

    assert status["status"] == "cancelled", status
    record = await shared.fleet.record(workflow_id)
    assert record["status"] == "cancelled"
    assert [(p["phase_id"], p["status"]) for p in record["phases"]] == [("triage", "cancelled"), ("report", "skipped")]
    (note,) = record["cancel_requests"]
    assert (note["obeyed"], note["reason"]) == (True, "cancelled by tester")

    # An hour-long hang ends before the hour only when the client goes away (the server runs on).
    async def client_gone() -> bool:
        return model.hanging == 0

    await assert_eventually(client_gone, timeout=10)
    (request,) = requests()
    assert not request.answered

    events = list((await history_of(dev_server, workflow_id)).events)
    # The workflow waited for the call to stop (its activity confirmed the cancel).
    assert activity_ends(events)[:2] == [("perform_agent_mission", "completed"), ("call_model", "cancelled")]
    assert "call_tool" not in activity_names(events).values()


async def test_an_mcp_servers_tool_serves_the_model(
    dev_server: DevServer, model: ScriptedModelServer, shared: SharedWorker
) -> None:
    """Two calls of the ``scanner`` tool (an ``mcp`` executor) in one answer: the MCP server's
    ``scan`` result, and what the server was sent, go back to the model.
    """
    requests = Requests(model)
    scan = {"arguments": {"target": "web-1", "depth": 2}}
    model.set_script(
        [
            ToolCalls([("scanner", scan), ("scanner", {"tool": "mission_context"})]),
            Answer("web-1 has ports 22 and 443 open"),
        ]
    )
    async with shared.fleet.agency() as agency:
        workflow_id = await agency.trigger_crisis_response(
            "web-1", [investigate("Which ports are open on web-1?")], "tester", heartbeat_timeout_seconds=10
        )
        result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)

    assert result["success"], result
    assert result["phases"][0]["output"] == {"answer": "web-1 has ports 22 and 443 open"}
    first, second = requests()
    (tool,) = [tool for tool in first.body["tools"] if tool["function"]["name"] == "scanner"]
    assert tool["function"]["parameters"]["properties"]["tool"]["enum"] == ["scan", "mission_context"]
    scanned, context = (json.loads(content) for content in tool_messages(second))
    assert scanned == {"target": "web-1", "depth": 2, "open_ports": [22, 443]}
    scan_id, context_id = tool_call_ids(second)
    meta = context["meta"]
    assert meta["liara/idempotency-key"] == f"{workflow_id}/triage/{context_id}" != f"{workflow_id}/triage/{scan_id}"
    assert meta["liara/mission"]["params"] == {"tool": "mission_context"}
    assert meta["liara/mission"]["action"] == "scanner"
    assert KEY_ENV not in context["environ"], "a tool's server does not get the worker's environment"

    events = list((await history_of(dev_server, workflow_id)).events)
    assert list(activity_names(events).values()) == [
        "perform_agent_mission",
        "call_model",
        "call_tool",
        "call_tool",
        "call_model",
    ]


async def test_the_key_is_sent_to_the_model_and_kept_from_logs_history_result_and_record(
    dev_server: DevServer, model: ScriptedModelServer, shared: SharedWorker
) -> None:
    """A crisis with a refused model call (logged), a tool call and an answer: the key is in the
    Authorization header of every request, and nowhere in what the worker logged (at DEBUG),
    the history's payloads, the result or the record.
    """
    requests = Requests(model)
    model.set_script(
        [Failure(503), ToolCalls([("lookup", {"host": "web-2"}), ("scanner", {"tool": "mission_context"})])]
        + [Answer("web-2 is clean")]
    )
    async with shared.fleet.agency() as agency:
        workflow_id = await agency.trigger_crisis_response(
            "web-2",
            [{**investigate("Is web-2 compromised?"), "target": "web-2"}, {**REPORT, "target": "web-2"}],
            "tester",
            heartbeat_timeout_seconds=10,
        )
        result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)

    assert result["success"], result
    sent = requests()
    assert len(sent) == 3 and all(request.headers["authorization"] == f"Bearer {KEY}" for request in sent)

    # What the worker logged covers this crisis, its failed model call included.
    output = shared.process.output
    assert "Model call 1 of phase triage failed on attempt 1" in output, output[-3000:]
    assert result["crisis_id"] in output
    assert KEY not in output

    text = history_text(await history_of(dev_server, workflow_id))
    assert SYSTEM in text and "web-2 is clean" in text, "the decoded payloads are searched"
    assert KEY not in text
    assert KEY not in json.dumps(result)
    record = Path(result["record_path"]).read_text()
    assert "web-2 is clean" in record and KEY not in record
