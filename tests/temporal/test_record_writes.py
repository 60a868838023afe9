"""Which write puts each completed phase in the crisis record.

A phase's own activity writes its entry before it reports, except the last phase's: the final
record write includes it. Phases added while that last phase runs make it an ordinary phase
again, so the workflow writes its entry before the added phases run.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from app.temporal.activities import CrisisActivities
from app.temporal.agents import SIMULATE, ExecutorRegistry, Mission
from app.temporal.models import MissionPhase, PhaseOutcome, PhaseStatus
from app.temporal.records import FileRecordStore, format_timestamp
from app.temporal.workflows import CrisisResponseWorkflow
from tests.helpers import assert_eventually
from tests.helpers.workflows import (
    crisis_request,
    crisis_workflow_worker,
    phase,
    read_record,
    request,
    run_crisis,
    start,
)


class CountingStore(FileRecordStore):
    """The real store, remembering the phase entries it upserted (before the final write)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.upserted: list[str] = []

    async def upsert_phase(self, crisis_id: str, outcome: PhaseOutcome, **options: Any) -> dict[str, Any] | None:
        self.upserted.append(outcome.phase_id)
        return await super().upsert_phase(crisis_id, outcome, **options)


class HeldAgent:
    """Completes every phase at once, except ``held``, which waits for ``release``."""

    def __init__(self, held: str) -> None:
        self.held = held
        self.running = asyncio.Event()
        self.release = asyncio.Event()

    async def run(self, mission: Mission) -> None:
        if mission.phase.phase_id == self.held:
            self.running.set()
            await self.release.wait()


def activities_of(store: FileRecordStore, agent: HeldAgent | None = None) -> list:
    executors = ExecutorRegistry({SIMULATE: agent}) if agent else None
    return CrisisActivities(store, executors).all()


async def test_the_last_phase_is_recorded_by_the_final_write(
    time_skipping_env, task_queue, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    store = CountingStore(tmp_path / "crises")
    crisis = crisis_request("crisis-last-phase")
    async with crisis_workflow_worker(time_skipping_env.client, task_queue, activities_of(store)):
        result = await run_crisis(time_skipping_env, task_queue, crisis)

    phase_ids = ["recon-phase-1", "secure-phase-2", "extract-phase-3", "cleanup-phase-4"]
    completion_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Mission phase ")]
    for phase_id in phase_ids:  # the log says each completion once, the last one's included
        line = f"Mission phase {phase_id} completed (crisis crisis-last-phase)"
        assert sum(line in message for message in completion_lines) == 1, (phase_id, completion_lines)

    assert result.status == "completed"
    assert store.upserted == ["recon-phase-1", "secure-phase-2", "extract-phase-3"], "each by its own activity"
    record = read_record(store, "crisis-last-phase")
    assert [(p["phase_id"], p["status"]) for p in record["phases"]][-1] == ("cleanup-phase-4", "completed")
    assert record["summary"] == {"completed_phases": 4, "failed_phases": 0, "total_phases": 4}


async def test_a_last_phase_followed_by_added_phases_is_recorded_before_they_run(
    time_skipping_env, task_queue, tmp_path: Path
):
    store = CountingStore(tmp_path / "crises")
    agent = HeldAgent(held="secure-1")
    crisis = request("crisis-grown", phase("secure-1", "secure", 1))
    async with crisis_workflow_worker(time_skipping_env.client, task_queue, activities_of(store, agent)):
        handle = await start(time_skipping_env, task_queue, crisis)
        await asyncio.wait_for(agent.running.wait(), 30)
        await handle.execute_update(
            CrisisResponseWorkflow.add_phases, [MissionPhase.model_validate(phase("extract-2", "extract", 2))]
        )
        agent.release.set()
        result = await handle.result()

    assert result.status == "completed"
    assert store.upserted == ["secure-1"], "secure-1 by the workflow, once extract-2 made it not the last"
    assert [(p["phase_id"], p["status"]) for p in read_record(store, "crisis-grown")["phases"]] == [
        ("secure-1", PhaseStatus.COMPLETED.value),
        ("extract-2", PhaseStatus.COMPLETED.value),
    ]


async def test_the_record_shows_a_completed_phase_while_the_next_one_runs(
    time_skipping_env, task_queue, tmp_path: Path
):
    store = CountingStore(tmp_path / "crises")
    agent = HeldAgent(held="extract-phase-3")
    crisis = crisis_request("crisis-progress")
    async with crisis_workflow_worker(time_skipping_env.client, task_queue, activities_of(store, agent)):
        handle = await start(time_skipping_env, task_queue, crisis)
        await asyncio.wait_for(agent.running.wait(), 30)

        async def first_two_completed() -> bool:
            statuses = [p["status"] for p in (await store.read("crisis-progress") or {})["phases"]]
            return statuses == ["completed", "completed", "pending", "pending"]

        await assert_eventually(first_two_completed)
        agent.release.set()
        assert (await handle.result()).status == "completed"


async def test_a_phase_keeps_the_timestamp_it_was_first_recorded_with(time_skipping_env, task_queue, tmp_path: Path):
    """One clock: the entry the phase's activity writes, the result and the final record agree."""
    store = CountingStore(tmp_path / "crises")
    agent = HeldAgent(held="secure-phase-2")
    crisis = crisis_request("crisis-one-clock", ("recon", "secure"))
    async with crisis_workflow_worker(time_skipping_env.client, task_queue, activities_of(store, agent)):
        handle = await start(time_skipping_env, task_queue, crisis)
        await asyncio.wait_for(agent.running.wait(), 30)
        first_written = (await store.read("crisis-one-clock") or {})["phases"][0]
        agent.release.set()
        result = await handle.result()

    assert first_written["status"] == "completed"
    assert first_written["timestamp"] == format_timestamp(result.phases[0].timestamp)
    assert read_record(store, "crisis-one-clock")["phases"][0]["timestamp"] == first_written["timestamp"]
