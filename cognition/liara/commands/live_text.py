"""What ``liara watch`` shows of a crisis's events: the text its language-model agents write, as
they write it (``agent_output`` events), in lines ``PHASE> text``; and with ``--json`` every
event as a JSON line.

A line is printed once it is complete (a terminal's progress bar and piped output both take
whole lines); the rest of a model call's text when its phase ends, another model call of the
phase starts or the crisis finishes. A model call tried again says so: the lines printed of the
failed attempt stay, and its partial line is dropped.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncGenerator
from typing import Any, Protocol, runtime_checkable

from rich.console import Console

from cognition.liara.commands.output import err_console, say
from cognition.liara.errors import CrisisNotFoundError

Event = dict[str, Any]
#: How long, after the crisis's result came, its last events may take to be read.
DRAIN_SECONDS = 5.0


@runtime_checkable
class EventReader(Protocol):
    """An agency that reads a crisis's event stream (on Temporal: not through the service)."""

    def crisis_events(self, workflow_id: str, *, after: int | None = None) -> AsyncGenerator[Event, None]: ...


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


async def print_agent_text(agency: object, workflow_id: str, console: Console) -> None:
    """Print the crisis's agent text as it comes, until its ``finished`` event (nothing through the
    service, whose agency does not read the stream here). A stream that fails is one line on
    standard error: the rest of ``watch`` goes on.
    """
    if not isinstance(agency, EventReader):
        return
    text = LiveText()
    try:
        async for event in agency.crisis_events(workflow_id):
            for line in text.lines(event):
                say(line, console)
    except CrisisNotFoundError:
        return  # what watch waits for says so, once
    except Exception as err:
        say(f"The agents' text is not shown any more: {err}", err_console)


async def print_event_lines(agency: EventReader, workflow_id: str) -> None:
    """Every event of the crisis as a JSON line (``{"id", "event", "data"}``), to ``finished``."""
    async for event in agency.crisis_events(workflow_id):
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


async def finish_reading(reading: asyncio.Future[None]) -> None:
    """Let ``reading`` take the events left (its stream ends with ``finished``), then stop it."""
    try:
        await asyncio.wait_for(asyncio.shield(reading), DRAIN_SECONDS)
    except TimeoutError:
        pass
    finally:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
