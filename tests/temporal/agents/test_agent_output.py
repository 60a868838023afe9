"""A language-model agent's text, live: the answer a model call streams reaches the crisis's event
stream as ``agent_output`` events, batched (at most one a second per model call), read here as
``liara`` reads them (the agency's ``crisis_events``) while the crisis runs; a retried model call
says ``restart``; text that comes after its phase ended is dropped; and the batching itself, by
the clock: a long answer of many chunks costs the history a few signals.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from starlette.responses import Response, StreamingResponse
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from app.temporal.agent_output import OutputBatcher
from app.temporal.models import AGENT_OUTPUT_SIGNAL, AgentOutputBatch
from cognition.liara.agency import LiaraTemporalAgency
from scripts.scripted_model_server import Answer, ScriptedModelServer, ToolCalls, split_deltas
from tests.helpers.model_agents import KEY, agent_config, agent_worker, triage_missions

#: An answer the scripted server streams in its most deltas (16), one every ``SLOW`` seconds.
LONG_ANSWER = (
    "web-1 shows no sign of compromise: its packages match the baseline, no unknown process listens, "
    "the last logins are the on-call engineers', outbound traffic goes to the update mirrors only, "
    "and the file integrity report of this morning is clean. Keep it in the rotation; check it again "
    "after tonight's patch window, and rotate the deploy key that was last used six months ago."
)
SLOW = 0.3


@dataclass
class BrokenOff(Answer):
    """An answer whose stream breaks off after its text, with an error chunk (retried)."""


class BreakingModelServer(ScriptedModelServer):
    """The scripted server, and a step that streams its text then fails mid-answer."""

    def _answer(self, step: Any, recorded: Any, body: dict[str, Any]) -> Response:
        response = super()._answer(step, recorded, body)
        if not isinstance(step, BrokenOff) or not isinstance(response, StreamingResponse):
            return response
        chunks = response.body_iterator

        async def broken() -> AsyncIterator[str]:
            async for chunk in chunks:
                if '"finish_reason": "stop"' in str(chunk):
                    break
                yield str(chunk)
            yield 'data: {"error": {"message": "The engine went away mid-answer"}}\n\n'

        return StreamingResponse(broken(), media_type="text/event-stream")


@pytest.fixture
def slow_model() -> Iterator[ScriptedModelServer]:
    with BreakingModelServer([], api_key=KEY, chunk_delay=SLOW) as server:
        yield server


async def events_while_it_runs(
    dev_server, task_queue: str, missions: list[dict[str, Any]]
) -> tuple[str, list[dict[str, Any]]]:
    """Start a crisis and read its events as they come, to ``finished``: its workflow id and them."""
    async with LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as agency:
        workflow_id = await agency.trigger_crisis_response("web-1", missions, "tester")
        async with asyncio.timeout(60):
            return workflow_id, [event async for event in agency.crisis_events(workflow_id)]


def outputs(events: list[dict[str, Any]], turn: int | None = None) -> list[dict[str, Any]]:
    return [
        event["data"]
        for event in events
        if event["event"] == "agent_output" and (turn is None or event["data"]["turn"] == turn)
    ]


def live_text(events: list[dict[str, Any]], turn: int) -> str:
    """A model call's text as a reader puts it together: deltas appended, dropped on ``restart``."""
    text = ""
    for data in outputs(events, turn):
        text = ("" if data.get("restart") else text) + data["delta"]
    return text


