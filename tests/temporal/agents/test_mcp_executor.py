"""The ``mcp`` executor against a real MCP server built with the same ``mcp`` package
(tests/temporal/agents/mcp_scanner_server.py), over stdio and over streamable HTTP, and through a real
worker process. Nothing is mocked."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import JsonValue
from temporalio.exceptions import ApplicationError

from app.temporal.agents import INHERITED_ENV, ConfigError, McpExecutor, McpSettings, load_executor_registry
from app.temporal.agents.mcp_client import IDEMPOTENCY_KEY_META, MAX_MESSAGE_BYTES, MISSION_META
from app.temporal.models import MAX_OUTPUT_BYTES
from tests.helpers.cli import trigger_and_wait
from tests.helpers.executors import BOUND_SECONDS, eventually, expect_failure, is_running, make_mission, run_bounded
from tests.helpers.processes import WorkerProcess

SERVER_SCRIPT = Path(__file__).with_name("mcp_scanner_server.py")
SCAN_RESULT = {"target": "target-alpha", "depth": 2, "open_ports": [22, 443]}


def call(tool: str, **arguments: JsonValue) -> dict[str, JsonValue]:
    """A phase's params asking for ``tool`` with ``arguments``."""
    return {"tool": tool, "arguments": arguments}


#: The test server's tools, and one it does not have: what these executors let phases name.
SERVER_TOOLS = ["scan", "summarize", "summarize_json", "mission_context", "refuse", "die", "slow", "flood", "teleport"]


def stdio_executor(**settings: Any) -> McpExecutor:
    settings.setdefault("tools", SERVER_TOOLS)
    return McpSettings(command=[sys.executable, str(SERVER_SCRIPT), "stdio"], **settings).build(Path())


@dataclass
class HttpServer:
    process: subprocess.Popen[str]
    port: int

    def url(self, path: str = "/mcp") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def executor(self, path: str = "/mcp", **settings: Any) -> McpExecutor:
        settings.setdefault("tools", SERVER_TOOLS)
        return McpSettings(url=self.url(path), **settings).build(Path())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(BOUND_SECONDS)


def start_http_server() -> HttpServer:
    """The test server in its own process, serving streamable HTTP on the port it prints."""
    process = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), "http"], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], BOUND_SECONDS)
    line = process.stdout.readline() if ready else ""
    if not line.strip().isdigit():
        process.kill()
        raise AssertionError(f"the MCP test server did not start: {line!r}")
    return HttpServer(process, int(line))


@pytest.fixture(scope="module")
def http_server() -> Iterator[HttpServer]:
    server = start_http_server()
    yield server
    server.stop()


@pytest.fixture
def own_http_server() -> Iterator[HttpServer]:
    """A server of the test's own, for tests that kill it."""
    server = start_http_server()
    yield server
    server.stop()


@pytest.fixture(params=["stdio", "http"])
def executor_for(request: pytest.FixtureRequest) -> Callable[..., McpExecutor]:
    """Makes an executor (with the given settings) for each transport in turn."""
    if request.param == "stdio":
        return stdio_executor
    server: HttpServer = request.getfixturevalue("http_server")
    return server.executor


# --- results ----------------------------------------------------------------------------------


async def test_structured_result_is_the_output(executor_for: Callable[..., McpExecutor]) -> None:
    mission = make_mission(params=call("scan", target="target-alpha", depth=2))
    assert await run_bounded(executor_for(), mission) == SCAN_RESULT


async def test_the_executors_tool_serves_phases_that_name_none(executor_for: Callable[..., McpExecutor]) -> None:
    mission = make_mission(params={"arguments": {"target": "target-alpha", "depth": 2}})
    assert await run_bounded(executor_for(tool="scan"), mission) == SCAN_RESULT


async def test_text_content_is_the_output_parsed_when_it_is_json(executor_for: Callable[..., McpExecutor]) -> None:
    executor = executor_for()
    text = await run_bounded(executor, make_mission(params=call("summarize", target="target-alpha")))
    assert text == {"text": "target-alpha: all quiet"}
    parsed = await run_bounded(executor, make_mission(params=call("summarize_json", target="target-alpha")))
    assert parsed == {"target": "target-alpha", "quiet": True}


async def test_the_request_meta_carries_the_idempotency_key_and_the_mission(
    executor_for: Callable[..., McpExecutor],
) -> None:
    executor = executor_for()
    first, retry = make_mission(params=call("mission_context")), make_mission(attempt=2, params=call("mission_context"))
    seen = [await run_bounded(executor, mission) for mission in (first, retry)]
    metas = [context["meta"] for context in seen if isinstance(context, dict)]
    assert [meta[IDEMPOTENCY_KEY_META] for meta in metas] == [first.idempotency_key] * 2
    assert [meta[MISSION_META] for meta in metas] == [first.payload(), retry.payload()]


