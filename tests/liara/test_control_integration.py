"""Steering crises end to end: approval, reject, cancel, abort, added phases, watch, list and
setup through the real ``liara`` command line, with real worker processes on the dev server and
real agents (command and HTTP executors) configured in ``liara.toml``.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import signal
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from tests.helpers import REPO_ROOT, assert_eventually
from tests.helpers.cli import assert_one_sentence_error, cli, commands_agency
from tests.helpers.processes import WorkerProcess

pytestmark = pytest.mark.integration

CLI = str(REPO_ROOT / "cognition/liara/cli.py")
WORKFLOW_ID_PREFIX = "crisis-workflow-"
#: Upper bound for conditions that need a few CLI round trips (each starts a Python process).
EVENTUALLY = 60


# --- helpers ----------------------------------------------------------------------------------


def unique(prefix: str) -> str:
    """Targets and names unique per run: the shared server may keep crises of earlier runs."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def phase(phase_id: str, target: str, action: str = "deploy", priority: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "phase_id": phase_id,
        "agent_id": f"{phase_id}-agent",
        "action": action,
        "target": target,
        "priority": priority,
        **extra,
    }


def missions_file(directory: Path, *phases: dict[str, Any]) -> Path:
    path = directory / f"missions-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(list(phases)), encoding="utf-8")
    return path


def crisis_id_of(workflow_id: str) -> str:
    return workflow_id.removeprefix(WORKFLOW_ID_PREFIX)


def read_record(env: dict[str, str], workflow_id: str) -> dict[str, Any]:
    path = Path(env["LIARA_CRISIS_DIR"]) / f"{crisis_id_of(workflow_id)}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def by_phase(phases: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {p["phase_id"]: p for p in phases}


# Waits poll through the Python API (the calls ``liara status`` and ``liara list`` make): a
# command per poll cost a Python process start each time. What a test asserts, it asserts
# through the command line.


async def until_phase(env: dict[str, str], workflow_id: str, phase_id: str, status: str) -> None:
    """Wait until ``phase_id`` of the running crisis has ``status`` (as ``liara status`` tells it)."""
    async with commands_agency(env) as agency:

        async def reached() -> bool:
            report = await agency.get_crisis_status(workflow_id)
            return by_phase(report.get("phases", [])).get(phase_id, {}).get("status") == status

        await assert_eventually(reached, timeout=EVENTUALLY)


async def listed(env: dict[str, str], cwd: Path, *filters: str) -> list[dict[str, Any]]:
    shown = await cli(env, cwd, "list", *filters, "--limit", "1000", "--json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


async def until_listed(
    env: dict[str, str], cwd: Path, filters: dict[str, str], rows_are: Callable[[list[dict[str, Any]]], bool]
) -> None:
    """Wait until the crises that ``filters`` select are ``rows_are`` (visibility is eventually
    consistent), then assert that ``liara list`` with those filters lists just that.
    """
    async with commands_agency(env) as agency:

        async def selected() -> bool:
            return rows_are(await agency.list_crises(**filters, limit=1000))

        await assert_eventually(selected, timeout=EVENTUALLY)
    options = [arg for name, value in filters.items() for arg in (f"--{name.replace('_', '-')}", value)]
    rows = await listed(env, cwd, *options)
    assert rows_are(rows), rows


def process_gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (gone, or a zombie nobody has reaped yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return any(line.split()[:2] == ["State:", "Z"] for line in status.splitlines())


# --- fixtures ---------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def crises(dev_server) -> AsyncIterator[list[str]]:
    """Workflow ids a test starts; those still running afterwards are terminated."""
    started: list[str] = []
    yield started
    for workflow_id in started:
        handle = dev_server.client.get_workflow_handle(workflow_id)
        try:
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("test cleanup")
        except RPCError:
            pass


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], WorkerProcess]]:
    """Start a dedicated worker with the given environment; every one is stopped afterwards."""
    workers: list[WorkerProcess] = []

    def start(env: dict[str, str]) -> WorkerProcess:
        worker = WorkerProcess("cognition/liara/worker.py", env, tmp_path)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        assert worker.stop() == 0, worker.output


