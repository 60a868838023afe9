"""Three hosts on this machine (network namespaces): one runs the Temporal server and PostgreSQL,
two run Liara workers, each in its own working directory. 200 crises spread over both worker
hosts; one of them is SIGKILLed mid-run; every crisis completes with exactly one complete record,
in PostgreSQL, or in files on a directory both hosts share. No other record store holds a copy.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.temporal.client import ConnectionSettings, connect
from app.temporal.errors import TemporalUnavailableError
from app.temporal.records import PostgresRecordStore
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
    workdir.mkdir()
    argv = [sys.executable, str(REPO_ROOT / "cognition/liara/worker.py")]
    worker = Process(host, argv, workdir / "worker.log", workdir, env)
    started.append(worker)
    return worker


def phase_lines(worker: Process) -> int:
    return worker.output().count(COMPLETED_LINE)


@pytest.mark.parametrize("store", ["postgresql", "files"])
async def test_crises_spread_over_two_worker_hosts_survive_losing_one(store: str, network: TestNetwork, tmp_path: Path):
    began = time.monotonic()
    server, first, second = network.hosts["server"], network.hosts["worker-1"], network.hosts["worker-2"]
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
        workers = [start_worker(host, env, tmp_path / host.name, started) for host in (first, second)]

        async def both_ready() -> bool:
            for worker in workers:
                assert worker.popen.poll() is None, worker.output()
            return all(WORKER_READY_LINE in worker.output() for worker in workers)

        await assert_eventually(both_ready, timeout=60, interval=0.3)

        run = uuid.uuid4().hex[:8]
        async with LiaraTemporalAgency(temporal_host=settings.address, task_queue=env["LIARA_TASK_QUEUE"]) as agency:
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

        assert [result["success"] for result in results] == [True] * CRISES
        records = await read_records(database, shared, [result["crisis_id"] for result in results])
        for index, result in enumerate(results):
            expected = [mission["phase_id"] for mission in missions(index)]
            assert_completed_record(records[result["crisis_id"]], expected)
            if database is not None:
                where = f"postgresql://{server.address}:{POSTGRES_PORT}/{database.database}"
                assert result["record_path"] == f"{where}#{result['crisis_id']}"
            else:
                assert result["record_path"] == str((shared / f"{result['crisis_id']}.json").resolve())
        # No other store holds a copy: nothing under either worker's own directory, and with files
        # exactly one record file per crisis (no journal left, no temporary file).
        for host in (first, second):
            assert not (tmp_path / host.name / "data").exists()
        if database is None:
            assert sorted(path.name for path in shared.iterdir()) == sorted(f"{r['crisis_id']}.json" for r in results)
        else:
            assert not shared.exists()
            rows = database.sql("SELECT count(*), count(DISTINCT crisis_id) FROM liara_crises", database.database)
            assert rows == f"{CRISES}|{CRISES}"
            duplicates = database.sql(
                "SELECT count(*) FROM (SELECT 1 FROM liara_crisis_phases GROUP BY crisis_id, kind, phase_id "
                "HAVING count(*) > 1) AS twice",
                database.database,
            )
            assert duplicates == "0"
    finally:
        for process in reversed(started):
            process.stop()
        if database is not None:
            await asyncio.to_thread(database.destroy)
    print(f"multi-host {store}: {CRISES} crises in {time.monotonic() - began:.1f} s")


async def read_records(
    database: LocalPostgres | None, shared: Path, crisis_ids: list[str]
) -> dict[str, dict[str, Any]]:
    """Each crisis's record, from PostgreSQL if ``database``, else from the shared directory."""
    if database is None:
        return {crisis_id: json.loads((shared / f"{crisis_id}.json").read_text()) for crisis_id in crisis_ids}
    async with PostgresRecordStore(database.url) as records:
        found = {crisis_id: await records.read(crisis_id) for crisis_id in crisis_ids}
    assert all(found.values()), [crisis_id for crisis_id, record in found.items() if record is None]
    return found  # type: ignore[return-value]