async def signals(client: Client, workflow_id: str) -> list[tuple[str, datetime]]:
    """The signals in the crisis's history: each one's name, and when the server took it."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return [
        (event.workflow_execution_signaled_event_attributes.signal_name, event.event_time.ToDatetime())
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]


@pytest.mark.integration
async def test_a_streamed_answer_reaches_the_event_stream_in_batches_while_the_phase_runs(
    dev_server, task_queue, tmp_path, slow_model, monkeypatch
):
    slow_model.set_script([Answer(LONG_ANSWER, usage=(40, 9))])
    async with agent_worker(dev_server.client, task_queue, tmp_path, agent_config(slow_model.base_url), monkeypatch):
        workflow_id, events = await events_while_it_runs(dev_server, task_queue, triage_missions())

    assert events[-1]["data"]["result"]["success"], events[-1]
    # The deltas join to the answer's text, in order, between the phase's running and completed.
    assert live_text(events, 1) == LONG_ANSWER
    kinds = [(event["event"], event["data"].get("status")) for event in events]
    first = kinds.index(("agent_output", None))
    assert kinds.index(("phase", "running")) < first
    assert max(i for i, kind in enumerate(kinds) if kind[0] == "agent_output") < kinds.index(("phase", "completed"))
    assert all(data["phase_id"] == "triage" and "restart" not in data for data in outputs(events))

    # Batched: the answer streamed 16 deltas over about 5 s, in one event a second or so.
    long = outputs(events, 1)
    assert len(split_deltas(LONG_ANSWER)) == 16
    assert 3 <= len(long) <= 8, [data["delta"] for data in long]

    # One signal per batch: what the history holds of it; a second apart, but the last (the
    # rest, as the answer ends).
    sent = await signals(dev_server.client, workflow_id)
    assert [name for name, _ in sent] == [AGENT_OUTPUT_SIGNAL] * len(long)
    gaps = [(later - earlier).total_seconds() for (_, earlier), (_, later) in zip(sent, sent[1:], strict=False)]
    assert all(gap >= 0.95 for gap in gaps[:-1]), gaps
    assert KEY not in json.dumps(events)


@pytest.mark.integration
async def test_a_retried_model_call_says_restart_and_readers_keep_only_the_answer(
    dev_server, task_queue, tmp_path, slow_model, monkeypatch
):
    slow_model.set_script([BrokenOff(LONG_ANSWER), Answer("web-1 is clean")])
    async with agent_worker(dev_server.client, task_queue, tmp_path, agent_config(slow_model.base_url), monkeypatch):
        started = time.monotonic()
        _, events = await events_while_it_runs(dev_server, task_queue, triage_missions())
        took = time.monotonic() - started

    result = events[-1]["data"]["result"]
    assert result["phases"][0]["output"] == {"answer": "web-1 is clean"}, result
    streamed = outputs(events, 1)
    restarts = [index for index, data in enumerate(streamed) if data.get("restart")]
    assert len(restarts) == 1, streamed
    failed_attempt = "".join(data["delta"] for data in streamed[: restarts[0]])
    assert failed_attempt and LONG_ANSWER.startswith(failed_attempt), streamed  # streamed before it broke off
    assert "web-1 is clean".startswith(streamed[restarts[0]]["delta"])  # the new attempt's first text
    assert live_text(events, 1) == "web-1 is clean"
    assert took < 30


@pytest.mark.integration
async def test_each_model_call_streams_its_own_text_and_text_after_its_phase_ended_is_dropped(
    dev_server, task_queue, tmp_path, model, monkeypatch
):
    model.set_script(
        [ToolCalls([("lookup", {"host": "web-1"})], text="Let me look web-1 up."), Answer("web-1 is clean")]
    )
    missions = [
        *triage_missions(),
        {"phase_id": "contain", "agent_id": "ops-001", "action": "investigate", "target": "web-1"},
    ]
    missions[1]["requires_approval"] = True
    async with (
        agent_worker(dev_server.client, task_queue, tmp_path, agent_config(model.base_url), monkeypatch),
        LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as agency,
    ):
        workflow_id = await agency.trigger_crisis_response("web-1", missions, "tester")
        async with asyncio.timeout(30):
            async for event in agency.crisis_events(workflow_id):
                if event["event"] == "approval_required":
                    break
        late = AgentOutputBatch(phase_id="triage", turn=1, attempt=1, delta="too late")
        await dev_server.client.get_workflow_handle(workflow_id).signal(AGENT_OUTPUT_SIGNAL, late)
        unknown = AgentOutputBatch(phase_id="no-such-phase", turn=1, attempt=1, delta="nobody's")
        await dev_server.client.get_workflow_handle(workflow_id).signal(AGENT_OUTPUT_SIGNAL, unknown)
        await agency.reject_phase(workflow_id, "contain", "duty-lead", "not needed")
        await agency.wait_for_crisis_completion(workflow_id, timeout=30)
        events = [event async for event in agency.crisis_events(workflow_id)]

    # A short answer is one batch (a signal), its model call's turn on it; the late ones are no event.
    assert len(await signals(dev_server.client, workflow_id)) == 4
    assert [(data["turn"], data["delta"]) for data in outputs(events)] == [
        (1, "Let me look web-1 up."),
        (2, "web-1 is clean"),
    ]


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer([], api_key=KEY) as server:
        yield server


# --- the batching, by the clock (no server) ------------------------------------------------------


class Sent:
    """The batches an ``OutputBatcher`` sent, each with when it went."""

    def __init__(self, *, fail: bool = False) -> None:
        self.batches: list[tuple[float, AgentOutputBatch]] = []
        self.fail = fail

    async def __call__(self, batch: AgentOutputBatch) -> None:
        await asyncio.sleep(0.01)  # a server round trip
        if self.fail:
            raise RuntimeError("the crisis's run has ended")
        self.batches.append((time.monotonic(), batch))

    @property
    def text(self) -> str:
        return "".join(batch.delta for _, batch in self.batches)


def batcher(sent: Sent, *, attempt: int = 1, **bounds: Any) -> OutputBatcher:
    return OutputBatcher(sent, phase_id="triage", turn=2, attempt=attempt, **bounds)


async def test_many_chunks_go_in_a_batch_per_interval_and_the_rest_at_the_end() -> None:
    sent = Sent()
    output = batcher(sent, interval=0.2)
    started = time.monotonic()
    pieces = [f"token{number} " for number in range(3000)]
    for number, piece in enumerate(pieces):  # 3,000 chunks over about 0.9 s
        output.add(piece)
        if number % 10 == 9:
            await asyncio.sleep(0.003)
    output.add("")  # chunks without text (tool calls, the finish reason, usage) change nothing
    await output.close()
    took = time.monotonic() - started

    assert sent.text == "".join(pieces)
    times = [when for when, _ in sent.batches]
    assert len(sent.batches) <= took / 0.2 + 2, (len(sent.batches), took)
    assert all(later - earlier >= 0.19 for earlier, later in zip(times, times[1:-1], strict=False)), times
    assert {(batch.phase_id, batch.turn, batch.attempt, batch.cut) for _, batch in sent.batches} == {
        ("triage", 2, 1, False)
    }


async def test_a_short_answer_is_one_batch_and_one_without_text_none() -> None:
    sent = Sent()
    output = batcher(sent)
    for piece in ["web-1", " is", " clean"]:
        output.add(piece)
    await output.close()
    assert [batch.delta for _, batch in sent.batches] == ["web-1 is clean"]

    silent = Sent()
    output = batcher(silent)
    output.add("")
    await output.close()
    assert silent.batches == []


async def test_batches_and_characters_are_bounded_per_attempt() -> None:
    sent = Sent()
    output = batcher(sent, interval=0.02, max_batches=3, max_chars=100)
    for _ in range(10):
        output.add("x" * 9)
        await asyncio.sleep(0.05)  # every piece would be a batch of its own
    output.add("y" * 50)  # past the 100 characters: cut
    output.add("z")
    await output.close()

    assert len(sent.batches) == 3
    assert sent.text == "x" * 90 + "y" * 10
    assert [batch.cut for _, batch in sent.batches] == [False, False, True]


async def test_a_retried_attempt_always_sends_a_batch_so_the_crisis_can_mark_the_restart() -> None:
    sent = Sent()
    output = batcher(sent, attempt=2)
    await output.close()  # an answer without text (tool calls only)
    ((_, batch),) = sent.batches
    assert (batch.attempt, batch.delta) == (2, "")


async def test_a_failed_attempt_sends_nothing_more_and_a_failed_batch_never_fails_the_call() -> None:
    sent = Sent()
    output = batcher(sent, interval=0.05)
    output.add("half an ans")
    await output.abandon()
    await asyncio.sleep(0.1)
    assert sent.batches == []

    lost = Sent(fail=True)
    output = batcher(lost, interval=0.02)
    output.add("web-1")
    await asyncio.sleep(0.1)
    output.add(" is clean")
    await output.close()  # does not raise
    assert lost.batches == []
