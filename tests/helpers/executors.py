"""Agent executors: a mission to run, bounded waits, the failure an executor reports, live
processes, and the secrets a worker's environment holds.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import JsonValue
from temporalio.exceptions import ApplicationError

from app.temporal.agents import AGENT_FAILURE_ERROR, AgentExecutor, Mission
from app.temporal.models import MissionPhase

#: Secrets a worker's environment holds, none of which an agent may see.
WORKER_SECRETS = {
    "LIARA_ENCRYPTION_KEYS": "k1:c2VjcmV0LWVuY3J5cHRpb24ta2V5LW5vdC1mb3ItYWdlbnRz",
    "TEMPORAL_API_KEY": "secret-temporal-api-key",
    "TEMPORAL_TLS_CLIENT_KEY_DATA": "-----BEGIN PRIVATE KEY-----secret",
    "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer secret-collector-token",
    "LIARA_TEST_UNRELATED_VARIABLE": "not-for-agents",
}


#: Upper bound of every wait in this module: a hang fails the test instead of stalling the suite.
BOUND_SECONDS = 30


def make_mission(
    *, attempt: int = 1, action: str = "reconnaissance", params: dict[str, JsonValue] | None = None, **kwargs: Any
) -> Mission:
    phase = MissionPhase(
        phase_id="recon-phase-1",
        agent_id="recon-agent-001",
        action=action,
        target="target-alpha",
        priority=2,
        params=params or {},
    )
    return Mission(crisis_id="crisis-1", workflow_id="crisis-workflow-crisis-1", phase=phase, attempt=attempt, **kwargs)


async def run_bounded(executor: AgentExecutor, mission: Mission) -> JsonValue:
    return await asyncio.wait_for(executor.run(mission), BOUND_SECONDS)


async def expect_failure(executor: AgentExecutor, mission: Mission, *, retryable: bool) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await run_bounded(executor, mission)
    err = caught.value
    assert err.type == AGENT_FAILURE_ERROR
    assert err.non_retryable is (not retryable), err.message
    return err


async def eventually(check: Callable[[], bool], what: str) -> None:
    """Poll until ``check`` holds (bounded), instead of sleeping for a guessed time."""
    async with asyncio.timeout(BOUND_SECONDS):
        while not check():
            await asyncio.sleep(0.01)
    assert check(), what


def is_running(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie waiting for its parent counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
