"""What ``liara watch`` and ``liara wait`` show of a crisis's events: where it stands, kept up to
date by its events (``Standing``), without asking Temporal again while it runs; the text its
language-model agents write, as they write it (``agent_output`` events), in lines
``PHASE> text``; and with ``--json`` every event as a JSON line.

A line is printed once it is complete (a terminal's progress bar and piped output both take
whole lines); the rest of a model call's text when its phase ends, another model call of the
phase starts or the crisis finishes. A model call tried again says so: the lines printed of the
failed attempt stay, and its partial line is dropped.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from rich.console import Console

from cognition.liara.commands.output import err_console, say
from cognition.liara.crisis_agency import CrisisAgency
from cognition.liara.errors import CrisisFailedError, CrisisNotFoundError

Event = dict[str, Any]
#: The statuses of a phase under way (``current_phase`` is the first of them).
UNDER_WAY = ("running", "awaiting_approval")
#: The stages before a crisis runs its phases, and the stage the status says when no worker told it.
_NOT_RUNNING_YET = ("validating", "initializing", "unknown")
#: How long, after the crisis's result came, its last events may take to be read.
DRAIN_SECONDS = 5.0


class Standing:
    """Where a running crisis stands, as ``get_crisis_status`` reported it once and its events
    tell since: its stage, current phase, each phase's status and approvals, and what it waits
    for. ``report()`` is a status report of the same shape (for ``blocked_by`` and the progress
    line).

    Events are read from the crisis's first, so they tell the story up to the status first: the
    phases start over as pending, and the story is not shown (``caught_up`` is False) until the
    phases are where the status found them; from there every event is new. A stream whose first
    events were dropped (a long crisis that continued as new) starts from the status as it is.
    """

    def __init__(self, report: dict[str, Any]) -> None:
        self._told = report
        self._told_phases = {phase["phase_id"]: phase["status"] for phase in report.get("phases") or []}
        self._phases: dict[str, dict[str, Any]] = {
            phase["phase_id"]: dict(phase) for phase in report.get("phases") or []
        }
        self._stage: str = report.get("stage") or "unknown"
        self._compensating = report.get("stage") == "compensating"
        #: Whether an event has come (until then the status is all there is to show).
        self.evented = False
        #: Whether the events read so far reach where the status found the crisis.
        self.caught_up = True

    @property
    def knows_phases(self) -> bool:
        """Whether the status told the crisis's phases (a worker answered it)."""
        return "phases" in self._told

    def apply(self, event: Event) -> bool:
        """Take ``event`` into account; whether what is shown changes (never while catching up)."""
        kind, data = event["event"], event["data"]
        if kind == "agent_output":
            return False
        before = self.report() if self.caught_up else None
        if not self.evented:
            self.evented = True
            if event["id"] == 0:  # the whole story: from the start
                for phase in self._phases.values():
                    phase.update(status="pending", approvals=0)
                self.caught_up = self._statuses() == self._told_phases
        phase_id = data.get("phase_id")
        if kind in ("phase", "approval_required", "decision") and phase_id:
            if phase_id not in self._phases:
                self.caught_up = True  # a phase the status did not know: added since, so the story is past it
            phase = self._phases.setdefault(phase_id, {"phase_id": phase_id, "status": "pending"})
            if kind == "phase":
                phase["status"] = data.get("status", phase["status"])
            else:
                if kind == "approval_required":
                    phase["status"] = "awaiting_approval"
                phase.update(approvals=data.get("approvals"), approvals_required=data.get("approvals_required"))
            if self._stage in _NOT_RUNNING_YET:
                self._stage = "running"
        elif kind == "compensation":
            self._compensating = True
            self._stage = "compensating"
        if not self.caught_up:
            self.caught_up = self._statuses() == self._told_phases
            return self.caught_up
        return self.report() != before

    def _statuses(self) -> dict[str, str]:
        return {phase_id: phase["status"] for phase_id, phase in self._phases.items()}

    def report(self) -> dict[str, Any]:
        """The status report as the events keep it: the status's until an event comes."""
        if not self.evented:
            return self._told
        phases = [dict(phase) for phase in self._phases.values()]  # a copy: later events change them
        statuses = [phase["status"] for phase in phases]
        current = next((phase["phase_id"] for phase in phases if phase["status"] in UNDER_WAY), None)
        return {
            "workflow_id": self._told["workflow_id"],
            "status": "running",
            "stage": self._stage,
            "current_phase": None if self._compensating else current,
            "phases": phases,
            "summary": {
                "completed_phases": statuses.count("completed"),
                "failed_phases": statuses.count("failed"),
                "total_phases": len(phases),
            },
        }