async def trigger(env: dict[str, str], cwd: Path, crises: list[str], *args: str) -> str:
    started = await cli(env, cwd, "trigger", *args)
    assert started.returncode == 0, started.stderr
    workflow_id = started.stdout.strip()
    assert workflow_id.startswith(WORKFLOW_ID_PREFIX), started.stdout
    crises.append(workflow_id)
    return workflow_id


# --- approval ---------------------------------------------------------------------------------


async def test_an_approved_phase_runs_and_records_its_approver(liara_env, liara_worker, tmp_path, crises):
    target = unique("target-approve")
    missions = missions_file(
        tmp_path, phase("gate", target, requires_approval=True), phase("after", target, priority=2)
    )
    workflow_id = await trigger(liara_env, tmp_path, crises, target, "--missions-file", str(missions))

    await until_phase(liara_env, workflow_id, "gate", "awaiting_approval")
    shown = await cli(liara_env, tmp_path, "status", workflow_id)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == f"Crisis workflow {workflow_id}: running"
    assert "current phase: gate" in shown.stdout
    gate_row = next(line for line in shown.stdout.splitlines() if line.strip().startswith("gate "))
    assert "awaiting_approval" in gate_row, shown.stdout

    def awaiting_alone(rows: list[dict[str, Any]]) -> bool:
        return [(r["workflow_id"], r["crisis_status"], r["target"]) for r in rows] == [
            (workflow_id, "awaiting_approval", target)
        ]

    await until_listed(liara_env, tmp_path, {"status": "awaiting_approval", "target": target}, awaiting_alone)

    # A phase without an approval gate cannot be approved.
    refused = await cli(liara_env, tmp_path, "approve", workflow_id, "after", "--by", "commander")
    assert refused.returncode == 1
    message = assert_one_sentence_error(refused.stderr)
    assert "'after'" in message and "requires approval" in message

    approved = await cli(liara_env, tmp_path, "approve", workflow_id, "gate", "--by", "commander")
    assert approved.returncode == 0, approved.stderr
    assert f"Phase gate of {workflow_id} approved by commander" in approved.stdout

    waited = await cli(liara_env, tmp_path, "wait", workflow_id, "--json")
    assert waited.returncode == 0, waited.stderr
    result = json.loads(waited.stdout)
    assert result["success"] is True
    assert [(p["phase_id"], p["status"]) for p in result["phases"]] == [("gate", "completed"), ("after", "completed")]
    assert by_phase(result["phases"])["gate"]["approved_by"] == "commander"
    record = read_record(liara_env, workflow_id)
    assert record["status"] == "completed"
    assert by_phase(record["phases"])["gate"]["approved_by"] == "commander"
    assert by_phase(record["phases"])["gate"]["status"] == "completed"
    assert by_phase(record["phases"])["after"]["approved_by"] is None

    # Decided once: the gate can no longer be decided after the crisis ended.
    again = await cli(liara_env, tmp_path, "approve", workflow_id, "gate", "--by", "commander")
    assert again.returncode == 1
    assert "completed" in assert_one_sentence_error(again.stderr)


