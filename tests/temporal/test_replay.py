"""Replay recorded crisis histories against today's workflow code.

A change to ``CrisisResponseWorkflow`` that would break crises already in flight makes these
fail: guard such changes with ``workflow.patched`` and record new histories
(``python -m tests.temporal.record_histories``) beside the old ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from app.temporal.workflows import CrisisResponseWorkflow
from tests.temporal.record_histories import GENERATION

HISTORIES = sorted((Path(__file__).resolve().parent / "histories").glob("*.json"))


#: Every path through the workflow that a crisis in flight may be on: completed, a phase failed
#: after retries, cancelled mid-phase (with compensation), a phase approved by signal, and an
#: abort with compensations; since the ``records-in-worker`` patch also a record write that moved
#: from the worker to a regular activity, a cancel while the record is being created, and a phase
#: added while the last one runs (whose entry the final write would otherwise include). Each
#: generation of the workflow code keeps its files.
BEFORE_RECORDS_IN_WORKER = {
    "crisis_completed",
    "crisis_phase_failed",
    "crisis_cancelled",
    "crisis_approved",
    "crisis_aborted_compensated",
}
REQUIRED = BEFORE_RECORDS_IN_WORKER | {
    f"{name}{GENERATION}"
    for name in [
        *BEFORE_RECORDS_IN_WORKER,
        "crisis_record_repaired",
        "crisis_cancelled_while_created",
        "crisis_phases_added_to_the_last",
    ]
}


def test_histories_are_recorded() -> None:
    assert {path.stem for path in HISTORIES} >= REQUIRED


@pytest.mark.parametrize("path", HISTORIES, ids=[path.stem for path in HISTORIES])
async def test_recorded_history_replays_deterministically(path: Path) -> None:
    history = WorkflowHistory.from_json(f"crisis-workflow-{path.stem}", path.read_text())
    replayer = Replayer(workflows=[CrisisResponseWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name} no longer replays: {result.replay_failure}"
