"""Which write puts each completed phase in the crisis record, and which gives it its final state.

A phase's own activity writes its entry before it reports. The last phase's activity, when every
other phase has completed, writes its entry and the record's final state at once; otherwise the
workflow's final write includes it. Phases added while that last phase runs, or a cancel, hold the
final write for the workflow first (an addition or a cancel that finds the record final already
comes too late); added phases make the last phase an ordinary one again, so the workflow writes its
entry before they run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError

from app.temporal.activities import CrisisActivities
from app.temporal.agents import SIMULATE, ExecutorRegistry, Mission
from app.temporal.errors import CrisisRecordError, innermost_message
from app.temporal.models import CrisisCompletion, MissionPhase, PhaseOutcome, PhaseStatus
from app.temporal.records import FileRecordStore, format_timestamp
from app.temporal.records.document import FINAL_WRITE_HELD
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
    """The real store, remembering the phase entries it upserted (before the final write) and
    who finalized each record: the last phase's activity (``by_activity``) or the workflow. With
    ``pause_when_final``, the activity's final write waits for ``resume`` once it is written (its
    report, and so the workflow, wait with it).
    """

    def __init__(self, directory: Path, *, pause_when_final: bool = False) -> None:
        super().__init__(directory)
        self.upserted: list[str] = []
        self.finalized: list[str] = []
        self.final = asyncio.Event()
        self.resume = asyncio.Event()
        if not pause_when_final:
            self.resume.set()

    async def upsert_phase(self, crisis_id: str, outcome: PhaseOutcome, **options: Any) -> dict[str, Any] | None:
        self.upserted.append(outcome.phase_id)
        return await super().upsert_phase(crisis_id, outcome, **options)

    async def finalize_with_last(self, crisis_id: str, outcome: PhaseOutcome, **options: Any) -> dict[str, Any] | None:
        written = await super().finalize_with_last(crisis_id, outcome, **options)
        if written is not None:
            self.finalized.append("by_activity")
            self.final.set()
            await self.resume.wait()
        return written

    async def finalize(self, completion: CrisisCompletion, **options: Any) -> dict[str, Any] | None:
        self.finalized.append("by_workflow")
        return await super().finalize(completion, **options)


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
    activities = CrisisActivities(store, executors)
    return [*activities.all(), activities.hold_final_write]


@asynccontextmanager
async def holding_its_only_phase(
    env, task_queue: str, tmp_path: Path, crisis_id: str
) -> AsyncIterator[tuple[WorkflowHandle, CountingStore, HeldAgent]]:
    """A crisis of one phase, ``secure-1``, on a worker of its own, once its agent holds it."""
    store = CountingStore(tmp_path / "crises")
    agent = HeldAgent(held="secure-1")
    async with crisis_workflow_worker(env.client, task_queue, activities_of(store, agent)):
        handle = await start(env, task_queue, request(crisis_id, phase("secure-1", "secure", 1)))
        await asyncio.wait_for(agent.running.wait(), 30)
        yield handle, store, agent


async def test_the_last_phases_activity_writes_its_entry_and_the_final_state_at_once(
    time_skipping_env, task_queue, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    store = CountingStore(tmp_path / "crises")
    crisis = crisis_request("crisis-last-phase")
    async with crisis_workflow_worker(time_skipping_env.client, task_queue, activities_of(store)):
        result = await run_crisis(time_skipping_env, task_queue, crisis)

    phase_ids = ["recon-phase-1", "secure-phase-2", "extract-phase-3", "cleanup-phase-4"]
    messages = [r.getMessage() for r in caplog.records]
    for phase_id in phase_ids:  # the log says each completion once, the last one's included
        line = f"Mission phase {phase_id} completed (crisis crisis-last-phase)"
        assert sum(line in message for message in messages) == 1, (phase_id, messages)
    assert "Crisis crisis-last-phase completed: 4 of 4 phases completed, 0 failed" in messages

    assert result.status == "completed"
    assert store.upserted == ["recon-phase-1", "secure-phase-2", "extract-phase-3"], "each by its own activity"
    assert store.finalized == ["by_activity"]
    record = read_record(store, "crisis-last-phase")
    assert [(p["phase_id"], p["status"]) for p in record["phases"]][-1] == ("cleanup-phase-4", "completed")
    assert record["summary"] == {"completed_phases": 4, "failed_phases": 0, "total_phases": 4}
    assert (record["status"], record["cancel_requests"]) == ("completed", [])
    # One clock: the crisis ended when its last agent did, in the record and in the result alike.
    assert result.completed_at == result.phases[-1].timestamp
    assert record["completed_at"] == format_timestamp(result.completed_at)
    assert FINAL_WRITE_HELD not in record


class StoreFailingTheLastWrite(CountingStore):
    """The real store, but the last phase's own final write fails (a full disk at that moment)."""

    async def finalize_with_last(self, crisis_id: str, outcome: PhaseOutcome, **options: Any) -> dict[str, Any] | None:
        raise CrisisRecordError(f"crisis record {self.where(crisis_id)}: no space left on device")