async def test_a_rejected_phase_fails_without_running_with_the_reason(liara_env, liara_worker, tmp_path, crises):
    target = unique("target-reject")
    missions = missions_file(
        tmp_path, phase("gate", target, requires_approval=True), phase("after", target, priority=2)
    )
    # Started by someone else: whoever starts a crisis may not decide its gates (four eyes).
    started = ("--missions-file", str(missions), "--initiated-by", "incident-lead")
    workflow_id = await trigger(liara_env, tmp_path, crises, target, *started)
    await until_phase(liara_env, workflow_id, "gate", "awaiting_approval")

    rejected = await cli(liara_env, tmp_path, "reject", workflow_id, "gate", "--reason", "too risky")
    assert rejected.returncode == 0, rejected.stderr
    user = getpass.getuser()
    assert f"Phase gate of {workflow_id} rejected by {user}" in rejected.stdout

    waited = await cli(liara_env, tmp_path, "wait", workflow_id, "--json")
    assert waited.returncode == 3, waited.stderr
    result = json.loads(waited.stdout)
    assert result["success"] is False
    assert result["failed_phases"] == ["gate"]
    gate = by_phase(result["phases"])["gate"]
    assert (gate["status"], gate["error"], gate["approved_by"]) == ("failed", f"rejected by {user}: too risky", None)
    # The default failure policy (continue) runs the rest.
    assert by_phase(result["phases"])["after"]["status"] == "completed"
    record = read_record(liara_env, workflow_id)
    assert record["status"] == "failed"
    assert by_phase(record["phases"])["gate"]["error"] == f"rejected by {user}: too risky"
    assert record["summary"] == {"completed_phases": 1, "failed_phases": 1, "total_phases": 2}


# --- cancel and abort -------------------------------------------------------------------------


