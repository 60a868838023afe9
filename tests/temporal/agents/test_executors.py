"""Agent executors and their configuration, against real endpoints: an HTTP server on a free
port, real subprocesses and real TOML files. Nothing is mocked."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
from pydantic import JsonValue

from app.temporal.agents import (
    INHERITED_ENV,
    AgentExecutor,
    CommandExecutor,
    ConfigError,
    ExecutorRegistry,
    HttpExecutor,
    Mission,
    SimulateExecutor,
    load_executor_registry,
)
from app.temporal.codec import new_key_line
from app.temporal.errors import LiaraError
from app.temporal.models import MAX_OUTPUT_BYTES
from tests.helpers.cli import trigger_and_wait
from tests.helpers.executors import (
    BOUND_SECONDS,
    WORKER_SECRETS,
    eventually,
    expect_failure,
    is_running,
    make_mission,
    run_bounded,
)
from tests.helpers.processes import WorkerProcess

# --- a real HTTP agent ------------------------------------------------------------------------


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    payload: Any


@dataclass
class AgentServer:
    url: str
    requests: list[Recorded] = field(default_factory=list)
    release_slow: threading.Event = field(default_factory=threading.Event)

    def endpoint(self, path: str) -> str:
        return f"{self.url}{path}"


def _handler(agent: AgentServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            payload = json.loads(body)
            agent.requests.append(Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, payload))
            if self.path == "/ok":
                self._send(200, {"handled": payload["phase_id"], "attempt": payload["attempt"]})
            elif self.path == "/text":
                self._send(200, b"all quiet", content_type="text/plain")
            elif self.path == "/empty":
                self._send(204, b"")
            elif self.path == "/big":
                self._send(200, {"blob": "x" * (MAX_OUTPUT_BYTES + 1)})
            elif self.path == "/missing":
                self._send(404, {"error": "no such mission"})
            elif self.path == "/unavailable":
                self._send(503, {"error": "try later"})
            elif self.path == "/throttled":
                self._send(429, {"error": "slow down"})
            elif self.path == "/slow":
                agent.release_slow.wait(BOUND_SECONDS)
                self._send(200, {"late": True})
            else:
                self._send(500, {"error": "unknown path"})

        def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            try:
                self.send_response(status)
                if status != 204:
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the timeout test)

    return Handler


@pytest.fixture(scope="module")
def http_agent() -> Iterator[AgentServer]:
    agent = AgentServer(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(agent))
    agent.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield agent
    agent.release_slow.set()
    server.shutdown()
    server.server_close()
    thread.join(BOUND_SECONDS)


@pytest.fixture
async def http_executors() -> AsyncIterator[list[HttpExecutor]]:
    """Executors created by a test; their connection pools are closed afterwards."""
    created: list[HttpExecutor] = []
    yield created
    for executor in created:
        await executor.aclose()


def requests_to(agent: AgentServer, path: str) -> list[Recorded]:
    return [request for request in agent.requests if request.path == path]


async def test_http_posts_payload_with_stable_idempotency_key(
    http_agent: AgentServer, http_executors: list[HttpExecutor]
) -> None:
    executor = HttpExecutor(http_agent.endpoint("/ok"), headers={"Authorization": "Bearer test-token"})
    http_executors.append(executor)
    first = make_mission(attempt=1, params={"depth": 3})
    second = make_mission(attempt=2, params={"depth": 3})

    assert await run_bounded(executor, first) == {"handled": "recon-phase-1", "attempt": 1}
    assert await run_bounded(executor, second) == {"handled": "recon-phase-1", "attempt": 2}

    received = requests_to(http_agent, "/ok")[-2:]
    assert [request.payload for request in received] == [first.payload(), second.payload()]
    assert received[0].payload == {
        "crisis_id": "crisis-1",
        "workflow_id": "crisis-workflow-crisis-1",
        "attempt": 1,
        "phase_id": "recon-phase-1",
        "agent_id": "recon-agent-001",
        "action": "reconnaissance",
        "target": "target-alpha",
        "priority": 2,
        "compensation": False,
        "params": {"depth": 3},
        "context": {},
    }
    keys = {request.headers["idempotency-key"] for request in received}
    assert keys == {"crisis-workflow-crisis-1/recon-phase-1"}
    assert received[0].headers["authorization"] == "Bearer test-token"
    assert received[0].headers["content-type"] == "application/json"


async def test_compensation_has_its_own_idempotency_key(
    http_agent: AgentServer, http_executors: list[HttpExecutor]
) -> None:
    executor = HttpExecutor(http_agent.endpoint("/ok"))
    http_executors.append(executor)
    await run_bounded(executor, make_mission(action="cleanup", compensation=True))
    received = requests_to(http_agent, "/ok")[-1]
    assert received.headers["idempotency-key"] == "crisis-workflow-crisis-1/recon-phase-1/compensation"
    assert received.payload["compensation"] is True


async def test_http_non_json_and_empty_bodies(http_agent: AgentServer, http_executors: list[HttpExecutor]) -> None:
    text, empty = HttpExecutor(http_agent.endpoint("/text")), HttpExecutor(http_agent.endpoint("/empty"))
    http_executors.extend([text, empty])
    assert await run_bounded(text, make_mission()) == {"text": "all quiet"}
    assert await run_bounded(empty, make_mission()) is None


async def test_http_body_over_cap_fails_permanently(
    http_agent: AgentServer, http_executors: list[HttpExecutor]
) -> None:
    executor = HttpExecutor(http_agent.endpoint("/big"))
    http_executors.append(executor)
    err = await expect_failure(executor, make_mission(), retryable=False)
    assert str(MAX_OUTPUT_BYTES) in err.message


async def test_http_404_is_not_retried(http_agent: AgentServer, http_executors: list[HttpExecutor]) -> None:
    executor = HttpExecutor(http_agent.endpoint("/missing"))
    http_executors.append(executor)
    err = await expect_failure(executor, make_mission(), retryable=False)
    assert "HTTP 404" in err.message and "recon-phase-1" in err.message
    assert "no such mission" not in err.message


@pytest.mark.parametrize(("path", "status"), [("/unavailable", "HTTP 503"), ("/throttled", "HTTP 429")])
async def test_http_503_and_429_are_retried(
    http_agent: AgentServer, http_executors: list[HttpExecutor], path: str, status: str
) -> None:
    executor = HttpExecutor(http_agent.endpoint(path))
    http_executors.append(executor)
    err = await expect_failure(executor, make_mission(), retryable=True)
    assert status in err.message


async def test_http_slow_agent_times_out_retryably(http_agent: AgentServer, http_executors: list[HttpExecutor]) -> None:
    executor = HttpExecutor(http_agent.endpoint("/slow"), timeout_seconds=0.2)
    http_executors.append(executor)
    err = await expect_failure(executor, make_mission(), retryable=True)
    assert "did not answer" in err.message and "0.2 seconds" in err.message
    assert requests_to(http_agent, "/slow"), "the request reached the agent before the timeout"


async def test_http_unreachable_agent_is_retried(http_executors: list[HttpExecutor]) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    executor = HttpExecutor(f"http://127.0.0.1:{port}/missions")
    http_executors.append(executor)
    err = await expect_failure(executor, make_mission(), retryable=True)
    assert "Could not reach agent" in err.message


def test_http_rejects_bad_url_and_hides_credentials() -> None:
    with pytest.raises(ValueError, match="absolute http"):
        HttpExecutor("ftp://example.org/missions")
    executor = HttpExecutor("http://user:secret@127.0.0.1:9000/missions?token=abc")
    assert executor.display_url == "http://127.0.0.1:9000/missions"


# --- real commands ----------------------------------------------------------------------------


def python(code: str, *args: str, **kwargs: Any) -> CommandExecutor:
    return CommandExecutor([sys.executable, "-c", code, *args], **kwargs)


ECHO_STDIN = """
import json, os, sys
json.dump({"got": json.load(sys.stdin), "key": os.environ["LIARA_IDEMPOTENCY_KEY"],
           "mode": os.environ.get("AGENT_MODE")}, sys.stdout)
