"""Crises survive the death of the worker running them."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

from cognition.liara.actions import missions_from_actions
from cognition.liara.agency import LiaraTemporalAgency
from tests.helpers import assert_eventually
from tests.helpers.processes import WorkerProcess

pytestmark = pytest.mark.integration


#: An agent whose first attempt takes long enough to be killed in the middle of it; it writes
#: its pid so the test can clean up after the worker that started it is gone.
SLOW_FIRST_ATTEMPT = """
import json, os, sys, time
mission = json.load(sys.stdin)
open(os.environ["AGENT_PID_FILE"], "a").write(f"{os.getpid()}\\n")
time.sleep(60 if mission["attempt"] == 1 else 0)
print(json.dumps({"attempt": mission["attempt"]}))
"""


def agent_config(tmp_path: Path) -> Path:
    config = tmp_path / "liara.toml"
    config.write_text(
        "[agents.actions]\n"
        'secure = "slow-first-attempt"\n'
        "[executors.slow-first-attempt]\n"
        'type = "command"\n'
        f"argv = {json.dumps([sys.executable, '-c', SLOW_FIRST_ATTEMPT])}\n"
        f"env = {{ AGENT_PID_FILE = {json.dumps(str(tmp_path / 'agent.pids'))} }}\n"
    )
    return config


async def test_a_worker_killed_mid_phase_is_replaced_and_the_crisis_completes_once(liara_env, task_queue, tmp_path):
    missions = missions_from_actions("target-alpha", ["recon", "secure", "extract", "cleanup"])
    env = {**liara_env, "LIARA_CONFIG": str(agent_config(tmp_path))}
    first = WorkerProcess("cognition/liara/worker.py", env, tmp_path)
    second = None
    try:
        async with LiaraTemporalAgency(temporal_host=liara_env["TEMPORAL_ADDRESS"], task_queue=task_queue) as agency:
            workflow_id = await agency.trigger_crisis_response(
                target_member="target-alpha",
                missions=missions,
                heartbeat_timeout_seconds=2,
                retry={"initial_interval_seconds": 0.1, "maximum_interval_seconds": 0.1},
            )

            async def secure_running() -> bool:
                return "AGENT DEPLOYMENT - Phase: secure-phase-2" in first.output

            await assert_eventually(secure_running)
            assert first.stop(signal.SIGKILL) == -signal.SIGKILL
            second = WorkerProcess("cognition/liara/worker.py", env, tmp_path)
            result = await agency.wait_for_crisis_completion(workflow_id, timeout=120)
    finally:
        for worker in (first, second):
            if worker is not None and worker.process.poll() is None:
                worker.stop()
        kill_agents(tmp_path / "agent.pids")

    assert result["success"] is True
    assert [p["status"] for p in result["phases"]] == ["completed"] * 4
    secure = result["phases"][1]
    assert secure["attempts"] == 2, "the phase is retried once, on the new worker"
    assert secure["output"] == {"attempt": 2}
    assert "Retrying mission phase secure-phase-2 (attempt 2)" in second.output
    record = json.loads(Path(result["record_path"]).read_text())
    assert record["status"] == "completed"
    phase_ids = [p["phase_id"] for p in record["phases"]]
    assert phase_ids == ["recon-phase-1", "secure-phase-2", "extract-phase-3", "cleanup-phase-4"]
    assert record["summary"] == {"completed_phases": 4, "failed_phases": 0, "total_phases": 4}


def kill_agents(pid_file: Path) -> None:
    """The agent of the killed worker outlives it (it runs in its own session): end it."""
    if not pid_file.exists():
        return
    for pid in pid_file.read_text().split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