async def test_headers_reach_an_http_server(http_server: HttpServer) -> None:
    executor = http_server.executor(headers={"Authorization": "Bearer scanner-token"})
    seen = await run_bounded(executor, make_mission(params=call("mission_context")))
    assert isinstance(seen, dict) and seen["authorization"] == "Bearer scanner-token"


async def test_a_stdio_server_gets_the_short_environment_and_its_env_not_the_worker_secrets(
    worker_secrets: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHELL", "/bin/sh")  # the SDK's own stdio client would pass this one on

    seen = await run_bounded(stdio_executor(env={"SCANNER_MODE": "test"}), make_mission(params=call("mission_context")))

    assert isinstance(seen, dict)
    environ = seen["environ"]
    assert isinstance(environ, dict)
    assert environ["PATH"] == os.environ["PATH"] and environ["LC_TIME"] == "C.UTF-8"
    assert environ["SCANNER_MODE"] == "test"
    for name, value in worker_secrets.items():
        assert name not in environ and not any(value in str(found) for found in environ.values()), name
    # Nothing but the allowlist and the executor's env (Python itself may add LC_CTYPE).
    unexpected = {name for name in environ if not name.startswith("LC_")} - INHERITED_ENV
    assert unexpected == {"SCANNER_MODE"}, unexpected


# --- failures ---------------------------------------------------------------------------------


async def test_a_tool_error_fails_the_phase_with_its_message(executor_for: Callable[..., McpExecutor]) -> None:
    err = await expect_failure(
        executor_for(), make_mission(params=call("refuse", reason="target is shielded")), retryable=False
    )
    assert "refused: target is shielded" in err.message
    assert "'refuse'" in err.message and "recon-phase-1" in err.message and "MCP server" in err.message


async def test_an_unknown_tool_is_not_retried(executor_for: Callable[..., McpExecutor]) -> None:
    # The server answers with a JSON-RPC error (invalid params), as the protocol's specification does.
    err = await expect_failure(executor_for(), make_mission(params=call("teleport")), retryable=False)
    assert "Unknown tool: teleport" in err.message and "'teleport'" in err.message


async def test_a_tool_the_configuration_does_not_allow_is_refused_before_any_server_starts() -> None:
    # Only the executor's tool: a request cannot reach the server's other tools.
    executor = McpSettings(command=["liara-no-such-mcp-server"], tool="scan").build(Path())
    err = await expect_failure(executor, make_mission(params=call("die")), retryable=False)
    assert err.message == (
        "Phase recon-phase-1 asks MCP server liara-no-such-mcp-server for tool 'die', which its executor does not "
        "allow (it allows 'scan'): add it to tools in the executor's settings to let phases call it."
    )
    named = McpSettings(command=["liara-no-such-mcp-server"], tool="scan", tools=["lookup"]).build(Path())
    assert named.settings.allowed_tools == {"scan", "lookup"}
    err = await expect_failure(named, make_mission(params=call("summarize")), retryable=False)
    assert "(it allows 'lookup', 'scan')" in err.message


async def test_bad_arguments_are_not_retried(executor_for: Callable[..., McpExecutor]) -> None:
    err = await expect_failure(executor_for(), make_mission(params=call("scan", depth="deep")), retryable=False)
    assert "validation error" in err.message and "\n" not in err.message


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, "names no tool"),
        ({"tool": ""}, "invalid mcp param 'tool'"),
        ({"tool": "scan", "arguments": ["target-alpha"]}, "invalid mcp param 'arguments'"),
    ],
)
async def test_bad_params_fail_before_any_server_starts(params: dict[str, JsonValue], expected: str) -> None:
    executor = McpSettings(command=["liara-no-such-mcp-server"], tools=SERVER_TOOLS).build(Path())
    err = await expect_failure(executor, make_mission(params=params), retryable=False)
    assert expected in err.message and "recon-phase-1" in err.message


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (MAX_OUTPUT_BYTES, f"an output of more than {MAX_OUTPUT_BYTES} bytes"),
        (MAX_MESSAGE_BYTES, f"a message of more than {MAX_MESSAGE_BYTES} bytes"),
    ],
)
async def test_an_answer_over_the_cap_is_not_retried(
    executor_for: Callable[..., McpExecutor], size: int, expected: str
) -> None:
    err = await expect_failure(executor_for(), make_mission(params=call("flood", size=size)), retryable=False)
    assert expected in err.message


async def test_a_stdio_server_dying_mid_call_is_retried_with_its_last_words() -> None:
    err = await expect_failure(stdio_executor(), make_mission(params=call("die")), retryable=True)
    assert "exited with code 1 during tool 'die'" in err.message
    assert err.message.endswith("scanner: reactor offline")