class LiveText:
    """The lines of agent text that events complete, phase by phase."""

    def __init__(self) -> None:
        #: The partial last line of the model call each phase (or compensation) streams now, by
        #: (phase id, compensation), with that call's turn.
        self._partial: dict[tuple[str, bool], tuple[int, str]] = {}

    def lines(self, event: Event) -> list[str]:
        data = event["data"]
        kind = event["event"]
        if kind in ("phase", "compensation") and data.get("status") not in ("running", "awaiting_approval"):
            return self._rest((data.get("phase_id", ""), kind == "compensation"))
        if kind == "finished":
            return [line for key in list(self._partial) for line in self._rest(key)]
        if kind != "agent_output":
            return []
        key = (data.get("phase_id", ""), bool(data.get("compensation")))
        turn = data.get("turn", 0)
        shown: list[str] = []
        known_turn, partial = self._partial.get(key, (turn, ""))
        if known_turn != turn:
            shown += self._rest(key)
            partial = ""
        if data.get("restart"):
            partial = ""
            shown.append(self._line(key, f"(model call {turn} was tried again: its text starts over)"))
        *complete, partial = (partial + data.get("delta", "")).split("\n")
        shown += [self._line(key, line) for line in complete]
        self._partial[key] = (turn, partial)
        if data.get("cut"):
            shown += self._rest(key)
            shown.append(self._line(key, "… (the rest of this answer is in the phase's output)"))
        return shown

    def _rest(self, key: tuple[str, bool]) -> list[str]:
        _, partial = self._partial.pop(key, (0, ""))
        return [self._line(key, partial)] if partial else []

    @staticmethod
    def _line(key: tuple[str, bool], text: str) -> str:
        phase_id, compensation = key
        label = f"{phase_id} (compensation)" if compensation else phase_id
        return f"{label}> {text}".rstrip()


async def print_agent_text(agency: CrisisAgency, workflow_id: str, console: Console) -> None:
    """Print the crisis's agent text, until its ``finished`` event. A stream that fails is one
    line on standard error: the rest of ``watch`` goes on.
    """
    text = LiveText()
    try:
        async for event in agency.crisis_events(workflow_id):
            for line in text.lines(event):
                say(line, console)
    except CrisisNotFoundError:
        return  # what watch waits for says so, once
    except Exception as err:
        say(f"The agents' text is not shown any more: {err}", err_console)


def print_event_line(event: Event) -> None:
    """An event as a JSON line (``{"id", "event", "data"}``)."""
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


OnEvents = Callable[[list[Event]], Awaitable[None]]


async def follow_to_the_end(
    agency: CrisisAgency, workflow_id: str, timeout: float | None, on_events: OnEvents, *, fallback: bool = True
) -> dict[str, Any]:
    """Follow the crisis's events, from its first, handing them to ``on_events`` in batches (the
    events read at once), until its ``finished`` event; the result that event carries
    (``CrisisFailedError`` for a crisis that ended without one). Nothing else is asked of the
    server while the crisis runs.

    With a ``timeout``, the agency's own wait runs beside the events: when the time runs out, its
    error says what the crisis waits for. A stream that fails, or ends without ``finished`` (a
    terminated workflow), leaves the result to the agency's wait; with ``fallback``, after one
    line on standard error, else the stream's error is raised.
    """
    waiting = (
        None if timeout is None else asyncio.ensure_future(agency.wait_for_crisis_completion(workflow_id, timeout))
    )
    reading = asyncio.ensure_future(_read_to_finished(agency, workflow_id, on_events))
    try:
        await asyncio.wait({reading} if waiting is None else {reading, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if waiting is not None and waiting.done() and not reading.done():
            result = waiting.result()  # raises the timeout, or how the crisis ended
            await finish_reading(reading)  # the events left (their stream ends with finished)
            return result
        try:
            finished = reading.result()
        except Exception as err:
            if not fallback:
                raise
            say(f"The crisis's events are not shown any more: {err}", err_console)
            finished = None
        if finished is not None:
            return _result_of(workflow_id, finished)
        return await (agency.wait_for_crisis_completion(workflow_id, None) if waiting is None else waiting)
    finally:
        for task in (reading, waiting):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(task for task in (reading, waiting) if task is not None), return_exceptions=True)


async def _read_to_finished(agency: CrisisAgency, workflow_id: str, on_events: OnEvents) -> Event | None:
    """Hand the crisis's events to ``on_events`` in batches; the data of its ``finished`` event,
    or None if the stream ended without one.
    """
    async for batch in _batches(agency.crisis_events(workflow_id)):
        await on_events(batch)
        if batch[-1]["event"] == "finished":
            return batch[-1]["data"]
    return None


async def _batches(events: AsyncGenerator[Event, None]) -> AsyncGenerator[list[Event], None]:
    """``events`` in batches: every event that came while the last batch was handled (a change
    and the next that one workflow task made are shown as one).
    """
    queue: asyncio.Queue[Event | Exception | None] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for event in events:
                queue.put_nowait(event)
                if event["event"] == "finished":
                    break
            queue.put_nowait(None)
        except Exception as err:
            queue.put_nowait(err)
        finally:
            await events.aclose()

    pumping = asyncio.ensure_future(pump())
    try:
        while True:
            items = [await queue.get()]
            while not queue.empty():
                items.append(queue.get_nowait())
            batch = [item for item in items if isinstance(item, dict)]
            if batch:
                yield batch
            if isinstance(items[-1], Exception):
                raise items[-1]
            if items[-1] is None:
                return
    finally:
        pumping.cancel()
        await asyncio.gather(pumping, return_exceptions=True)


def _result_of(workflow_id: str, finished: Event) -> dict[str, Any]:
    """The result a ``finished`` event carries; ``CrisisFailedError`` if the crisis ended without one."""
    result = finished.get("result")
    if isinstance(result, dict):
        return result
    status = finished.get("status") or "failed"
    raise CrisisFailedError(finished.get("error") or f"Crisis workflow {workflow_id} ended as {status}.", status)


async def finish_reading(reading: asyncio.Future[Any]) -> None:
    """Let ``reading`` take the events left (its stream ends with ``finished``), then stop it."""
    try:
        await asyncio.wait_for(asyncio.shield(reading), DRAIN_SECONDS)
    except TimeoutError:
        pass
    finally:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
