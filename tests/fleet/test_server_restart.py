"""Crises in flight survive a restart of the embedded server: ``scripts/setup_temporal.py stop``
while their phases run, ``start`` again on the same SQLite file and ports, and every crisis
completes, each phase recorded exactly once, with the same worker process reconnecting by itself.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.temporal.records import FileRecordStore
from cognition.liara.actions import missions_from_actions
from cognition.liara.agency import LiaraTemporalAgency
from tests.helpers import assert_eventually
from tests.helpers.processes import WorkerProcess
from tests.helpers.servers import ServerDir, process_runs, stopped_after

pytestmark = pytest.mark.integration

CRISES = 5
ACTIONS = ("recon", "secure", "extract", "cleanup")
PHASE_IDS = ["recon-phase-1", "secure-phase-2", "extract-phase-3", "cleanup-phase-4"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerDir]:
    yield from stopped_after(tmp_path)


async def read_records(directory: Path) -> dict[str, dict]:
    """Every record as it stands (the file store's ``read``: a running crisis's journal applied)."""
    store = FileRecordStore(directory)
    return {path.stem: await store.read(path.stem) for path in directory.glob("*.json")}


async def test_crises_in_flight_complete_after_the_server_restarts(server: ServerDir, tmp_path: Path):
    started = await asyncio.to_thread(server.start)
    assert started.returncode == 0, started.stdout + started.stderr
    records = tmp_path / "crises"
    task_queue = f"liara-test-{uuid.uuid4()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "LIARA_"))}
    env.update(
        TEMPORAL_ADDRESS=server.address,
        LIARA_TASK_QUEUE=task_queue,
        LIARA_CRISIS_DIR=str(records),
        PYTHONUNBUFFERED="1",
    )
    missions = missions_from_actions("target-alpha", ACTIONS)
    for mission in missions:
        mission["params"] = {"duration": 1}

    worker = await asyncio.to_thread(WorkerProcess, "cognition/liara/worker.py", env, tmp_path)
    try:
        async with LiaraTemporalAgency(temporal_host=server.address, task_queue=task_queue) as agency:
            workflow_ids = await asyncio.gather(
                *(
                    agency.trigger_crisis_response(
                        "target-alpha",
                        missions,
                        "tester",
                        # A phase whose completion the stopped server never saw is retried soon after.
                        heartbeat_timeout_seconds=3,
                        retry={"initial_interval_seconds": 0.5, "maximum_interval_seconds": 1},
                    )
                    for _ in range(CRISES)
                )
            )

        async def every_crisis_is_past_its_first_phase() -> bool:
            found = await read_records(records)
            return len(found) == CRISES and all(r["phases"][0]["status"] == "completed" for r in found.values())

        await assert_eventually(every_crisis_is_past_its_first_phase, timeout=60)
        old_pid = server.pid()
        stopped = await asyncio.to_thread(server.stop)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert f"stopped (pid {old_pid})" in stopped.stdout
        assert not process_runs(old_pid)
        # Stopped mid-flight: no crisis could be finalized, as that needs the server.
        in_flight = [r for r in (await read_records(records)).values() if r["status"] == "running"]
        assert in_flight, "every crisis had finished before the server stopped; the test proved nothing"

        restarted = await asyncio.to_thread(server.start)
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        assert "Temporal server started" in restarted.stdout
        assert server.pid() != old_pid
        assert worker.process.poll() is None, "the worker exited while the server was down:\n" + worker.output

        async with LiaraTemporalAgency(temporal_host=server.address, task_queue=task_queue) as agency:
            results = await asyncio.gather(
                *(agency.wait_for_crisis_completion(workflow_id, timeout=180) for workflow_id in workflow_ids)
            )
    finally:
        code = await asyncio.to_thread(worker.stop)
    assert code == 0, worker.output
    assert "Traceback" not in worker.output

    assert len(in_flight) >= 1
    assert [r["success"] for r in results] == [True] * CRISES
    for result in results:
        assert [p["phase_id"] for p in result["phases"]] == PHASE_IDS
        assert {p["status"] for p in result["phases"]} == {"completed"}
    found = await read_records(records)
    assert not list(records.glob("*.journal")), "every journal folded into its record"
    assert sorted(found) == sorted(r["crisis_id"] for r in results)
    for record in found.values():
        assert record["status"] == "completed", record
        assert [p["phase_id"] for p in record["phases"]] == PHASE_IDS, "each phase exactly once"
        assert {p["status"] for p in record["phases"]} == {"completed"}
        assert record["summary"] == {"completed_phases": 4, "failed_phases": 0, "total_phases": 4}
        assert record["completed_at"]
    # The one worker process carried every crisis across the restart, reconnecting by itself.
    assert worker.output.count("Liara worker is running") == 1
