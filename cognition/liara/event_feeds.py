"""A crisis's events, read once per process and shared by everyone who follows them.

Following a crisis's event stream holds a Temporal update open on the crisis (a long poll), and
Temporal lets a workflow have only 10 updates in flight, decisions and added phases included.
One subscription per follower would let ten followers of a crisis block every decision on it.
So a process reads each crisis's stream once, in a ``CrisisFeed`` that keeps the events it has
read, and every follower takes them from there, after its own offset. A feed nobody follows any
more stops at its next event: its poll is answered, never abandoned, so a process holds at most
one update on a crisis however often followers come and go.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Any

Event = dict[str, Any]


class CrisisFeed:
    """One crisis's events as ``source`` yields them (from the first), kept for every follower."""

    def __init__(self, source: AsyncGenerator[Event, None], on_stop: Callable[[], None]) -> None:
        self.followers = 0
        self.events: list[Event] = []
        self.ended = False
        self.error: Exception | None = None
        self.grown = asyncio.Event()
        self._source = source
        self._on_stop = on_stop
        self._reading = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                self.events.append(await anext(self._source))
                self._wake()
                if not self.followers:
                    break
        except StopAsyncIteration:
            pass
        except Exception as err:  # each follower raises it
            self.error = err
        finally:
            self.ended = True
            self._on_stop()
            self._wake()
            await self._source.aclose()

    def _wake(self) -> None:
        self.grown.set()
        self.grown = asyncio.Event()

    async def follow(self, after: int | None) -> AsyncGenerator[Event, None]:
        """The events after id ``after`` (all if None), waiting for new ones until the feed ends."""
        self.followers += 1
        try:
            position = 0
            while True:
                grown = self.grown
                while position < len(self.events):
                    event = self.events[position]
                    position += 1
                    if after is None or event["id"] > after:
                        yield event
                if self.ended:
                    if self.error is not None:
                        raise self.error
                    return
                await grown.wait()
        finally:
            self.followers -= 1

    async def stop(self) -> None:
        self._reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reading


class EventFeeds:
    """The feeds of one process (one agency), by workflow id."""

    def __init__(self) -> None:
        self._feeds: dict[str, CrisisFeed] = {}

    async def follow(
        self, workflow_id: str, after: int | None, source: Callable[[], AsyncGenerator[Event, None]]
    ) -> AsyncGenerator[Event, None]:
        """The crisis's events after ``after`` from its feed, which ``source()`` starts if none runs."""
        feed = self._feeds.get(workflow_id)
        if feed is None:
            feed = self._feeds[workflow_id] = self._start(workflow_id, source)
        events = feed.follow(after)
        try:
            async for event in events:
                yield event
        finally:
            await events.aclose()

    def _start(self, workflow_id: str, source: Callable[[], AsyncGenerator[Event, None]]) -> CrisisFeed:
        """A feed of ``source()`` that leaves the feeds once it ends (a later reader starts another)."""

        def forget() -> None:
            if self._feeds.get(workflow_id) is feed:
                del self._feeds[workflow_id]

        feed = CrisisFeed(source(), forget)
        return feed

    async def close(self) -> None:
        """Stop every feed (when the agency disconnects); their followers end."""
        feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            await feed.stop()
