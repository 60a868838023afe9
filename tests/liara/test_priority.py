"""Crisis priority is Temporal's task priority: an urgent crisis overtakes a backlog of routine
ones on the same task queue (the dev server's matching honours it)."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.helpers.cli import cli
from tests.helpers.processes import WorkerProcess

pytestmark = pytest.mark.integration


async def test_an_urgent_crisis_overtakes_a_backlog(liara_env, tmp_path):
    routine = []
    for _ in range(12):
        started = await cli(liara_env, tmp_path, "trigger", "target-routine", "recon", "--priority", "5")
        assert started.returncode == 0, started.stderr
        routine.append(started.stdout.strip())
    urgent = (await cli(liara_env, tmp_path, "trigger", "target-urgent", "recon", "--priority", "1")).stdout.strip()

    worker = await asyncio.to_thread(WorkerProcess, "cognition/liara/worker.py", liara_env, tmp_path)
    try:
        results = {}
        for workflow_id in [urgent, *routine]:
            waited = await cli(liara_env, tmp_path, "wait", workflow_id, "--json", "--timeout", "120")
            assert waited.returncode == 0, waited.stderr
            results[workflow_id] = json.loads(waited.stdout)
    finally:
        await asyncio.to_thread(worker.stop)
    finished = sorted(results, key=lambda workflow_id: results[workflow_id]["completed_at"])
    # A worker takes several tasks at once, so crises taken beside the urgent one may end before
    # it; without priority it would be taken last of all, after the whole backlog.
    assert finished.index(urgent) < len(finished) // 2, "started last, it ran among the first half"