async def test_cancel_stops_the_running_phase_skips_the_rest_and_compensates(liara_env, liara_worker, tmp_path, crises):
    target = unique("target-cancel")
    missions = missions_file(
        tmp_path,
        phase("prepare", target, priority=1, compensate_action="rollback"),
        phase("stuck", target, priority=2, params={"hang": True}),
        phase("never", target, priority=3),
    )
    workflow_id = await trigger(liara_env, tmp_path, crises, target, "--missions-file", str(missions))
    await until_phase(liara_env, workflow_id, "stuck", "running")

    waiting = asyncio.ensure_future(cli(liara_env, tmp_path, "wait", workflow_id))
    cancelled = await cli(liara_env, tmp_path, "cancel", workflow_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"Cancellation requested for {workflow_id}" in cancelled.stdout

    waited = await waiting
    assert waited.returncode == 3, waited.stdout + waited.stderr
    message = assert_one_sentence_error(waited.stderr)
    assert workflow_id in message and "cancelled" in message

    shown = await cli(liara_env, tmp_path, "status", workflow_id)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == f"Crisis workflow {workflow_id}: cancelled"

    record = read_record(liara_env, workflow_id)
    assert record["status"] == "cancelled"
    assert record["completed_at"] is not None
    assert [(p["phase_id"], p["status"]) for p in record["phases"]] == [
        ("prepare", "completed"),
        ("stuck", "cancelled"),
        ("never", "skipped"),
    ]
    assert [(c["phase_id"], c["action"], c["status"]) for c in record["compensations"]] == [
        ("prepare", "rollback", "completed")
    ]
    assert "Mission phase stuck cancelled; agent stuck-agent stopped" in liara_worker.output

    again = await cli(liara_env, tmp_path, "cancel", workflow_id)
    assert again.returncode == 1
    message = assert_one_sentence_error(again.stderr)
    assert workflow_id in message and "already" in message


async def test_abort_policy_skips_the_rest_and_compensates(liara_env, liara_worker, tmp_path, crises):
    target = unique("target-abort")
    missions = missions_file(
        tmp_path,
        phase("prepare", target, priority=1, compensate_action="rollback"),
        phase("plain", target, priority=2),
        phase("broken", target, priority=3, params={"fail": "permanent"}),
        phase("never", target, priority=4, compensate_action="rollback"),
    )
    workflow_id = await trigger(
        liara_env, tmp_path, crises, target, "--missions-file", str(missions), "--failure-policy", "abort"
    )

    waited = await cli(liara_env, tmp_path, "wait", workflow_id, "--json")

    assert waited.returncode == 3, waited.stderr
    result = json.loads(waited.stdout)
    assert (result["success"], result["status"], result["failed_phases"]) == (False, "failed", ["broken"])
    record = read_record(liara_env, workflow_id)
    assert record["status"] == "failed"
    assert [(p["phase_id"], p["status"]) for p in record["phases"]] == [
        ("prepare", "completed"),
        ("plain", "completed"),
        ("broken", "failed"),
        ("never", "skipped"),
    ]
    assert by_phase(record["phases"])["broken"]["error"] == "Simulated permanent failure of phase broken."
    # Only completed phases that declare a compensation are undone.
    assert [(c["phase_id"], c["action"], c["status"]) for c in record["compensations"]] == [
        ("prepare", "rollback", "completed")
    ]
    assert [(c["phase_id"], c["action"], c["status"]) for c in result["compensations"]] == [
        ("prepare", "rollback", "completed")
    ]


# --- real agents: the command executor --------------------------------------------------------

LONG_OP_SCRIPT = """
import os, pathlib, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
pids = pathlib.Path(sys.argv[1])
partial = pids.with_suffix(".partial")
partial.write_text(f"{os.getpid()} {child.pid}")
partial.replace(pids)
time.sleep(60)
"""

ECHO_SCRIPT = """
import json, os, sys
mission = json.load(sys.stdin)
print(json.dumps({
    "phase": mission["phase_id"],
    "attempt": mission["attempt"],
    "params": mission["params"],
    "key": os.environ["LIARA_IDEMPOTENCY_KEY"],
    "context": mission["context"],
}))
"""


@pytest.fixture
def command_env(liara_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """A worker environment whose liara.toml maps ``long-op`` and ``echo-json`` to commands."""
    pid_file = tmp_path / "long-op.pids"
    config = tmp_path / "liara.toml"
    config.write_text(
        "\n".join(
            [
                "[agents.actions]",
                'long-op = "long-op-script"',
                'echo-json = "echo-script"',
                "[executors.long-op-script]",
                'type = "command"',
                f"argv = {json.dumps([sys.executable, '-c', LONG_OP_SCRIPT, str(pid_file)])}",
                "[executors.echo-script]",
                'type = "command"',
                f"argv = {json.dumps([sys.executable, '-c', ECHO_SCRIPT])}",
                "",
            ]
        ),
        encoding="utf-8",
    )
    return {**liara_env, "LIARA_CONFIG": str(config)}


async def test_cancel_kills_the_command_agent_and_what_it_started(command_env, start_worker, tmp_path, crises):
    worker = await asyncio.to_thread(start_worker, command_env)
    assert "long-op -> long-op-script" in worker.output
    pid_file = tmp_path / "long-op.pids"
    target = unique("target-command")
    workflow_id = await trigger(command_env, tmp_path, crises, target, "long-op")

    async def agent_started() -> bool:
        return pid_file.exists()

    await assert_eventually(agent_started, timeout=EVENTUALLY)
    pids = [int(pid) for pid in pid_file.read_text().split()]
    try:
        assert not any(process_gone(pid) for pid in pids)

        cancelled = await cli(command_env, tmp_path, "cancel", workflow_id)
        assert cancelled.returncode == 0, cancelled.stderr

        async def agents_gone() -> bool:
            return all(process_gone(pid) for pid in pids)

        await assert_eventually(agents_gone, timeout=EVENTUALLY)
        waited = await cli(command_env, tmp_path, "wait", workflow_id)
        assert waited.returncode == 3, waited.stdout + waited.stderr
        assert "cancelled" in assert_one_sentence_error(waited.stderr)
    finally:
        for pid in pids:  # only if the agent outlived its cancel: never leave it behind
            if not process_gone(pid):
                os.kill(pid, signal.SIGKILL)
    record = read_record(command_env, workflow_id)
    assert record["status"] == "cancelled"
    assert [(p["phase_id"], p["status"]) for p in record["phases"]] == [("long-op-phase-1", "cancelled")]


async def test_the_json_a_command_prints_is_the_phase_output(command_env, start_worker, tmp_path, crises):
    await asyncio.to_thread(start_worker, command_env)
    target = unique("target-echo")
    missions = missions_file(tmp_path, phase("echo", target, action="echo-json", params={"colour": "blue"}))
    workflow_id = await trigger(command_env, tmp_path, crises, target, "--missions-file", str(missions))

    waited = await cli(command_env, tmp_path, "wait", workflow_id, "--json")

    assert waited.returncode == 0, waited.stderr
    expected = {
        "phase": "echo",
        "attempt": 1,
        "params": {"colour": "blue"},
        "key": f"{workflow_id}/echo",
        "context": {},
    }
    result = json.loads(waited.stdout)
    assert by_phase(result["phases"])["echo"]["output"] == expected
    assert by_phase(result["phases"])["echo"]["status"] == "completed"
    record = read_record(command_env, workflow_id)
    assert by_phase(record["phases"])["echo"]["output"] == expected


async def test_a_command_agent_receives_a_value_the_phase_before_it_returned_and_its_output_as_context(
    command_env, start_worker, tmp_path, crises
):
    await asyncio.to_thread(start_worker, command_env)
    target = unique("target-chain")
    missions = missions_file(
        tmp_path,
        phase("scan", target, action="echo-json", priority=1, params={"host": "10.0.0.7"}),
        phase("secure", target, action="echo-json", priority=2, params={"on": "${phases.scan.output.params.host}"}),
    )
    workflow_id = await trigger(command_env, tmp_path, crises, target, "--missions-file", str(missions))

    waited = await cli(command_env, tmp_path, "wait", workflow_id, "--json")

    assert waited.returncode == 0, waited.stderr
    phases = by_phase(json.loads(waited.stdout)["phases"])
    secure = phases["secure"]
    assert secure["output"]["params"] == {"on": "10.0.0.7"}, "the agent got the resolved value"
    assert secure["output"]["context"] == {"scan": phases["scan"]["output"]}, "and the output it refers to"
    assert secure["params"] == {"on": "10.0.0.7"}
    assert by_phase(read_record(command_env, workflow_id)["phases"])["secure"]["params"] == {"on": "10.0.0.7"}


# --- real agents: the HTTP executor -----------------------------------------------------------


class FlakyAgent(BaseHTTPRequestHandler):
    """Answers 503 to the first mission it gets and ``{"ok": true}`` afterwards."""

    server: AgentServer

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.requests.append({"key": self.headers.get("Idempotency-Key"), "body": body})
            first = len(self.server.requests) == 1
        status, payload = (503, {"error": "busy"}) if first else (200, {"ok": True})
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class AgentServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FlakyAgent)
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/missions"


@pytest.fixture
def http_agent() -> Iterator[AgentServer]:
    server = AgentServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


async def test_an_http_agent_is_retried_with_the_same_idempotency_key(
    liara_env, http_agent, start_worker, tmp_path, crises
):
    config = tmp_path / "liara.toml"
    config.write_text(
        f'[agents.actions]\nnotify = "notifier"\n[executors.notifier]\ntype = "http"\nurl = "{http_agent.url}"\n',
        encoding="utf-8",
    )
    env = {**liara_env, "LIARA_CONFIG": str(config)}
    await asyncio.to_thread(start_worker, env)
    target = unique("target-http")
    quick_retry = {"maximum_attempts": 3, "initial_interval_seconds": 0.1, "maximum_interval_seconds": 0.1}
    missions = missions_file(tmp_path, phase("notify-1", target, action="notify", retry=quick_retry))
    workflow_id = await trigger(env, tmp_path, crises, target, "--missions-file", str(missions), "--max-attempts", "3")

    waited = await cli(env, tmp_path, "wait", workflow_id, "--json")

    assert waited.returncode == 0, waited.stderr
    notified = by_phase(json.loads(waited.stdout)["phases"])["notify-1"]
    assert (notified["status"], notified["attempts"], notified["output"]) == ("completed", 2, {"ok": True})
    record_phase = by_phase(read_record(env, workflow_id)["phases"])["notify-1"]
    assert (record_phase["status"], record_phase["attempts"], record_phase["output"]) == ("completed", 2, {"ok": True})
    with http_agent.lock:
        requests = list(http_agent.requests)
    assert [r["key"] for r in requests] == [f"{workflow_id}/notify-1"] * 2
    assert [r["body"]["attempt"] for r in requests] == [1, 2]
    assert {r["body"]["phase_id"] for r in requests} == {"notify-1"}
    assert {r["body"]["workflow_id"] for r in requests} == {workflow_id}


# --- add-phases -------------------------------------------------------------------------------


async def test_phases_added_to_a_running_crisis_run_after_the_others(liara_env, liara_worker, tmp_path, crises):
    target = unique("target-add")
    missions = missions_file(tmp_path, phase("gate", target, requires_approval=True))
    workflow_id = await trigger(liara_env, tmp_path, crises, target, "--missions-file", str(missions))
    await until_phase(liara_env, workflow_id, "gate", "awaiting_approval")

    added = await cli(liara_env, tmp_path, "add-phases", workflow_id, "extract", "cleanup")

    assert added.returncode == 0, added.stderr
    assert f"Crisis workflow {workflow_id} now has 3 phases:" in added.stdout
    for phase_id in ("gate", "extract-phase-2", "cleanup-phase-3"):
        assert phase_id in added.stdout, added.stdout
    duplicate = missions_file(tmp_path, phase("gate", target))
    refused = await cli(liara_env, tmp_path, "add-phases", workflow_id, "--missions-file", str(duplicate))
    assert refused.returncode == 1
    assert "'gate'" in assert_one_sentence_error(refused.stderr)

    approved = await cli(liara_env, tmp_path, "approve", workflow_id, "gate", "--by", "commander")
    assert approved.returncode == 0, approved.stderr
    waited = await cli(liara_env, tmp_path, "wait", workflow_id, "--json")
    assert waited.returncode == 0, waited.stderr
    result = json.loads(waited.stdout)
    assert [(p["phase_id"], p["agent_id"], p["status"]) for p in result["phases"]] == [
        ("gate", "gate-agent", "completed"),
        ("extract-phase-2", "extract-agent-001", "completed"),
        ("cleanup-phase-3", "cleanup-agent-001", "completed"),
    ]
    assert result["summary"] == {"completed_phases": 3, "failed_phases": 0, "total_phases": 3}
    assert [p["phase_id"] for p in read_record(liara_env, workflow_id)["phases"]] == [
        "gate",
        "extract-phase-2",
        "cleanup-phase-3",
    ]

    late = await cli(liara_env, tmp_path, "add-phases", workflow_id, "late")
    assert late.returncode == 1
    message = assert_one_sentence_error(late.stderr)
    assert workflow_id in message and "completed" in message


# --- watch ------------------------------------------------------------------------------------


async def test_watch_prints_a_line_per_change_then_the_result(liara_env, liara_worker, tmp_path, crises):
    target = unique("target-watch")
    missions = missions_file(
        tmp_path,
        phase("gate", target, priority=1, requires_approval=True),
        phase("work", target, priority=2, params={"duration": 1}),
    )
    workflow_id = await trigger(liara_env, tmp_path, crises, target, "--missions-file", str(missions))
    await until_phase(liara_env, workflow_id, "gate", "awaiting_approval")

    watcher = await asyncio.create_subprocess_exec(
        sys.executable,
        CLI,
        "watch",
        workflow_id,
        env=liara_env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            assert watcher.stdout is not None
            first = (await watcher.stdout.readline()).decode()
            # The crisis is held at its gate until the watcher has shown where it stands.
            approved = await cli(liara_env, tmp_path, "approve", workflow_id, "gate", "--by", "commander")
            assert approved.returncode == 0, approved.stderr
            rest, errors = await watcher.communicate()
    finally:
        if watcher.returncode is None:
            watcher.kill()
            await watcher.wait()

    output = first + rest.decode()
    assert watcher.returncode == 0, output + errors.decode()
    assert first == "running: gate (0/2 phases done)\n", output
    assert "Traceback" not in errors.decode()
    lines = output.splitlines()
    assert f"Crisis {crisis_id_of(workflow_id)} on {target}: completed" in lines
    assert "Success: True (2 of 2 phases completed, 0 failed)" in lines
    # One line per change: never the same progress line twice in a row.
    progress = [line for line in lines if line.endswith("phases done)")]
    assert all(a != b for a, b in zip(progress, progress[1:], strict=False)), output


# --- list and setup ---------------------------------------------------------------------------


async def test_list_filters_by_target_initiator_and_status(liara_env, liara_worker, tmp_path, crises):
    target_x, target_y = unique("target-x"), unique("target-y")
    alice_x = await trigger(liara_env, tmp_path, crises, target_x, "recon", "--initiated-by", "alice")
    bob_y = await trigger(liara_env, tmp_path, crises, target_y, "recon", "--initiated-by", "bob")
    failing = missions_file(tmp_path, phase("broken", target_x, params={"fail": "permanent"}))
    bob_x_failed = await trigger(
        liara_env, tmp_path, crises, target_x, "--missions-file", str(failing), "--initiated-by", "bob"
    )
    mine = {alice_x, bob_y, bob_x_failed}
    for workflow_id, code in ((alice_x, 0), (bob_y, 0), (bob_x_failed, 3)):
        waited = await cli(liara_env, tmp_path, "wait", workflow_id)
        assert waited.returncode == code, waited.stderr

    async def listing(filters: dict[str, str], expected: set[str], attribute: str, value: str) -> None:
        """Of this test's crises, exactly ``expected`` match, and every row has the attribute."""

        def matches(rows: list[dict[str, Any]]) -> bool:
            return {r["workflow_id"] for r in rows} & mine == expected and all(r[attribute] == value for r in rows)

        await until_listed(liara_env, tmp_path, filters, matches)

    await listing({"target": target_x}, expected={alice_x, bob_x_failed}, attribute="target", value=target_x)
    await listing({"initiated_by": "alice"}, expected={alice_x}, attribute="initiated_by", value="alice")
    await listing({"status": "completed"}, expected={alice_x, bob_y}, attribute="crisis_status", value="completed")
    await listing(
        {"target": target_x, "status": "failed"}, expected={bob_x_failed}, attribute="crisis_status", value="failed"
    )

    def closed_newest_first(rows: list[dict[str, Any]]) -> bool:
        # The workflow's own status (closed) reaches visibility after its last CrisisStatus upsert.
        return [(r["workflow_id"], r["status"], r["crisis_status"], r["initiated_by"]) for r in rows] == [
            (bob_x_failed, "completed", "failed", "bob"),
            (alice_x, "completed", "completed", "alice"),
        ]

    await until_listed(liara_env, tmp_path, {"target": target_x}, closed_newest_first)

    table = await cli(liara_env, tmp_path, "list", "--target", target_y)
    assert table.returncode == 0, table.stderr
    assert bob_y in table.stdout and alice_x not in table.stdout
    none = await cli(liara_env, tmp_path, "list", "--target", unique("nobody"))
    assert (none.returncode, none.stdout.strip()) == (0, "No crises match.")

    refused = await cli(liara_env, tmp_path, "list", "--status", "nonsense")
    assert refused.returncode == 1
    message = assert_one_sentence_error(refused.stderr)
    assert "'nonsense'" in message
    assert "running, awaiting_approval, compensating, completed, failed, cancelled" in message


async def test_setup_on_a_server_that_has_the_search_attributes(liara_env, tmp_path):
    done = await cli(liara_env, tmp_path, "setup")

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "The crisis search attributes are already registered."
