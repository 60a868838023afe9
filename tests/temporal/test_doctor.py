"""``liara doctor`` against a real dev server: what it finds and what it tells the user to fix."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from cognition.liara.agency import LiaraTemporalAgency, missions_from_actions
from tests.conftest import WorkerProcess, assert_eventually, run_cli

pytestmark = pytest.mark.integration


def doctor(env: dict[str, str], cwd: Path) -> tuple[int, dict[str, dict]]:
    completed = run_cli(env, cwd, "doctor", "--json")
    return completed.returncode, {check["name"]: check for check in json.loads(completed.stdout)}


async def test_every_check_passes_with_a_worker_on_the_queue(liara_env, liara_worker: WorkerProcess, tmp_path):
    code, checks = await asyncio.to_thread(doctor, liara_env, tmp_path)
    assert code == 0, checks
    assert all(check["ok"] for check in checks.values())
    assert set(checks) >= {
        "connection",
        "search attributes",
        "workflow workers",
        "workflow backlog",
        "activity workers",
        "activity backlog",
        "executor configuration",
        "crisis records",
    }


async def test_a_queued_crisis_without_workers_is_a_backlog_with_a_fix(liara_env, dev_server, task_queue, tmp_path):
    async with LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as agency:
        workflow_id = await agency.trigger_crisis_response(
            target_member="target-alpha", missions=missions_from_actions("target-alpha", ["recon"])
        )
    try:
        found: dict[str, dict] = {}

        async def backlog_seen() -> bool:
            code, checks = await asyncio.to_thread(doctor, liara_env, tmp_path)
            found.update(checks)
            return code == 1 and not checks["workflow backlog"]["ok"]

        await assert_eventually(backlog_seen, timeout=30, interval=0.5)
        assert not found["workflow workers"]["ok"]
        assert "liara/worker.py" in found["workflow workers"]["fix"]
        assert "1 task(s) waiting" in found["workflow backlog"]["detail"]
    finally:
        await dev_server.client.get_workflow_handle(workflow_id).terminate("test over")


def test_an_unreachable_server_fails_the_connection_check_with_the_way_to_start_it(liara_env, tmp_path):
    env = {**liara_env, "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    completed = run_cli(env, tmp_path, "doctor")
    assert completed.returncode == 1
    assert "FAIL connection: Cannot reach the Temporal server at 127.0.0.1:1" in completed.stdout
    assert "python scripts/setup_temporal.py start" in completed.stdout
    assert "Traceback" not in completed.stdout + completed.stderr


def test_a_broken_executor_configuration_is_reported(liara_env, liara_worker: WorkerProcess, tmp_path):
    config = tmp_path / "liara.toml"
    config.write_text("[agents\ndefault = 'simulate'\n")
    code, checks = doctor({**liara_env, "LIARA_CONFIG": str(config)}, tmp_path)
    assert code == 1
    assert not checks["executor configuration"]["ok"]
    assert str(config) in checks["executor configuration"]["detail"]
    assert checks["connection"]["ok"]
