"""``--max-parallel N`` of ``liara trigger`` and ``liara schedule create``: the phases of a graph
that run at once, checked like every other option. On a real dev server and worker process.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from app.temporal.models import MAX_PARALLEL
from cognition.liara import schedules
from tests.helpers import assert_eventually
from tests.helpers.cli import cli, commands_agency, run_cli

pytestmark = pytest.mark.integration

#: Two phases that could run side by side, each running until the crisis is cancelled.
SIDE_BY_SIDE = [
    {"phase_id": phase_id, "agent_id": "scan-agent", "action": "scan", "target": "target-alpha", "depends_on": []}
    | {"params": {"hang": True}}
    for phase_id in ("scan-1", "scan-2")
]


def nowhere() -> dict[str, str]:
    """This environment with a Temporal address that answers nothing."""
    plain = {key: value for key, value in os.environ.items() if not key.startswith(("TEMPORAL_", "LIARA_"))}
    return {**plain, "TEMPORAL_ADDRESS": "127.0.0.1:1"}


@pytest.fixture
def missions(tmp_path: Path) -> Path:
    path = tmp_path / "side-by-side.json"
    path.write_text(json.dumps(SIDE_BY_SIDE))
    return path


async def runs_one_at_a_time(env: dict[str, str], cwd: Path, workflow_id: str) -> None:
    """Once a phase runs, the other waits: the crisis was started with ``max_parallel`` 1."""

    def statuses(report: dict) -> list[str]:
        return sorted(phase["status"] for phase in report.get("phases", []))

    try:
        async with commands_agency(env) as agency:

            async def one_runs() -> bool:
                return "running" in statuses(await agency.get_crisis_status(workflow_id))

            await assert_eventually(one_runs, timeout=60, interval=0.2)
        assert statuses(json.loads((await cli(env, cwd, "status", workflow_id, "--json")).stdout)) == [
            "pending",
            "running",
        ]
    finally:
        await cli(env, cwd, "cancel", workflow_id)


async def test_trigger_takes_the_phases_that_run_at_once(liara_env, liara_worker, tmp_path, missions):
    started = await cli(
        liara_env, tmp_path, "trigger", "target-alpha", "--missions-file", str(missions), "--max-parallel", "1"
    )
    assert started.returncode == 0, started.stderr
    await runs_one_at_a_time(liara_env, tmp_path, started.stdout.strip())


async def test_a_schedule_starts_its_crises_with_the_phases_that_run_at_once(
    liara_env, liara_worker, tmp_path, missions
):
    name = f"sched-{uuid.uuid4().hex[:8]}"
    created = await cli(
        liara_env,
        tmp_path,
        "schedule",
        "create",
        name,
        "target-alpha",
        "--missions-file",
        str(missions),
        "--cron",
        "0 3 1 1 *",  # once a year: only the trigger below runs it
        "--max-parallel",
        "1",
    )
    assert created.returncode == 0, created.stderr
    try:
        assert (await cli(liara_env, tmp_path, "schedule", "trigger", name)).returncode == 0

        async with commands_agency(liara_env) as agency:

            async def one_crisis_runs() -> bool:
                return len((await schedules.described(agency.client, name))["running"]) == 1

            await assert_eventually(one_crisis_runs, timeout=60, interval=0.2)
        described = await cli(liara_env, tmp_path, "schedule", "describe", name, "--json")
        [workflow_id] = json.loads(described.stdout)["running"]
        await runs_one_at_a_time(liara_env, tmp_path, workflow_id)
    finally:
        await cli(liara_env, tmp_path, "schedule", "delete", name)


@pytest.mark.parametrize("command", [("trigger", "target-alpha", "recon"), ("schedule", "create", "s", "t", "a")])
@pytest.mark.parametrize("value", ["0", str(MAX_PARALLEL + 1), "two"])
def test_a_max_parallel_out_of_range_is_a_usage_error(tmp_path, command, value):
    # Refused before anything connects: the address answers nothing.
    refused = run_cli(nowhere(), tmp_path, *command, "--max-parallel", value)
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    assert "'--max-parallel'" in refused.stderr


@pytest.mark.parametrize("command", [("trigger",), ("schedule", "create")])
def test_help_tells_max_parallel(tmp_path, command):
    shown = run_cli(nowhere(), tmp_path, *command, "--help")
    assert shown.returncode == 0, shown.stderr
    assert "--max-parallel" in shown.stdout
    assert f"N [1<=x<={MAX_PARALLEL}]" in shown.stdout
