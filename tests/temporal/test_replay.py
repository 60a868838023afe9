"""Replay recorded crisis histories against today's workflow code.

A change to ``CrisisResponseWorkflow`` that would break crises already in flight makes these
fail. Until the release that first promises in-flight crises survive an upgrade (CHANGELOG.md),
record them again instead (``python -m tests.temporal.record_histories --force``); from then on,
guard such changes with ``workflow.patched`` and record new histories beside the old ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from app.temporal.workflows import CrisisResponseWorkflow
from tests.temporal.record_histories import scenarios

HISTORIES = sorted((Path(__file__).resolve().parent / "histories").glob("*.json"))


#: Every path through the workflow that a crisis in flight may be on, one recorded history each
#: (see ``record_histories.scenarios``).
REQUIRED = set(scenarios())


def test_histories_are_recorded() -> None:
    assert {path.stem for path in HISTORIES} >= REQUIRED


@pytest.mark.parametrize("path", HISTORIES, ids=[path.stem for path in HISTORIES])
async def test_recorded_history_replays_deterministically(path: Path) -> None:
    history = WorkflowHistory.from_json(f"crisis-workflow-{path.stem}", path.read_text())
    replayer = Replayer(workflows=[CrisisResponseWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name} no longer replays: {result.replay_failure}"
