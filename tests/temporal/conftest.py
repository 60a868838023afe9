"""Fixtures of the engine's tests: the record stores (files, and PostgreSQL on empty tables),
and worker scripts a test spawns.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import pytest_asyncio

from app.temporal.records import FileRecordStore, PostgresRecordStore, RecordStore
from scripts.local_postgres import LocalPostgres
from tests.helpers.processes import WorkerProcess


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
