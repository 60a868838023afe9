"""A crisis's events as Server-Sent Events, within bounds.

Each event of ``agency.crisis_events`` becomes ``id: <offset>``, ``event: <kind>`` and
``data: <json>``; a client that reconnects with ``Last-Event-ID`` gets exactly the later ones.
An idle stream carries a ``: keep-alive`` comment every heartbeat, so proxies keep it open. A
token holds at most so many streams at once, and every stream ends when the service shuts down
(clients reconnect with ``Last-Event-ID``), so neither memory nor shutdown is unbounded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import anyio
from fastapi.sse import format_sse_event
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from app.temporal.errors import LiaraError
from cognition.liara.service.problem_types import TOO_MANY_STREAMS
from cognition.liara.service.problems import ProblemError, problem_body, problem_type_of
from cognition.liara.service.quotas import Quota

KEEP_ALIVE = b": keep-alive\n\n"
#: How long opening a stream waits for its first event: an error by then (an unknown crisis,
#: Temporal unreachable) is a problem response; a later one ends the stream with a ``problem`` event.
OPEN_WAIT_SECONDS = 2.0
#: How long closing a stream waits for the agency's reader to stop.
CLOSE_WAIT_SECONDS = 5.0

Event = dict[str, Any]


def encode(event: Event) -> bytes:
    return format_sse_event(
        data_str=json.dumps(event["data"], separators=(",", ":")), event=event["event"], id=str(event["id"])
    )


class CrisisEventStream:
    """One client's stream: reads the agency's events one at a time, with heartbeats between."""

    def __init__(
        self,
        events: AsyncGenerator[Event, None],
        *,
        heartbeat: float,
        draining: asyncio.Event,
        release: Callable[[], None],
    ) -> None:
        self._events = events
        self._heartbeat = heartbeat
        self._draining = draining
        self._release = release
        self._next: asyncio.Future[Event] = asyncio.ensure_future(anext(events))
        self._closed = False

    async def open(self) -> None:
        """Wait briefly for the first event; raise (and close) if the stream fails before it."""
        try:
            await asyncio.wait({self._next}, timeout=min(self._heartbeat, OPEN_WAIT_SECONDS))
            if self._next.done() and not self._next.cancelled():
                error = self._next.exception()
                if error is not None and not isinstance(error, StopAsyncIteration):
                    raise error
        except BaseException:  # the client may also have gone away meanwhile
            await self.close()
            raise

    async def body(self) -> AsyncIterator[bytes]:
        draining = asyncio.ensure_future(self._draining.wait())
        try:
            while True:
                done, _ = await asyncio.wait(
                    {self._next, draining}, timeout=self._heartbeat, return_when=asyncio.FIRST_COMPLETED
                )
                if self._next in done:
                    try:
                        event = self._next.result()
                    except StopAsyncIteration:
                        return
                    except LiaraError as err:
                        problem = problem_body(problem_type_of(err), str(err))
                        yield format_sse_event(data_str=json.dumps(problem), event="problem")
                        return
                    yield encode(event)
                    self._next = asyncio.ensure_future(anext(self._events))
                elif draining in done:
                    return
                else:
                    yield KEEP_ALIVE
        finally:
            draining.cancel()
            await self.close()

    async def close(self) -> None:
        """Give the slot back and stop reading events; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._release()
        self._next.cancel()
        # Shielded: a request whose client went away is cancelled, and its cleanup must still run.
        with anyio.CancelScope(shield=True):
            await asyncio.wait({self._next}, timeout=CLOSE_WAIT_SECONDS)
            if self._next.done():  # a generator still running cannot be closed
                await self._events.aclose()


class EventStreams:
    """The open streams of every token, and the signal that ends them all."""

    def __init__(self, *, per_identity: int, heartbeat: float) -> None:
        self.heartbeat = heartbeat
        self._open = Quota(per_identity, TOO_MANY_STREAMS, "open event streams", "close one first")
        self._draining = asyncio.Event()

    async def open(self, owner: str, events: AsyncGenerator[Event, None]) -> CrisisEventStream:
        """A stream of ``events`` held by ``owner``; 429 when it holds ``per_identity`` already."""
        try:
            self._open.take(owner)
        except ProblemError:
            await events.aclose()
            raise
        stream = CrisisEventStream(
            events, heartbeat=self.heartbeat, draining=self._draining, release=lambda: self._open.give_back(owner)
        )
        await stream.open()
        return stream

    def drain(self) -> None:
        """End every stream (at shutdown)."""
        self._draining.set()


class EventStreamResponse(StreamingResponse):
    """``text/event-stream`` of one ``CrisisEventStream``, closed however the response ends."""

    media_type = "text/event-stream"

    def __init__(self, stream: CrisisEventStream) -> None:
        super().__init__(stream.body(), headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._stream.close()