async def test_a_last_phase_whose_final_write_fails_leaves_it_to_the_workflow(
    time_skipping_env, task_queue, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    store = StoreFailingTheLastWrite(tmp_path / "crises")
    crisis = crisis_request("crisis-final-write-failed", ("recon", "secure"))
    async with crisis_workflow_worker(time_skipping_env.client, task_queue, activities_of(store)):
        result = await run_crisis(time_skipping_env, task_queue, crisis)

    assert result.status == "completed"
    assert store.finalized == ["by_workflow"]
    record = read_record(store, "crisis-final-write-failed")
    assert [(p["phase_id"], p["status"]) for p in record["phases"]] == [
        ("recon-phase-1", "completed"),
        ("secure-phase-2", "completed"),
    ]
    assert record["completed_at"] == format_timestamp(result.completed_at)
    assert any("its final state is left to the workflow" in r.getMessage() for r in caplog.records)


async def test_phases_added_after_the_last_phase_has_finalized_the_record_are_refused(
    time_skipping_env, task_queue, tmp_path: Path
):
    store = CountingStore(tmp_path / "crises", pause_when_final=True)
    crisis = request("crisis-added-too-late", phase("secure-1", "secure", 1))
    async with crisis_workflow_worker(time_skipping_env.client, task_queue, activities_of(store)):
        handle = await start(time_skipping_env, task_queue, crisis)
        await asyncio.wait_for(store.final.wait(), 30)  # its report not sent yet: the crisis still runs
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                CrisisResponseWorkflow.add_phases, [MissionPhase.model_validate(phase("extract-2", "extract", 2))]
            )
        store.resume.set()
        result = await handle.result()

    assert "crisis crisis-added-too-late has finished running phases; start a new crisis" in innermost_message(
        refused.value
    )
    assert result.status == "completed"
    assert [p.phase_id for p in result.phases] == ["secure-1"]
    assert store.finalized == ["by_activity"]
    assert [p["phase_id"] for p in read_record(store, "crisis-added-too-late")["phases"]] == ["secure-1"]


async def test_a_cancel_after_the_last_phase_has_finalized_the_record_comes_too_late(
    time_skipping_env, task_queue, tmp_path: Path
):
    store = CountingStore(tmp_path / "crises", pause_when_final=True)
    crisis = request("crisis-cancelled-too-late", phase("secure-1", "secure", 1, compensate_action="undo"))
    async with crisis_workflow_worker(time_skipping_env.client, task_queue, activities_of(store)):
        handle = await start(time_skipping_env, task_queue, crisis)
        await asyncio.wait_for(store.final.wait(), 30)
        await handle.cancel()
        await asyncio.sleep(0.5)  # the workflow holds the final write meanwhile, and finds it too late
        store.resume.set()
        result = await handle.result()

    assert (result.status, result.success) == ("completed", True)
    assert [(note.stage, note.obeyed) for note in result.cancel_requests] == [("finalizing", False)]
    assert result.compensations == []
    assert store.finalized == ["by_activity"]
    record = read_record(store, "crisis-cancelled-too-late")
    assert (record["status"], [p["status"] for p in record["phases"]]) == ("completed", ["completed"])


async def test_a_cancel_while_the_last_phase_runs_holds_the_final_write_for_the_workflow(
    time_skipping_env, task_queue, tmp_path: Path
):
    async with holding_its_only_phase(time_skipping_env, task_queue, tmp_path, "crisis-cancelled-last") as held:
        handle, store, _ = held
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()

    assert store.finalized == ["by_workflow"]
    record = read_record(store, "crisis-cancelled-last")
    assert (record["status"], [p["status"] for p in record["phases"]]) == ("cancelled", ["cancelled"])
    assert FINAL_WRITE_HELD not in record


async def test_a_last_phase_followed_by_added_phases_is_recorded_before_they_run(
    time_skipping_env, task_queue, tmp_path: Path
):
    async with holding_its_only_phase(time_skipping_env, task_queue, tmp_path, "crisis-grown") as held:
        handle, store, agent = held
        await handle.execute_update(
            CrisisResponseWorkflow.add_phases, [MissionPhase.model_validate(phase("extract-2", "extract", 2))]
        )
        agent.release.set()
        result = await handle.result()

    assert result.status == "completed"
    assert store.upserted == ["secure-1"], "secure-1 by the workflow, once extract-2 made it not the last"
    assert store.finalized == ["by_activity"], "extract-2's activity: the hold was secure-1's"
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
