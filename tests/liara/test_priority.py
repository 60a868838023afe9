"""Crisis priority is Temporal's task priority: an urgent crisis overtakes a backlog of routine
ones on the same task queue (the dev server's matching honours it)."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.helpers.cli import cli
from tests.helpers.processes import WorkerProcess

pytestmark = pytest.mark.integration


async def test_an_urgent_crisis_overtakes_a_backlog(agency, liara_env, tmp_path):
    # The backlog through the Python API (each CLI start is a process of its own), the urgent
    # crisis and its wait through the command line.
    recon = [{"phase_id": "recon-1", "agent_id": "agent-001", "action": "recon", "target": "target-routine"}]
    routine = [await agency.trigger_crisis_response("target-routine", recon, "tester", priority=5) for _ in range(12)]
    started = await cli(liara_env, tmp_path, "trigger", "target-urgent", "recon", "--priority", "1")
    assert started.returncode == 0, started.stderr
    urgent = started.stdout.strip()

    worker = await asyncio.to_thread(WorkerProcess, "cognition/liara/worker.py", liara_env, tmp_path)
    try:
        waited = await cli(liara_env, tmp_path, "wait", urgent, "--json", "--timeout", "120")
        assert waited.returncode == 0, waited.stderr
        results = {urgent: json.loads(waited.stdout)}
        for workflow_id in routine:
            results[workflow_id] = await agency.wait_for_crisis_completion(workflow_id, timeout=120)
    finally:
        await asyncio.to_thread(worker.stop)
    finished = sorted(results, key=lambda workflow_id: results[workflow_id]["completed_at"])
    # A worker takes several tasks at once, so crises taken beside the urgent one may end before
    # it; without priority it would be taken last of all, after the whole backlog.
    assert finished.index(urgent) < len(finished) // 2, "started last, it ran among the first half"