async def test_an_http_server_killed_during_a_slow_tool_is_retried(own_http_server: HttpServer, tmp_path: Path) -> None:
    marker = tmp_path / "running"
    executor = own_http_server.executor()
    task = asyncio.create_task(run_bounded(executor, make_mission(params=call("slow", marker=str(marker)))))
    await eventually(marker.exists, "the tool is running")
    own_http_server.process.send_signal(signal.SIGKILL)
    with pytest.raises(ApplicationError) as caught:
        await task
    assert caught.value.non_retryable is False, caught.value.message
    assert "broke off its answer to tool 'slow'" in caught.value.message


async def test_a_missing_stdio_program_is_not_retried(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-server")
    err = await expect_failure(
        McpSettings(command=[missing], tool="scan").build(Path()), make_mission(params=call("scan")), retryable=False
    )
    assert f"MCP server executable {missing} was not found" in err.message


async def test_an_http_server_that_is_not_there_is_retried(own_http_server: HttpServer) -> None:
    own_http_server.stop()  # its port was just in use: nothing listens there now
    err = await expect_failure(own_http_server.executor(), make_mission(params=call("scan")), retryable=True)
    assert "Could not reach MCP server at" in err.message and "'scan'" in err.message


@pytest.mark.parametrize(
    ("path", "retryable", "status"), [("/busy", True, "HTTP 503"), ("/elsewhere", False, "HTTP 404")]
)
async def test_http_error_statuses_are_sorted(http_server: HttpServer, path: str, retryable: bool, status: str) -> None:
    err = await expect_failure(http_server.executor(path), make_mission(params=call("scan")), retryable=retryable)
    assert status in err.message and path in err.message


def test_messages_name_the_url_without_credentials(http_server: HttpServer) -> None:
    executor = McpSettings(url=f"http://scanner:secret@127.0.0.1:{http_server.port}/mcp?token=abc", tool="scan").build(
        Path()
    )
    assert executor.server.name == f"MCP server at http://127.0.0.1:{http_server.port}/mcp"


async def test_a_slow_tool_times_out_retryably_and_its_stdio_server_is_killed(tmp_path: Path) -> None:
    marker = tmp_path / "running"
    executor = stdio_executor(timeout_seconds=2)
    err = await expect_failure(executor, make_mission(params=call("slow", marker=str(marker))), retryable=True)
    assert "did not answer tool 'slow' for phase recon-phase-1 within 2 seconds" in err.message
    assert not is_running(int(marker.read_text()))


async def test_a_slow_tool_times_out_retryably_over_http(http_server: HttpServer, tmp_path: Path) -> None:
    executor = http_server.executor(timeout_seconds=1)
    err = await expect_failure(executor, make_mission(params=call("slow", marker=str(tmp_path / "m"))), retryable=True)
    assert "did not answer tool 'slow'" in err.message and "within 1 seconds" in err.message


async def test_cancellation_stops_the_call_and_kills_the_stdio_server(tmp_path: Path) -> None:
    marker = tmp_path / "running"
    task = asyncio.create_task(stdio_executor().run(make_mission(params=call("slow", marker=str(marker)))))
    await eventually(marker.exists, "the tool is running")
    server_pid = int(marker.read_text())

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, BOUND_SECONDS)

    assert not is_running(server_pid), "the server was killed before the cancellation propagated"


async def test_cancellation_stops_an_http_call_at_once(http_server: HttpServer, tmp_path: Path) -> None:
    marker = tmp_path / "running"
    executor = http_server.executor()
    task = asyncio.create_task(executor.run(make_mission(params=call("slow", marker=str(marker)))))
    await eventually(marker.exists, "the tool is running")

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)  # well before the tool's 60 s or the 30 s timeout
    assert await run_bounded(executor, make_mission(params=call("scan", target="target-alpha", depth=2))) == SCAN_RESULT


def test_the_sdk_loads_only_when_a_tool_is_called() -> None:
    """Every `liara` command imports the executors; none of them should pay for the SDK's import."""
    code = "import sys, app.temporal.agents, app.temporal.worker; print('mcp' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=BOUND_SECONDS)
    assert loaded.stdout.strip() == "False", loaded.stderr


# --- configuration ----------------------------------------------------------------------------


