"""Three hosts on this machine (network namespaces): one runs the Temporal server and PostgreSQL,
two run Liara workers, each in its own working directory. 200 crises spread over both worker
hosts; one of them is SIGKILLed mid-run; every crisis completes with exactly one complete record,
in PostgreSQL, or in files on a directory both hosts share. No other record store holds a copy.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.temporal.client import ConnectionSettings, connect
from app.temporal.errors import TemporalUnavailableError
from app.temporal.records import FileRecordStore, PostgresRecordStore, RecordStore
from app.temporal.server import temporal_binary, tuned_arguments
from app.temporal.visibility import server_arguments
from cognition.liara.agency import LiaraTemporalAgency
from scripts.local_postgres import LocalPostgres
from tests.fleet.netns import Host, TestNetwork
from tests.helpers import REPO_ROOT, assert_eventually
from tests.helpers.cli import run_cli
from tests.helpers.processes import WORKER_READY_LINE, subprocess_env
from tests.helpers.records import assert_completed_record

pytestmark = pytest.mark.integration

CRISES = 200
CONCURRENT_STARTS = 50
TEMPORAL_PORT = 7233
POSTGRES_PORT = 5432
COMPLETED_LINE = "deployed successfully for mission phase"


def actions_of(index: int) -> list[str]:
    """Crises alternate between one phase and two; each phase's agent takes a little while, so the
    kill lands on crises mid-phase.
    """
    return ["recon"] if index % 2 == 0 else ["recon", "secure"]


def missions(index: int) -> list[dict[str, Any]]:
    return [
        {
            "phase_id": f"{action}-{n}",
            "agent_id": f"{action}-agent-001",
            "action": action,
            "target": "target-alpha",
            "priority": n,
            "params": {"duration": 0.2},
        }
        for n, action in enumerate(actions_of(index), 1)
    ]


class Process:
    """A program on a test host, its output in a log file."""

    def __init__(self, host: Host, argv: list[str], log: Path, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        with log.open("w") as out:
            self.popen = subprocess.Popen(
                host.command(*argv), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)


@pytest.fixture
def network() -> Iterator[TestNetwork]:
    with TestNetwork("server", "worker-1", "worker-2") as created:
        yield created


async def start_temporal(server: Host, tmp_path: Path, started: list[Process]) -> ConnectionSettings:
    """``temporal server start-dev`` on the server host, with the crisis search attributes.

    It listens on every address of that host's namespace, which are its own address and its
    loopback: the dev server's services call each other on 127.0.0.1, so ``--ip`` with the host's
    address alone leaves them unable to (seen with Temporal CLI 1.9.1).
    """
    argv = [
        temporal_binary(),
        "server", "start-dev",
        "--ip", "0.0.0.0",
        "--port", str(TEMPORAL_PORT),
        "--headless",
        "--db-filename", str(tmp_path / "temporal.db"),
        "--log-level", "warn",
        *server_arguments(),
        *tuned_arguments(),
    ]  # fmt: skip
    process = Process(server, argv, tmp_path / "temporal.log", tmp_path)
    started.append(process)
    settings = ConnectionSettings.resolve(address=f"{server.address}:{TEMPORAL_PORT}")

    async def answers() -> bool:
        assert process.popen.poll() is None, process.output()
        try:
            await connect(settings)
        except TemporalUnavailableError:
            return False
        return True

    await assert_eventually(answers, timeout=60, interval=0.3)
    return settings


def start_worker(host: Host, env: dict[str, str], workdir: Path, started: list[Process]) -> Process:
    argv = [sys.executable, str(REPO_ROOT / "cognition/liara/worker.py")]
    worker = Process(host, argv, workdir / "worker.log", workdir, env)
    started.append(worker)
    return worker


@dataclass
class Fleet:
    """The running hosts: Temporal and (with ``store`` ``postgresql``) PostgreSQL on ``server``,
    a worker on each worker host, in ``workdirs[name]``; records in ``database``, else in ``shared``.
    """

    store: str
    server: Host
    settings: ConnectionSettings
    env: dict[str, str]
    workers: dict[str, Process]
    workdirs: dict[str, Path]
    shared: Path
    database: LocalPostgres | None

    @property
    def task_queue(self) -> str:
        return self.env["LIARA_TASK_QUEUE"]

    def records(self) -> RecordStore:
        """The record store the workers write to, as the test process reaches it."""
        return FileRecordStore(self.shared) if self.database is None else PostgresRecordStore(self.database.url)

    async def read_records(self, crisis_ids: list[str]) -> dict[str, dict[str, Any]]:
        async with self.records() as records:
            found = {crisis_id: await records.read(crisis_id) for crisis_id in crisis_ids}
        assert all(found.values()), [crisis_id for crisis_id, record in found.items() if record is None]
        return found  # type: ignore[return-value]

    async def assert_one_record_each(
        self, results: list[dict[str, Any]], phase_ids: list[list[str]]
    ) -> dict[str, dict[str, Any]]:
        """Every crisis completed with one complete record (``phase_ids[i]``, in order, for
        ``results[i]``), where the store keeps it and nowhere else; the records.
        """
        assert [result["success"] for result in results] == [True] * len(results)
        records = await self.read_records([result["crisis_id"] for result in results])
        for result, expected in zip(results, phase_ids, strict=True):
            assert_completed_record(records[result["crisis_id"]], expected)
            if self.database is not None:
                where = f"postgresql://{self.server.address}:{POSTGRES_PORT}/{self.database.database}"
                assert result["record_path"] == f"{where}#{result['crisis_id']}"
            else:
                assert result["record_path"] == str((self.shared / f"{result['crisis_id']}.json").resolve())
        # No other store holds a copy: nothing under either worker's own directory, and with files
        # exactly one record file per crisis (no journal left, no temporary file).
        for workdir in self.workdirs.values():
            assert not (workdir / "data").exists()
        if self.database is None:
            assert sorted(path.name for path in self.shared.iterdir()) == sorted(f"{id}.json" for id in records)
        else:
            assert not self.shared.exists()
            database = self.database.database
            rows = self.database.sql("SELECT count(*), count(DISTINCT crisis_id) FROM liara_crises", database)
            assert rows == f"{len(records)}|{len(records)}"
            duplicates = self.database.sql(
                "SELECT count(*) FROM (SELECT 1 FROM liara_crisis_phases GROUP BY crisis_id, kind, phase_id "
                "HAVING count(*) > 1) AS twice",
                database,
            )
            assert duplicates == "0"
        return records


@asynccontextmanager
async def fleet(
    store: str, network: TestNetwork, tmp_path: Path, prepare: Callable[[str, Path], None] | None = None
) -> AsyncIterator[Fleet]:
    """Start Temporal (and PostgreSQL) on the server host and a worker on each other host, each in
    a working directory of its own (``prepare(name, workdir)`` first, if given); once every worker
    is ready, the fleet. Whatever happens, every process stops and the database goes.
    """
    server = network.hosts["server"]
    started: list[Process] = []
    database: LocalPostgres | None = None
    shared = tmp_path / "shared-crises"  # one directory both worker hosts see (the files variant)
    try:
        settings = await start_temporal(server, tmp_path, started)
        env = subprocess_env(settings.address, f"liara-hosts-{uuid.uuid4().hex[:8]}", shared)
        if store == "postgresql":
            del env["LIARA_CRISIS_DIR"]  # so each worker would keep files in its own data/crises
            database = LocalPostgres(host=server.address, port=POSTGRES_PORT, netns=server.name)
            await asyncio.to_thread(database.init)
            env["LIARA_RECORD_STORE"] = database.url
            # Set up from the client host, as an operator would: search attributes and record tables.
            prepared = await asyncio.to_thread(run_cli, env, tmp_path, "setup")
            assert prepared.returncode == 0, prepared.stderr
        workers, workdirs = {}, {}
        for name, host in network.hosts.items():
            if host == server:
                continue
            workdirs[name] = tmp_path / name
            workdirs[name].mkdir()
            if prepare is not None:
                prepare(name, workdirs[name])
            workers[name] = start_worker(host, env, workdirs[name], started)

        async def all_ready() -> bool:
            for worker in workers.values():
                assert worker.popen.poll() is None, worker.output()
            return all(WORKER_READY_LINE in worker.output() for worker in workers.values())

        await assert_eventually(all_ready, timeout=60, interval=0.3)
        yield Fleet(store, server, settings, env, workers, workdirs, shared, database)
    finally:
        for process in reversed(started):
            process.stop()
        if database is not None:
            await asyncio.to_thread(database.destroy)


def phase_lines(worker: Process) -> int:
    return worker.output().count(COMPLETED_LINE)


@pytest.mark.parametrize("store", ["postgresql", "files"])
async def test_crises_spread_over_two_worker_hosts_survive_losing_one(store: str, network: TestNetwork, tmp_path: Path):
    began = time.monotonic()
    first = network.hosts["worker-1"]
    async with fleet(store, network, tmp_path) as hosts:
        workers = list(hosts.workers.values())
        run = uuid.uuid4().hex[:8]
        async with LiaraTemporalAgency(temporal_host=hosts.settings.address, task_queue=hosts.task_queue) as agency:
            gate = asyncio.Semaphore(CONCURRENT_STARTS)

            async def trigger(index: int) -> str:
                async with gate:
                    return await agency.trigger_crisis_response(
                        "target-alpha", missions(index), "hosts-test", crisis_id=f"hosts-{run}-{index}"
                    )

            starting = asyncio.gather(*(trigger(index) for index in range(CRISES)))

            async def both_working() -> bool:
                return all(phase_lines(worker) >= 10 for worker in workers)

            await assert_eventually(both_working, timeout=60, interval=0.2)
            first_ran_before = phase_lines(workers[0])
            first.kill_all()  # the first worker host dies: its processes get SIGKILL, mid-phase
            workflow_ids = await starting
            results = await asyncio.gather(
                *(agency.wait_for_crisis_completion(workflow_id, timeout=150) for workflow_id in workflow_ids)
            )
        assert workers[0].popen.wait(timeout=10) == -9
        assert first_ran_before >= 10 and phase_lines(workers[1]) > 0, "both worker hosts ran crises"
        expected = [[mission["phase_id"] for mission in missions(index)] for index in range(CRISES)]
        await hosts.assert_one_record_each(results, expected)
    print(f"multi-host {store}: {CRISES} crises in {time.monotonic() - began:.1f} s")
