"""``scripts/setup_temporal.py start|status|stop``: the embedded server on free ports and its own
data directory, so it never meets the session's dev server (or one a developer runs).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus

from app.temporal.server import EmbeddedServer
from cognition.liara.actions import missions_from_actions
from cognition.liara.agency import LiaraTemporalAgency
from tests.helpers.cli import assert_one_sentence_error
from tests.helpers.processes import WorkerProcess
from tests.helpers.servers import START_TIMEOUT, ServerDir, free_port, port_is_free, process_runs, stopped_after

pytestmark = pytest.mark.integration


@pytest.fixture
def server_dir(tmp_path: Path) -> Iterator[ServerDir]:
    yield from stopped_after(tmp_path)


def test_start_status_stop_lifecycle(server_dir: ServerDir):
    started = server_dir.start()
    assert started.returncode == 0, started.stdout + started.stderr
    assert f"Temporal server started on {server_dir.address}" in started.stdout
    pid = server_dir.pid()
    assert process_runs(pid)

    api = httpx.get(f"http://localhost:{server_dir.ui_port}/api/v1/namespaces/default", timeout=10)
    assert api.status_code == 200
    assert api.json()["namespaceInfo"]["name"] == "default"

    again = server_dir.start()
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already running" in again.stdout and f"pid {pid}" in again.stdout
    assert server_dir.pid() == pid

    status = server_dir.status()
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"running on {server_dir.address} (pid {pid})" in status.stdout

    assert (server_dir.data_dir / "temporal.db").is_file()
    assert (server_dir.data_dir / "temporal.db").stat().st_size > 0

    stopped = server_dir.stop()
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert f"stopped (pid {pid})" in stopped.stdout
    assert not process_runs(pid)
    assert not (server_dir.data_dir / "temporal.pid").exists()

    status = server_dir.status()
    assert status.returncode == 1
    assert "not running" in status.stdout and "python scripts/setup_temporal.py start" in status.stdout

    stopped_again = server_dir.stop()
    assert stopped_again.returncode == 0, stopped_again.stdout + stopped_again.stderr
    assert "not running" in stopped_again.stdout


def test_a_server_on_other_ports_is_started_found_reported_and_stopped(tmp_path: Path):
    port = free_port()
    while not port_is_free(port + 1000):
        port = free_port()
    # The Web UI follows --port (as `temporal` places it) unless --ui-port says otherwise.
    server = ServerDir(tmp_path / "temporal", port, port + 1000)
    try:
        started = server.run("start", "--port", str(port), ports=False, timeout=START_TIMEOUT)
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"Web UI at http://localhost:{port + 1000}" in started.stdout
        assert f"export TEMPORAL_ADDRESS=localhost:{port}" in started.stdout
        pid = server.pid()

        by_port = server.run("status", "--port", str(port), ports=False, data_dir=False)
        assert by_port.returncode == 0, by_port.stdout + by_port.stderr
        assert f"running on localhost:{port} (pid {pid}); Web UI at http://localhost:{port + 1000}" in by_port.stdout
        by_dir = server.run("status", ports=False)
        assert by_dir.returncode == 0 and f"running on localhost:{port} (pid {pid})" in by_dir.stdout

        again = server.run("start", "--port", str(port), ports=False)
        assert again.returncode == 0 and f"already running on localhost:{port} (pid {pid})" in again.stdout
        assert f"export TEMPORAL_ADDRESS=localhost:{port}" in again.stdout
        elsewhere = server.run("start", "--port", str(free_port()), ports=False)
        assert elsewhere.returncode == 1
        assert assert_one_sentence_error(elsewhere.stderr).startswith(
            f"Error: the server started from {server.data_dir} runs on port {port}"
        )

        stopped = server.run("stop", "--port", str(port), ports=False, data_dir=False)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert f"stopped (pid {pid}) on localhost:{port}" in stopped.stdout
        assert not process_runs(pid)
        assert not (server.data_dir / "temporal.pid").exists()
        gone = server.run("status", "--port", str(port), ports=False, data_dir=False)
        assert gone.returncode == 1 and f"not running on localhost:{port}" in gone.stdout
    finally:
        EmbeddedServer(data_dir=server.data_dir).stop()


async def test_a_completed_crisis_survives_a_server_restart(server_dir: ServerDir, tmp_path: Path):
    started = await asyncio.to_thread(server_dir.start)
    assert started.returncode == 0, started.stdout + started.stderr
    task_queue = f"liara-test-{uuid.uuid4()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "LIARA_"))}
    env.update(
        TEMPORAL_ADDRESS=server_dir.address,
        LIARA_TASK_QUEUE=task_queue,
        LIARA_CRISIS_DIR=str(tmp_path / "crises"),
        PYTHONUNBUFFERED="1",
    )

    worker = await asyncio.to_thread(WorkerProcess, "cognition/liara/worker.py", env, tmp_path)
    try:
        async with LiaraTemporalAgency(temporal_host=server_dir.address, task_queue=task_queue) as agency:
            workflow_id = await agency.trigger_crisis_response(
                "target-alpha", missions_from_actions("target-alpha", ["recon", "secure"]), "tester"
            )
            before = await agency.wait_for_crisis_completion(workflow_id, timeout=60)
    finally:
        assert await asyncio.to_thread(worker.stop) == 0, worker.output
    assert before["success"] is True

    old_pid = server_dir.pid()
    stopped = await asyncio.to_thread(server_dir.stop)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert not process_runs(old_pid)
    restarted = await asyncio.to_thread(server_dir.start)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert "Temporal server started" in restarted.stdout
    assert server_dir.pid() != old_pid

    async with LiaraTemporalAgency(temporal_host=server_dir.address, task_queue=task_queue) as agency:
        description = await agency.client.get_workflow_handle(workflow_id).describe()
        assert description.status == WorkflowExecutionStatus.COMPLETED
        assert description.task_queue == task_queue
        status = await agency.get_crisis_status(workflow_id)
    assert status["status"] == "completed"
    assert status["result"] == before
