"""Load: 200 crises started at once, processed by `liara worker --processes 2`; every one completes
with one record file holding each of its phases exactly once.

``LIARA_LOAD_CRISES`` sets how many (default 200: four times the starts in flight at once, and
both processes busy throughout; 500 took three times as long and asserted nothing more).
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections import Counter
from pathlib import Path

import pytest

from cognition.liara.actions import missions_from_actions
from cognition.liara.agency import LiaraTemporalAgency
from tests.helpers import assert_eventually
from tests.helpers.processes import WORKER_READY_LINE, WorkerProcess
from tests.helpers.records import assert_completed_record

pytestmark = pytest.mark.integration

CRISES = int(os.environ.get("LIARA_LOAD_CRISES", "200"))
#: Starts in flight at once; the rest wait their turn.
CONCURRENT_STARTS = 50
PROCESSES = 2


def actions_of(index: int) -> list[str]:
    """Crises alternate between one phase and two."""
    return ["recon"] if index % 2 == 0 else ["recon", "secure"]


async def test_many_crises_at_once_all_complete_with_one_record_each(liara_env, task_queue, tmp_path):
    records = Path(liara_env["LIARA_CRISIS_DIR"])
    worker = await asyncio.to_thread(
        WorkerProcess, "cognition/liara/worker.py", liara_env, tmp_path, "--processes", str(PROCESSES)
    )
    try:

        async def every_process_ready() -> bool:
            return all(f"[worker-{n}] {WORKER_READY_LINE}" in worker.output for n in range(1, PROCESSES + 1))

        await assert_eventually(every_process_ready, timeout=60)
        async with LiaraTemporalAgency(temporal_host=liara_env["TEMPORAL_ADDRESS"], task_queue=task_queue) as agency:
            gate = asyncio.Semaphore(CONCURRENT_STARTS)
            run = uuid.uuid4().hex[:8]

            async def trigger(index: int) -> str:
                async with gate:
                    return await agency.trigger_crisis_response(
                        "target-alpha",
                        missions_from_actions("target-alpha", actions_of(index)),
                        "load-test",
                        crisis_id=f"load-{run}-{index}",
                    )

            workflow_ids = await asyncio.gather(*(trigger(index) for index in range(CRISES)))
            results = await asyncio.gather(
                *(agency.wait_for_crisis_completion(workflow_id, timeout=600) for workflow_id in workflow_ids)
            )
    finally:
        code = await asyncio.to_thread(worker.stop)
    assert code == 0, worker.output[-5000:]

    assert len(set(workflow_ids)) == CRISES
    assert [r["success"] for r in results] == [True] * CRISES
    files = sorted(records.glob("*.json"))
    assert len(files) == CRISES, "exactly one record file per crisis"
    assert not list(records.glob(".*.tmp")), "no temporary file left behind"
    for index, result in enumerate(results):
        expected = [m["phase_id"] for m in missions_from_actions("target-alpha", actions_of(index))]
        assert [p["phase_id"] for p in result["phases"]] == expected
        assert_completed_record(json.loads((records / f"{result['crisis_id']}.json").read_text()), expected)
    # Both processes took part (each logs the phases it ran, prefixed by its name).
    ran = Counter(
        line.split("[", 1)[1].split("]", 1)[0] for line in worker.lines if "deployed successfully for mission" in line
    )
    assert set(ran) == {f"worker-{n}" for n in range(1, PROCESSES + 1)}, ran
    assert sum(ran.values()) >= sum(len(actions_of(index)) for index in range(CRISES))
