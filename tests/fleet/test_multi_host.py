"""Three hosts on this machine (network namespaces): one runs the Temporal server and PostgreSQL,
two run Liara workers, each in its own working directory. Each test runs once with the records in
PostgreSQL, once in files on a directory both worker hosts share.

- 200 crises spread over both worker hosts; one of them is SIGKILLed mid-run; every crisis
  completes with exactly one complete record, and no other record store holds a copy.
- A worker host drops off the network mid-phase, past the heartbeat timeout: its phases are
  retried on the other host, and what it still writes (its agents finish, late) changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
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
from temporalio.api.enums.v1 import PendingActivityState

from app.temporal.client import ConnectionSettings, connect
from app.temporal.errors import TemporalUnavailableError
from app.temporal.models import CrisisStatus
from app.temporal.records import FileRecordStore, PostgresRecordStore, RecordStore
from app.temporal.server import temporal_binary, tuned_arguments
from app.temporal.visibility import CRISIS_STATUS, server_arguments
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


# A worker host that drops off the network.

CUT_CRISES = 24
#: Short, so that Temporal soon gives up on the phases of a host it no longer hears from.
HEARTBEAT_TIMEOUT_SECONDS = 2
#: Retried soon, and often enough: a retry Temporal hands to a poll the cut-off host made before
#: it dropped off is lost with it, and costs an attempt.
CUT_RETRY = {"maximum_attempts": 10, "initial_interval_seconds": 0.5, "maximum_interval_seconds": 1}
HELD_AGENT = Path(__file__).with_name("held_agent.py")


def held_missions(index: int) -> list[dict[str, Any]]:
    """A phase the held agent runs (its first attempt runs until the test releases it), then one
    that awaits approval, so the crisis stays open, its record not final, until the test approves
    it. Phase ids name their crisis, so a worker's log lines do too.
    """
    return [
        {"phase_id": f"sweep-{index}", "agent_id": "sweep-agent-001", "action": "sweep", "target": "target-alpha"},
        {
            "phase_id": f"seal-{index}",
            "agent_id": "seal-agent-001",
            "action": "seal",
            "target": "target-alpha",
            "priority": 2,
            "requires_approval": True,
        },
    ]


def held_agent_config(name: str, workdir: Path) -> None:
    """``sweep`` phases run the held agent on this host, which notes its runs in ``workdir``."""
    argv = [sys.executable, "-I", "-S", str(HELD_AGENT)]  # no site: a quicker start, under load too
    (workdir / "liara.toml").write_text(
        "[agents.actions]\n"
        'sweep = "held"\n'
        "[executors.held]\n"
        'type = "command"\n'
        f"argv = {json.dumps(argv)}\n"
        f"env = {{ FLEET_HOST = {json.dumps(name)}, FLEET_AGENT_DIR = {json.dumps(str(workdir))} }}\n"
    )


def agent_runs(workdir: Path, event: str) -> set[tuple[str, int]]:
    """The held agent's runs on that host that ``started``, or ``completed``: (phase id, attempt)."""
    notes = workdir / "agents.jsonl"
    lines = notes.read_text().splitlines() if notes.exists() else []
    return {(run["phase_id"], run["attempt"]) for run in map(json.loads, lines) if run["event"] == event}


class WorkerLog:
    """What a worker's log says of a phase's activity on that worker."""

    #: What became of an agent's completion: the record's guards dropped it, it was written, or
    #: the record store was out of reach.
    DROPPED, WRITTEN, UNREACHABLE = "dropped", "written", "unreachable"

    def __init__(self, worker: Process) -> None:
        self.text = worker.output()

    def recorded(self, phase: str, attempt: int) -> str | None:
        """What became of the completion of ``phase`` by ``attempt`` (None: nothing yet)."""
        if f"Dropped a late completion of phase {phase} by attempt {attempt}:" in self.text:
            return WorkerLog.DROPPED
        if self.written(phase):  # (of any attempt: the log does not say which)
            return WorkerLog.WRITTEN
        if f"Mission phase {phase} completed but is not recorded yet:" in self.text:
            return WorkerLog.UNREACHABLE
        return None

    def written(self, phase: str) -> bool:
        """Whether this worker wrote a completion of ``phase`` to the record."""
        return f"Mission phase {phase} completed (crisis " in self.text

    def noticed(self, phase: str) -> int:
        """How many times an activity saw the agent of ``phase`` complete (and went on to record it)."""
        return len(re.findall(rf"deployed successfully for mission phase {re.escape(phase)}\b", self.text))

    def cancelled(self, phase: str) -> bool:
        """Whether an activity of ``phase`` was cancelled (Temporal told it that it gave up on it)."""
        return f"Mission phase {phase} cancelled;" in self.text


