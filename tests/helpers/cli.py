"""The ``liara`` command line as a user runs it, and what its commands print."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

from cognition.liara.agency import LiaraTemporalAgency
from tests.helpers import assert_eventually
from tests.helpers.processes import run_script


def run_cli(env: dict[str, str], cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python cognition/liara/cli.py ARGS`` as a user would run it."""
    return run_script("cognition/liara/cli.py", env, cwd, *args, timeout=timeout)


async def cli(env: dict[str, str], cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``run_cli`` off the event loop, so the session's Temporal client stays responsive."""
    return await asyncio.to_thread(run_cli, env, cwd, *args, timeout=timeout)


async def trigger_and_wait(
    env: dict[str, str], cwd: Path, *trigger_args: str
) -> tuple[str, subprocess.CompletedProcess[str]]:
    """``liara trigger ARGS --json``, then ``liara wait --json`` on it: the workflow id and the
    finished ``wait`` (its standard output is the result as JSON).
    """
    started = await cli(env, cwd, "trigger", *trigger_args, "--json")
    assert started.returncode == 0, started.stderr
    workflow_id = json.loads(started.stdout)["workflow_id"]
    waited = await cli(env, cwd, "wait", workflow_id, "--json")
    assert waited.returncode == 0, waited.stdout + waited.stderr
    return workflow_id, waited


def assert_one_sentence_error(stderr: str) -> str:
    """The CLI's failure contract: one ``Error: ...`` line, no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: "), stderr
    return lines[0]


async def status_of(env: dict[str, str], cwd: Path, workflow_id: str) -> dict[str, Any]:
    return json.loads((await cli(env, cwd, "status", workflow_id, "--json")).stdout)


def commands_agency(env: dict[str, str]) -> LiaraTemporalAgency:
    """The Python API on the server and task queue of the commands' environment ``env``: a test
    polls through it (``liara status --json`` prints what it returns), not a CLI process per poll.
    """
    return LiaraTemporalAgency(temporal_host=env["TEMPORAL_ADDRESS"], task_queue=env["LIARA_TASK_QUEUE"])


async def until_awaiting(env: dict[str, str], workflow_id: str, phase_id: str) -> None:
    """Wait until ``phase_id`` awaits approval, as ``liara status`` tells it (polled through
    ``commands_agency``).
    """
    async with commands_agency(env) as agency:

        async def awaiting() -> bool:
            phases = (await agency.get_crisis_status(workflow_id)).get("phases", [])
            return any(p["phase_id"] == phase_id and p["status"] == "awaiting_approval" for p in phases)

        await assert_eventually(awaiting, timeout=60, interval=0.2)
