"""``liara doctor`` and ``[limits]``: the limits in force are listed, and limits no worker serves
(no worker with them polls the limits task queue, so limited calls would wait) fail with a fix.
Permits in use are shown by tests/fleet/test_limits.py, where crises hold them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.processes import WorkerProcess

pytestmark = pytest.mark.integration

LIMITED = """
[agents.actions]
investigate = "analyst"

[executors.analyst]
type = "llm"
base_url = "http://127.0.0.1:9/v1"
model = "gpt-4.1-mini"
tools = ["lookup"]

[executors.lookup]
type = "command"
argv = ["true"]
description = "Looks a host up"

[limits.models."gpt-4.1-mini"]
concurrent = 4
per_minute = 120

[limits.tools.lookup]
concurrent = 2
"""
LISTED = "model gpt-4.1-mini: 4 at once, 120 a minute; tool lookup: 2 at once"


def doctor(env: dict[str, str], cwd: Path) -> tuple[int, dict[str, dict]]:
    completed = run_cli(env, cwd, "doctor", "--json")
    return completed.returncode, {check["name"]: check for check in json.loads(completed.stdout)}


@pytest.fixture
def limited_env(liara_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    # Not liara.toml in tmp_path, where the liara_worker fixture runs: that worker has no [limits].
    config = tmp_path / "limited.toml"
    config.write_text(LIMITED)
    return {**liara_env, "LIARA_CONFIG": str(config)}


async def test_limits_no_worker_serves_fail_with_a_fix(
    limited_env: dict[str, str], liara_worker: WorkerProcess, task_queue: str, tmp_path: Path
) -> None:
    # The worker runs without the configuration: it polls the crisis task queue, not the limits one.
    code, checks = await asyncio.to_thread(doctor, limited_env, tmp_path)

    assert code == 1
    assert checks["workflow workers"]["ok"] and checks["executor configuration"]["ok"]
    limits = checks["limits"]
    assert not limits["ok"]
    assert limits["detail"] == f"{LISTED}; no worker polls '{task_queue}-limits', so limited calls wait"
    assert "a worker with [limits] polls" in limits["fix"]


async def test_limits_a_worker_serves_are_listed_with_none_in_use(limited_env: dict[str, str], tmp_path: Path) -> None:
    worker = await asyncio.to_thread(WorkerProcess, "cognition/liara/worker.py", limited_env, tmp_path)
    try:
        code, checks = await asyncio.to_thread(doctor, limited_env, tmp_path)
    finally:
        await asyncio.to_thread(worker.stop)

    assert code == 0, checks
    assert checks["limits"] == {
        "name": "limits",
        "ok": True,
        "detail": "model gpt-4.1-mini: 4 at once, 120 a minute (none in use); tool lookup: 2 at once (none in use)",
        "fix": None,
    }
    shown = run_cli(limited_env, tmp_path, "doctor")
    assert any(
        line.strip().startswith("ok") and "limits: model gpt-4.1-mini" in line for line in shown.stdout.splitlines()
    ), shown.stdout


def test_without_a_server_the_limits_of_the_configuration_are_listed(
    limited_env: dict[str, str], tmp_path: Path
) -> None:
    code, checks = doctor({**limited_env, "TEMPORAL_ADDRESS": "127.0.0.1:1"}, tmp_path)
    assert code == 1 and not checks["connection"]["ok"]
    assert checks["limits"]["ok"] and checks["limits"]["detail"] == LISTED