async def sweep_entries(hosts: Fleet, crisis_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The record entry of each crisis's ``sweep`` phase, by phase id (each record has its two
    phases, once each).
    """
    records = await hosts.read_records(crisis_ids)
    for record in records.values():
        index = record["crisis_id"].rsplit("-", 1)[1]
        assert [entry["phase_id"] for entry in record["phases"]] == [f"sweep-{index}", f"seal-{index}"], record
    return {record["phases"][0]["phase_id"]: record["phases"][0] for record in records.values()}


async def running_attempt(agency: LiaraTemporalAgency, workflow_id: str) -> tuple[int, str] | None:
    """The attempt of the crisis's agent activity that Temporal counts as running now, and the worker it
    gave it to; None if none runs (it is done, or waits to be retried).
    """
    description = await agency.client.get_workflow_handle(workflow_id).describe()
    for pending in description.raw_description.pending_activities:
        if pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED:
            return pending.attempt, pending.last_worker_identity
    return None


async def sweep_activity(agency: LiaraTemporalAgency, workflow_id: str) -> tuple[str, int, str]:
    """From the crisis's history: the worker that started the last attempt of its ``sweep`` phase's
    activity, which attempt that was, and the worker that reported it completed.
    """
    history = await agency.client.get_workflow_handle(workflow_id).fetch_history()
    started = completed = None
    for event in history.events:
        if event.HasField("activity_task_started_event_attributes") and started is None:
            started = event.activity_task_started_event_attributes
        elif event.HasField("activity_task_completed_event_attributes") and completed is None:
            completed = event.activity_task_completed_event_attributes
    assert started is not None and completed is not None, history
    return started.identity, started.attempt, completed.identity


@pytest.mark.parametrize("store", ["postgresql", "files"])
async def test_a_worker_host_cut_off_mid_phase_changes_nothing_when_it_comes_back(
    store: str, network: TestNetwork, tmp_path: Path
):
    """A worker host drops off the network while its agents run. Temporal hears nothing from it
    past the heartbeat timeout, so it retries those phases on the other host, which completes and
    records them. The cut-off host runs on meanwhile: its agents finish, long after Temporal gave
    up on them, and its worker tries to record their completions; then the host comes back. What
    it writes changes nothing: each phase's entry stays the retry's, the attempt Temporal took,
    and every crisis completes with one complete record.

    With PostgreSQL the cut-off worker cannot reach the database either: each late write fails, or
    waits in its connection and reaches the database once the host is back. With files the shared
    directory stays in reach (a directory of this machine: both hosts' view of a file share that is
    still up), so the late writes reach the record while the host is cut off: the record's guards
    must stop them on their own, without a word from Temporal.
    """
    began = time.monotonic()
    cut_off = network.hosts["worker-1"]
    async with fleet(store, network, tmp_path, prepare=held_agent_config) as hosts:
        first, second = hosts.workdirs["worker-1"], hosts.workdirs["worker-2"]
        worker = hosts.workers["worker-1"]
        hostname = socket.gethostname()  # a worker's identity is its pid @ the host name: one kernel here
        host_of = {f"{process.popen.pid}@{hostname}": name for name, process in hosts.workers.items()}
        (second / "release").touch()  # the second host's agents finish at once
        run = uuid.uuid4().hex[:8]
        crisis_ids = [f"cut-{run}-{index}" for index in range(CUT_CRISES)]
        async with LiaraTemporalAgency(temporal_host=hosts.settings.address, task_queue=hosts.task_queue) as agency:
            workflow_ids = await asyncio.gather(
                *(
                    agency.trigger_crisis_response(
                        "target-alpha",
                        held_missions(index),
                        "hosts-test",
                        crisis_id=crisis_id,
                        heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_SECONDS,
                        retry=CUT_RETRY,
                    )
                    for index, crisis_id in enumerate(crisis_ids)
                )
            )

            async def every_sweep_started() -> bool:
                return len(agent_runs(first, "started") | agent_runs(second, "started")) >= CUT_CRISES

            await assert_eventually(every_sweep_started, timeout=60, interval=0.2)
            # The phases Temporal counts as under way on the first host (a first attempt, held
            # there) when it drops off.
            running = await asyncio.gather(*(running_attempt(agency, workflow_id) for workflow_id in workflow_ids))
            stranded = [
                index
                for index, attempt in enumerate(running)
                if attempt is not None and host_of.get(attempt[1]) == "worker-1" and attempt[0] == 1
            ]
            cut_off.disconnect()
            try:
                assert stranded, f"the first host runs phases when it drops off: {running}"
                stranded_crises = [crisis_ids[index] for index in stranded]
                stranded_phases = {f"sweep-{index}" for index in stranded}

                # Temporal gives each of them to the second host once its heartbeat timeout passes;
                # as soon as the retry is recorded there, the first host's agent of that phase, still
                # cut off, finishes too, and its worker goes on to record it: a late completion. (Not
                # much later: the worker's SDK stops an activity itself 5 s past its heartbeat
                # timeout when no heartbeat gets through, and the agent with it.)
                released: set[str] = set()

                async def retried_on_second_host() -> bool:
                    for phase, entry in (await sweep_entries(hosts, stranded_crises)).items():
                        if entry["status"] == "completed" and entry["output"]["host"] == "worker-2":
                            if phase not in released:
                                (first / f"release-{phase}").touch()
                                released.add(phase)
                    return len(released) == len(stranded)

                await assert_eventually(retried_on_second_host, timeout=90, interval=0.1)
                held = {phase for phase, attempt in agent_runs(first, "started") if attempt == 1}
                (first / "release").touch()  # and any other first attempt held there

                def late_completions() -> list[str] | None:
                    """The phases it had under way whose agent completed there and whose activity
                    went on to record it; None while some agent held there is still under way.
                    """
                    log, notes = WorkerLog(worker), agent_runs(first, "completed")
                    late = []
                    for phase in held:
                        completed = sum(1 for noted, _ in notes if noted == phase)
                        if (phase, 1) in notes and log.noticed(phase) >= completed:
                            late.append(phase)
                        elif not log.cancelled(phase):
                            return None
                    # (A first attempt Temporal gave up on before the cut, a worker too busy to
                    # heartbeat in time, is left out: its phase may have run there again since.)
                    return sorted(phase for phase in late if phase in stranded_phases)

                async def held_agents_done() -> bool:
                    return late_completions() is not None

                await assert_eventually(held_agents_done, timeout=30, interval=0.2)
                late = late_completions() or []
                assert late, "the first host's agents completed phases the second host had completed"
            finally:
                cut_off.reconnect()

            # What became of each late completion: with files, the guards met it at once; with
            # PostgreSQL, a write that waited in its connection reaches the database now.
            async def late_writes_ended() -> bool:
                return all(WorkerLog(worker).recorded(phase, 1) for phase in late)

            await assert_eventually(late_writes_ended, timeout=60, interval=0.3)
            outcomes = {phase: WorkerLog(worker).recorded(phase, 1) for phase in late}
            expected_outcomes = {WorkerLog.DROPPED} if store == "files" else {WorkerLog.DROPPED, WorkerLog.UNREACHABLE}
            assert set(outcomes.values()) <= expected_outcomes, outcomes

            # Before the crises end (their final write rewrites each entry from the workflow's
            # view), each entry is the completion of the attempt Temporal took, as its history says.
            entries = await sweep_entries(hosts, crisis_ids)
            for index, workflow_id in enumerate(workflow_ids):
                entry = entries[f"sweep-{index}"]
                started_by, attempt, completed_by = await sweep_activity(agency, workflow_id)
                assert started_by == completed_by and completed_by in host_of, (started_by, completed_by, host_of)
                assert entry["status"] == "completed", entry
                assert entry["output"] == {"host": host_of[completed_by], "attempt": attempt}, (entry, attempt)
                assert entry["attempts"] == attempt, entry
                if index in stranded:  # retried on the other host: the second host's agent ran it
                    assert host_of[completed_by] == "worker-2" and attempt >= 2, (entry, completed_by)
                    assert (entry["phase_id"], attempt) in agent_runs(second, "completed")
            # An agent that ran to completion on both hosts: the entry is the retry's, and its
            # attempts are all the record says of it (at least 2; not that an earlier attempt
            # completed too: the record keeps no trace of a completion it refused).
            assert all(entries[phase]["attempts"] >= 2 for phase in late)
            assert worker.popen.poll() is None, "the worker of the host that came back runs on"

            # Every crisis goes on, to the approval it waits for, then to its end.
            async def all_awaiting_approval() -> bool:
                descriptions = await asyncio.gather(
                    *(agency.client.get_workflow_handle(workflow_id).describe() for workflow_id in workflow_ids)
                )
                statuses = {d.typed_search_attributes.get(CRISIS_STATUS) for d in descriptions}
                return statuses == {CrisisStatus.AWAITING_APPROVAL}

            await assert_eventually(all_awaiting_approval, timeout=60, interval=0.5)
            await asyncio.gather(
                *(
                    agency.approve_phase(workflow_id, f"seal-{index}", "hosts-approver", timeout=30)
                    for index, workflow_id in enumerate(workflow_ids)
                )
            )
            results = await asyncio.gather(
                *(agency.wait_for_crisis_completion(workflow_id, timeout=60) for workflow_id in workflow_ids)
            )
        expected = [[mission["phase_id"] for mission in held_missions(index)] for index in range(CUT_CRISES)]
        records = await hosts.assert_one_record_each(results, expected)
        for crisis_id in crisis_ids:
            final, before = records[crisis_id]["phases"][0], entries[records[crisis_id]["phases"][0]["phase_id"]]
            assert [final[key] for key in ("attempts", "output", "timestamp")] == [
                before[key] for key in ("attempts", "output", "timestamp")
            ]
    # Nothing the first host wrote of a phase it had under way ever counted, then or later (a retry
    # Temporal handed to a poll it made before it dropped off may reach it once it is back).
    log = WorkerLog(worker)
    written = [index for index in stranded if log.written(f"sweep-{index}")]
    assert not written, written
    dropped = list(outcomes.values()).count(WorkerLog.DROPPED)
    print(
        f"cut-off host {store}: {len(stranded)} of {CUT_CRISES} phases under way there retried on the other host; "
        f"{len(late)} late completions, {dropped} dropped by the record's guards; {time.monotonic() - began:.1f} s"
    )