"""

#: Starts a grandchild, records both pids (atomically), then sleeps: only a kill ends it early.
SLEEPER = """
import os, subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
with open(sys.argv[1] + ".tmp", "w") as file:
    file.write(f"{os.getpid()} {grandchild.pid}")
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(60)
"""


async def test_command_receives_mission_on_stdin_and_returns_json() -> None:
    mission = make_mission(params={"depth": 3})
    output = await run_bounded(python(ECHO_STDIN, env={"AGENT_MODE": "test"}), mission)
    assert output == {"got": mission.payload(), "key": mission.idempotency_key, "mode": "test"}


async def test_command_plain_and_empty_stdout() -> None:
    assert await run_bounded(python("print('swept clean')"), make_mission()) == {"stdout": "swept clean\n"}
    assert await run_bounded(python("pass"), make_mission()) is None


async def test_command_that_ignores_a_large_stdin_still_succeeds() -> None:
    mission = make_mission(params={"padding": "p" * (4 * MAX_OUTPUT_BYTES)})
    assert await run_bounded(python("print('[1, 2]')"), mission) == [1, 2]


async def test_command_non_zero_exit_is_retried_with_last_stderr_line() -> None:
    code = "import sys; sys.stderr.write('warming up\\nreactor offline\\n\\n'); sys.exit(3)"
    err = await expect_failure(python(code), make_mission(), retryable=True)
    assert "exited with code 3" in err.message
    assert err.message.endswith("reactor offline")
    assert "warming up" not in err.message


async def test_command_exit_code_declared_permanent() -> None:
    code = "import sys; sys.exit(2)"
    await expect_failure(python(code, non_retryable_exit_codes=[2]), make_mission(), retryable=False)


async def test_command_output_over_cap_fails_permanently() -> None:
    code = f"import sys; sys.stdout.write('x' * {4 * MAX_OUTPUT_BYTES})"
    err = await expect_failure(python(code), make_mission(), retryable=False)
    assert str(MAX_OUTPUT_BYTES) in err.message


async def test_command_missing_executable_is_permanent(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-agent")
    err = await expect_failure(CommandExecutor([missing]), make_mission(), retryable=False)
    assert missing in err.message and "not found" in err.message
    err = await expect_failure(CommandExecutor(["liara-no-such-agent-on-path"]), make_mission(), retryable=False)
    assert "liara-no-such-agent-on-path" in err.message


async def test_command_missing_working_directory_is_permanent(tmp_path: Path) -> None:
    err = await expect_failure(python("pass", cwd=tmp_path / "gone"), make_mission(), retryable=False)
    assert "Working directory" in err.message


async def test_command_cancellation_kills_the_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    task = asyncio.create_task(python(SLEEPER, str(pid_file)).run(make_mission()))
    await eventually(pid_file.exists, "the command started")
    child, grandchild = map(int, pid_file.read_text().split())
    assert is_running(child) and is_running(grandchild)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, BOUND_SECONDS)

    assert not is_running(child), "the command was reaped before the cancellation propagated"
    await eventually(lambda: not is_running(grandchild), "the grandchild was killed with its group")


async def test_command_timeout_kills_it_and_is_retryable(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    executor = python(SLEEPER, str(pid_file), timeout_seconds=2)
    err = await expect_failure(executor, make_mission(), retryable=True)
    assert "killed after 2 seconds" in err.message
    child, grandchild = map(int, pid_file.read_text().split())
    assert not is_running(child)
    await eventually(lambda: not is_running(grandchild), "the grandchild was killed with its group")


def test_command_rejects_empty_argv() -> None:
    with pytest.raises(ValueError, match="argv"):
        CommandExecutor([])


#: Prints the agent's whole environment as JSON, as an agent running ``env`` would show it.
PRINT_ENVIRONMENT = "import json, os; print(json.dumps(dict(os.environ)))"


async def test_command_gets_only_path_locale_its_env_and_the_key_not_the_worker_secrets(
    worker_secrets: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "UTC")
    mission = make_mission()

    seen = await run_bounded(python(PRINT_ENVIRONMENT, env={"AGENT_MODE": "test", "TZ": "Europe/Paris"}), mission)

    assert isinstance(seen, dict)
    for name, value in worker_secrets.items():
        assert name not in seen, name
        assert not any(value in str(found) for found in seen.values()), name
    assert seen["PATH"] == os.environ["PATH"]
    assert seen["LC_TIME"] == "C.UTF-8"
    assert seen["AGENT_MODE"] == "test"
    assert seen["TZ"] == "Europe/Paris"  # the executor's env wins over the worker's
    assert seen["LIARA_IDEMPOTENCY_KEY"] == mission.idempotency_key
    # Nothing but the allowlist, the executor's env and the key.
    unexpected = {name for name in seen if not name.startswith("LC_")} - INHERITED_ENV
    assert unexpected == {"AGENT_MODE", "LIARA_IDEMPOTENCY_KEY"}, unexpected


@pytest.mark.integration
async def test_a_worker_process_keeps_its_secrets_from_a_command_agent(liara_env, tmp_path: Path) -> None:
    """Through a real worker process: the agent's output (the phase's output, in the result and the
    record) holds none of the worker's secrets. Only those that leave the worker's own connection
    alone are set here: TEMPORAL_API_KEY and TLS keys would change how it connects.
    """
    secrets = {name: WORKER_SECRETS[name] for name in ("OTEL_EXPORTER_OTLP_HEADERS", "LIARA_TEST_UNRELATED_VARIABLE")}
    keys = new_key_line("agent-test")
    config = write_config(
        tmp_path,
        '[agents.actions]\nreveal = "env-printer"\n[executors.env-printer]\ntype = "command"\n'
        f"argv = {json.dumps([sys.executable, '-c', PRINT_ENVIRONMENT])}\n"
        'env = { AGENT_MODE = "worker-test" }\n',
    )
    env = {**liara_env, **secrets, "LIARA_ENCRYPTION_KEYS": keys, "LIARA_CONFIG": str(config)}
    crisis_id = f"crisis-env-{uuid.uuid4().hex[:8]}"
    worker = await asyncio.to_thread(WorkerProcess, "cognition/liara/worker.py", env, tmp_path)
    try:
        assert "reveal -> env-printer" in worker.output
        workflow_id, waited = await trigger_and_wait(env, tmp_path, "target-env", "reveal", "--crisis-id", crisis_id)
    finally:
        assert await asyncio.to_thread(worker.stop) == 0, worker.output
    [phase] = json.loads(waited.stdout)["phases"]
    record = (Path(env["LIARA_CRISIS_DIR"]) / f"{crisis_id}.json").read_text()
    seen = phase["output"]
    assert seen["AGENT_MODE"] == "worker-test" and seen["PATH"] == env["PATH"]
    assert seen["LIARA_IDEMPOTENCY_KEY"] == f"{workflow_id}/{phase['phase_id']}"
    for name, value in {**secrets, "LIARA_ENCRYPTION_KEYS": keys}.items():
        assert name not in seen, name
        assert value not in waited.stdout and value not in record, name
    for name in ("TEMPORAL_ADDRESS", "LIARA_TASK_QUEUE", "LIARA_CRISIS_DIR", "LIARA_CONFIG"):
        assert name not in seen, name


# --- simulate ---------------------------------------------------------------------------------


async def test_simulate_succeeds_by_default() -> None:
    assert await run_bounded(SimulateExecutor(), make_mission()) == {"simulated": True}


async def test_simulate_custom_output_and_duration() -> None:
    mission = make_mission(params={"duration": 0.05, "output": {"intel": ["a", "b"]}, "unrelated": 1})
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await run_bounded(SimulateExecutor(), mission) == {"intel": ["a", "b"]}
    assert loop.time() - started >= 0.04  # a lower bound only: it did wait


async def test_simulate_fail_attempts_then_succeeds() -> None:
    executor = SimulateExecutor()
    for attempt in (1, 2):
        err = await expect_failure(executor, make_mission(attempt=attempt, params={"fail_attempts": 2}), retryable=True)
        assert f"attempt {attempt}" in err.message
    assert await run_bounded(executor, make_mission(attempt=3, params={"fail_attempts": 2})) == {"simulated": True}


async def test_simulate_fail_always_and_permanent() -> None:
    executor = SimulateExecutor()
    await expect_failure(executor, make_mission(attempt=7, params={"fail": "always"}), retryable=True)
    err = await expect_failure(executor, make_mission(params={"fail": "permanent"}), retryable=False)
    assert "permanent" in err.message


@pytest.mark.parametrize("params", [{"hang": True}, {"duration": 3600}])
async def test_simulate_hang_and_long_duration_end_on_cancellation(params: dict[str, JsonValue]) -> None:
    task = asyncio.create_task(SimulateExecutor().run(make_mission(params=params)))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, BOUND_SECONDS)


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"duration": "soon"}, "duration"),
        ({"duration": -1}, "duration"),
        ({"fail_attempts": 1.5}, "fail_attempts"),
        ({"fail_attempts": True}, "fail_attempts"),
        ({"fail": "sometimes"}, "fail"),
        ({"hang": "yes"}, "hang"),
    ],
)
async def test_simulate_bad_params_fail_permanently(params: dict[str, JsonValue], named: str) -> None:
    err = await expect_failure(SimulateExecutor(), make_mission(params=params), retryable=False)
    assert f"'{named}'" in err.message and "recon-phase-1" in err.message


# --- configuration ----------------------------------------------------------------------------

EXAMPLE_CONFIG = """
[agents]
default = "simulate"
[agents.actions]
reconnaissance = "recon-api"
cleanup = "cleanup-script"
[executors.recon-api]
type = "http"
url = "http://127.0.0.1:9000/missions"
timeout_seconds = 30
[executors.cleanup-script]
type = "command"
argv = ["python3", "cleanup.py"]
cwd = "scripts"
timeout_seconds = 120
"""


def write_config(directory: Path, text: str, name: str = "liara.toml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory, where the default ``liara.toml`` is looked for."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def config_error(text: str, tmp_path: Path, environ: dict[str, str] | None = None, **kwargs: Any) -> str:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_executor_registry(path, environ or {}, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_no_file_means_everything_simulated(in_tmp: Path) -> None:
    registry = load_executor_registry(environ={})
    assert registry.name_for("reconnaissance") == "simulate"
    assert isinstance(registry.executor_for("anything"), SimulateExecutor)
    assert registry.describe() == {
        "source": None,
        "default": "simulate",
        "actions": {},
        "environment_overrides": {},
        "executors": {"simulate": "SimulateExecutor"},
    }


def test_file_in_working_directory_maps_actions(in_tmp: Path) -> None:
    write_config(in_tmp, EXAMPLE_CONFIG)
    registry = load_executor_registry(environ={})
    assert registry.name_for("reconnaissance") == "recon-api"
    recon = registry.executor_for("reconnaissance")
    assert isinstance(recon, HttpExecutor) and recon.url == "http://127.0.0.1:9000/missions"
    cleanup = registry.executor_for("cleanup")
    assert isinstance(cleanup, CommandExecutor)
    assert cleanup.argv == ["python3", "cleanup.py"] and cleanup.timeout_seconds == 120
    assert cleanup.cwd == in_tmp / "scripts"  # relative to the file
    assert registry.name_for("secure") == "simulate"
    assert registry.describe()["actions"] == {"reconnaissance": "recon-api", "cleanup": "cleanup-script"}
    assert registry.describe()["source"] == str(in_tmp / "liara.toml")


def test_liara_config_env_names_the_file(in_tmp: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = write_config(tmp_path_factory.mktemp("elsewhere"), EXAMPLE_CONFIG, name="agents.toml")
    registry = load_executor_registry(environ={"LIARA_CONFIG": str(path)})
    assert registry.name_for("cleanup") == "cleanup-script"


def test_liara_config_pointing_nowhere_is_an_error(in_tmp: Path) -> None:
    with pytest.raises(ConfigError, match="LIARA_CONFIG names .*nowhere.toml"):
        load_executor_registry(environ={"LIARA_CONFIG": str(in_tmp / "nowhere.toml")})
    with pytest.raises(ConfigError, match="nowhere.toml is not an existing file"):
        load_executor_registry(in_tmp / "nowhere.toml", {})


def test_environment_overrides(in_tmp: Path) -> None:
    write_config(in_tmp, EXAMPLE_CONFIG)
    environ = {
        "LIARA_DEFAULT_EXECUTOR": "recon-api",
        "LIARA_EXECUTOR_CLEANUP": "simulate",
        "LIARA_EXECUTOR_SECURE_PERIMETER": "cleanup-script",
        "LIARA_EXECUTOR_EXTRACT": "",  # empty counts as unset
    }
    registry = load_executor_registry(environ=environ)
    assert registry.name_for("cleanup") == "simulate"  # beats [agents.actions]
    assert registry.name_for("secure-perimeter") == "cleanup-script"
    assert registry.name_for("extract") == "recon-api"  # the overridden default
    assert registry.name_for("reconnaissance") == "recon-api"
    assert registry.describe()["environment_overrides"] == {
        "LIARA_EXECUTOR_CLEANUP": "simulate",
        "LIARA_EXECUTOR_SECURE_PERIMETER": "cleanup-script",
    }


def test_environment_naming_an_undefined_executor(in_tmp: Path) -> None:
    with pytest.raises(ConfigError, match="LIARA_EXECUTOR_CLEANUP to executor 'ghost'"):
        load_executor_registry(environ={"LIARA_EXECUTOR_CLEANUP": "ghost"})
    with pytest.raises(ConfigError, match="LIARA_DEFAULT_EXECUTOR to executor 'ghost'"):
        load_executor_registry(environ={"LIARA_DEFAULT_EXECUTOR": "ghost"})
    with pytest.raises(ConfigError, match="LIARA_EXECUTOR_bad does not name an action"):
        load_executor_registry(environ={"LIARA_EXECUTOR_bad": "simulate"})


def test_malformed_toml_names_file_and_line(tmp_path: Path) -> None:
    message = config_error("[agents]\ndefault = \n", tmp_path)
    assert "liara.toml is not valid TOML" in message and "line 2" in message


def test_unknown_executor_type(tmp_path: Path) -> None:
    message = config_error('[executors.portal]\ntype = "teleport"\n', tmp_path)
    assert "executors.portal.type" in message and "unknown executor type 'teleport'" in message
    assert str(tmp_path / "liara.toml") in message


def test_action_mapped_to_undefined_executor(tmp_path: Path) -> None:
    message = config_error('[agents.actions]\nreconnaissance = "recon-api"\n', tmp_path)
    assert "agents.actions.reconnaissance" in message and "'recon-api'" in message
    message = config_error('[agents]\ndefault = "recon-api"\n', tmp_path)
    assert "agents.default" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[executors.recon-api]\ntype = "http"\n', "is missing executors.recon-api.url"),
        ('[executors.sweep]\ntype = "command"\n', "is missing executors.sweep.argv"),
        ('[executors.sweep]\ntype = "command"\nargv = []\n', "invalid executors.sweep.argv"),
        ('[executors.sweep]\ntype = "command"\nargv = "sweep.sh"\n', "invalid executors.sweep.argv"),
        ('[executors.r]\ntype = "http"\nurl = "http://h/m"\ntimeout_seconds = "30"\n', "executors.r.timeout_seconds"),
        ('[executors.r]\ntype = "http"\nurl = "ftp://h/m"\n', "invalid executors.r.url"),
        ('[executors.r]\ntype = "http"\nurl = "http://h/m"\nuri = "x"\n', "unknown key executors.r.uri"),
        ('[executors.s]\ntype = "simulate"\nduration = 1\n', "unknown key executors.s.duration"),
        ("[executors.r]\nurl = 'http://h/m'\n", "is missing executors.r.type"),
        ("[agent]\ndefault = 'simulate'\n", "unknown key agent"),
        ("[agents]\ndefault = 3\n", "invalid agents.default"),
        ("[agents.actions]\n'bad action' = 'simulate'\n", "invalid name 'bad action' under agents.actions"),
        ('[executors.simulate]\ntype = "http"\nurl = "http://h/m"\n', "'simulate' is built in"),
    ],
)
def test_invalid_settings_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    message = config_error(text, tmp_path)
    assert expected in message
    assert str(tmp_path / "liara.toml") in message


def test_config_error_is_a_liara_value_error() -> None:
    assert issubclass(ConfigError, LiaraError) and issubclass(ConfigError, ValueError)


# --- plugins (entry points) -------------------------------------------------------------------


class EchoExecutor:
    """A third-party executor as a plugin would ship it."""

    def __init__(self, greeting: str) -> None:
        self.greeting = greeting

    async def run(self, mission: Mission) -> JsonValue:
        return {"greeting": self.greeting, "phase": mission.phase.phase_id}


def make_echo(**settings: Any) -> EchoExecutor:
    return EchoExecutor(**settings)


def not_an_executor(**settings: Any) -> object:
    return object()


def entry_point(name: str, target: str) -> EntryPoint:
    return EntryPoint(name=name, value=f"tests.temporal.agents.test_executors:{target}", group="liara.executors")


PLUGIN_CONFIG = """
[agents]
default = "greeter"
[executors.greeter]
type = "echo"
greeting = "hello"
"""


async def test_entry_point_plugin_builds_executor_with_settings(tmp_path: Path) -> None:
    path = write_config(tmp_path, PLUGIN_CONFIG)
    registry = load_executor_registry(path, {}, entry_points=[entry_point("echo", "make_echo")])
    executor = registry.executor_for("extract")
    assert isinstance(executor, EchoExecutor)
    assert await run_bounded(executor, make_mission()) == {"greeting": "hello", "phase": "recon-phase-1"}
    assert registry.describe()["executors"]["greeter"] == "EchoExecutor"


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([], "unknown executor type 'echo'"),
        ([entry_point("echo", "no_such_factory")], "cannot be loaded"),
        ([entry_point("echo", "not_an_executor")], "no async run(mission) method"),
    ],
)
def test_broken_plugins_are_config_errors(tmp_path: Path, points: list[EntryPoint], expected: str) -> None:
    message = config_error(PLUGIN_CONFIG, tmp_path, entry_points=points)
    assert expected in message and "executors.greeter" in message


def test_plugin_rejecting_its_settings_is_a_config_error(tmp_path: Path) -> None:
    text = PLUGIN_CONFIG.replace('greeting = "hello"', 'greting = "hello"')
    message = config_error(text, tmp_path, entry_points=[entry_point("echo", "make_echo")])
    assert "unusable executors.greeter" in message and "greting" in message


def test_installed_plugins_are_discovered_without_injection(tmp_path: Path) -> None:
    # Nothing in this project registers liara.executors, so discovery finds no "echo".
    message = config_error(PLUGIN_CONFIG, tmp_path)
    assert "unknown executor type 'echo'" in message


# --- the registry end to end ------------------------------------------------------------------


async def test_registry_runs_the_configured_http_agent(tmp_path: Path, http_agent: AgentServer) -> None:
    text = (
        '[agents.actions]\nreconnaissance = "recon-api"\n'
        f'[executors.recon-api]\ntype = "http"\nurl = "{http_agent.endpoint("/ok")}"\n'
    )
    registry = load_executor_registry(write_config(tmp_path, text), {})
    try:
        output = await run_bounded(registry.executor_for("reconnaissance"), make_mission(attempt=2))
        assert output == {"handled": "recon-phase-1", "attempt": 2}
        assert await run_bounded(registry.executor_for("cleanup"), make_mission()) == {"simulated": True}
    finally:
        await registry.aclose()


def test_registry_built_directly_checks_names() -> None:
    executors: dict[str, AgentExecutor] = {"simulate": SimulateExecutor()}
    with pytest.raises(ConfigError, match="'ghost'"):
        ExecutorRegistry(executors, actions={"cleanup": "ghost"})