def config_error(tmp_path: Path, table: str) -> str:
    path = tmp_path / "liara.toml"
    path.write_text(f'[executors.scanner]\ntype = "mcp"\n{table}')
    with pytest.raises(ConfigError) as caught:
        load_executor_registry(path, {})
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"Configuration file {path} ")
    return message


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("", "invalid executors.scanner: set exactly one of command (a stdio server) and url"),
        ('command = ["scan"]\nurl = "http://h/mcp"\n', "invalid executors.scanner: set exactly one"),
        (
            'url = "ftp://h/mcp"\n',
            "invalid executors.scanner.url: must be an absolute http:// or https://",
        ),
        ('url = "http://h:port/mcp"\n', "invalid executors.scanner.url: not a URL"),
        ("command = []\n", "invalid executors.scanner.command"),
        ('command = [""]\n', "invalid executors.scanner.command: the first element must name the program"),
        ('command = "scanner.py"\n', "invalid executors.scanner.command"),
        ('url = "http://h/mcp"\nenv = { A = "1" }\n', "env and cwd apply to a command server, not to a url"),
        ('command = ["scan"]\nheaders = { A = "1" }\n', "headers apply to a url server, not to a command"),
        ('command = ["scan"]\ntimeout_seconds = "30"\n', "invalid executors.scanner.timeout_seconds"),
        ('command = ["scan"]\ntool = ""\n', "invalid executors.scanner.tool"),
        ('command = ["scan"]\ntools = "scan"\n', "invalid executors.scanner.tools"),
        ('command = ["scan"]\n', "name the tools phases may call: tool (the one they call) or tools"),
    ],
)
def test_invalid_settings_are_one_sentence_naming_the_key(tmp_path: Path, table: str, expected: str) -> None:
    assert expected in config_error(tmp_path, table)


def test_mcp_is_a_built_in_type(tmp_path: Path) -> None:
    path = tmp_path / "liara.toml"
    path.write_text('[executors.scanner]\ntype = "teleport"\n')
    with pytest.raises(ConfigError, match=r"built in: simulate, http, command, mcp, llm;"):
        load_executor_registry(path, {})


def test_the_file_builds_the_executor_with_cwd_relative_to_it(tmp_path: Path) -> None:
    path = tmp_path / "liara.toml"
    path.write_text(
        '[agents.actions]\nscan = "scanner"\n'
        '[executors.scanner]\ntype = "mcp"\ncommand = ["python3", "scanner_server.py"]\ncwd = "servers"\n'
        'tool = "scan"\ntimeout_seconds = 5\n'
    )
    executor = load_executor_registry(path, {}).executor_for("scan")
    assert isinstance(executor, McpExecutor)
    assert executor.server.cwd == tmp_path / "servers"
    assert executor.settings.tool == "scan" and executor.settings.timeout_seconds == 5
    assert executor.server.name == "MCP server python3"


# --- through a worker -------------------------------------------------------------------------


@pytest.mark.integration
async def test_a_worker_performs_phases_with_mcp_tools(liara_env: dict[str, str], tmp_path: Path) -> None:
    """A worker process with a liara.toml mapping ``scan`` to the stdio test server: the crisis's
    result holds the tool's structured result as the phase's output, and the server saw the key."""
    config = tmp_path / "liara.toml"
    config.write_text(
        '[agents.actions]\nscan = "scanner"\n[executors.scanner]\ntype = "mcp"\n'
        f'command = {json.dumps([sys.executable, str(SERVER_SCRIPT), "stdio"])}\ntool = "scan"\n'
        'tools = ["scan", "mission_context"]\n'
    )
    phases = [
        {
            "phase_id": "scan-1",
            "agent_id": "scanner-001",
            "action": "scan",
            "target": "target-alpha",
            "params": {"arguments": {"target": "target-alpha", "depth": 2}},
        },
        {
            "phase_id": "scan-2",
            "agent_id": "scanner-001",
            "action": "scan",
            "target": "target-alpha",
            "params": {"tool": "mission_context"},
        },
    ]
    missions = tmp_path / "missions.json"
    missions.write_text(json.dumps(phases))
    env = {**liara_env, "LIARA_CONFIG": str(config)}
    crisis_id = f"crisis-mcp-{uuid.uuid4().hex[:8]}"
    worker = await asyncio.to_thread(WorkerProcess, "cognition/liara/worker.py", env, tmp_path)
    try:
        assert "scan -> scanner" in worker.output
        workflow_id, waited = await trigger_and_wait(
            env, tmp_path, "target-alpha", "--missions-file", str(missions), "--crisis-id", crisis_id
        )
    finally:
        assert await asyncio.to_thread(worker.stop) == 0, worker.output
    scanned, context = json.loads(waited.stdout)["phases"]
    assert scanned["status"] == "completed" and scanned["output"] == SCAN_RESULT
    assert context["output"]["meta"][IDEMPOTENCY_KEY_META] == f"{workflow_id}/scan-2"
    record = json.loads((Path(env["LIARA_CRISIS_DIR"]) / f"{crisis_id}.json").read_text())
    assert SCAN_RESULT in [phase.get("output") for phase in record["phases"]]
